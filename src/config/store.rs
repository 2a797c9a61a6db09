//! `[store]` and `[cluster]` (docs/contract.md §10): which backend holds the state
//! (embedded sled, or PostgreSQL shared by several nodes) and how a node of
//! a cluster names itself and how stale its snapshot may get.

use super::ConfigError;
use serde::Deserialize;
use std::time::Duration;

/// The storage backend.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StoreBackend {
    /// Embedded, one node: `data_dir/sled`.
    #[default]
    Sled,
    /// PostgreSQL at `store.url`, shared by every node.
    Postgres,
}

/// A PostgreSQL URL; `Debug` hides it (it may carry a password).
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct StoreUrl(pub String);

impl std::fmt::Debug for StoreUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("StoreUrl(..)")
    }
}

/// `[store]`
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StoreSettings {
    /// `"sled"` (default) or `"postgres"`.
    pub backend: StoreBackend,
    /// `postgres://user[:password]@host:port/db` (required for postgres;
    /// no TLS to PostgreSQL in this version).
    pub url: Option<StoreUrl>,
    /// Connections in the pool (default 8, at least 2).
    pub pool_size: usize,
}

impl Default for StoreSettings {
    fn default() -> Self {
        StoreSettings {
            backend: StoreBackend::Sled,
            url: None,
            pool_size: 8,
        }
    }
}

/// `[cluster]`
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ClusterSettings {
    /// Names the node in notifications, logs and metrics (default: the
    /// host name, else `node-1`). No spaces.
    pub node_id: String,
    /// With PostgreSQL unreachable this long, data calls answer 503
    /// (910605) instead of serving an old snapshot (seconds, default 30).
    pub max_staleness_secs: u64,
    /// On SIGTERM, how long the node keeps serving while its health route
    /// answers 503 and each connection closes after its current response,
    /// before it stops accepting (seconds, default 0: stop at once). Behind
    /// a balancer, longer than its health check takes to mark the node
    /// down (docs/cluster.md "Rolling restart").
    pub drain_secs: u64,
    /// What a response waits for besides its record being durable on the
    /// node's disk (docs/cluster.md "The trail across nodes").
    pub trail_wait: TrailWait,
}

/// `cluster.trail_wait`: where a record must be before its response leaves
/// (with `audit.durability = "before_response"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TrailWait {
    /// fdatasync'ed on the node's disk, as on a single node (default); the
    /// shipper commits it in PostgreSQL within `SHIP_INTERVAL` plus one
    /// transaction, many records per transaction.
    #[default]
    Disk,
    /// Also committed in PostgreSQL, waiting at most `SHIP_WAIT` (then
    /// shipping is late and responses stop waiting until it catches up).
    Postgres,
}

impl Default for ClusterSettings {
    fn default() -> Self {
        ClusterSettings {
            node_id: hostname().unwrap_or_else(|| "node-1".into()),
            max_staleness_secs: 30,
            drain_secs: 0,
            trail_wait: TrailWait::Disk,
        }
    }
}

fn hostname() -> Option<String> {
    let name = std::fs::read_to_string("/proc/sys/kernel/hostname").ok()?;
    let name = name.trim();
    (!name.is_empty() && !name.contains(char::is_whitespace)).then(|| name.to_owned())
}

impl ClusterSettings {
    /// The staleness cut-off.
    pub fn max_staleness(&self) -> Duration {
        Duration::from_secs(self.max_staleness_secs)
    }

    /// The drain before a stop.
    pub fn drain(&self) -> Duration {
        Duration::from_secs(self.drain_secs)
    }
}

/// The longest drain accepted: an orchestrator's stop timeout is shorter.
const MAX_DRAIN_SECS: u64 = 600;

/// Checks `[store]` and `[cluster]` together.
pub fn validate(store: &StoreSettings, cluster: &ClusterSettings) -> Result<(), ConfigError> {
    let invalid = |key: &str, message: &str| {
        Err(ConfigError::Invalid {
            key: key.into(),
            message: message.into(),
        })
    };
    if store.backend == StoreBackend::Postgres && store.url.is_none() {
        return invalid("store.url", "required with backend = \"postgres\"");
    }
    if store.pool_size < 2 {
        return invalid("store.pool_size", "at least 2");
    }
    if cluster.node_id.is_empty() || cluster.node_id.contains(char::is_whitespace) {
        return invalid("cluster.node_id", "a non-empty name without spaces");
    }
    if cluster.max_staleness_secs == 0 {
        return invalid("cluster.max_staleness_secs", "at least 1");
    }
    if cluster.drain_secs > MAX_DRAIN_SECS {
        return invalid("cluster.drain_secs", "at most 600");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn postgres_needs_a_url_and_names_are_checked() {
        let mut store = StoreSettings::default();
        let cluster = ClusterSettings::default();
        assert!(validate(&store, &cluster).is_ok());
        store.backend = StoreBackend::Postgres;
        let err = validate(&store, &cluster).unwrap_err().to_string();
        assert!(err.contains("store.url"), "{err}");
        store.url = Some(StoreUrl("postgres://u:secret@h/db".into()));
        assert!(!format!("{store:?}").contains("secret"));
        let bad = ClusterSettings {
            node_id: "a b".into(),
            ..ClusterSettings::default()
        };
        assert!(validate(&store, &bad).is_err());
    }

    #[test]
    fn trail_wait_is_disk_unless_postgres_is_asked_and_nothing_else_is_accepted() {
        let path = std::path::Path::new("opale.toml");
        let parse = |text: &str| crate::config::Config::parse(text, path);
        let default = parse("").unwrap();
        assert_eq!(default.cluster.trail_wait, TrailWait::Disk);
        let asked = parse("[cluster]\ntrail_wait = \"postgres\"\n").unwrap();
        assert_eq!(asked.cluster.trail_wait, TrailWait::Postgres);
        let err = parse("[cluster]\ntrail_wait = \"sometimes\"\n")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("trail_wait") || err.contains("sometimes"),
            "{err}"
        );
    }
}
