//! Service quality (docs/contract.md §11, docs/status.md): availability
//! measured by the gateway itself per component (`sandbox`, `production`)
//! and minute, the public status page and its Statuspage-shaped JSON,
//! incidents and scheduled maintenances.
//!
//! - `day` — the availability arithmetic of one local day (pure);
//! - `meter` — the current minute's facts, counted on the hot path;
//! - `record` — one node's minutes of a day, as stored, and their union;
//! - `board` — incidents and maintenances, as stored and shown;
//! - `window` — whether a maintenance fits the terms;
//! - `ops` — the admin writes (open, update, schedule, cancel);
//! - `history` — the rates per day read back from every node's records;
//! - `task` — the 1 s ticker (closures, minute flush, retention), probes;
//! - `public`, `summary`, `page`, `feed` — what the environment listeners
//!   answer under `/status`;
//! - `announce` — the e-mails to the partners concerned.
//!
//! State lives in the store under `status/…` — `status/incidents/{id}`,
//! `status/maintenances/{id}`, `status/since` (the first start) — a
//! keyspace ([`AREA`], reloaded when another node changes it), and under
//! `minutes/{component}/{date}/{node}`, read when a page asks.

pub mod announce;
pub mod board;
pub mod day;
mod feed;
mod history;
pub mod meter;
mod ops;
mod page;
pub mod public;
pub mod record;
mod summary;
pub mod task;
pub mod window;

pub use board::{
    Impact, Incident, IncidentStatus, IncidentUpdate, Maintenance, NewIncident, NewMaintenance,
};
pub use history::DayView;

use crate::config::StatusSettings;
use crate::domain::Environment;
use crate::store::{Store, StoreError};
use arc_swap::ArcSwap;
use board::{INCIDENTS, MAINTENANCES};
use jiff::civil::Date;
use meter::Meter;
use record::DayRecord;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU8, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use time::OffsetDateTime;

/// The last probe of a component answered.
const PROBE_OK: u8 = 1;
/// The last probe of a component failed.
const PROBE_FAILED: u8 = 2;

/// The key of the first start's time (Unix seconds, ASCII).
const SINCE: &[u8] = b"status/since";

