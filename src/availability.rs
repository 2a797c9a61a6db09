//! Service availability per environment: the kill switch / maintenance
//! mode of DESIGN §2 (503, code 910600, `Retry-After`). Set by admins,
//! persisted in the store, read lock-free on the hot path.

use crate::domain::Environment;
use crate::store::{Store, StoreError, Write};
use arc_swap::ArcSwapOption;
use serde::{Deserialize, Serialize};
use std::sync::Arc;

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

/// The maintenance state of both environments.
pub struct Availability {
    store: Arc<dyn Store>,
    sandbox: ArcSwapOption<Maintenance>,
    production: ArcSwapOption<Maintenance>,
}

fn key(env: Environment) -> Vec<u8> {
    format!("env/{env}/maintenance").into_bytes()
}

impl Availability {
    /// Loads the persisted state.
    pub fn open(store: Arc<dyn Store>) -> Result<Self, StoreError> {
        let load = |env| -> Result<Option<Arc<Maintenance>>, StoreError> {
            Ok(store
                .get(&key(env))?
                .and_then(|v| serde_json::from_slice(&v).ok())
                .map(Arc::new))
        };
        Ok(Availability {
            sandbox: ArcSwapOption::new(load(Environment::Sandbox)?),
            production: ArcSwapOption::new(load(Environment::Production)?),
            store,
        })
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
    pub fn set(&self, env: Environment, m: Option<Maintenance>) -> Result<(), StoreError> {
        let write = match &m {
            Some(m) => Write::Put(
                key(env),
                serde_json::to_vec(m).map_err(|e| StoreError::Backend(e.to_string()))?,
            ),
            None => Write::Delete(key(env)),
        };
        self.store.commit(vec![write])?;
        self.slot(env).store(m.map(Arc::new));
        Ok(())
    }
}
