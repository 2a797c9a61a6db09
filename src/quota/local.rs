//! The `local` quota backend: every application's sliding log in this
//! process (see the module above for the semantics). Each decision takes one
//! short mutex (sharded 32 ways), never held across an await, so two
//! concurrent calls can never both take the last unit. No disk I/O on the
//! hot path; a restart starts empty windows.

use super::{Clock, Decision, WINDOW};
use crate::domain::{ClientId, Environment};
use std::collections::{HashMap, VecDeque};
use std::hash::BuildHasher;
use std::sync::{Arc, Mutex};
use std::time::Duration;

const SHARDS: usize = 32;

type Key = (Environment, ClientId);

/// Every application's sliding log, in memory.
pub struct LocalLog {
    shards: Vec<Mutex<HashMap<Key, VecDeque<Duration>>>>,
    hasher: std::collections::hash_map::RandomState,
    clock: Arc<dyn Clock>,
}

impl LocalLog {
    /// Empty logs on `clock`.
    pub fn new(clock: Arc<dyn Clock>) -> Self {
        LocalLog {
            shards: (0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect(),
            hasher: Default::default(),
            clock,
        }
    }

    /// Admits and counts a call if the quota allows it.
    pub fn take(&self, env: Environment, client: &ClientId, limit: u32) -> Decision {
        self.decide(env, client, limit, true)
    }

    /// The current state without counting anything.
    pub fn peek(&self, env: Environment, client: &ClientId, limit: u32) -> Decision {
        self.decide(env, client, limit, false)
    }

    fn decide(&self, env: Environment, client: &ClientId, limit: u32, take: bool) -> Decision {
        let now = self.clock.now();
        let key = (env, client.clone());
        let mut shard = self.shard(&key).lock().unwrap_or_else(|p| p.into_inner());
        let log = shard.entry(key).or_default();
        while log
            .front()
            .is_some_and(|t| now.saturating_sub(*t) >= WINDOW)
        {
            log.pop_front();
        }
        let used = u32::try_from(log.len()).unwrap_or(u32::MAX);
        let admitted = take && used < limit;
        if admitted {
            log.push_back(now);
        }
        let used = used + u32::from(admitted);
        let oldest_leaves_in = log
            .front()
            .map(|oldest| WINDOW.saturating_sub(now.saturating_sub(*oldest)));
        Decision::counted(admitted, limit, used, oldest_leaves_in)
    }

    fn shard(&self, key: &Key) -> &Mutex<HashMap<Key, VecDeque<Duration>>> {
        &self.shards[(self.hasher.hash_one(key) as usize) % SHARDS]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::quota::SystemClock;
    use std::sync::atomic::{AtomicU64, Ordering};

    /// A clock the test moves by hand.
    #[derive(Default)]
    struct ManualClock(AtomicU64);
    impl Clock for ManualClock {
        fn now(&self) -> Duration {
            Duration::from_millis(self.0.load(Ordering::SeqCst))
        }
    }

    #[test]
    fn sliding_window_never_admits_more_than_the_quota_in_any_60_s() {
        let clock = Arc::new(ManualClock::default());
        let q = LocalLog::new(clock.clone());
        let app = ClientId::new("a");
        let env = Environment::Sandbox;
        clock.0.store(59_000, Ordering::SeqCst);
        for i in 0..3 {
            let d = q.take(env, &app, 3);
            assert!(d.admitted);
            assert_eq!(d.remaining, 2 - i);
        }
        let refused = q.take(env, &app, 3);
        assert!(!refused.admitted);
        assert_eq!(refused.reset_secs, 60);
        // A fixed window would reset at 60 s; the sliding log does not.
        clock.0.store(61_000, Ordering::SeqCst);
        assert!(!q.take(env, &app, 3).admitted);
        clock.0.store(119_000, Ordering::SeqCst);
        assert!(q.take(env, &app, 3).admitted);
        // Other applications and environments are independent.
        assert!(q.take(Environment::Production, &app, 3).admitted);
        assert!(q.take(env, &ClientId::new("b"), 3).admitted);
        assert_eq!(q.peek(env, &ClientId::new("c"), 5).remaining, 5);
    }

    #[test]
    fn concurrent_takes_are_exact() {
        let q = Arc::new(LocalLog::new(Arc::new(SystemClock::default())));
        let app = ClientId::new("a");
        let admitted: u32 = std::thread::scope(|s| {
            let handles: Vec<_> = (0..16)
                .map(|_| {
                    let (q, app) = (q.clone(), app.clone());
                    s.spawn(move || {
                        (0..20)
                            .filter(|_| q.take(Environment::Sandbox, &app, 50).admitted)
                            .count() as u32
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).sum()
        });
        assert_eq!(admitted, 50);
    }
}
