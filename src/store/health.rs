//! What a networked store reports about itself: when it last answered, the
//! errors and the reloads it caused (`opale_store_errors_total`,
//! `opale_store_reloads_total`), and which parts of the state a change
//! committed by another node touched.

use prometheus_client::metrics::counter::Counter;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// A part of the state held in memory and reloaded when another node
/// changes it. Named by the first segment of its store keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Area {
    /// `reg/…`: partners, applications, certificates, secrets, admins.
    Registry,
    /// `oauth/…`: revoked token ids.
    DenyList,
    /// `keys/…`: every node's registered token signing keys.
    Keys,
    /// `env/…`: maintenance of each environment.
    Availability,
    /// `tx/…`: transmitted claims (the in-memory index).
    Transmissions,
    /// `abuse/…`: open security events and the detector's learnt
    /// addresses.
    Abuse,
    /// `notify/…`: expiry notices, their claims and sent marks.
    Notices,
}

impl Area {
    /// Every area: what a node that missed notifications reloads.
    pub const ALL: [Area; 7] = [
        Area::Registry,
        Area::DenyList,
        Area::Keys,
        Area::Availability,
        Area::Transmissions,
        Area::Abuse,
        Area::Notices,
    ];

    /// The key prefix segment naming the area.
    pub fn name(self) -> &'static str {
        match self {
            Area::Registry => "reg",
            Area::DenyList => "oauth",
            Area::Keys => "keys",
            Area::Availability => "env",
            Area::Transmissions => "tx",
            Area::Abuse => "abuse",
            Area::Notices => "notify",
        }
    }

    /// The area a store key belongs to, if it is held in memory.
    pub fn of_key(key: &[u8]) -> Option<Area> {
        let first = key.split(|b| *b == b'/').next()?;
        Area::ALL.into_iter().find(|a| a.name().as_bytes() == first)
    }

    /// The area named `name` (as written in a notification).
    pub fn parse(name: &str) -> Option<Area> {
        Area::ALL.into_iter().find(|a| a.name() == name)
    }
}

/// The areas to reload: those another node changed (all of them after a
/// reconnection), or those a write of this node touched when it failed or
/// its outcome is unknown.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change(pub Vec<Area>);

impl Change {
    /// The areas `writes` touch, each once, in the order first written.
    pub fn of_writes(writes: &[super::Write]) -> Change {
        let mut areas = Vec::new();
        for area in writes.iter().filter_map(|w| Area::of_key(w.key())) {
            if !areas.contains(&area) {
                areas.push(area);
            }
        }
        Change(areas)
    }
}

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
    fn keys_name_their_area() {
        assert_eq!(Area::of_key(b"reg/partner/x"), Some(Area::Registry));
        assert_eq!(Area::of_key(b"oauth/revoked/j"), Some(Area::DenyList));
        assert_eq!(Area::of_key(b"idem/sandbox/c/k"), None);
        assert_eq!(Area::of_key(b"keys/sandbox/kid"), Some(Area::Keys));
        assert_eq!(Area::parse("tx"), Some(Area::Transmissions));
        assert_eq!(Area::of_key(b"abuse/event/e-1"), Some(Area::Abuse));
        assert_eq!(Area::of_key(b"abuse/addr/c/127.0.0.1"), Some(Area::Abuse));
        let notice = b"notify/notice/certificate/t/2027-01-20/030";
        assert_eq!(Area::of_key(notice), Some(Area::Notices));
    }

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
