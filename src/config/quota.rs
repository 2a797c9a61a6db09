//! `[quota]` (docs/contract.md §10): where the per-application sliding logs live.
//! `local` (default) keeps them in this process; `redis` shares them between
//! the nodes of a cluster through one atomic script per call
//! (`quota/redis.rs`), with a bounded wait and a policy for when Redis
//! cannot answer.

use super::ConfigError;
use serde::{Deserialize, Deserializer};
use std::time::Duration;

/// `[quota]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct QuotaSettings {
    /// `local` (default: in-process, one node) or `redis` (shared).
    pub backend: QuotaBackend,
    /// The Redis server of the `redis` backend (default
    /// `redis://127.0.0.1:6379/0`); `redis://[:password@]host[:port][/db]`
    /// or `redis+unix:///path`.
    pub url: RedisUrl,
    /// What a data call gets when Redis does not answer in time: `closed`
    /// (default, 503 / 910605) or `open` (admitted without being counted).
    pub on_failure: OnFailure,
    /// Longest wait for Redis per call, milliseconds (default 200), the
    /// connection included; past it the call is a backend failure.
    pub timeout_ms: u64,
}

impl Default for QuotaSettings {
    fn default() -> Self {
        QuotaSettings {
            backend: QuotaBackend::Local,
            url: RedisUrl("redis://127.0.0.1:6379/0".into()),
            on_failure: OnFailure::Closed,
            timeout_ms: 200,
        }
    }
}

impl QuotaSettings {
    /// The bound on one Redis round trip.
    pub fn timeout(&self) -> Duration {
        Duration::from_millis(self.timeout_ms)
    }

    /// Checks what serde cannot.
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        if !(1..=10_000).contains(&self.timeout_ms) {
            return Err(ConfigError::Invalid {
                key: "quota.timeout_ms".into(),
                message: "must be between 1 and 10000".into(),
            });
        }
        Ok(())
    }
}

/// Where the sliding logs live.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum QuotaBackend {
    /// In this process (one node; a restart starts empty windows).
    #[default]
    Local,
    /// In Redis, shared by every node.
    Redis,
}

/// The answer to a data call when the quota backend cannot decide.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OnFailure {
    /// Refuse: 503 with code 910605 (nothing is served uncounted).
    #[default]
    Closed,
    /// Admit without counting (availability over exactness).
    Open,
}

/// A Redis URL, checked when the configuration is read. `Debug` hides the
/// password.
#[derive(Clone, PartialEq, Eq)]
pub struct RedisUrl(String);

impl RedisUrl {
    /// The URL as written.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for RedisUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match url::Url::parse(&self.0) {
            Ok(mut u) if u.password().is_some() => {
                let _ = u.set_password(Some("***"));
                write!(f, "{:?}", u.as_str())
            }
            _ => write!(f, "{:?}", self.0),
        }
    }
}

impl<'de> Deserialize<'de> for RedisUrl {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        let scheme_ok = ["redis://", "redis+unix://", "unix://"]
            .iter()
            .any(|p| s.starts_with(p));
        if !scheme_ok {
            return Err(serde::de::Error::custom(
                "must be a redis://, redis+unix:// or unix:// URL (no TLS in this build)",
            ));
        }
        redis::Client::open(s.as_str())
            .map_err(|e| serde::de::Error::custom(format!("not a Redis URL: {e}")))?;
        Ok(RedisUrl(s))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use std::path::Path;

    fn parse(text: &str) -> Result<Config, ConfigError> {
        Config::parse(text, Path::new("t.toml"))
    }

    #[test]
    fn defaults_are_local_and_closed() {
        let q = parse("").unwrap().quota;
        assert_eq!(q.backend, QuotaBackend::Local);
        assert_eq!(q.on_failure, OnFailure::Closed);
        assert_eq!(q.timeout(), Duration::from_millis(200));
        assert_eq!(q.url.as_str(), "redis://127.0.0.1:6379/0");
    }

    #[test]
    fn redis_section_parses_and_bad_values_name_their_key() {
        let q = parse(
            "[quota]\nbackend = \"redis\"\nurl = \"redis://:pw@10.0.0.1:6380/2\"\non_failure = \"open\"\n",
        )
        .unwrap()
        .quota;
        assert_eq!(
            (q.backend, q.on_failure),
            (QuotaBackend::Redis, OnFailure::Open)
        );
        let shown = format!("{:?}", q.url);
        assert!(
            !shown.contains("pw") && shown.contains("10.0.0.1"),
            "{shown}"
        );
        for (text, key) in [
            ("[quota]\nurl = \"http://x\"\n", "quota.url"),
            ("[quota]\nbackend = \"memcached\"\n", "quota.backend"),
            ("[quota]\non_failure = \"maybe\"\n", "quota.on_failure"),
            ("[quota]\ntimeout_ms = 0\n", "quota.timeout_ms"),
        ] {
            let err = parse(text).unwrap_err().to_string();
            assert!(err.contains(key), "{text}: {err}");
        }
    }
}
