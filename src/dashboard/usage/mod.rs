//! A partner's usage over the last 30 UTC days (`GET /dashboard/usage`,
//! its CSV `GET /dashboard/usage.csv`): per application and day, calls
//! admitted and denied and the busiest minute; denials by error code. One
//! scan of the trail, newest first, on the blocking pool, stopped at the
//! first record older than the first day shown.
//!
//! A *call* is a data API request (`/opale/v1/entreprises/{siren}/
//! {dataset}`) on an environment listener, traced for one of the
//! partner's applications: a record of the environment plane that names
//! a dataset and one of the partner's applications. Token requests,
//! health and discovery, EST, the status page and requests refused before
//! their route was read (no `X-Correlation-ID`, 910000; no such route,
//! 910604) name no dataset and are not counted: the quota these charts are
//! compared with counts data calls only.

mod csv;
mod page;

pub use csv::{Table, csv};
pub use page::render;

use super::explain::{Cause, cause_of};
use crate::admin::Admin;
use crate::audit::query::{self, MAX_SCAN};
use crate::audit::{AuditError, Decision, TraceEvent};
use crate::domain::{ClientId, Environment, PartnerId, Plane};
use crate::registry::Snapshot;
use std::collections::{BTreeMap, HashMap};
use time::{Date, Duration, OffsetDateTime};

/// Days shown, today (UTC) included.
pub const DAYS: usize = 30;

/// One application's calls on one UTC day.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Day {
    /// Calls admitted.
    pub admitted: u64,
    /// Calls denied.
    pub denied: u64,
    /// The most calls (admitted or denied) in one minute of the day.
    pub peak: u64,
}

/// One of the partner's applications and its days.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppUsage {
    /// Its OAuth client id.
    pub client_id: ClientId,
    /// Its display name.
    pub name: String,
    /// The environment it calls.
    pub environment: Environment,
    /// Its quota, calls per minute (what `peak` is compared with).
    pub quota_per_minute: u32,
    /// [`DAYS`] days, the oldest first.
    pub days: Vec<Day>,
}

/// What the scan found for one partner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Usage {
    /// The first (oldest) day shown; the last one is `first + DAYS - 1`.
    pub first: Date,
    /// The partner's applications, oldest first.
    pub apps: Vec<AppUsage>,
    /// Denials per day (index from `first`), application (index in
    /// `apps`) and code (as the trace writes it).
    pub denials: BTreeMap<(usize, usize, String), u64>,
    /// Each code seen, with what it is (for its meaning).
    pub causes: BTreeMap<String, Cause>,
    /// False when the scan stopped at [`MAX_SCAN`] records before
    /// reaching the first day: the oldest days may then be short.
    pub complete: bool,
}

impl Usage {
    /// The `i`-th day shown.
    pub fn day(&self, i: usize) -> Date {
        self.first + Duration::days(i as i64)
    }

    /// The last day shown (today).
    pub fn last(&self) -> Date {
        self.day(DAYS - 1)
    }

    /// Denials per code over every day and application, the most frequent
    /// first (ties by code).
    pub fn by_code(&self) -> Vec<(&str, u64)> {
        let mut totals: BTreeMap<&str, u64> = BTreeMap::new();
        for ((_, _, code), n) in &self.denials {
            *totals.entry(code.as_str()).or_default() += n;
        }
        let mut list: Vec<_> = totals.into_iter().collect();
        list.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
        list
    }
}

/// Whether `e` is a call, of whichever application: a data API request
/// on an environment listener (see the module's doc).
pub fn is_call(e: &TraceEvent) -> bool {
    e.dataset.is_some() && e.plane != Plane::Admin
}

/// The first of the [`DAYS`] UTC days that end on `now`'s.
pub fn first_day(now: OffsetDateTime) -> Date {
    now.to_offset(time::UtcOffset::UTC).date() - Duration::days(DAYS as i64 - 1)
}

