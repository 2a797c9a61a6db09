//! Per-application quotas (docs/contract.md §2 step 6): N calls per 60 s per
//! application and environment, exact under concurrency — and, with the
//! Redis backend, across the nodes of a cluster (docs/contract.md §10).
//!
//! Semantics: a **sliding log** over the last 60 s. A call is admitted when
//! fewer than N calls were admitted in the 60 s before it; so in *any*
//! 60-second interval at most N calls are admitted (a fixed window would
//! allow 2N across a boundary; GCRA with a burst of N likewise). The
//! per-application log holds at most N timestamps. A refused call is not
//! logged.
//!
//! [`Quotas`] is the one entry point the chain (step 6) and the dashboards
//! use; it hands each decision to the configured backend: `local.rs` (in
//! this process, the default) or `redis.rs` (atomic scripts, concurrent calls
//! of a node batched in one).

mod local;
mod redis;

pub use self::redis::{RedisLog, connection};
pub use local::LocalLog;

use crate::config::{OnFailure, QuotaBackend, QuotaSettings};
use crate::domain::{ClientId, Environment};
use prometheus_client::metrics::counter::Counter;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The window length.
pub const WINDOW: Duration = Duration::from_secs(60);

/// Why the quota backend could not decide.
#[derive(Debug, thiserror::Error)]
pub enum QuotaError {
    /// The Redis URL was refused when the backend was built.
    #[error("quota backend: bad Redis URL: {0}")]
    Url(#[source] ::redis::RedisError),
    /// The backend was built outside a tokio runtime (its connection
    /// manager's tasks live there).
    #[error("quota backend: needs a tokio runtime")]
    NoRuntime,
    /// No random node id could be drawn (the shared denial window's members).
    #[error("quota backend: {0}")]
    Random(#[source] crate::domain::RandomError),
    /// Redis did not answer within the configured bound.
    #[error("quota backend: Redis did not answer within {0:?}")]
    Timeout(Duration),
    /// Redis answered with an error, or the connection failed.
    #[error("quota backend: {0}")]
    Redis(#[source] ::redis::RedisError),
    /// The same, for every call of a batch (`redis.rs`).
    #[error("quota backend: {0}")]
    Batch(#[source] Arc<::redis::RedisError>),
    /// The script answered something else than three numbers per call.
    #[error("quota backend: the script answered {0} numbers, not three per call")]
    Malformed(usize),
    /// The task sending the batches has ended (the node is stopping).
    #[error("quota backend: stopped")]
    Stopped,
}

/// A monotonic clock, injectable so tests do not sleep.
pub trait Clock: Send + Sync {
    /// Time elapsed since some fixed origin.
    fn now(&self) -> Duration;
}

/// The process's monotonic clock.
#[derive(Debug)]
pub struct SystemClock(Instant);

impl Default for SystemClock {
    fn default() -> Self {
        SystemClock(Instant::now())
    }
}

impl Clock for SystemClock {
    fn now(&self) -> Duration {
        self.0.elapsed()
    }
}

/// The outcome of one quota decision, with what the RateLimit headers say.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decision {
    /// Whether this call was admitted (and counted).
    pub admitted: bool,
    /// The quota (calls per window).
    pub limit: u32,
    /// Calls still admissible now.
    pub remaining: u32,
    /// Seconds until one more call becomes admissible (the oldest counted
    /// call leaves the window); the window length when nothing is counted.
    pub reset_secs: u64,
}

impl Decision {
    /// The decision once `used` calls are in the window (this one included
    /// if `admitted`), the oldest of them leaving it in `oldest_leaves_in`
    /// (`None`: the log is empty). Both backends answer through here, so
    /// their headers agree to the second.
    fn counted(admitted: bool, limit: u32, used: u32, oldest_leaves_in: Option<Duration>) -> Self {
        let reset_secs = match oldest_leaves_in {
            Some(d) => (d.as_millis() as u64).div_ceil(1000).max(1),
            None => WINDOW.as_secs(),
        };
        Decision {
            admitted,
            limit,
            remaining: limit.saturating_sub(used),
            reset_secs,
        }
    }
}

/// Where the logs live.
enum Backend {
    Local(LocalLog),
    Redis(RedisLog),
}

/// Every application's sliding log, on the configured backend.
pub struct Quotas {
    backend: Backend,
    on_failure: OnFailure,
}

impl Quotas {
    /// In-process logs on `clock` (the `local` backend).
    pub fn new(clock: Arc<dyn Clock>) -> Self {
        Quotas {
            backend: Backend::Local(LocalLog::new(clock)),
            on_failure: OnFailure::Closed,
        }
    }

    /// The backend `settings` name. Redis is connected lazily (the first
    /// call connects; a node starts even while Redis is away); its failures
    /// are counted on `errors`.
    pub fn from_settings(settings: &QuotaSettings, errors: Counter) -> Result<Self, QuotaError> {
        let backend = match settings.backend {
            QuotaBackend::Local => Backend::Local(LocalLog::new(Arc::new(SystemClock::default()))),
            QuotaBackend::Redis => Backend::Redis(RedisLog::connect(settings, errors)?),
        };
        Ok(Quotas {
            backend,
            on_failure: settings.on_failure,
        })
    }

    /// What a call gets when [`take`](Self::take) fails.
    pub fn on_failure(&self) -> OnFailure {
        self.on_failure
    }

    /// Admits and counts a call if the quota allows it. Only the Redis
    /// backend can fail (unreachable, or slower than its bound); the local
    /// one answers at once, without allocating a future on the heap.
    pub async fn take(
        &self,
        env: Environment,
        client: &ClientId,
        limit: u32,
    ) -> Result<Decision, QuotaError> {
        match &self.backend {
            Backend::Local(log) => Ok(log.take(env, client, limit)),
            Backend::Redis(log) => log.decide(env, client, limit, true).await,
        }
    }

    /// The current state without counting anything.
    pub async fn peek(
        &self,
        env: Environment,
        client: &ClientId,
        limit: u32,
    ) -> Result<Decision, QuotaError> {
        match &self.backend {
            Backend::Local(log) => Ok(log.peek(env, client, limit)),
            Backend::Redis(log) => log.decide(env, client, limit, false).await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reset_is_rounded_up_to_whole_seconds() {
        let d = Decision::counted(true, 5, 2, Some(Duration::from_millis(1_001)));
        assert_eq!((d.remaining, d.reset_secs), (3, 2));
        let d = Decision::counted(false, 5, 5, Some(Duration::from_millis(3)));
        assert_eq!((d.remaining, d.reset_secs), (0, 1));
        assert_eq!(Decision::counted(false, 5, 0, None).reset_secs, 60);
    }
}
