//! The audit trail's storage engine: an append-only, hash-chained log of
//! its own (docs/contract.md §7 "Evidence that survives the disk", docs/architecture.md style rule 14),
//! under `data_dir/trail/`. It stores opaque record bodies given by the
//! caller (the audit module encodes them) and everything the log needs to
//! prove its own integrity:
//!
//! - `frame` — record framing (length, CRC32C, seq, time, body) and the chain;
//! - `writer` — the one writer thread: group commit, one fdatasync per batch,
//!   then a signed checkpoint persisted before any acknowledgement;
//! - `note` — C2SP signed-note checkpoints (Ed25519);
//! - `scan`, `check` — the walk and the verification shared by `open` and `verify`;
//! - `open` — start-up check, torn-tail repair, resumption after a failure;
//! - `read` — newest-first and oldest-first iterators over a sparse index;
//! - `purge` — whole-segment retention behind a signed purge checkpoint.
//!
//! Files: `NNNNNNNNNNNNNNNNNNNN.seg` (named by first seq, rotated at
//! `segment_bytes`), `checkpoint` (latest signed checkpoint), `purge` (the
//! purge checkpoint verification starts from).
//!
//! Memory bounds: the queue holds at most `QUEUE` appends (each body at most
//! `frame::MAX_BODY`, 1 MiB; typically ~300 B); a batch buffer at most ~4 MiB;
//! a reader's buffer 256 KiB; the sparse index one 24-byte mark per 64 KiB of
//! segment plus ~100 bytes per segment — about 400 KiB per GiB of trail.
//!
//! Integrity state: `open` checks the whole trail. When the check fails,
//! the trail still accepts appends — continuing after the last record its
//! own signed checkpoint vouched for, so no two checkpoints ever disagree
//! on a count (a fork) — and keeps reporting not intact (`intact()`,
//! `verify`) until the process restarts after an admin acted on it.

mod check;
mod frame;
mod note;
mod open;
mod purge;
mod read;
mod recent;
mod scan;
#[cfg(test)]
mod tests;
mod writer;

pub use check::{VerifyReport, verify_dir};
pub use frame::{Entry, FrameFault, GENESIS, Hash, chain_entry};
pub use note::{Checkpoint, NoteSigner, NoteVerifier, origin_of, split_notes};
pub use open::{OpenReport, TrailConfig};
pub use purge::PurgeOutcome;
pub use read::{Newest, Oldest, Start};
pub use recent::Chained;

use scan::{Fault, Segment};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use tokio::sync::{mpsc, oneshot};

/// Appends queued before appenders wait (back-pressure).
const QUEUE: usize = 16_384;
/// File name of the latest signed checkpoint.
const CHECKPOINT_FILE: &str = "checkpoint";
/// File name of the purge checkpoint.
const PURGE_FILE: &str = "purge";