/// Why a status operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StatusError {
    /// A field of a request is not acceptable (400).
    #[error("{field}: {message}")]
    Invalid {
        /// The JSON field.
        field: String,
        /// Why.
        message: String,
    },
    /// No such incident or maintenance (404).
    #[error("{field}: {message}")]
    NotFound {
        /// `id`.
        field: String,
        /// What was looked for.
        message: String,
    },
    /// The change does not apply to the current state (409).
    #[error("{field}: {message}")]
    Conflict {
        /// The field.
        field: String,
        /// Why.
        message: String,
    },
    /// A stored document does not read.
    #[error("status record {key}: {source}")]
    Corrupt {
        /// Its key.
        key: String,
        /// The parse error.
        #[source]
        source: serde_json::Error,
    },
    /// The store.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A local day out of range.
    #[error(transparent)]
    Day(#[from] day::DayError),
    /// No random id could be drawn.
    #[error("no random id: {0}")]
    Random(#[from] crate::domain::RandomError),
}

impl StatusError {
    fn invalid(field: &str, message: impl Into<String>) -> Self {
        StatusError::Invalid {
            field: field.into(),
            message: message.into(),
        }
    }
}

/// Incidents and maintenances as last read, and the first start.
#[derive(Debug, Clone, Default)]
pub struct Board {
    /// Incidents, newest first.
    pub incidents: Vec<Incident>,
    /// Maintenances, by `scheduled_for`.
    pub maintenances: Vec<Maintenance>,
    /// The gateway's first start (measured from then on).
    pub since: Option<OffsetDateTime>,
}

/// The service-quality state of this node.
pub struct Status {
    pub(crate) settings: StatusSettings,
    store: Arc<dyn Store>,
    node: String,
    /// The current minute's facts (hot path).
    pub meter: Meter,
    board: ArcSwap<Board>,
    /// This node's records of the last local days (those it writes).
    live: Mutex<HashMap<(Environment, Date), DayRecord>>,
    /// The public base URL of each environment listener.
    urls: [String; 2],
    /// Per component: the status last shown and since when.
    shown: Mutex<[(summary::ComponentStatus, OffsetDateTime); 2]>,
    /// Per component: its last probe (none yet, answered, failed).
    probe: [AtomicU8; 2],
}

impl Status {
    /// Reads the board, records the first start if none is (`now`), and
    /// this node's records of today.
    pub async fn open(
        settings: StatusSettings,
        store: Arc<dyn Store>,
        node: &str,
        urls: [String; 2],
        now: OffsetDateTime,
    ) -> Result<Self, StatusError> {
        if store.get(SINCE).await?.is_none() {
            let value = now.unix_timestamp().to_string().into_bytes();
            store
                .commit(vec![crate::store::Write::Put(SINCE.to_vec(), value)])
                .await?;
        }
        let initial = summary::ComponentStatus::Operational;
        let status = Status {
            settings,
            store,
            node: node.to_owned(),
            meter: Meter::default(),
            board: ArcSwap::from_pointee(Board::default()),
            live: Mutex::new(HashMap::new()),
            urls,
            shown: Mutex::new([(initial, now), (initial, now)]),
            probe: Default::default(),
        };
        status.reload().await?;
        status.load_live(now).await?;
        Ok(status)
    }

    /// Reads incidents, maintenances and the first start again (another
    /// node may have changed them).
    pub async fn reload(&self) -> Result<(), StatusError> {
        let mut incidents: Vec<Incident> = read_all(&*self.store, INCIDENTS).await?;
        incidents.sort_by_key(|i| std::cmp::Reverse(i.created_at));
        let mut maintenances: Vec<Maintenance> = read_all(&*self.store, MAINTENANCES).await?;
        maintenances.sort_by_key(|m| m.scheduled_for);
        let since = self
            .store
            .get(SINCE)
            .await?
            .and_then(|v| String::from_utf8(v).ok()?.parse::<i64>().ok())
            .and_then(|s| OffsetDateTime::from_unix_timestamp(s).ok());
        self.board.store(Arc::new(Board {
            incidents,
            maintenances,
            since,
        }));
        Ok(())
    }

    /// Incidents and maintenances as last read.
    pub fn board(&self) -> Arc<Board> {
        self.board.load_full()
    }

    /// `[status]`.
    pub fn settings(&self) -> &StatusSettings {
        &self.settings
    }

    /// The public base URL of `env`'s listener.
    pub fn url(&self, env: Environment) -> &str {
        match env {
            Environment::Sandbox => &self.urls[0],
            Environment::Production => &self.urls[1],
        }
    }

    /// Notes the outcome of a probe of `env`.
    pub fn probed(&self, env: Environment, ok: bool) {
        if !ok {
            self.meter.probe_failed(env);
        }
        let state = if ok { PROBE_OK } else { PROBE_FAILED };
        self.probe[index(env)].store(state, Relaxed);
    }

    /// Whether the last probe of `env` answered (`true` before the first).
    pub fn probe_ok(&self, env: Environment) -> bool {
        self.probe[index(env)].load(Relaxed) != PROBE_FAILED
    }

    /// Loads this node's records of today from the store (a restart the
    /// same day keeps what it saw before).
    async fn load_live(&self, now: OffsetDateTime) -> Result<(), StatusError> {
        let today = day::LocalDay::holding(window::instant(now), &self.settings.timezone.tz)?;
        for env in Environment::ALL {
            let key = record::key(env, today.date, &self.node);
            let Some(bytes) = self.store.get(&key).await? else {
                continue;
            };
            if let Ok(r) = serde_json::from_slice::<DayRecord>(&bytes) {
                self.live_records().insert((env, today.date), r);
            }
        }
        Ok(())
    }

    fn live_records(&self) -> std::sync::MutexGuard<'_, HashMap<(Environment, Date), DayRecord>> {
        self.live
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// `0` for the sandbox, `1` for production.
fn index(env: Environment) -> usize {
    match env {
        Environment::Sandbox => 0,
        Environment::Production => 1,
    }
}

/// Every document under `prefix`.
async fn read_all<T: serde::de::DeserializeOwned>(
    store: &dyn Store,
    prefix: &str,
) -> Result<Vec<T>, StatusError> {
    store
        .scan_prefix(prefix.as_bytes())
        .await?
        .into_iter()
        .map(|(k, v)| {
            serde_json::from_slice(&v).map_err(|source| StatusError::Corrupt {
                key: String::from_utf8_lossy(&k).into_owned(),
                source,
            })
        })
        .collect()
}

/// The store area of incidents, maintenances and the first start (the
/// minutes are in their own area, `minutes/`, read on demand and held by
/// no keyspace: another node's minute records reload nothing here).
pub const AREA: &str = "status";

#[async_trait::async_trait]
impl crate::store::Keyspace for Status {
    fn area(&self) -> &'static str {
        AREA
    }

    async fn reload(&self) -> Result<(), crate::store::keyspace::ReloadError> {
        Status::reload(self).await.map_err(Into::into)
    }
}
