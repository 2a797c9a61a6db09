//! The group-commit writer: one dedicated thread owns the chain's tail. It takes every
//! queued event at once, links them (seq, prev), writes them and the signed
//! head in one batch, flushes, then acknowledges them all. The batching
//! window is therefore the previous flush's duration: under load one flush
//! covers every request that arrived while the last one ran.

use super::anchor::{Anchor, AuditKey};
use super::record::{self, GENESIS, TraceEvent, TraceRecord};
use super::{AuditError, AuditStats, retention};
use crate::store::{Store, Write};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;
use tokio::sync::{mpsc, oneshot};

/// Most records in one batch.
const MAX_BATCH: usize = 4096;
/// Queue length before appenders wait (back-pressure, never loss).
const QUEUE: usize = 65_536;
/// Store key of the signed head.
pub const HEAD: &[u8] = b"audit/head";

/// Work for the writer.
pub enum Job {
    /// Append an event; acknowledge when durable.
    Append(
        Box<TraceEvent>,
        Option<oneshot::Sender<Result<(), AuditError>>>,
    ),
    /// Purge records older than the RFC 3339 cutoff.
    Purge(String, oneshot::Sender<Result<u64, AuditError>>),
    /// Stop after the current batch.
    Close(oneshot::Sender<()>),
}

struct Tail {
    seq: u64,
    hash: String,
}

/// Reads the tail and starts the writer thread. A plain thread (not a
/// task plus `spawn_blocking`) saves a hand-off per batch: it blocks on the
/// queue, then on the flush, and wakes the waiting responses directly.
pub fn spawn(
    store: Arc<dyn Store>,
    key: Arc<AuditKey>,
    stats: Arc<AuditStats>,
) -> Result<mpsc::Sender<Job>, AuditError> {
    let tail = load_tail(&*store)?;
    let (tx, rx) = mpsc::channel(QUEUE);
    std::thread::Builder::new()
        .name("opale-audit".into())
        .spawn(move || run(rx, store, key, stats, tail))
        .map_err(|e| AuditError::Corrupt(format!("cannot start the audit writer: {e}")))?;
    Ok(tx)
}

fn load_tail(store: &dyn Store) -> Result<Tail, AuditError> {
    let last = store.range(record::KEY_START, record::KEY_END, true, 1)?;
    if let Some((_, bytes)) = last.first() {
        let rec: TraceRecord =
            serde_json::from_slice(bytes).map_err(|e| AuditError::Corrupt(e.to_string()))?;
        return Ok(Tail {
            seq: rec.seq,
            hash: record::digest(bytes),
        });
    }
    // Everything purged: continue from the checkpoint.
    match store.get(retention::CHECKPOINT)? {
        Some(bytes) => {
            let a: Anchor =
                serde_json::from_slice(&bytes).map_err(|e| AuditError::Corrupt(e.to_string()))?;
            Ok(Tail {
                seq: a.seq,
                hash: a.hash,
            })
        }
        None => Ok(Tail {
            seq: 0,
            hash: GENESIS.to_owned(),
        }),
    }
}

fn run(
    mut rx: mpsc::Receiver<Job>,
    store: Arc<dyn Store>,
    key: Arc<AuditKey>,
    stats: Arc<AuditStats>,
    mut tail: Tail,
) {
    let mut closing = None;
    while let Some(first) = rx.blocking_recv() {
        let mut jobs = vec![first];
        while jobs.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(j) => jobs.push(j),
                Err(_) => break,
            }
        }
        let mut appends = Vec::new();
        for job in jobs {
            match job {
                Job::Append(e, ack) => appends.push((e, ack)),
                Job::Purge(cutoff, ack) => {
                    let _ = ack.send(retention::purge(&*store, &key, &cutoff));
                }
                Job::Close(ack) => closing = Some(ack),
            }
        }
        if !appends.is_empty() {
            write_batch(&*store, &key, &stats, &mut tail, appends);
        }
        if closing.is_some() {
            break;
        }
    }
    drop(rx);
    drop(store);
    if let Some(ack) = closing {
        let _ = ack.send(());
    }
}

type Pending = (
    Box<TraceEvent>,
    Option<oneshot::Sender<Result<(), AuditError>>>,
);

fn write_batch(
    store: &dyn Store,
    key: &AuditKey,
    stats: &AuditStats,
    tail: &mut Tail,
    appends: Vec<Pending>,
) {
    let n = appends.len() as u64;
    let (mut seq, mut hash) = (tail.seq, tail.hash.clone());
    let mut writes = Vec::with_capacity(appends.len() + 1);
    let mut acks = Vec::with_capacity(appends.len());
    for (event, ack) in appends {
        seq += 1;
        let rec = TraceRecord {
            seq,
            prev: hash,
            event: *event,
        };
        let bytes = rec.canonical();
        hash = record::digest(&bytes);
        writes.push(Write::Put(record::key(seq), bytes));
        acks.push(ack);
    }
    let head = key
        .anchor(seq, &hash)
        .and_then(|a| serde_json::to_vec(&a).map_err(|e| AuditError::Corrupt(e.to_string())));
    let result = match head {
        Ok(head) => {
            writes.push(Write::Put(HEAD.to_vec(), head));
            let started = Instant::now();
            let r = store.commit(writes).map_err(AuditError::from);
            stats.flushes.fetch_add(1, Ordering::Relaxed);
            stats
                .flush_micros
                .fetch_add(started.elapsed().as_micros() as u64, Ordering::Relaxed);
            r
        }
        Err(e) => Err(e),
    };
    stats.queued.fetch_sub(n, Ordering::Relaxed);
    match &result {
        Ok(()) => {
            stats.written.fetch_add(n, Ordering::Relaxed);
            *tail = Tail { seq, hash };
        }
        Err(e) => tracing::error!(error = %e, records = n, "audit batch not written"),
    }
    for ack in acks.into_iter().flatten() {
        let _ = ack.send(match &result {
            Ok(()) => Ok(()),
            Err(e) => Err(AuditError::Corrupt(e.to_string())),
        });
    }
}
