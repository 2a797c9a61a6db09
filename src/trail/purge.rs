//! Retention: `purge_before` deletes whole segments whose every record is
//! older than the cutoff — never part of a segment, never the newest one —
//! after persisting a signed purge checkpoint (the last purged record's
//! count and chain value, plus a `purge-before` line). Verification starts
//! from that checkpoint and reports it, so a purge is never mistaken for
//! a loss, and a deletion without a signed purge is never mistaken for one.
//!
//! A purge interrupted after its checkpoint is written leaves segments
//! wholly before the purge point; the walk skips them (they are not
//! deleted at open yet: a later purge or an admin removes them).

use super::check::read_note;
use super::writer::{self, sync_dir, write_atomic};
use super::{PURGE_FILE, Trail, TrailError};
use serde::Serialize;

/// What a purge did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PurgeOutcome {
    /// Segment files deleted.
    pub segments: usize,
    /// Records deleted.
    pub records: u64,
    /// The purge checkpoint now in force (signed-note text), if any.
    pub checkpoint: Option<String>,
}

impl Trail {
    /// Deletes the oldest segments whose records are all older than
    /// `cutoff_ms` (Unix ms). Blocking. The caller enforces retention.
    pub fn purge_before(&self, cutoff_ms: i64) -> Result<PurgeOutcome, TrailError> {
        let _m = self.maintenance.lock().unwrap_or_else(|p| p.into_inner());
        let victims: Vec<_> = {
            let st = writer::lock(&self.shared);
            let sealed = &st.segments[..st.segments.len().saturating_sub(1)];
            sealed
                .iter()
                .take_while(|s| s.max_time < cutoff_ms)
                .cloned()
                .collect()
        };
        let current = read_note(&self.dir.join(PURGE_FILE), self.verifier())
            .ok()
            .flatten();
        let Some(last) = victims.iter().rev().find(|s| s.len > 0) else {
            return Ok(PurgeOutcome {
                segments: 0,
                records: 0,
                checkpoint: current.map(|c| c.text),
            });
        };
        let cp = self
            .signer
            .sign(last.last_seq, &last.end_hash, Some(cutoff_ms))?;
        write_atomic(&self.dir.join(PURGE_FILE), cp.text.as_bytes())?;
        sync_dir(&self.dir.join(PURGE_FILE))?;
        writer::lock(&self.shared).segments.drain(..victims.len());
        for seg in &victims {
            std::fs::remove_file(&seg.path)?;
        }
        if let Some(seg) = victims.first() {
            sync_dir(&seg.path)?;
        }
        tracing::info!(
            segments = victims.len(),
            up_to = last.last_seq,
            "trail purged"
        );
        Ok(PurgeOutcome {
            segments: victims.len(),
            records: last.last_seq + 1 - victims[0].first_seq,
            checkpoint: Some(cp.text),
        })
    }
}
