//! What a networked store reports about itself: when it last answered, the
//! errors and the reloads it caused (`opale_store_errors_total`,
//! `opale_store_reloads_total`).

use prometheus_client::metrics::counter::Counter;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Connection state and counters of a networked store.
#[derive(Debug)]
pub struct Health {
    /// Reloads of in-memory state caused by other nodes' changes, or by
    /// this node's writes that failed or whose outcome was unknown.
    pub reloads: Counter,
    /// Failed calls to the backend (connection, query, timeout).
    pub errors: Counter,
    started: Instant,
    last_contact_ms: AtomicU64,
    up: AtomicBool,
}

impl Default for Health {
    fn default() -> Self {
        Health {
            reloads: Counter::default(),
            errors: Counter::default(),
            started: Instant::now(),
            last_contact_ms: AtomicU64::new(0),
            up: AtomicBool::new(true),
        }
    }
}

impl Health {
    /// The backend answered: records the time, logs once when it was down.
    pub fn contact(&self) {
        let ms = self.started.elapsed().as_millis() as u64;
        self.last_contact_ms.fetch_max(ms, Ordering::Relaxed);
        if !self.up.swap(true, Ordering::Relaxed) {
            tracing::info!("PostgreSQL reachable again");
        }
    }

    /// A call failed: counts it, logs once when it was up.
    pub fn failure(&self, error: &dyn std::fmt::Display) {
        self.errors.inc();
        if self.up.swap(false, Ordering::Relaxed) {
            tracing::warn!(error = %error, "PostgreSQL unreachable");
        }
    }

    /// Time since the backend last answered (since start if never).
    pub fn since_contact(&self) -> Duration {
        let last = Duration::from_millis(self.last_contact_ms.load(Ordering::Relaxed));
        self.started.elapsed().saturating_sub(last)
    }

    /// Whether the last call succeeded.
    pub fn is_up(&self) -> bool {
        self.up.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_count_and_contact_restores() {
        let h = Health::default();
        h.failure(&"down");
        h.failure(&"still down");
        assert_eq!(h.errors.get(), 2);
        assert!(!h.is_up());
        h.contact();
        assert!(h.is_up());
        assert!(h.since_contact() < Duration::from_secs(1));
    }
}
