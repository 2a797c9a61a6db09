//! What this node sees of the current minute, per environment: data calls
//! and platform faults (counted on the hot path: two relaxed atomic adds
//! at most, no lock, no allocation), whether the environment was closed at
//! some point, and whether a probe failed. The status task takes the
//! facts at each minute's end ([`Meter::take`]) and writes the verdict.

use crate::domain::Environment;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering::Relaxed};

/// One environment's current minute.
#[derive(Debug, Default)]
struct Current {
    calls: AtomicU32,
    faults: AtomicU32,
    closed: AtomicBool,
    probe_failed: AtomicBool,
}

/// The facts of one finished minute.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Minute {
    /// Data calls answered.
    pub calls: u32,
    /// Of those, platform faults (5xx other than 910600).
    pub faults: u32,
    /// The environment was closed at some point (maintenance, switch).
    pub closed: bool,
    /// A probe failed.
    pub probe_failed: bool,
}

impl Minute {
    /// Whether the minute was down: closed, a probe failed, or at least
    /// half of its data calls ended in a platform fault.
    pub fn down(&self) -> bool {
        let faulty = self.calls > 0 && u64::from(self.faults) * 2 >= u64::from(self.calls);
        self.closed || self.probe_failed || faulty
    }
}

/// Both environments' current minute.
#[derive(Debug, Default)]
pub struct Meter {
    envs: [Current; 2],
}

impl Meter {
    fn of(&self, env: Environment) -> &Current {
        match env {
            Environment::Sandbox => &self.envs[0],
            Environment::Production => &self.envs[1],
        }
    }

    /// Counts a data call on `env`; `fault`: it ended in a platform fault.
    #[inline]
    pub fn call(&self, env: Environment, fault: bool) {
        let c = self.of(env);
        c.calls.fetch_add(1, Relaxed);
        if fault {
            c.faults.fetch_add(1, Relaxed);
        }
    }

    /// Notes that `env` is closed now.
    pub fn closed(&self, env: Environment) {
        self.of(env).closed.store(true, Relaxed);
    }

    /// Notes a probe of `env` that failed.
    pub fn probe_failed(&self, env: Environment) {
        self.of(env).probe_failed.store(true, Relaxed);
    }

    /// The facts of the minute so far, left in place.
    pub fn peek(&self, env: Environment) -> Minute {
        let c = self.of(env);
        Minute {
            calls: c.calls.load(Relaxed),
            faults: c.faults.load(Relaxed),
            closed: c.closed.load(Relaxed),
            probe_failed: c.probe_failed.load(Relaxed),
        }
    }

    /// The facts of the minute that ended, and a fresh minute.
    pub fn take(&self, env: Environment) -> Minute {
        let c = self.of(env);
        Minute {
            calls: c.calls.swap(0, Relaxed),
            faults: c.faults.swap(0, Relaxed),
            closed: c.closed.swap(false, Relaxed),
            probe_failed: c.probe_failed.swap(false, Relaxed),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Environment::{Production, Sandbox};

    #[test]
    fn half_the_calls_in_fault_is_down_and_take_starts_afresh() {
        let m = Meter::default();
        m.call(Sandbox, false);
        m.call(Sandbox, true);
        m.call(Production, false);
        assert!(m.peek(Sandbox).down(), "1 fault of 2 calls");
        assert!(!m.take(Production).down());
        let s = m.take(Sandbox);
        assert_eq!((s.calls, s.faults), (2, 1));
        assert_eq!(m.take(Sandbox), Minute::default());
        m.call(Sandbox, true);
        m.call(Sandbox, false);
        m.call(Sandbox, false);
        assert!(!m.take(Sandbox).down(), "1 fault of 3 calls");
        m.closed(Production);
        assert!(m.take(Production).down());
        m.probe_failed(Sandbox);
        assert!(m.take(Sandbox).down());
        assert!(!Minute::default().down(), "no call, no fault");
    }
}