/// What can go wrong with the trail.
#[derive(Debug, Clone, thiserror::Error)]
pub enum TrailError {
    /// Disk I/O failed.
    #[error("trail I/O: {0}")]
    Io(#[source] Arc<std::io::Error>),
    /// A record that is not (or no longer) in the retained segments, or a
    /// writer that was closed (a finding of ours: no error value under it).
    #[error("{0}")]
    Failed(String),
    /// The writer stopped after an I/O error: this batch's or an earlier
    /// one's (the tail's state on disk is then unknown).
    #[error("trail writer stopped after an I/O error: {0}")]
    Stopped(#[source] Arc<std::io::Error>),
    /// A segment holds bytes that are not a frame.
    #[error("trail segment {} at byte {at}: {fault}", path.display())]
    Corrupt {
        /// The segment file (`?` when the reader does not know it).
        path: std::path::PathBuf,
        /// Offset of the bad frame.
        at: u64,
        /// What is wrong with it.
        fault: frame::FrameFault,
    },
    /// A body above `MAX_BODY`.
    #[error("record body of {0} bytes exceeds the 1 MiB limit")]
    TooLarge(usize),
    /// The signing key is unusable: not Ed25519, or a key name signed-note
    /// forbids (a finding about the key, not a wrapped error).
    #[error("trail key: {0}")]
    Key(String),
    /// Signing a checkpoint failed.
    #[error("trail key: {0}")]
    Sign(#[source] Arc<rcgen::Error>),
    /// A checkpoint text is malformed or not signed by the trail key (the
    /// text says which check of the note failed).
    #[error("checkpoint refused: {0}")]
    BadCheckpoint(String),
}

impl From<std::io::Error> for TrailError {
    fn from(e: std::io::Error) -> Self {
        TrailError::Io(Arc::new(e))
    }
}

/// Counters for `/metrics`; all monotonic.
#[derive(Debug, Default)]
pub struct TrailStats {
    /// Appends accepted into the queue.
    pub queued: AtomicU64,
    /// Records written and synced.
    pub written: AtomicU64,
    /// Group commits (batches).
    pub batches: AtomicU64,
    /// Time spent in the batches' fdatasync, ns.
    pub sync_ns: AtomicU64,
    /// Time spent signing and persisting checkpoints, ns.
    pub checkpoint_ns: AtomicU64,
}

/// State shared by the writer, readers, verify and purge.
struct State {
    /// Retained segments in order, each up to its durable length.
    segments: Vec<Segment>,
    /// The latest signed checkpoint.
    latest: Checkpoint,
    /// The first fault the start-up check found (kept until restart).
    flagged: Option<Fault>,
}

struct Shared {
    state: Mutex<State>,
    stats: TrailStats,
    /// Durable records kept for a follower ([`Trail::follow`]).
    recent: recent::Recent,
}

/// A handle on the trail; cheap to share behind an `Arc`.
pub struct Trail {
    dir: PathBuf,
    tx: mpsc::Sender<writer::Job>,
    shared: Arc<Shared>,
    signer: Arc<NoteSigner>,
    /// Serialises verify and purge (purge deletes files a walk reads).
    maintenance: Mutex<()>,
    report: OpenReport,
}

impl Trail {
    /// Appends one record and returns its seq. With `durable`, resolves
    /// once it is fdatasync'ed and covered by the persisted checkpoint;
    /// otherwise once written. Waits while the queue is full.
    pub async fn append(
        &self,
        time_ms: i64,
        body: Vec<u8>,
        durable: bool,
    ) -> Result<u64, TrailError> {
        if body.len() > frame::MAX_BODY {
            return Err(TrailError::TooLarge(body.len()));
        }
        let (reply, rx) = oneshot::channel();
        let job = writer::Job::Append {
            time_ms,
            body,
            durable,
            reply,
        };
        self.tx.send(job).await.map_err(|_| closed())?;
        self.shared.stats.queued.fetch_add(1, Relaxed);
        rx.await.map_err(|_| closed())?
    }

    /// Queues one record and returns at once (durability `async`): what
    /// is still queued when the process dies is lost. Waits only while the
    /// queue is full (back-pressure).
    pub async fn enqueue(&self, time_ms: i64, body: Vec<u8>) -> Result<(), TrailError> {
        if body.len() > frame::MAX_BODY {
            return Err(TrailError::TooLarge(body.len()));
        }
        let (reply, _unheard) = oneshot::channel();
        let job = writer::Job::Append {
            time_ms,
            body,
            durable: false,
            reply,
        };
        self.tx.send(job).await.map_err(|_| closed())?;
        self.shared.stats.queued.fetch_add(1, Relaxed);
        Ok(())
    }

    /// Finishes every append queued before it, then stops the writer.
    pub async fn close(&self) {
        let (done, rx) = oneshot::channel();
        if self.tx.send(writer::Job::Close(done)).await.is_ok() {
            let _ = rx.await;
        }
    }

    /// The latest signed checkpoint (signed-note text).
    pub fn checkpoint(&self) -> String {
        writer::lock(&self.shared).latest.text.clone()
    }

    /// The verifier for this trail's checkpoints.
    pub fn verifier(&self) -> &NoteVerifier {
        self.signer.verifier()
    }

    /// Whether the start-up check passed (`opale_trail_intact`).
    pub fn intact(&self) -> bool {
        self.report.intact
    }

    /// What the start-up check found.
    pub fn open_report(&self) -> &OpenReport {
        &self.report
    }

    /// The counters.
    pub fn stats(&self) -> &TrailStats {
        &self.shared.stats
    }

    /// Verifies the whole trail (blocking: run it off the async threads)
    /// against its own checkpoints and, if given, a checkpoint held
    /// elsewhere: ok only if the trail still extends it.
    pub fn verify(&self, external: Option<&str>) -> Result<VerifyReport, TrailError> {
        let _m = self.maintenance.lock().unwrap_or_else(|p| p.into_inner());
        let (latest, flagged) = {
            let st = writer::lock(&self.shared);
            (st.latest.clone(), st.flagged.clone())
        };
        let ext = external.map(|t| self.verifier().open(t));
        let mut extra = vec![&latest];
        if let Some(Ok(cp)) = &ext {
            extra.push(cp);
        }
        // The persisted file may be one batch ahead of `latest`; both are durable.
        let stop = check::read_note(&self.dir.join(CHECKPOINT_FILE), self.verifier())
            .ok()
            .flatten()
            .map_or(latest.count, |c| c.count.max(latest.count));
        let check = check::check(&self.dir, self.verifier(), stop, &extra)?;
        let mut report = check.report(&extra, &latest.text, flagged.as_ref());
        if let (true, Some(Err(e))) = (report.ok, ext) {
            report.ok = false;
            report.reason = Some(e.to_string());
        }
        Ok(report)
    }
}

fn closed() -> TrailError {
    TrailError::Failed("trail writer stopped".into())
}
