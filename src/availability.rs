//! Service availability per environment: the kill switch / maintenance
//! mode of docs/contract.md §2 (503, code 910600, `Retry-After`). Set by admins,
//! persisted in the store, read lock-free on the hot path. Beside the
//! switch, the scheduled maintenances of §11 (`crate::status`): the status
//! task installs each environment's pending maintenance windows here, and
//! a call inside one is refused with `Retry-After` counting down to its
//! end, to the second, without waiting for a tick. In a cluster it
//! also answers whether the snapshot is too stale to serve (docs/contract.md §10:
//! PostgreSQL unreachable for `max_staleness_secs`, 503 910605).

use crate::domain::Environment;
use crate::store::{Health, Store, StoreError, Write};
use arc_swap::{ArcSwap, ArcSwapOption};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use std::time::Duration;
use time::OffsetDateTime;

/// An environment closed for maintenance.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Maintenance {
    /// Seconds announced in `Retry-After` (1..=86400).
    pub retry_after: u64,
    /// Shown to callers in the error detail.
    #[serde(default)]
    pub message: Option<String>,
}

/// A scheduled maintenance window of an environment (docs/contract.md
/// §11), installed from the shared list of maintenances.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Window {
    /// First instant closed.
    pub from: OffsetDateTime,
    /// First instant open again.
    pub until: OffsetDateTime,
    /// The 503's detail.
    pub message: String,
}

/// Why an environment is closed now: the 503's detail and `Retry-After`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Closed {
    /// Seconds announced in `Retry-After` (at least 1).
    pub retry_after: u64,
    /// The detail shown to callers, if any.
    pub message: Option<String>,
}

/// The maintenance state of both environments.
pub struct Availability {
    store: Arc<dyn Store>,
    sandbox: ArcSwapOption<Maintenance>,
    production: ArcSwapOption<Maintenance>,
    /// Scheduled windows of the sandbox and production, by start.
    scheduled: [ArcSwap<Vec<Window>>; 2],
    /// The networked store's health and the staleness cut-off, if any.
    staleness: Option<(Arc<Health>, Duration)>,
}

fn key(env: Environment) -> Vec<u8> {
    format!("env/{env}/maintenance").into_bytes()
}

async fn load(store: &dyn Store, env: Environment) -> Result<Option<Arc<Maintenance>>, StoreError> {
    Ok(store
        .get(&key(env))
        .await?
        .and_then(|v| serde_json::from_slice(&v).ok())
        .map(Arc::new))
}

impl Availability {
    /// Loads the persisted state.
    pub async fn open(store: Arc<dyn Store>) -> Result<Self, StoreError> {
        let staleness = None;
        Ok(Availability {
            sandbox: ArcSwapOption::new(load(&*store, Environment::Sandbox).await?),
            production: ArcSwapOption::new(load(&*store, Environment::Production).await?),
            scheduled: Default::default(),
            store,
            staleness,
        })
    }

    /// Serves from the snapshot only while the store answered within
    /// `max`: past it, [`Availability::is_stale`] says so.
    pub fn with_staleness(mut self, health: Arc<Health>, max: Duration) -> Self {
        self.staleness = Some((health, max));
        self
    }

    /// Whether the store has not answered for longer than the cut-off
    /// (never with an embedded store). Two atomic loads.
    pub fn is_stale(&self) -> bool {
        self.staleness
            .as_ref()
            .is_some_and(|(health, max)| health.since_contact() > *max)
    }

    /// Reads both environments again: another node changed them.
    pub async fn reload(&self) -> Result<(), StoreError> {
        for env in [Environment::Sandbox, Environment::Production] {
            self.slot(env).store(load(&*self.store, env).await?);
        }
        Ok(())
    }

    fn slot(&self, env: Environment) -> &ArcSwapOption<Maintenance> {
        match env {
            Environment::Sandbox => &self.sandbox,
            Environment::Production => &self.production,
        }
    }

    /// The current maintenance of `env`, if any.
    pub fn maintenance(&self, env: Environment) -> Option<Arc<Maintenance>> {
        self.slot(env).load_full()
    }

    /// Closes (`Some`) or reopens (`None`) an environment; durable on return.
    pub async fn set(&self, env: Environment, m: Option<Maintenance>) -> Result<(), StoreError> {
        let write = match &m {
            Some(m) => Write::Put(
                key(env),
                serde_json::to_vec(m).map_err(StoreError::backend)?,
            ),
            None => Write::Delete(key(env)),
        };
        self.store.commit(vec![write]).await?;
        self.slot(env).store(m.map(Arc::new));
        Ok(())
    }

    /// Installs `env`'s scheduled maintenance windows (replacing the
    /// previous ones).
    pub fn schedule(&self, env: Environment, windows: Vec<Window>) {
        let slot = &self.scheduled[index(env)];
        if **slot.load() != windows {
            slot.store(Arc::new(windows));
        }
    }

    /// Whether `env` is closed at `now`, and how: the switch first, then a
    /// scheduled window (`Retry-After` = the seconds left, rounded up).
    pub fn closed(&self, env: Environment, now: OffsetDateTime) -> Option<Closed> {
        if let Some(m) = self.maintenance(env) {
            return Some(Closed {
                retry_after: m.retry_after,
                message: m.message.clone(),
            });
        }
        let windows = self.scheduled[index(env)].load();
        let w = windows.iter().find(|w| w.from <= now && now < w.until)?;
        let left_ms = (w.until - now).whole_milliseconds().max(0) as u64;
        Some(Closed {
            retry_after: left_ms.div_ceil(1000).max(1),
            message: Some(w.message.clone()),
        })
    }
}

/// `0` for the sandbox, `1` for production.
fn index(env: Environment) -> usize {
    match env {
        Environment::Sandbox => 0,
        Environment::Production => 1,
    }
}

/// The store area of the maintenance of each environment: the first segment of its keys.
pub const AREA: &str = "env";

#[async_trait::async_trait]
impl crate::store::Keyspace for Availability {
    fn area(&self) -> &'static str {
        AREA
    }

    async fn reload(&self) -> Result<(), crate::store::keyspace::ReloadError> {
        Availability::reload(self).await.map_err(Into::into)
    }
}
