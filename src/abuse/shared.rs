//! The denial window shared by the nodes of a cluster (docs/contract.md
//! §10): with `[quota] backend = "redis"`, each denial of an application is
//! counted in Redis beside its quota, so that N nodes do not multiply the
//! `denial_burst` threshold by N.
//!
//! One atomic Lua script per denial ([`SCRIPT`]) keeps the rule of the
//! local window (`window.rs`) — at least `denial_burst` denials within
//! `denial_window_secs`, then quiet for one window — on Redis's own clock:
//! a sorted set `opale:abuse:{client_id}:denials` holds the latest denials
//! (at most `denial_burst`, expiring with the window), and a key
//! `opale:abuse:{client_id}:quiet` marks the quiet window. Exactly one
//! denial, on whichever node, crosses the threshold: only that call raises
//! the event.
//!
//! Redis unreachable or slower than `quota.timeout_ms`: the call falls
//! back to the node's local window (always kept up to date), and Redis is
//! left alone for [`RETRY_AFTER`] so that denials meanwhile do not wait on
//! it at all. The wait is never added to the quota's: the pipeline runs it
//! alongside the quota's own round trip (`gateway/pipeline.rs`).

use super::window::{Alert, Verdict};
use super::{Abuse, Findings, Kind};
use crate::config::{AbuseSettings, QuotaSettings};
use crate::domain::ClientId;
use crate::quota::QuotaError;
use ::redis::Script;
use ::redis::aio::ConnectionManager;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// One denial, atomically. `KEYS[1]`: the window's sorted set, `KEYS[2]`:
/// the quiet marker. `ARGV`: threshold, window (µs), a suffix unique to
/// this call. Returns the denials in the window when this one crossed the
/// threshold outside a quiet window (the window then starts empty and the
/// quiet window begins), else 0. Integers are formatted with `%d` (a Lua
/// number printed by default keeps 14 digits; these have 16).
pub const SCRIPT: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local n = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
local ms = math.ceil(window / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', string.format('%d', now - window))
local stamp = string.format('%d', now)
redis.call('ZADD', KEYS[1], stamp, stamp .. '-' .. ARGV[3])
redis.call('ZREMRANGEBYRANK', KEYS[1], 0, -(n + 1))
redis.call('PEXPIRE', KEYS[1], ms)
local count = redis.call('ZCARD', KEYS[1])
if count >= n and redis.call('EXISTS', KEYS[2]) == 0 then
  redis.call('SET', KEYS[2], '1', 'PX', ms)
  redis.call('DEL', KEYS[1])
  return count
end
return 0
";

/// The key prefix of the shared denial windows.
pub const KEY_PREFIX: &str = "opale:abuse:";

/// How long Redis is left alone after a failure (denials meanwhile are
/// counted locally, without waiting).
pub const RETRY_AFTER: Duration = Duration::from_secs(1);

/// Denial windows in Redis.
pub struct SharedDenials {
    conn: ConnectionManager,
    script: Script,
    timeout: Duration,
    /// Random per process: members from two nodes never collide.
    node: String,
    seq: AtomicU64,
    started: Instant,
    /// Milliseconds after `started` before which Redis is not asked.
    retry_at_ms: AtomicU64,
    /// Whether the last call failed (to log changes of state only).
    down: AtomicBool,
}

/// What the shared window made of one denial.
enum Counted {
    /// It crossed the threshold: this many denials were in the window.
    Crossed(u32),
    /// Below the threshold, or inside a quiet window.
    Below,
    /// Redis did not answer in time (or is being left alone).
    Unanswered,
}

/// A denial to judge in the shared window, with what the local window
/// said of it (the fallback when Redis does not answer).
#[derive(Debug)]
pub struct SharedDenial {
    fallback: Option<Alert>,
}

impl SharedDenials {
    /// A lazily connected client of the quota's Redis (`settings.url`,
    /// bounded by `settings.timeout()`); must run inside a tokio runtime.
    pub fn connect(settings: &QuotaSettings) -> Result<Self, QuotaError> {
        Ok(SharedDenials {
            conn: crate::quota::connection(settings)?,
            script: Script::new(SCRIPT),
            timeout: settings.timeout(),
            node: member_suffix()?,
            seq: AtomicU64::new(0),
            started: Instant::now(),
            retry_at_ms: AtomicU64::new(0),
            down: AtomicBool::new(false),
        })
    }

    /// Counts one denial of `client` under `rules`.
    async fn count(&self, client: &ClientId, rules: &AbuseSettings) -> Counted {
        if self.elapsed_ms() < self.retry_at_ms.load(Ordering::Relaxed) {
            return Counted::Unanswered;
        }
        let answer = tokio::time::timeout(self.timeout, self.eval(client, rules)).await;
        match answer {
            Ok(Ok(crossed)) => {
                if self.down.swap(false, Ordering::Relaxed) {
                    tracing::info!("abuse detector: Redis answers again; denials counted there");
                }
                match u32::try_from(crossed) {
                    Ok(observed) if observed > 0 => Counted::Crossed(observed),
                    _ => Counted::Below,
                }
            }
            Ok(Err(e)) => self.failed(&e),
            Err(_) => self.failed(&format!("no answer within {:?}", self.timeout)),
        }
    }

    async fn eval(&self, client: &ClientId, rules: &AbuseSettings) -> ::redis::RedisResult<i64> {
        let seq = self.seq.fetch_add(1, Ordering::Relaxed);
        let window = Duration::from_secs(u64::from(rules.denial_window_secs));
        let (denials, quiet) = keys(client);
        let mut call = self.script.prepare_invoke();
        call.key(denials)
            .key(quiet)
            .arg(rules.denial_burst)
            .arg(window.as_micros() as u64)
            .arg(format!("{}-{seq}", self.node));
        let mut conn = self.conn.clone();
        call.invoke_async(&mut conn).await
    }

    /// Leaves Redis alone for a while; logs when it goes away.
    fn failed(&self, error: &dyn std::fmt::Display) -> Counted {
        let retry_at = self.elapsed_ms() + RETRY_AFTER.as_millis() as u64;
        self.retry_at_ms.store(retry_at, Ordering::Relaxed);
        if !self.down.swap(true, Ordering::Relaxed) {
            tracing::warn!(error = %error,
                "abuse detector: Redis unavailable; denials counted per node meanwhile");
        }
        Counted::Unanswered
    }

    fn elapsed_ms(&self) -> u64 {
        self.started.elapsed().as_millis() as u64
    }
}

/// The window and quiet keys of one application (one hash slot: `{…}`).
pub fn keys(client: &ClientId) -> (String, String) {
    let tag = format!("{KEY_PREFIX}{{{}}}", client.as_str());
    (format!("{tag}:denials"), format!("{tag}:quiet"))
}

impl Abuse {
    /// With a shared window, a denial is judged there: the local window's
    /// verdict on it is taken out of `findings` and kept as the fallback.
    pub(super) fn shared_denial(
        &self,
        verdict: Verdict,
        findings: &mut Findings,
    ) -> Option<SharedDenial> {
        self.shared.as_ref()?;
        let denial = matches!(verdict, Verdict::Denied | Verdict::OutsideAllowlist);
        if !denial || self.settings.denial_burst == 0 {
            return None;
        }
        let local = (findings.alerts.iter())
            .position(|a| a.kind == Kind::DenialBurst)
            .map(|i| findings.alerts.remove(i));
        Some(SharedDenial { fallback: local })
    }

    /// The burst `denial` raises, judged in Redis, or by the local window
    /// when Redis does not answer.
    pub(super) async fn judge(&self, client: &ClientId, denial: SharedDenial) -> Option<Alert> {
        let shared = self.shared.as_ref()?;
        match shared.count(client, &self.settings).await {
            Counted::Crossed(observed) => Some(Alert {
                kind: Kind::DenialBurst,
                observed,
            }),
            Counted::Below => None,
            Counted::Unanswered => denial.fallback,
        }
    }
}

/// A random suffix naming this process in the members it adds, so that
/// members written by two nodes in the same microsecond never collide.
fn member_suffix() -> Result<String, QuotaError> {
    crate::domain::random_bytes::<8>()
        .map(hex::encode)
        .map_err(QuotaError::Random)
}
