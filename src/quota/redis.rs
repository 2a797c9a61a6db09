//! The `redis` quota backend (docs/contract.md §10): the sliding logs shared by every
//! node, so the quota is exact whichever node answers.
//!
//! Decisions are made by one atomic Lua script ([`SCRIPT`], sent as
//! EVALSHA; the client loads it again by itself after a Redis restart).
//! Per application and environment a list
//! `opale:quota:log:{env}:{client_id}` holds the time of each admitted
//! call, oldest first, by Redis's own clock in microseconds (`TIME` inside
//! the script: the nodes' clocks never enter). The script drops the prefix
//! of calls older than the window, counts the rest, appends the calls it
//! admits only while under the limit, and sets the key to expire when its
//! newest call leaves the window. A refused call writes nothing.
//!
//! **Batched as the trail's group commit is.** A node sends one script at
//! a time; the calls that arrive while it is in flight go together in the
//! next one (at most [`MAX_BATCH`]), decided one after the other inside
//! it, atomically — exactly as if each had its own script, in that order.
//! A key is read, trimmed and written once per script however many of
//! its calls the script decides (docs/benchmarks.md, session 12). A lone
//! call still goes alone, at once. (Several keys in one script: a
//! standalone Redis, not a Redis Cluster.)
//!
//! Failures (Redis unreachable, or slower than `quota.timeout_ms`) are
//! errors for the caller to apply `quota.on_failure` to; they are counted
//! on `/metrics` and logged once per change of state (down, up again), not
//! per call. The connection manager reconnects by itself.

use super::{Decision, QuotaError, WINDOW};
use crate::config::QuotaSettings;
use crate::domain::{ClientId, Environment};
use ::redis::aio::{ConnectionManager, ConnectionManagerConfig};
use ::redis::{RedisError, Script};
use prometheus_client::metrics::counter::Counter;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};

