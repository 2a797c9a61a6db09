//! Draining before a stop (docs/cluster.md "Rolling restart"): on SIGTERM
//! the node keeps accepting and serving for `cluster.drain_secs`, while its
//! health route answers 503 (so that a balancer's health check takes it out)
//! and every connection is asked to close after its current response
//! (HTTP/1 `Connection: close`, HTTP/2 GOAWAY), so that clients reconnect
//! through the balancer to another node. Then the accept loops stop and
//! what is still open gets the usual graceful close.

use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use tracing::info;

/// Whether the node is draining, for the health route and the connections.
#[derive(Debug, Default)]
pub struct Drain(AtomicBool);

impl Drain {
    /// Starts draining (later calls change nothing).
    pub fn start(&self) {
        self.0.store(true, Ordering::Relaxed);
    }

    /// Whether draining has started.
    pub fn is_draining(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }
}

/// Drains `drain` for `period`, or until `again` resolves (a second stop
/// signal: stop now). Returns at once for a zero period.
pub async fn drain_for(drain: &Drain, period: Duration, again: impl Future<Output = ()>) {
    if period.is_zero() {
        return;
    }
    drain.start();
    info!(
        secs = period.as_secs(),
        "draining: health answers 503, connections close after their response"
    );
    tokio::select! {
        _ = tokio::time::sleep(period) => {}
        _ = again => info!("second stop signal: stopping now"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_second_signal_cuts_the_drain_short() {
        let drain = Drain::default();
        let started = std::time::Instant::now();
        drain_for(&drain, Duration::from_secs(30), async {
            tokio::time::sleep(Duration::from_millis(200)).await;
        })
        .await;
        assert!(drain.is_draining());
        let took = started.elapsed();
        assert!(
            took >= Duration::from_millis(200) && took < Duration::from_secs(10),
            "{took:?}"
        );
        let idle = Drain::default();
        drain_for(&idle, Duration::ZERO, std::future::pending()).await;
        assert!(!idle.is_draining(), "no drain period: no drain");
    }
}
