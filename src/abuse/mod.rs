//! Abnormal usage (docs/contract.md §9, CGU §8): a per-application detector fed once
//! per data call by the pipeline, after the chain's outcome is known.
//!
//! The hot path is [`Abuse::observe`]: one sharded mutex (32 ways, never
//! held across an await), an O(1) update of the application's tallies
//! (`window.rs`), no allocation and no I/O unless something was found
//! (or, with the Redis quota backend, the call was a denial to count
//! across the nodes). Only then does [`Abuse::act`] run, on that one
//! request: judge such a denial in Redis (`shared.rs`), suspend the
//! application if `[abuse] auto_suspend` says so (the admin API's own
//! registry operation, durable and immediate), store the open events and
//! address-book changes in one durable commit (`book.rs`), trace each event
//! (actor `abuse`) and count it on `/metrics`. Admins list and clear open
//! events through `/admin/v1/security-events` and see them on the admin
//! dashboard. See `docs/abuse.md`.
//!
//! With PostgreSQL, both are shared by the nodes of a cluster
//! (docs/contract.md §10): a change another node committed under `abuse/`
//! makes the reloader call [`Abuse::reload`] within a second. With the
//! Redis quota backend, denial bursts are also counted across the nodes
//! (`shared.rs`): a denial is then judged in [`Abuse::act`], against Redis.

mod book;
mod event;
mod shared;
mod window;

pub use event::{Kind, SecurityEvent};
pub use shared::SharedDenials;
pub use window::{Findings, Verdict};

use crate::audit::Auditor;
use crate::chain::{Control, Denial, Reason};
use crate::config::AbuseSettings;
use crate::domain::{ClientId, Status};
use crate::metrics::Metrics;
use crate::registry::{Application, Registry, RegistryError, SuspendedBy};
use crate::store::{Store, StoreError, Write};
use std::collections::{BTreeMap, HashMap};
use std::hash::BuildHasher;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use time::OffsetDateTime;
use window::{Alert, Call, Tally};

const SHARDS: usize = 32;

/// Scans of the store a reload makes while this node keeps changing its
/// open events, before it applies the last one anyway.
const RELOAD_SCANS: u32 = 3;

