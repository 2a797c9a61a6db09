//! The `redis` quota backend (docs/contract.md §10): the sliding logs shared by every
//! node, so the quota is exact whichever node answers.
//!
//! Each decision is **one** atomic Lua script ([`SCRIPT`], sent as EVALSHA;
//! the client loads it again by itself after a Redis restart). Per
//! application and environment a sorted set `opale:quota:{env}:{client_id}`
//! holds one member per admitted call, scored by Redis's own clock in
//! microseconds (`TIME` inside the script: the nodes' clocks never enter).
//! The script drops the members older than the window, counts the rest,
//! adds this call only if under the limit, and sets the key to expire when
//! its newest member leaves the window. A refused call writes nothing.
//!
//! Failures (Redis unreachable, or slower than `quota.timeout_ms`) are
//! errors for the caller to apply `quota.on_failure` to; they are counted
//! on `/metrics` and logged once per change of state (down, up again), not
//! per call. The connection manager reconnects by itself.

use super::{Decision, QuotaError, WINDOW};
use crate::config::QuotaSettings;
use crate::domain::{ClientId, Environment};
use ::redis::aio::{ConnectionManager, ConnectionManagerConfig};
use ::redis::{RedisResult, Script};
use prometheus_client::metrics::counter::Counter;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

/// The decision, atomically. `KEYS[1]`: the application's log. `ARGV`:
/// limit, window (µs), 1 to count the call or 0 to only look, a suffix
/// unique to this call (node, sequence). Returns `{admitted (0/1), calls in
/// the window, µs until the oldest leaves it (-1: none)}`. Scores and
/// members are formatted as integers (`%d`): a Lua number printed by
/// default keeps only 14 digits, and these have 16.
pub const SCRIPT: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local limit = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', string.format('%d', now - window))
local used = redis.call('ZCARD', KEYS[1])
local admitted = 0
if ARGV[3] == '1' and used < limit then
  local stamp = string.format('%d', now)
  redis.call('ZADD', KEYS[1], stamp, stamp .. '-' .. ARGV[4])
  redis.call('PEXPIRE', KEYS[1], math.ceil(window / 1000))
  used = used + 1
  admitted = 1
end
local leaves = -1
local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
if #oldest == 2 then
  leaves = tonumber(oldest[2]) + window - now
end
return {admitted, used, leaves}
";

/// The key prefix of every log.
pub const KEY_PREFIX: &str = "opale:quota:";

/// Sliding logs in Redis.
pub struct RedisLog {
    conn: ConnectionManager,
    script: Script,
    timeout: Duration,
    /// Random per process: members from two nodes never collide.
    node: String,
    seq: AtomicU64,
    /// Whether the last call failed (to log changes of state only).
    down: AtomicBool,
    errors: Counter,
}

impl RedisLog {
    /// A lazily connected client of `settings.url`; must run inside a tokio
    /// runtime (the connection manager's tasks live there).
    pub fn connect(settings: &QuotaSettings, errors: Counter) -> Result<Self, QuotaError> {
        let conn = connection(settings)?;
        let node = member_suffix()?;
        Ok(RedisLog {
            conn,
            script: Script::new(SCRIPT),
            timeout: settings.timeout(),
            node,
            seq: AtomicU64::new(0),
            down: AtomicBool::new(false),
            errors,
        })
    }

    /// Runs the script: counts the call if `take` and under `limit`.
    pub(super) async fn decide(
        &self,
        env: Environment,
        client: &ClientId,
        limit: u32,
        take: bool,
    ) -> Result<Decision, QuotaError> {
        let answer =
            match tokio::time::timeout(self.timeout, self.eval(env, client, limit, take)).await {
                Ok(Ok(answer)) => Ok(answer),
                Ok(Err(e)) => Err(QuotaError::Redis(e)),
                Err(_) => Err(QuotaError::Timeout(self.timeout)),
            };
        self.record(answer.as_ref().err());
        let (admitted, used, leaves_us) = answer?;
        let oldest_leaves_in = u64::try_from(leaves_us).ok().map(Duration::from_micros);
        Ok(Decision::counted(
            admitted == 1,
            limit,
            used,
            oldest_leaves_in,
        ))
    }

    async fn eval(
        &self,
        env: Environment,
        client: &ClientId,
        limit: u32,
        take: bool,
    ) -> RedisResult<(i64, u32, i64)> {
        let seq = self.seq.fetch_add(1, Ordering::Relaxed);
        let mut call = self.script.prepare_invoke();
        call.key(key(env, client))
            .arg(limit)
            .arg(WINDOW.as_micros() as u64)
            .arg(u8::from(take))
            .arg(format!("{}-{seq}", self.node));
        let mut conn = self.conn.clone();
        call.invoke_async(&mut conn).await
    }

    /// Counts a failure; logs when Redis goes away or comes back.
    fn record(&self, failure: Option<&QuotaError>) {
        match failure {
            None => {
                if self.down.load(Ordering::Relaxed) && self.down.swap(false, Ordering::Relaxed) {
                    tracing::info!("quota backend: Redis answers again");
                }
            }
            Some(e) => {
                self.errors.inc();
                if !self.down.swap(true, Ordering::Relaxed) {
                    tracing::error!(error = %e, "quota backend: Redis unavailable");
                }
            }
        }
    }
}

/// A lazily connected, self-reconnecting client of `settings.url`, each
/// round trip bounded by `settings.timeout()`; must be built inside a
/// tokio runtime (the connection manager's tasks live there). Also the
/// abuse detector's shared denial window's (`crate::abuse`).
pub fn connection(settings: &QuotaSettings) -> Result<ConnectionManager, QuotaError> {
    if tokio::runtime::Handle::try_current().is_err() {
        return Err(QuotaError::NoRuntime);
    }
    let client = ::redis::Client::open(settings.url.as_str()).map_err(QuotaError::Url)?;
    // No retry loop inside the manager: a call while Redis is away
    // fails at once (or at `timeout`), and the next call tries again.
    let config = ConnectionManagerConfig::new()
        .set_connection_timeout(Some(settings.timeout()))
        .set_response_timeout(Some(settings.timeout()))
        .set_number_of_retries(0);
    ConnectionManager::new_lazy_with_config(client, config).map_err(QuotaError::Redis)
}

/// A random suffix naming this process in the members it adds, so that
/// members written by two nodes in the same microsecond never collide.
pub fn member_suffix() -> Result<String, QuotaError> {
    crate::domain::random_bytes::<8>()
        .map(hex::encode)
        .map_err(QuotaError::Random)
}

/// The log of one application in one environment.
pub fn key(env: Environment, client: &ClientId) -> String {
    format!("{KEY_PREFIX}{}:{}", env.as_str(), client.as_str())
}
