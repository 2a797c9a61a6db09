//! The audit trail (DESIGN §7): one record per request on every listener
//! and per admin action, appended to the trail log (`crate::trail`:
//! segment files, CRC'd frames, a hash chain, group commit with one
//! fdatasync per batch, a signed checkpoint after each) so that a response
//! leaves only once its record is durable (by default); verified against
//! the trail's own checkpoints or one held elsewhere; queried newest
//! first; purged past retention behind a signed purge checkpoint.

pub mod http;
pub mod query;
mod record;

pub use crate::trail::{OpenReport, PurgeOutcome, TrailStats, VerifyReport};
pub use record::{AdminAction, Code, Decision, TraceEvent, TraceRecord, normalize, timestamp};

use crate::trail::{NoteSigner, Trail, TrailConfig, TrailError};
use serde::Deserialize;
use std::path::Path;
use std::sync::Arc;
use time::OffsetDateTime;

/// Origin line of the trail's checkpoints (C2SP signed note).
pub const ORIGIN: &str = "opale-apim/trail";

/// Audit failures. A request whose record cannot be written is answered
/// 503 (the trace never silently loses a record).
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    /// The trail log failed.
    #[error(transparent)]
    Trail(#[from] TrailError),
    /// The signing key.
    #[error("audit key: {0}")]
    Key(String),
    /// A stored record does not decode.
    #[error("corrupt trace record {seq}: {message}")]
    Corrupt {
        /// Its position.
        seq: u64,
        /// What is wrong.
        message: String,
    },
}

/// When a response may leave relative to its record.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Durability {
    /// The response waits until its record is on disk (default).
    #[default]
    BeforeResponse,
    /// The record is queued; the response does not wait for it (a crash
    /// loses what is still queued).
    Async,
}

/// The handle every listener appends through.
pub struct Auditor {
    trail: Arc<Trail>,
    durability: Durability,
}

impl Auditor {
    /// Opens the trail under `data_dir/trail` (checking that it extends its
    /// own last checkpoint; a failed check is logged at error level by the
    /// trail and kept in [`Auditor::intact`]) and starts its writer.
    /// Blocking.
    pub fn start(
        data_dir: &Path,
        key_path: &Path,
        durability: Durability,
        segment_bytes: u64,
    ) -> Result<Self, AuditError> {
        let key = crate::pki::load_or_create_ed25519(key_path)
            .map_err(|e| AuditError::Key(e.to_string()))?;
        let signer = NoteSigner::new(ORIGIN, key)?;
        let mut config = TrailConfig::new(data_dir);
        config.segment_bytes = segment_bytes;
        let trail = Trail::open(&config, signer)?;
        // A failed start-up check is logged (error level, first bad
        // record) by `Trail::open`, exposed by `intact()`.
        Ok(Auditor {
            trail: Arc::new(trail),
            durability,
        })
    }

    /// Appends one event; with `before_response`, returns once it is durable.
    pub async fn record(&self, event: &TraceEvent) -> Result<(), AuditError> {
        let time_ms = (OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000) as i64;
        let body = serde_json::to_vec(event).map_err(|e| AuditError::Corrupt {
            seq: 0,
            message: e.to_string(),
        })?;
        match self.durability {
            Durability::BeforeResponse => self.trail.append(time_ms, body, true).await.map(drop)?,
            Durability::Async => self.trail.enqueue(time_ms, body).await?,
        }
        Ok(())
    }

    /// Finishes every queued append and stops the writer.
    pub async fn close(&self) {
        self.trail.close().await;
    }

    /// Walks the whole trail (blocking) against its own checkpoints and,
    /// if given, a checkpoint held elsewhere.
    pub fn verify(&self, checkpoint: Option<&str>) -> Result<VerifyReport, AuditError> {
        Ok(self.trail.verify(checkpoint)?)
    }

    /// The latest signed checkpoint (C2SP signed-note text).
    pub fn checkpoint(&self) -> String {
        self.trail.checkpoint()
    }

    /// Deletes the segments whose records are all older than `cutoff`,
    /// behind a signed purge checkpoint (blocking). The caller enforces
    /// retention.
    pub fn purge_before(&self, cutoff: OffsetDateTime) -> Result<PurgeOutcome, AuditError> {
        let cutoff_ms = (cutoff.unix_timestamp_nanos() / 1_000_000) as i64;
        Ok(self.trail.purge_before(cutoff_ms)?)
    }

    /// Whether the start-up check passed (`opale_trail_intact`).
    pub fn intact(&self) -> bool {
        self.trail.intact()
    }

    /// What the start-up check found.
    pub fn open_report(&self) -> &OpenReport {
        self.trail.open_report()
    }

    /// The log itself (for queries).
    pub fn trail(&self) -> &Trail {
        &self.trail
    }

    /// Writer counters.
    pub fn stats(&self) -> &TrailStats {
        self.trail.stats()
    }
}