/// What can go wrong keeping security events.
#[derive(Debug, thiserror::Error)]
pub enum AbuseError {
    /// The store.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Suspending the application.
    #[error(transparent)]
    Registry(#[from] RegistryError),
    /// An event could not be encoded.
    #[error("security event not encodable: {0}")]
    Encode(#[source] serde_json::Error),
    /// No open event has that id.
    #[error("no open security event {0}")]
    NotFound(String),
    /// A random id could not be drawn.
    #[error(transparent)]
    Random(#[from] crate::domain::RandomError),
    /// The shared denial window's Redis client could not be built.
    #[error(transparent)]
    Redis(#[from] crate::quota::QuotaError),
}

/// What a call found, handed from [`Abuse::observe`] to [`Abuse::act`].
#[derive(Debug)]
pub struct Pending {
    application: Application,
    ip: IpAddr,
    now: OffsetDateTime,
    findings: Findings,
    /// A denial still to judge in the shared window.
    denial: Option<shared::SharedDenial>,
}

/// The detector and the open events.
pub struct Abuse {
    settings: AbuseSettings,
    shards: Vec<Mutex<HashMap<ClientId, Tally>>>,
    hasher: std::collections::hash_map::RandomState,
    store: Arc<dyn Store>,
    registry: Arc<Registry>,
    open: Mutex<BTreeMap<String, SecurityEvent>>,
    /// Bumped (under `open`'s lock) by every change this node makes to its
    /// open events, so that a reload does not overwrite one it did not see.
    local_changes: AtomicU64,
    /// The denial windows shared through Redis, if the quota is there.
    shared: Option<SharedDenials>,
}

impl Abuse {
    /// Loads the open events and the address books from `store`.
    pub async fn open(
        settings: AbuseSettings,
        store: Arc<dyn Store>,
        registry: Arc<Registry>,
    ) -> Result<Self, AbuseError> {
        let max = settings.max_addresses_per_app as usize;
        let events = book::load_events(store.as_ref()).await?;
        let books = book::load_addresses(store.as_ref(), max).await?;
        let abuse = Abuse {
            shards: (0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect(),
            hasher: Default::default(),
            open: Mutex::new(events.into_iter().map(|e| (e.id.clone(), e)).collect()),
            settings,
            store: store.clone(),
            registry,
            local_changes: AtomicU64::new(0),
            shared: None,
        };
        for (client, addresses) in books {
            let tally = Tally::with_addresses(addresses);
            lock(abuse.shard(&client)).insert(client, tally);
        }
        Ok(abuse)
    }

    /// Counts denials in `shared` (Redis, beside the quota) rather than in
    /// this node's memory only; the local windows stay the fallback.
    pub fn with_shared_denials(mut self, shared: SharedDenials) -> Self {
        self.shared = Some(shared);
        self
    }

    /// Counts one data call of `application` (the hot path): `denial` is
    /// the call's refusal, if any. Returns what must be acted on, rarely.
    pub fn observe(
        &self,
        application: &Application,
        ip: IpAddr,
        denial: Option<&Denial>,
        now: OffsetDateTime,
    ) -> Option<Pending> {
        if !self.settings.enabled {
            return None;
        }
        let call = Call {
            at: now.unix_timestamp(),
            ip,
            verdict: verdict(denial),
        };
        let mut findings = Findings::default();
        let client = &application.client_id;
        let mut shard = lock(self.shard(client));
        match shard.get_mut(client) {
            Some(tally) => tally.record(&call, &self.settings, &mut findings),
            None => {
                let mut tally = Tally::default();
                tally.record(&call, &self.settings, &mut findings);
                shard.insert(client.clone(), tally);
            }
        }
        drop(shard);
        let denial = self.shared_denial(call.verdict, &mut findings);
        (!findings.is_empty() || denial.is_some()).then(|| Pending {
            application: application.clone(),
            ip,
            now,
            findings,
            denial,
        })
    }

    /// Acts on what a call found: judges a denial in the shared window (one
    /// Redis round trip at most `quota.timeout_ms`, or none while Redis is
    /// away), suspends (if configured), stores, traces and counts the
    /// events. Failures are logged; the call goes on.
    pub async fn act(&self, mut pending: Pending, audit: &Auditor, metrics: &Metrics) {
        if let Some(denial) = pending.denial.take() {
            let client = &pending.application.client_id;
            if let Some(alert) = self.judge(client, denial).await {
                pending.findings.alerts.push(alert);
            }
            if pending.findings.is_empty() {
                return;
            }
        }
        let mut events = match self.events_of(&pending) {
            Ok(events) => events,
            Err(e) => return tracing::error!(error = %e, "security event not raised"),
        };
        let suspension = self.suspend_for(&pending.application, &mut events).await;
        let writes = match self.writes(&pending, &events) {
            Ok(w) => w,
            Err(e) => return tracing::error!(error = %e, "security event not stored"),
        };
        if let Err(e) = self.commit(writes).await {
            tracing::error!(error = %e, "security events not stored");
        }
        for event in &events {
            tracing::warn!(
                kind = event.kind.as_str(), client_id = %event.client_id,
                ip = %event.ip, suspended = event.suspended, "security event: {}", event.reason
            );
            metrics.security_event(event.kind.as_str());
            if let Err(e) = audit.record(&event.raised_record()).await {
                tracing::error!(error = %e, "security event not traced");
            }
        }
        if let (Some(after), Some(event)) = (suspension, events.first()) {
            let record = event.suspension_record(&pending.application, &after);
            if let Err(e) = audit.record(&record).await {
                tracing::error!(error = %e, "automatic suspension not traced");
            }
        }
        self.remember(events);
    }

    /// Open events, newest first.
    pub fn open_events(&self) -> Vec<SecurityEvent> {
        let mut list: Vec<_> = lock(&self.open).values().cloned().collect();
        list.sort_by(|a, b| (b.raised_at, &b.id).cmp(&(a.raised_at, &a.id)));
        list
    }

    /// Clears (deletes) an open event; durable on return.
    pub async fn clear(&self, id: &str) -> Result<SecurityEvent, AbuseError> {
        let event = lock(&self.open)
            .get(id)
            .cloned()
            .ok_or_else(|| AbuseError::NotFound(id.to_owned()))?;
        self.store.commit(vec![Write::Delete(event.key())]).await?;
        let mut open = lock(&self.open);
        open.remove(id);
        self.local_changes.fetch_add(1, Ordering::Relaxed);
        Ok(event)
    }

    /// Reloads what another node changed (docs/contract.md §10): the open
    /// events as stored replace the list; the stored addresses are merged
    /// into each application's book (a merge, not a replacement, so that
    /// an address this node learnt but has not committed yet is kept).
    /// Called from the reloader.
    pub async fn reload(&self) -> Result<(), AbuseError> {
        for scan in 1..=RELOAD_SCANS {
            let before = self.local_changes.load(Ordering::Relaxed);
            let events = book::load_events(self.store.as_ref()).await?;
            let mut open = lock(&self.open);
            // A local commit between the scan and here: its in-memory
            // change would be undone; scan again (it is in the store).
            if self.local_changes.load(Ordering::Relaxed) != before && scan < RELOAD_SCANS {
                continue;
            }
            *open = events.into_iter().map(|e| (e.id.clone(), e)).collect();
            break;
        }
        let max = self.settings.max_addresses_per_app as usize;
        let books = book::load_addresses(self.store.as_ref(), max).await?;
        for (client, addresses) in books {
            let mut shard = lock(self.shard(&client));
            match shard.get_mut(&client) {
                Some(tally) => tally.merge_addresses(&addresses, max),
                None => {
                    shard.insert(client, Tally::with_addresses(addresses));
                }
            }
        }
        Ok(())
    }

    fn shard(&self, client: &ClientId) -> &Mutex<HashMap<ClientId, Tally>> {
        &self.shards[(self.hasher.hash_one(client) as usize) % SHARDS]
    }

    /// One event per alert, with its reason.
    fn events_of(&self, p: &Pending) -> Result<Vec<SecurityEvent>, AbuseError> {
        let alerts = &p.findings.alerts;
        alerts
            .iter()
            .map(|a| {
                let id = crate::domain::random_uuid()?.to_string();
                let reason = reason(*a, &self.settings);
                Ok(SecurityEvent::new(
                    id,
                    *a,
                    &p.application,
                    p.ip,
                    p.now,
                    reason,
                ))
            })
            .collect()
    }

    /// Suspends the application if an event's kind calls for it and it is
    /// still active; marks the events and returns the application after.
    async fn suspend_for(
        &self,
        application: &Application,
        events: &mut [SecurityEvent],
    ) -> Option<Application> {
        let s = &self.settings;
        let wanted = s.auto_suspend
            && application.status == Status::Active
            && events
                .iter()
                .any(|e| s.auto_suspend_kinds.contains(&e.kind));
        if !wanted {
            return None;
        }
        let id = application.client_id.as_str();
        let done = self
            .registry
            .suspend_application(id, SuspendedBy::Abuse)
            .await;
        match done {
            Ok(after) => {
                for e in events.iter_mut() {
                    e.suspended = true;
                    e.reason.push_str("; application suspended automatically");
                }
                Some(after)
            }
            Err(e) => {
                tracing::error!(error = %e, "automatic suspension failed");
                None
            }
        }
    }

    /// The writes of one act: address-book changes, new events, and the
    /// deletion of the oldest open events beyond `max_open_events`.
    fn writes(&self, p: &Pending, events: &[SecurityEvent]) -> Result<Vec<Write>, AbuseError> {
        let client = &p.application.client_id;
        let mut writes: Vec<Write> = (p.findings.addresses.iter())
            .map(|c| book::address_write(client, *c))
            .collect();
        for e in events {
            writes.push(book::event_write(e)?);
        }
        for old in self.overflow(events.len()) {
            writes.push(Write::Delete(old.key()));
        }
        Ok(writes)
    }

    /// The oldest open events that `adding` more would push past the bound.
    fn overflow(&self, adding: usize) -> Vec<SecurityEvent> {
        if adding == 0 {
            return Vec::new();
        }
        let open = self.open_events();
        let max = self.settings.max_open_events as usize;
        let excess = (open.len() + adding).saturating_sub(max);
        open.into_iter().rev().take(excess).collect()
    }

    /// Commits; durable on return.
    async fn commit(&self, writes: Vec<Write>) -> Result<(), AbuseError> {
        if writes.is_empty() {
            return Ok(());
        }
        self.store.commit(writes).await?;
        Ok(())
    }

    /// Adds the new events to the open list, within its bound.
    fn remember(&self, events: Vec<SecurityEvent>) {
        let dropped = self.overflow(events.len());
        let mut open = lock(&self.open);
        for old in dropped {
            open.remove(&old.id);
        }
        for e in events {
            open.insert(e.id.clone(), e);
        }
        self.local_changes.fetch_add(1, Ordering::Relaxed);
    }
}

/// How the detector sees a refusal (none: served).
fn verdict(denial: Option<&Denial>) -> Verdict {
    let Some(d) = denial else {
        return Verdict::Neutral;
    };
    match (d.reason, d.reason.control()) {
        (Reason::Suspended, _) | (_, Control::Service) => Verdict::Neutral,
        (_, Control::Ip) => Verdict::OutsideAllowlist,
        (_, Control::Quota) => Verdict::OverQuota,
        _ => Verdict::Denied,
    }
}

/// The event's reason, naming the threshold it crossed.
fn reason(alert: Alert, s: &AbuseSettings) -> String {
    match alert.kind {
        Kind::DenialBurst => format!(
            "{} denials within {} s (abuse.denial_burst)",
            alert.observed, s.denial_window_secs
        ),
        Kind::NewAddress => format!(
            "a call from an address not seen for this application in the last {} days",
            s.new_address_days
        ),
        Kind::QuotaStreak => format!(
            "quota exhausted ({}+ refusals) in each of {} consecutive minutes",
            s.quota_refusals_per_minute, alert.observed
        ),
        Kind::OffHoursSurge => format!(
            "more than {} calls within an hour outside working hours ({}:00-{}:00, UTC{:+} min)",
            s.off_hours_calls_per_hour, s.work_start_hour, s.work_end_hour, s.utc_offset_minutes
        ),
    }
}

/// A mutex whose poisoning (a panic elsewhere) does not stop the detector.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// The store area of open security events and learnt addresses: the first segment of its keys.
pub const AREA: &str = "abuse";

#[async_trait::async_trait]
impl crate::store::Keyspace for Abuse {
    fn area(&self) -> &'static str {
        AREA
    }

    async fn reload(&self) -> Result<(), crate::store::keyspace::ReloadError> {
        Abuse::reload(self).await.map_err(Into::into)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{Environment, PartnerId};
    use crate::store::SledStore;

    fn application() -> Application {
        Application {
            client_id: ClientId::new("c-1"),
            partner_id: PartnerId::new("p-1"),
            name: "a".into(),
            environment: Environment::Sandbox,
            grants: Vec::new(),
            valid_from: time::macros::date!(2025 - 01 - 01),
            valid_until: time::macros::date!(2030 - 12 - 31),
            ip_allowlist: Vec::new(),
            quota_per_minute: 50,
            status: Status::Active,
            suspended_by: None,
            created_at: OffsetDateTime::UNIX_EPOCH,
        }
    }

    /// The first address is learnt (a store write); served calls from it
    /// afterwards find nothing and raise no event. (Cost: one shard lock and
    /// a few integer operations, 266 ns per call measured on the 2-core
    /// build machine; a speed figure belongs in scripts/bench.sh, not here.)
    #[tokio::test]
    async fn quiet_calls_from_a_known_address_find_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn Store> = Arc::new(SledStore::open(dir.path()).unwrap());
        let registry = Arc::new(Registry::open(store.clone()).await.unwrap());
        let abuse = Abuse::open(AbuseSettings::default(), store, registry)
            .await
            .unwrap();
        let app = application();
        let ip: IpAddr = "127.0.0.1".parse().unwrap();
        // Monday 2026-11-30 12:00 UTC: working hours.
        let now = OffsetDateTime::from_unix_timestamp(1_796_040_000).unwrap();
        assert!(
            abuse.observe(&app, ip, None, now).is_some(),
            "first address learnt"
        );
        for _ in 0..1_000 {
            assert!(abuse.observe(&app, ip, None, now).is_none());
        }
        assert!(abuse.open_events().is_empty());
    }
}
