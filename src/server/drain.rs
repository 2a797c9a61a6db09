//! Draining before a stop (docs/cluster.md "Rolling restart"): on SIGTERM
//! the node keeps accepting and serving for `cluster.drain_secs`, while its
//! health route answers 503 (so that a balancer's health check takes it out)
//! and every connection is asked to close after its current response
//! (HTTP/1 `Connection: close`, HTTP/2 GOAWAY), so that clients reconnect
//! through the balancer to another node. Then the accept loops stop and
//! what is still open gets the usual graceful close.

use std::future::Future;
use std::time::Duration;
use tokio::sync::watch;
use tracing::info;

/// Whether the node is draining, for the health route and the connections.
#[derive(Debug)]
pub struct Drain(watch::Sender<bool>);

impl Default for Drain {
    fn default() -> Self {
        Drain(watch::channel(false).0)
    }
}

impl Drain {
    /// Starts draining (once; later calls change nothing).
    pub fn start(&self) {
        self.0.send_if_modified(|on| !std::mem::replace(on, true));
    }

    /// Whether draining has started.
    pub fn is_draining(&self) -> bool {
        *self.0.borrow()
    }

    /// Resolves once draining has started (at once if it has).
    pub async fn started(&self) {
        let mut on = self.0.subscribe();
        let _ = on.wait_for(|on| *on).await;
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
    async fn draining_starts_once_and_wakes_who_waits() {
        let drain = Drain::default();
        assert!(!drain.is_draining());
        let waiting = drain.started();
        drain.start();
        drain.start();
        tokio::time::timeout(Duration::from_secs(1), waiting)
            .await
            .expect("a waiter sees the start");
        assert!(drain.is_draining());
        tokio::time::timeout(Duration::from_secs(1), drain.started())
            .await
            .expect("a later waiter returns at once");
    }

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