/// The decisions, atomically, in order. `KEYS[i]`: the log of call `i`
/// (a key may repeat). `ARGV[1]`: the window (µs); then for each call two
/// values: limit, 1 to count the call or 0 to only look. Returns, for each
/// call in turn, `admitted (0/1), calls in the window, µs until the oldest
/// leaves it (-1: none)`.
///
/// A log is a list of Redis times (µs), oldest first: appended at the tail
/// with the script's one `TIME`, so a list is in time order and the calls
/// that left the window are a prefix, dropped with one `LTRIM`. Each key
/// is read and trimmed once per script and written once (`RPUSH` of the
/// calls it admitted, then `PEXPIRE`); the calls of the batch are decided
/// one after the other on the count kept in between. Times are written
/// with `string.format('%d')`: a Lua number converted by Redis keeps only
/// 14 digits, and these have 16 (below 2^53, so exact in a Lua number).
pub const SCRIPT: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local window = tonumber(ARGV[1])
local cut = now - window
local logs = {}
local order = {}
local out = {}
for i = 1, #KEYS do
  local key = KEYS[i]
  local log = logs[key]
  if not log then
    local len = redis.call('LLEN', key)
    local drop = 0
    local oldest = nil
    local size = 1
    while drop < len do
      local chunk = redis.call('LRANGE', key, drop, drop + size - 1)
      size = 64
      local gone = 0
      for _, s in ipairs(chunk) do
        local at = tonumber(s)
        if at > cut then
          oldest = at
          break
        end
        gone = gone + 1
      end
      drop = drop + gone
      if oldest or #chunk == 0 then break end
    end
    if drop > 0 then
      redis.call('LTRIM', key, drop, -1)
    end
    log = { used = len - drop, oldest = oldest, added = 0 }
    logs[key] = log
    order[#order + 1] = key
  end
  local admitted = 0
  if ARGV[2 * i + 1] == '1' and log.used < tonumber(ARGV[2 * i]) then
    log.used = log.used + 1
    log.added = log.added + 1
    log.oldest = log.oldest or now
    admitted = 1
  end
  local leaves = -1
  if log.oldest then
    leaves = log.oldest + window - now
  end
  out[#out + 1] = admitted
  out[#out + 1] = log.used
  out[#out + 1] = leaves
end
local stamp = string.format('%d', now)
for _, key in ipairs(order) do
  local log = logs[key]
  if log.added > 0 then
    local stamps = {}
    for j = 1, log.added do stamps[j] = stamp end
    redis.call('RPUSH', key, unpack(stamps))
    redis.call('PEXPIRE', key, math.ceil(window / 1000))
  end
end
return out
";

/// The key prefix of every log (`log:`: lists; the sorted sets of earlier
/// versions were under `opale:quota:<env>:`).
pub const KEY_PREFIX: &str = "opale:quota:log:";

/// Most calls decided by one script.
pub const MAX_BATCH: usize = 64;

/// One call waiting for its decision.
struct Ask {
    key: String,
    limit: u32,
    take: bool,
    reply: oneshot::Sender<Result<Answer, Failure>>,
}

/// What the script answered for one call: admitted, used, µs until the
/// oldest leaves the window.
type Answer = (bool, u32, i64);

/// Why a batch got no answer (shared by its calls).
#[derive(Debug, Clone)]
enum Failure {
    Timeout,
    Redis(Arc<RedisError>),
    Malformed(usize),
}

/// Sliding logs in Redis.
pub struct RedisLog {
    asks: mpsc::UnboundedSender<Ask>,
    timeout: Duration,
    /// Whether the last call failed (to log changes of state only).
    down: AtomicBool,
    errors: Counter,
}

impl RedisLog {
    /// A lazily connected client of `settings.url` and the task that sends
    /// its batches; must run inside a tokio runtime (the task and the
    /// connection manager's tasks live there, as long as the log).
    pub fn connect(settings: &QuotaSettings, errors: Counter) -> Result<Self, QuotaError> {
        let conn = connection(settings)?;
        let (asks, queue) = mpsc::unbounded_channel();
        tokio::spawn(send_batches(conn, queue, settings.timeout()));
        Ok(RedisLog {
            asks,
            timeout: settings.timeout(),
            down: AtomicBool::new(false),
            errors,
        })
    }

    /// Has the call decided: counted if `take` and under `limit`.
    pub(super) async fn decide(
        &self,
        env: Environment,
        client: &ClientId,
        limit: u32,
        take: bool,
    ) -> Result<Decision, QuotaError> {
        let answer =
            match tokio::time::timeout(self.timeout, self.ask(env, client, limit, take)).await {
                Ok(Ok(answer)) => Ok(answer),
                Ok(Err(e)) => Err(e),
                Err(_) => Err(QuotaError::Timeout(self.timeout)),
            };
        self.record(answer.as_ref().err());
        let (admitted, used, leaves_us) = answer?;
        let oldest_leaves_in = u64::try_from(leaves_us).ok().map(Duration::from_micros);
        Ok(Decision::counted(admitted, limit, used, oldest_leaves_in))
    }

    async fn ask(
        &self,
        env: Environment,
        client: &ClientId,
        limit: u32,
        take: bool,
    ) -> Result<Answer, QuotaError> {
        let (reply, answer) = oneshot::channel();
        let ask = Ask {
            key: key(env, client),
            limit,
            take,
            reply,
        };
        self.asks.send(ask).map_err(|_| QuotaError::Stopped)?;
        match answer.await {
            Ok(Ok(a)) => Ok(a),
            Ok(Err(Failure::Timeout)) => Err(QuotaError::Timeout(self.timeout)),
            Ok(Err(Failure::Redis(e))) => Err(QuotaError::Batch(e)),
            Ok(Err(Failure::Malformed(n))) => Err(QuotaError::Malformed(n)),
            Err(_) => Err(QuotaError::Stopped),
        }
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

/// Sends the waiting calls, at most [`MAX_BATCH`] per script, one script
/// at a time, until the log is dropped.
async fn send_batches(
    mut conn: ConnectionManager,
    mut queue: mpsc::UnboundedReceiver<Ask>,
    timeout: Duration,
) {
    let script = Script::new(SCRIPT);
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while queue.recv_many(&mut batch, MAX_BATCH).await > 0 {
        // A caller that gave up no longer needs its call decided (nor
        // counted).
        batch.retain(|a: &Ask| !a.reply.is_closed());
        if batch.is_empty() {
            continue;
        }
        let mut call = script.prepare_invoke();
        call.arg(WINDOW.as_micros() as u64);
        for a in &batch {
            call.key(&a.key).arg(a.limit).arg(u8::from(a.take));
        }
        let answer =
            match tokio::time::timeout(timeout, call.invoke_async::<Vec<i64>>(&mut conn)).await {
                Ok(Ok(v)) if v.len() == 3 * batch.len() => Ok(v),
                Ok(Ok(v)) => Err(Failure::Malformed(v.len())),
                Ok(Err(e)) => Err(Failure::Redis(Arc::new(e))),
                Err(_) => Err(Failure::Timeout),
            };
        for (i, a) in batch.drain(..).enumerate() {
            let one = match &answer {
                Ok(v) => Ok((
                    v[3 * i] == 1,
                    u32::try_from(v[3 * i + 1]).unwrap_or(u32::MAX),
                    v[3 * i + 2],
                )),
                Err(f) => Err(f.clone()),
            };
            let _ = a.reply.send(one);
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

/// The log of one application in one environment.
pub fn key(env: Environment, client: &ClientId) -> String {
    format!("{KEY_PREFIX}{}:{}", env.as_str(), client.as_str())
}
