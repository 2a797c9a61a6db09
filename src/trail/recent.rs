//! The records made durable lately (kept by the writer once their batch is
//! fdatasync'ed and published, never before), held in memory for a follower that
//! copies the trail elsewhere (a cluster node's shipper,
//! `crate::audit::cluster`): it takes them from here instead of reading the
//! segments back and hashing every body again. Off until [`Trail::follow`]
//! turns it on; bounded by bytes (the oldest leave first), so a follower
//! that falls behind reads the segments for what left, as before.

use super::Trail;
use super::frame::{Entry, Hash};
use std::collections::VecDeque;
use std::sync::atomic::AtomicBool;
use std::sync::atomic::Ordering::Relaxed;

/// Most body bytes kept.
pub const MAX_BYTES: usize = 8 << 20;

/// A durable record with the chain value after it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chained {
    /// The record.
    pub entry: Entry,
    /// The chain value after it, as the writer computed it.
    pub hash: Hash,
}

/// The ring itself (in the trail's shared state).
#[derive(Debug, Default)]
pub(super) struct Recent {
    on: AtomicBool,
    ring: std::sync::Mutex<Ring>,
}

#[derive(Debug, Default)]
struct Ring {
    records: VecDeque<Chained>,
    bytes: usize,
}

impl Recent {
    /// Whether the writer should keep what it writes.
    pub(super) fn is_on(&self) -> bool {
        self.on.load(Relaxed)
    }

    /// Keeps a durable batch, in order, dropping the oldest beyond the
    /// bound.
    pub(super) fn keep(&self, batch: Vec<Chained>) {
        let mut ring = self.ring.lock().unwrap_or_else(|p| p.into_inner());
        for c in batch {
            ring.bytes += c.entry.body.len();
            ring.records.push_back(c);
        }
        while ring.bytes > MAX_BYTES {
            match ring.records.pop_front() {
                Some(old) => ring.bytes -= old.entry.body.len(),
                None => ring.bytes = 0,
            }
        }
    }

    /// Takes the kept records from `seq` on, at most `max`, dropping the
    /// older ones. Empty when `seq` is no longer (or not yet) kept.
    fn take(&self, seq: u64, max: usize) -> Vec<Chained> {
        let mut ring = self.ring.lock().unwrap_or_else(|p| p.into_inner());
        while ring.records.front().is_some_and(|c| c.entry.seq < seq) {
            if let Some(old) = ring.records.pop_front() {
                ring.bytes -= old.entry.body.len();
            }
        }
        if ring.records.front().is_none_or(|c| c.entry.seq != seq) {
            return Vec::new();
        }
        let n = ring.records.len().min(max);
        let taken: Vec<Chained> = ring.records.drain(..n).collect();
        ring.bytes -= taken.iter().map(|c| c.entry.body.len()).sum::<usize>();
        taken
    }
}

impl Trail {
    /// Starts keeping durable records in memory for [`Trail::recent_from`].
    pub fn follow(&self) {
        self.shared.recent.on.store(true, Relaxed);
    }

    /// The durable records from `seq` on (at most `max`, contiguous, with
    /// their chain values) if memory still holds `seq`; empty otherwise —
    /// the caller then reads the segments ([`Trail::oldest`]). Records
    /// taken are forgotten, as are those before `seq`.
    pub fn recent_from(&self, seq: u64, max: usize) -> Vec<Chained> {
        self.shared.recent.take(seq, max)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chained(seq: u64, len: usize) -> Chained {
        Chained {
            entry: Entry {
                seq,
                time_ms: seq as i64,
                body: vec![b'x'; len],
            },
            hash: [seq as u8; 32],
        }
    }

    #[test]
    fn takes_contiguous_records_from_the_asked_seq_and_forgets_older_ones() {
        let r = Recent::default();
        r.keep((1..=5).map(|s| chained(s, 10)).collect());
        let got = r.take(3, 2);
        assert_eq!(got.iter().map(|c| c.entry.seq).collect::<Vec<_>>(), [3, 4]);
        assert_eq!(r.take(5, 10).len(), 1);
        assert!(r.take(6, 10).is_empty());
        assert_eq!(r.ring.lock().map(|g| g.bytes).unwrap_or(1), 0);
    }

    #[test]
    fn a_seq_no_longer_kept_yields_nothing_so_the_caller_reads_the_segments() {
        let r = Recent::default();
        let big = MAX_BYTES / 4 + 1;
        r.keep((1..=4).map(|s| chained(s, big)).collect());
        // Four bodies of a quarter of the bound and more: the first left.
        assert!(r.take(1, 10).is_empty());
        let got = r.take(2, 10);
        assert_eq!(
            got.iter().map(|c| c.entry.seq).collect::<Vec<_>>(),
            [2, 3, 4]
        );
    }
}