/// The usage of `partner`'s applications over the [`DAYS`] UTC days up to
/// `now` (included). Blocking: reads the trail.
pub fn collect(
    state: &Admin,
    partner: &PartnerId,
    now: OffsetDateTime,
) -> Result<Usage, AuditError> {
    let mut tally = Tally::new(&state.registry.snapshot(), partner, now);
    let start = tally.first.midnight().assume_utc();
    let (mut read, mut reached) = (0, false);
    query::scan_newest(&state.audit, None, |r| {
        read += 1;
        reached = r.event.at < start;
        if !reached {
            tally.count(&r.event);
        }
        !reached
    })?;
    // The trail ended, or the scan met the first day, before its limit.
    Ok(tally.finish(reached || read < MAX_SCAN))
}

/// The counts as the scan goes.
struct Tally {
    partner: PartnerId,
    first: Date,
    usage: Vec<AppUsage>,
    index: HashMap<ClientId, usize>,
    /// Calls per application and minute (Unix time / 60): at most 1,440 a
    /// day per application.
    minutes: HashMap<(usize, i64), u64>,
    denials: BTreeMap<(usize, usize, String), u64>,
    causes: BTreeMap<String, Cause>,
}

impl Tally {
    /// Empty counts for `partner`'s applications in `snap`, over the
    /// [`DAYS`] days ending on `now`'s UTC day.
    fn new(snap: &Snapshot, partner: &PartnerId, now: OffsetDateTime) -> Tally {
        let mut apps: Vec<_> = (snap.applications.values())
            .filter(|a| a.partner_id == *partner)
            .collect();
        apps.sort_by_key(|a| (a.created_at, a.client_id.clone()));
        let usage: Vec<AppUsage> = (apps.iter())
            .map(|a| AppUsage {
                client_id: a.client_id.clone(),
                name: a.name.clone(),
                environment: a.environment,
                quota_per_minute: a.quota_per_minute,
                days: vec![Day::default(); DAYS],
            })
            .collect();
        let index = (usage.iter().enumerate())
            .map(|(i, a)| (a.client_id.clone(), i))
            .collect();
        Tally {
            partner: partner.clone(),
            first: first_day(now),
            usage,
            index,
            minutes: HashMap::new(),
            denials: BTreeMap::new(),
            causes: BTreeMap::new(),
        }
    }

    /// Counts `e` if it is a call of one of the partner's applications on
    /// a day shown.
    fn count(&mut self, e: &TraceEvent) {
        let ours = e.partner_id.as_ref() == Some(&self.partner);
        if !ours || !is_call(e) {
            return;
        }
        let Some(&app) = e.client_id.as_ref().and_then(|c| self.index.get(c)) else {
            return;
        };
        let Some(day) = self.day_of(e.at) else {
            return;
        };
        let Some(counts) = self.usage.get_mut(app).and_then(|a| a.days.get_mut(day)) else {
            return;
        };
        match e.decision {
            Decision::Admitted => counts.admitted += 1,
            Decision::Denied => {
                counts.denied += 1;
                if let Some(cause) = cause_of(e) {
                    let code = cause.code();
                    *self.denials.entry((day, app, code.clone())).or_default() += 1;
                    self.causes.entry(code).or_insert(cause);
                }
            }
        }
        let minute = e.at.unix_timestamp().div_euclid(60);
        *self.minutes.entry((app, minute)).or_default() += 1;
    }

    /// The index of `at`'s UTC day among the days shown.
    fn day_of(&self, at: OffsetDateTime) -> Option<usize> {
        let date = at.to_offset(time::UtcOffset::UTC).date();
        let i = usize::try_from((date - self.first).whole_days()).ok()?;
        (i < DAYS).then_some(i)
    }

