//! The status background tasks of a node (started beside the listeners):
//!
//! - the 1 s ticker: re-reads the shared incidents and maintenances,
//!   installs each environment's maintenance windows in
//!   `crate::availability` (so a maintenance closes and reopens its
//!   environments by itself on every node, no admin call), notes whether
//!   each environment is closed, and at each minute's end writes this
//!   node's verdict of the minute to its day record (one store write a
//!   minute per component); hourly, deletes what is older than 90 days;
//! - the probe: every `[status] probe_secs`, a sandbox generator read and
//!   an HTTP request to the production upstream (any answer below 500
//!   within the upstream timeout is up).
//!
//! Store calls are awaited (the store is asynchronous): none holds a thread.

use super::Status;
use super::day::LocalDay;
use super::record::{self, DayRecord};
use super::window::instant;
use crate::availability::{Availability, Window};
use crate::data::sandbox::{self, SandboxAnswer};
use crate::data::upstream::Upstream;
use crate::domain::{Dataset, Environment, Siren};
use crate::store::Write;
use std::sync::Arc;
use std::time::Duration;
use time::OffsetDateTime;

/// Days of minute records, incidents and maintenances kept.
pub const RETENTION_DAYS: i64 = 90;

/// The SIREN the probes read (Luhn-valid; the sandbox generates it).
const PROBE_SIREN: &str = "732829320";

/// What the status tasks run on (built by `crate::app::App::planes`).
#[derive(Clone)]
pub struct Watch {
    /// The status state.
    pub(crate) status: Arc<Status>,
    /// Where maintenance windows are installed and closures read.
    pub(crate) availability: Arc<Availability>,
    /// The production upstream, probed.
    pub(crate) upstream: Arc<Upstream>,
}

/// Installs every environment's pending maintenance windows from the board.
pub fn install(status: &Status, availability: &Availability, now: OffsetDateTime) {
    let board = status.board();
    for env in Environment::ALL {
        let windows = board
            .maintenances
            .iter()
            .filter(|m| m.components.contains(&env) && m.is_pending(now))
            .map(|m| Window {
                from: m.scheduled_for,
                until: m.ends_at(),
                message: m.message.clone(),
            })
            .collect();
        availability.schedule(env, windows);
    }
}

/// The ticker, until aborted.
pub async fn run(watch: Watch) {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut minute = minute_of(OffsetDateTime::now_utc());
    let mut last_prune = None;
    loop {
        tick.tick().await;
        let now = OffsetDateTime::now_utc();
        install(&watch.status, &watch.availability, now);
        for env in Environment::ALL {
            if watch.availability.closed(env, now).is_some() {
                watch.status.meter.closed(env);
            }
        }
        let current = minute_of(now);
        if current != minute {
            flush(&watch.status, minute).await;
            minute = current;
        }
        if last_prune.is_none_or(|at: OffsetDateTime| now - at >= time::Duration::hours(1)) {
            last_prune = Some(now);
            prune(&watch.status, now).await;
        }
    }
}

/// Unix seconds of the minute holding `t`.
fn minute_of(t: OffsetDateTime) -> i64 {
    t.unix_timestamp().div_euclid(60) * 60
}

/// Writes this node's verdict of the minute starting at `start` (Unix
/// seconds) for both components.
async fn flush(status: &Arc<Status>, start: i64) {
    let mut writes = Vec::new();
    for env in Environment::ALL {
        let facts = status.meter.take(env);
        match status.finish_minute(env, start, !facts.down()) {
            Ok(w) => writes.push(w),
            Err(e) => tracing::warn!(error = %e, "minute not recorded"),
        }
    }
    if let Err(e) = status.store.commit(writes).await {
        tracing::warn!(error = %e, "minute records not written; kept in memory and written with the next");
    }
}

/// Deletes minute records, resolved incidents and finished maintenances
/// older than [`RETENTION_DAYS`].
async fn prune(status: &Arc<Status>, now: OffsetDateTime) {
    match status.prune(now).await {
        Ok(0) => {}
        Ok(n) => tracing::info!(deleted = n, "status retention"),
        Err(e) => tracing::warn!(error = %e, "status retention failed"),
    }
}

impl Status {
    /// Marks minute `start` of `env` up or down in this node's day record
    /// and returns the write of the record.
    fn finish_minute(
        &self,
        env: Environment,
        start: i64,
        up: bool,
    ) -> Result<Write, super::StatusError> {
        let at = jiff::Timestamp::from_second(start).unwrap_or(jiff::Timestamp::UNIX_EPOCH);
        let day = LocalDay::holding(at, &self.settings.timezone.tz)?;
        let mut live = self.live_records();
        live.retain(|(_, date), _| *date >= day.date.yesterday().unwrap_or(day.date));
        let r = live
            .entry((env, day.date))
            .or_insert_with(|| DayRecord::new(day.minutes));
        if let Some(i) = day.index_of(at) {
            r.mark(i, up);
        }
        Ok(record::put(env, day.date, &self.node, r)?)
    }

    /// The retention pass; how many documents it deleted.
    async fn prune(&self, now: OffsetDateTime) -> Result<usize, super::StatusError> {
        let cutoff = now - time::Duration::days(RETENTION_DAYS);
        let day = LocalDay::holding(instant(cutoff), &self.settings.timezone.tz)?;
        let mut writes = Vec::new();
        for env in Environment::ALL {
            writes.extend(record::expired(&*self.store, env, day.date).await?);
        }
        let board = self.board();
        let old_incidents = board
            .incidents
            .iter()
            .filter(|i| i.resolved_at.is_some_and(|r| r < cutoff));
        writes.extend(
            old_incidents.map(|i| {
                Write::Delete(format!("{}{}", super::board::INCIDENTS, i.id).into_bytes())
            }),
        );
        let old_maintenances = board.maintenances.iter().filter(|m| m.ends_at() < cutoff);
        writes.extend(old_maintenances.map(|m| {
            Write::Delete(format!("{}{}", super::board::MAINTENANCES, m.id).into_bytes())
        }));
        let n = writes.len();
        if n > 0 {
            self.store.commit(writes).await?;
            self.reload().await?;
        }
        Ok(n)
    }
}

/// The probe, until aborted.
pub async fn probe(watch: Watch) {
    let mut tick = tokio::time::interval(watch.status.settings.probe_interval());
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let sandbox = probe_sandbox();
        watch.status.probed(Environment::Sandbox, sandbox);
        let production = probe_production(&watch.upstream).await;
        watch.status.probed(Environment::Production, production);
    }
}

/// A generator read of the sandbox's data path.
fn probe_sandbox() -> bool {
    let Ok(siren) = Siren::parse(PROBE_SIREN) else {
        return false;
    };
    let year = OffsetDateTime::now_utc().year() - 1;
    matches!(
        sandbox::generate(&siren, Dataset::Declarations, year),
        SandboxAnswer::Data(_)
    )
}

/// A request to the upstream: up when it answers below 500 in time (the
/// upstream client's own timeouts apply).
async fn probe_production(upstream: &Upstream) -> bool {
    let Ok(siren) = Siren::parse(PROBE_SIREN) else {
        return false;
    };
    let year = OffsetDateTime::now_utc().year() - 1;
    let correlation = crate::domain::fresh_correlation_id();
    upstream
        .fetch(&siren, Dataset::Declarations, year, &correlation)
        .await
        .is_ok()
}
