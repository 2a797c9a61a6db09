//! The audit trail (DESIGN §7): one hash-chained record per request on
//! every listener and per admin action, written by a group-commit task so
//! that a response is sent only once its record is durable (by default),
//! verified end to end, queried, purged past retention behind a signed
//! checkpoint.

mod anchor;
pub mod http;
pub mod query;
mod record;
mod retention;
mod verify;
mod writer;

pub use anchor::{Anchor, AuditKey};
pub use record::{AdminAction, Code, Decision, TraceEvent, TraceRecord, normalize, timestamp};
pub use verify::VerifyReport;

use crate::store::{Store, StoreError};
use serde::Deserialize;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use tokio::sync::{mpsc, oneshot};

/// Audit failures. A request whose record cannot be written is answered
/// 503 (the trace never silently loses a record).
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The signing key.
    #[error("audit key: {0}")]
    Key(String),
    /// The writer task is gone (shutting down).
    #[error("the audit writer has stopped")]
    Closed,
    /// A stored record or anchor does not decode.
    #[error("corrupt audit data: {0}")]
    Corrupt(String),
}

/// When a response may leave relative to its record.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Durability {
    /// The response waits until its record is flushed (default).
    #[default]
    BeforeResponse,
    /// The record is queued; the response does not wait for the flush.
    Async,
}

/// Counters for `/metrics`.
#[derive(Debug, Default)]
pub struct AuditStats {
    /// Records waiting for the writer.
    pub queued: AtomicU64,
    /// Records written.
    pub written: AtomicU64,
    /// Batches flushed.
    pub flushes: AtomicU64,
    /// Total flush time, microseconds.
    pub flush_micros: AtomicU64,
}

/// The handle every listener appends through.
pub struct Auditor {
    tx: mpsc::Sender<writer::Job>,
    durability: Durability,
    store: Arc<dyn Store>,
    key: Arc<AuditKey>,
    stats: Arc<AuditStats>,
}

impl Auditor {
    /// Opens the trail in `store` and starts the writer task (must be
    /// called inside a tokio runtime).
    pub fn start(
        store: Arc<dyn Store>,
        key: AuditKey,
        durability: Durability,
    ) -> Result<Self, AuditError> {
        let key = Arc::new(key);
        let stats = Arc::new(AuditStats::default());
        let tx = writer::spawn(store.clone(), key.clone(), stats.clone())?;
        Ok(Auditor {
            tx,
            durability,
            store,
            key,
            stats,
        })
    }

    /// Appends one event; with `before_response`, returns once it is durable.
    pub async fn record(&self, event: TraceEvent) -> Result<(), AuditError> {
        self.stats.queued.fetch_add(1, Ordering::Relaxed);
        let (ack, done) = match self.durability {
            Durability::BeforeResponse => {
                let (tx, rx) = oneshot::channel();
                (Some(tx), Some(rx))
            }
            Durability::Async => (None, None),
        };
        let sent = self
            .tx
            .send(writer::Job::Append(Box::new(event), ack))
            .await;
        if sent.is_err() {
            self.stats.queued.fetch_sub(1, Ordering::Relaxed);
            return Err(AuditError::Closed);
        }
        match done {
            Some(rx) => rx.await.map_err(|_| AuditError::Closed)?,
            None => Ok(()),
        }
    }

    /// Flushes everything queued and stops the writer (releases the store).
    pub async fn close(&self) {
        let (tx, rx) = oneshot::channel();
        if self.tx.send(writer::Job::Close(tx)).await.is_ok() {
            let _ = rx.await;
        }
    }

    /// Walks the whole chain.
    pub fn verify(&self) -> Result<VerifyReport, AuditError> {
        verify::verify(&*self.store, &self.key)
    }

    /// Deletes records older than `cutoff` (RFC 3339), keeping a signed
    /// checkpoint of the last one deleted. Returns how many were deleted.
    pub async fn purge_before(&self, cutoff: String) -> Result<u64, AuditError> {
        let (tx, rx) = oneshot::channel();
        self.tx
            .send(writer::Job::Purge(cutoff, tx))
            .await
            .map_err(|_| AuditError::Closed)?;
        rx.await.map_err(|_| AuditError::Closed)?
    }

    /// The store (for queries).
    pub fn store(&self) -> &dyn Store {
        &*self.store
    }

    /// Writer counters.
    pub fn stats(&self) -> &AuditStats {
        &self.stats
    }
}
