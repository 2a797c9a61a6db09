//! The shipper: one thread per node copying the local trail's durable
//! records, in order, into PostgreSQL. Each round (at most one per
//! `super::SHIP_INTERVAL` when responses do not wait for it) takes every
//! record made durable since the last (up to `MAX_BATCH`), recomputes their chain
//! values from the local bodies (PostgreSQL never decides the chain),
//! signs a checkpoint for the last one and commits records and checkpoint
//! in one transaction — group commit, as the local writer does.
//!
//! A failed round marks the chain "not up" (waiting responses go on: their
//! records are durable locally) and is retried every `RETRY`, after
//! re-reading where PostgreSQL's copy ends (a commit whose answer was lost
//! must not be shipped twice). A round that has shipped every durable
//! record clears the "late" flag a response set when it gave up waiting
//! (`super::SHIP_WAIT`): responses wait for PostgreSQL again.

use super::sql::{self, Batch};
use super::{ClusterError, Shipped, run};
use crate::store::Health;
use crate::trail::{Hash, NoteSigner, Start, Trail, chain_entry};
use deadpool_postgres::Pool;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};
use tokio::runtime::Handle;
use tokio::sync::watch;

/// Most records in one shipped transaction.
const MAX_BATCH: usize = 2000;
/// Wait between rounds when nothing woke the shipper, and after a failure.
const RETRY: Duration = Duration::from_millis(500);

/// Where shipping starts: the local chain value after PostgreSQL's last
/// record, or why the node's chain in PostgreSQL cannot be continued.
pub fn resume(trail: &Trail, pg_seq: u64, pg_hash: &[u8]) -> (Option<Hash>, Option<String>) {
    match trail.chain_at(pg_seq) {
        // No value to compare at the start or at a purge point.
        Ok(local) if pg_hash.is_empty() || local[..] == *pg_hash => (Some(local), None),
        Ok(_) => (
            None,
            Some(format!(
                "record {pg_seq} in PostgreSQL differs from the local trail's (chain value)"
            )),
        ),
        Err(e) => (
            None,
            Some(format!("local trail unreadable at record {pg_seq}: {e}")),
        ),
    }
}

/// The shipper's state.
pub struct Shipper {
    pub trail: Arc<Trail>,
    pub handle: Handle,
    pub pool: Pool,
    pub node: String,
    pub signer: Arc<NoteSigner>,
    pub health: Option<Arc<Health>>,
    pub shipped: watch::Sender<Shipped>,
    /// Responses stopped waiting for PostgreSQL (`super::SHIP_WAIT`).
    pub late: Arc<AtomicBool>,
    /// Shortest time between two rounds' starts (`super::SHIP_INTERVAL`,
    /// zero when responses wait for PostgreSQL).
    pub interval: Duration,
    /// Next seq to ship.
    pub next: u64,
    /// Chain value after `next - 1`.
    pub hash: Hash,
}

impl Shipper {
    /// Starts the `opale-ship` thread; it ends when the trail handle's
    /// wake sender is dropped.
    pub fn spawn(self, woken: Receiver<()>) -> Result<(), ClusterError> {
        std::thread::Builder::new()
            .name("opale-ship".into())
            .spawn(move || self.run(&woken))
            .map(drop)
            .map_err(|e| ClusterError::Thread(std::sync::Arc::new(e)))
    }

    fn run(mut self, woken: &Receiver<()>) {
        let mut failing = false;
        let mut round = Instant::now();
        loop {
            match woken.recv_timeout(RETRY) {
                Ok(()) | Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => return,
            }
            // Records made durable until then go in this round.
            let due = round + self.interval;
            std::thread::sleep(due.saturating_duration_since(Instant::now()));
            round = Instant::now();
            if failing {
                std::thread::sleep(RETRY);
                if !self.resync() {
                    continue;
                }
            }
            failing = !self.drain();
        }
    }