    /// The usage, each day's peak taken from its minutes.
    fn finish(mut self, complete: bool) -> Usage {
        for ((app, minute), n) in std::mem::take(&mut self.minutes) {
            let at = OffsetDateTime::from_unix_timestamp(minute * 60).ok();
            let day = at.and_then(|at| self.day_of(at));
            let counts = day.and_then(|d| self.usage.get_mut(app)?.days.get_mut(d));
            if let Some(counts) = counts {
                counts.peak = counts.peak.max(n);
            }
        }
        Usage {
            first: self.first,
            apps: self.usage,
            denials: self.denials,
            causes: self.causes,
            complete,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::Code;
    use crate::chain::Reason;
    use crate::domain::Dataset;
    use time::macros::datetime;

    const NOW: OffsetDateTime = datetime!(2026-12-07 10:30 UTC);

    fn tally() -> Tally {
        let mut apps = Vec::new();
        for (id, quota) in [("c-1", 50), ("c-2", 5)] {
            apps.push(AppUsage {
                client_id: ClientId::new(id),
                name: id.into(),
                environment: Environment::Sandbox,
                quota_per_minute: quota,
                days: vec![Day::default(); DAYS],
            });
        }
        let index = [(ClientId::new("c-1"), 0), (ClientId::new("c-2"), 1)];
        Tally {
            partner: PartnerId::new("p"),
            first: datetime!(2026-11-08 0:00 UTC).date(),
            usage: apps,
            index: index.into_iter().collect(),
            minutes: HashMap::new(),
            denials: BTreeMap::new(),
            causes: BTreeMap::new(),
        }
    }

    fn call(client: &str, at: OffsetDateTime, denied: Option<Reason>) -> TraceEvent {
        TraceEvent {
            at,
            plane: Plane::Env(Environment::Sandbox),
            client_id: Some(ClientId::new(client)),
            partner_id: Some(PartnerId::new("p")),
            dataset: Some(Dataset::Declarations),
            decision: denied.map_or(Decision::Admitted, |_| Decision::Denied),
            code: denied.map(Code::Catalogue),
            ..TraceEvent::default()
        }
    }

    #[test]
    fn calls_are_counted_per_day_decision_and_minute() {
        let mut t = tally();
        for s in [0, 10, 59] {
            t.count(&call("c-1", NOW + Duration::seconds(s), None));
        }
        t.count(&call("c-1", NOW + Duration::minutes(1), None));
        let year = Some(Reason::YearNotGranted);
        t.count(&call("c-1", NOW + Duration::minutes(1), year));
        t.count(&call(
            "c-2",
            datetime!(2026-11-08 0:00 UTC),
            Some(Reason::OverQuota),
        ));
        let u = t.finish(true);
        assert_eq!(u.last(), NOW.date());
        let today = u.apps[0].days[DAYS - 1];
        assert_eq!((today.admitted, today.denied, today.peak), (4, 1, 3));
        assert_eq!(
            u.apps[1].days[0],
            Day {
                admitted: 0,
                denied: 1,
                peak: 1
            }
        );
        assert_eq!(u.denials[&(DAYS - 1, 0, "910500".to_owned())], 1);
        assert_eq!(u.by_code(), vec![("900804", 1), ("910500", 1)]);
        assert_eq!(u.totals(), (4, 2));
        assert_eq!(u.causes["910500"], Cause::Row(Reason::YearNotGranted));
    }

    #[test]
    fn only_the_partners_data_calls_on_the_days_shown_count() {
        let mut t = tally();
        let mut other_partner = call("c-1", NOW, None);
        other_partner.partner_id = Some(PartnerId::new("q"));
        let mut token = call("c-1", NOW, None);
        token.dataset = None;
        let mut admin = call("c-1", NOW, None);
        admin.plane = Plane::Admin;
        let unknown_app = call("c-9", NOW, None);
        let too_old = call("c-1", datetime!(2026-11-07 23:59:59 UTC), None);
        let tomorrow = call("c-1", datetime!(2026-12-08 0:00 UTC), None);
        for e in [other_partner, token, admin, unknown_app, too_old, tomorrow] {
            t.count(&e);
        }
        let u = t.finish(true);
        assert_eq!(u.totals(), (0, 0));
        assert!(u.minutes_are_empty());
    }

    impl Usage {
        /// Calls admitted and denied over every day and application.
        fn totals(&self) -> (u64, u64) {
            let days = self.apps.iter().flat_map(|a| &a.days);
            days.fold((0, 0), |(a, d), day| (a + day.admitted, d + day.denied))
        }

        fn minutes_are_empty(&self) -> bool {
            self.apps.iter().flat_map(|a| &a.days).all(|d| d.peak == 0)
        }
    }
}
