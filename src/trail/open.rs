//! Opening the trail: the start-up check, the repair of a torn tail, and
//! where the writer resumes.
//!
//! A crash can leave an unacknowledged, half-written batch at the end of
//! the newest segment. Acknowledgements come only after the checkpoint
//! covering them is persisted, so bytes beyond the persisted checkpoint's
//! count were never acknowledged: a bad frame there is a torn write, cut
//! off silently. Anything else — a bad frame before that count, a missing
//! segment, a tail shorter than the checkpoint, a refused checkpoint — is
//! a fault: `open` still succeeds (the gateway must keep tracing), reports
//! it, and the writer resumes after the checkpoint's record in a fresh
//! segment, leaving the damage in place for `verify` to name.

use super::check::{self, Check};
use super::frame::Hash;
use super::note::NoteSigner;
use super::scan::Segment;
use super::writer::{self, Tail};
use super::{CHECKPOINT_FILE, QUEUE, Shared, State, Trail, TrailError, TrailStats};
use serde::Serialize;
use std::fs::OpenOptions;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use tokio::sync::mpsc;

/// Where and how the trail is stored.
#[derive(Debug, Clone)]
pub struct TrailConfig {
    /// The trail directory (`data_dir/trail`).
    pub dir: PathBuf,
    /// Segment rotation size in bytes (default 64 MiB).
    pub segment_bytes: u64,
}

impl TrailConfig {
    /// The default layout under `data_dir`.
    pub fn new(data_dir: &Path) -> Self {
        TrailConfig {
            dir: data_dir.join("trail"),
            segment_bytes: 64 << 20,
        }
    }
}

/// What the start-up check found (logged at error level by the caller
/// when not intact, and exposed as `opale_trail_intact`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OpenReport {
    /// Whether the trail extends its own last checkpoint, whole.
    pub intact: bool,
    /// Records found (after the purge point) before the first fault.
    pub records: u64,
    /// The first bad or missing record.
    pub first_bad: Option<u64>,
    /// What is wrong, naming the record or the missing range.
    pub reason: Option<String>,
    /// Bytes of torn, unacknowledged tail cut off (not a fault).
    pub torn_bytes_cut: u64,
}

impl Trail {
    /// Opens (or creates) the trail in `config.dir`, checks it (a full
    /// walk), and starts the writer thread. Blocking; needs no runtime
    /// (`append` then works from any tokio runtime). A failed check is not
    /// an error: see `intact()` and `open_report()`.
    pub fn open(config: &TrailConfig, signer: NoteSigner) -> Result<Trail, TrailError> {
        std::fs::create_dir_all(&config.dir)?;
        let signer = Arc::new(signer);
        let mut check = check::check(&config.dir, signer.verifier(), u64::MAX, &[])?;
        let torn_bytes_cut = cut_torn_tail(&mut check)?;
        let fault = check.first_fault(&[]);
        if let Some(f) = &fault {
            tracing::error!(first_bad = ?f.first_bad, reason = %f.reason, "audit trail is not intact");
        }
        let report = OpenReport {
            intact: fault.is_none(),
            records: check.scan.good - check.start.0,
            first_bad: fault.as_ref().and_then(|f| f.first_bad),
            reason: fault.as_ref().map(|f| f.reason.clone()),
            torn_bytes_cut,
        };
        let (tail, segments) = resume(config, &mut check, fault.is_none())?;
        let latest = match &check.own {
            Some(own) if (own.count, own.head) == (tail.seg.last_seq, tail.hash) => own.clone(),
            _ => {
                let cp = signer.sign(tail.seg.last_seq, &tail.hash, None)?;
                writer::write_atomic(&config.dir.join(CHECKPOINT_FILE), cp.text.as_bytes())?;
                cp
            }
        };
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                segments,
                latest,
                flagged: fault,
            }),
            stats: TrailStats::default(),
            recent: Default::default(),
        });
        let (tx, rx) = mpsc::channel(QUEUE);
        writer::spawn(tail, shared.clone(), signer.clone(), rx)?;
        Ok(Trail {
            dir: config.dir.clone(),
            tx,
            shared,
            signer,
            maintenance: Mutex::new(()),
            report,
        })
    }
}

/// Cuts a torn final frame of the newest segment when every record the
/// persisted checkpoint vouched for precedes it; returns the bytes cut.
fn cut_torn_tail(check: &mut Check) -> Result<u64, TrailError> {
    let Some((idx, offset)) = check.scan.bad_frame else {
        return Ok(0);
    };
    let vouched = check.own.as_ref().map_or(u64::MAX, |c| c.count);
    let last = check.scan.segments.len().saturating_sub(1);
    if check.fault.is_some() || idx != last || check.scan.good < vouched {
        return Ok(0);
    }
    let seg = &check.scan.segments[idx];
    let file = OpenOptions::new().write(true).open(&seg.path)?;
    let size = file.metadata()?.len();
    file.set_len(offset)?;
    file.sync_all()?;
    tracing::warn!(segment = %seg.path.display(), bytes = size - offset, "cut a torn, unacknowledged trail tail");
    check.scan.fault = None;
    check.scan.bad_frame = None;
    Ok(size - offset)
}

/// The writer's starting tail and the readers' index. Intact: continue
/// the newest segment. Not intact: continue after the record the own
/// checkpoint vouched for (or, without one, after the last record found),
/// in a new segment; segments beyond that point are set aside as
/// `*.seg.orphan` (kept, never deleted).
fn resume(
    config: &TrailConfig,
    check: &mut Check,
    intact: bool,
) -> Result<(Tail, Vec<Segment>), TrailError> {
    let mut segments = std::mem::take(&mut check.scan.segments);
    let (file, seg, hash) = if intact && !segments.is_empty() {
        let seg = segments[segments.len() - 1].clone();
        let file = OpenOptions::new().write(true).open(&seg.path)?;
        (file, seg, check.scan.head)
    } else {
        let (count, hash) = resume_point(check, &segments);
        set_aside(&mut segments, count)?;
        let seg = Segment::empty(&config.dir, count + 1, hash);
        let file = writer::create_segment(&seg.path)?;
        segments.push(seg.clone());
        (file, seg, hash)
    };
    // Zero padding a crash left past the records is written over.
    let filled = file.metadata()?.len().max(seg.len);
    let tail = Tail {
        file,
        seg,
        hash,
        filled,
        dir: config.dir.clone(),
        segment_bytes: config.segment_bytes.max(1),
    };
    Ok((tail, segments))
}

fn resume_point(check: &Check, segments: &[Segment]) -> (u64, Hash) {
    if let Some(own) = &check.own {
        return (own.count, own.head);
    }
    match segments.last() {
        Some(s) => (s.last_seq, s.end_hash),
        None => (check.start.0, check.start.1),
    }
}

/// Renames segments holding records after `count` out of the trail.
fn set_aside(segments: &mut Vec<Segment>, count: u64) -> Result<(), TrailError> {
    while let Some(seg) = segments.last() {
        if seg.last_seq <= count && seg.first_seq <= count {
            break;
        }
        let mut orphan = seg.path.clone().into_os_string();
        orphan.push(".orphan");
        if seg.len > 0 || std::fs::metadata(&seg.path)?.len() > 0 {
            std::fs::rename(&seg.path, &orphan)?;
            tracing::error!(segment = %seg.path.display(), "trail segment beyond the signed checkpoint set aside");
        } else {
            std::fs::remove_file(&seg.path)?;
        }
        segments.pop();
    }
    Ok(())
}
