//! Spreads connections over the worker threads. Every worker accepts on
//! the same sockets; left alone, the worker that wakes first takes a
//! whole burst (the 32 connections a load generator opens at once all
//! landed on one worker while the other idled: docs/benchmarks.md). Here
//! a worker holding more than [`SLACK`] connections above the least
//! loaded one leaves the next connections to the others, and looks again
//! every [`RECHECK`]. The counts are the `opale_worker_connections`
//! gauges, so what balances is what `/metrics` shows.

use prometheus_client::metrics::gauge::Gauge;
use std::sync::Arc;
use std::time::Duration;

/// How many connections a worker may hold above the least loaded one
/// before it stops accepting.
pub const SLACK: i64 = 1;

/// How often a worker that stopped accepting looks again.
pub const RECHECK: Duration = Duration::from_millis(2);

/// One worker's view of every worker's open connections.
#[derive(Clone)]
pub struct Balance {
    open: Arc<[Gauge]>,
    worker: usize,
}

impl Balance {
    /// One view per worker over `gauges` (one per worker, in order).
    pub fn per_worker(gauges: Vec<Gauge>) -> Vec<Balance> {
        let open: Arc<[Gauge]> = gauges.into();
        (0..open.len())
            .map(|worker| Balance {
                open: open.clone(),
                worker,
            })
            .collect()
    }

    /// Whether this worker may accept now: it holds at most [`SLACK`]
    /// connections more than the least loaded worker.
    pub fn may_accept(&self) -> bool {
        let least = self.open.iter().map(Gauge::get).min().unwrap_or(0);
        self.open
            .get(self.worker)
            .is_none_or(|mine| mine.get() <= least + SLACK)
    }

    /// Returns once this worker may accept.
    pub async fn turn(&self) {
        while !self.may_accept() {
            tokio::time::sleep(RECHECK).await;
        }
    }

    /// Counts a connection on this worker until the returned value drops.
    pub fn hold(&self) -> Held {
        let gauge = self.open.get(self.worker).cloned().unwrap_or_default();
        gauge.inc();
        Held(gauge)
    }
}

/// A connection counted on its worker.
pub struct Held(Gauge);

impl Drop for Held {
    fn drop(&mut self) {
        self.0.dec();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_worker_ahead_of_the_least_loaded_waits_its_turn() {
        let views = Balance::per_worker(vec![Gauge::default(), Gauge::default()]);
        let (first, second) = (&views[0], &views[1]);
        let a = first.hold();
        assert!(first.may_accept(), "one ahead is within the slack");
        let b = first.hold();
        assert!(!first.may_accept(), "two ahead: the other worker's turn");
        assert!(second.may_accept());
        let c = second.hold();
        assert!(first.may_accept());
        drop((a, b));
        let d = second.hold();
        assert!(!second.may_accept(), "closed connections count no more");
        assert!(first.may_accept());
        drop((c, d));
        assert!(first.may_accept() && second.may_accept());
    }

    #[test]
    fn one_worker_always_accepts() {
        let views = Balance::per_worker(vec![Gauge::default()]);
        let held: Vec<Held> = (0..10).map(|_| views[0].hold()).collect();
        assert!(views[0].may_accept());
        drop(held);
    }
}