    /// Ships every durable record not shipped yet — with an interval,
    /// only those durable when the round started (the later ones wait for
    /// the next round, so that a slow commit does not turn into
    /// back-to-back transactions); false on a failure.
    fn drain(&mut self) -> bool {
        let until = if self.interval.is_zero() {
            u64::MAX
        } else {
            self.trail.last_seq()
        };
        while self.trail.last_seq() >= self.next && self.next <= until {
            let batch = match self.batch() {
                Ok(b) => b,
                Err(e) => return self.failed(&e),
            };
            let (pool, node) = (self.pool.clone(), self.node.clone());
            let prev = (self.next - 1, self.hash);
            let last = prev.0 + batch.0.seqs.len() as u64;
            let shipped = run(&self.handle, async move {
                sql::ship(&pool, &node, &batch.0, (prev.0, &prev.1)).await
            });
            if let Err(e) = shipped {
                return self.failed(&e);
            }
            self.next = last + 1;
            self.hash = batch.1;
            if let Some(h) = &self.health {
                h.contact();
            }
            self.shipped.send_replace(Shipped {
                seq: last,
                up: true,
            });
        }
        if self.late.swap(false, Ordering::Relaxed) {
            tracing::info!(node = %self.node, "trail shipping caught up; responses wait for PostgreSQL again");
        }
        true
    }

    /// The next batch and the chain value after it: the records the
    /// writer kept in memory when it still holds `next`, else read back
    /// from the segments (the shipper fell behind, or resumed after a
    /// failure) with their chain values recomputed.
    fn batch(&self) -> Result<(Batch, Hash), ClusterError> {
        let mut b = Batch::default();
        let recent = self.trail.recent_from(self.next, MAX_BATCH);
        // The writer's chain and ours agree (one hash per batch checks it).
        let agrees = recent.first().is_some_and(|c| {
            let e = &c.entry;
            chain_entry(&self.hash, e.seq, e.time_ms, &e.body) == c.hash
        });
        let hash = if !agrees {
            self.read_back(&mut b)?
        } else {
            let mut hash = self.hash;
            for c in recent {
                hash = c.hash;
                b.push(c.entry.seq, c.entry.time_ms, c.entry.body, &c.hash);
            }
            hash
        };
        let last = self.next - 1 + b.seqs.len() as u64;
        b.note = self.signer.sign(last, &hash, None)?.text;
        Ok((b, hash))
    }

    /// Fills `b` from the segments, from `next` on; returns the chain
    /// value after its last record.
    fn read_back(&self, b: &mut Batch) -> Result<Hash, ClusterError> {
        let until = self.trail.last_seq();
        let mut hash = self.hash;
        for entry in self.trail.oldest(Start::Seq(self.next)) {
            let e = entry?;
            let expected = self.next + b.seqs.len() as u64;
            if e.seq != expected {
                return Err(ClusterError::Refused(format!(
                    "local trail skips from record {expected} to {}",
                    e.seq
                )));
            }
            hash = chain_entry(&hash, e.seq, e.time_ms, &e.body);
            b.push(e.seq, e.time_ms, e.body, &hash);
            if b.seqs.len() >= MAX_BATCH || e.seq >= until {
                break;
            }
        }
        Ok(hash)
    }

    /// Marks shipping down (logged once per change of state).
    fn failed(&self, e: &ClusterError) -> bool {
        let was_up = self.shipped.borrow().up;
        match (e, &self.health) {
            (ClusterError::Unavailable { .. }, Some(h)) => h.failure(e),
            _ if was_up => tracing::error!(
                node = %self.node, error = %e,
                "shipping the trail to PostgreSQL failed; re-reading where its copy ends"
            ),
            _ => {}
        }
        if was_up {
            tracing::warn!(node = %self.node, "trail records wait on this node's disk until shipped");
        }
        self.shipped.send_modify(|s| s.up = false);
        false
    }

    /// After a failure: where PostgreSQL's copy really ends (a lost answer
    /// may hide a commit). True when shipping may go on.
    fn resync(&mut self) -> bool {
        let (pool, node) = (self.pool.clone(), self.node.clone());
        match run(&self.handle, async move { sql::last(&pool, &node).await }) {
            Ok((seq, _)) if seq + 1 == self.next => true,
            // Ahead (a commit whose answer was lost) or behind (PostgreSQL
            // restored from a backup): continue from its end, re-shipping
            // from the local trail what it lacks.
            Ok((seq, hash)) if seq <= self.trail.last_seq() => {
                match resume(&self.trail, seq, &hash) {
                    (Some(h), None) => {
                        self.next = seq + 1;
                        self.hash = h;
                        true
                    }
                    (_, why) => self.failed(&ClusterError::Refused(why.unwrap_or_default())),
                }
            }
            Ok((seq, _)) => self.failed(&ClusterError::Refused(format!(
                "PostgreSQL holds this node's chain up to {seq}, expected {}",
                self.next - 1
            ))),
            Err(e) => self.failed(&e),
        }
    }
}
