//! The rates per local day read back (`/status/history.json`, the status
//! page's bars and its 90-day rate): every node's minute records of each
//! day are unioned (a minute is up if any node saw it up), this node's own
//! records come from memory (they hold what it has not written yet), and
//! the arithmetic of `day` turns them into rates. A minute before the
//! gateway's first start or not yet over is unmeasured; the minute under
//! way counts only once it is known to be down. Reads the store (awaited).

use super::day::{self, Closure, Hours, LocalDay, Seen};
use super::record::{self, DayRecord};
use super::window::instant;
use super::{Board, Status, StatusError};
use crate::domain::Environment;
use jiff::Timestamp;
use jiff::civil::Date;
use serde::Serialize;
use std::collections::BTreeMap;
use time::OffsetDateTime;

/// One component's rates over one local day, as `/status/history.json`
/// shows them.
#[derive(Debug, Clone, Serialize)]
pub struct DayView {
    /// The local date (`YYYY-MM-DD`).
    pub date: String,
    /// The availability over the opening range (`null`: nothing measured).
    pub availability: Option<f64>,
    /// The availability over the coverage hours.
    pub coverage_availability: Option<f64>,
    /// Down minutes of the opening range.
    pub down_minutes: u32,
    /// Measured minutes of the opening range (not in the JSON).
    #[serde(skip)]
    pub range_minutes: u32,
    /// Measured minutes of the coverage hours (not in the JSON).
    #[serde(skip)]
    pub coverage_minutes: u32,
    /// Down minutes of the coverage hours (not in the JSON).
    #[serde(skip)]
    pub coverage_down_minutes: u32,
}

impl Status {
    /// The last `days` local days of `env` (oldest first, today last).
    pub async fn history(
        &self,
        env: Environment,
        days: u32,
        now: OffsetDateTime,
    ) -> Result<Vec<DayView>, StatusError> {
        let hours = Hours {
            tz: self.settings.timezone.tz.clone(),
            window: self.settings.maintenance_window,
            coverage: self.settings.coverage_hours,
        };
        let today = LocalDay::holding(instant(now), &hours.tz)?;
        let first = (1..days)
            .try_fold(today.date, |d, _| d.yesterday())
            .map_err(|source| day::DayError::from_jiff(today.date, source))?;
        let mut by_date = self.records(env, (first, today.date)).await?;
        let board = self.board();
        let closures = closures(&board, env);
        let span = Span::of(&board, now, self.meter.peek(env).down());
        let mut out = Vec::with_capacity(days as usize);
        let mut date = first;
        loop {
            let day = LocalDay::of(date, &hours.tz)?;
            let records = by_date.remove(&date).unwrap_or_default();
            let seen = span.seen(&day, &record::union(day.minutes, &records));
            let r = day::rate(&day, &hours, &seen, &closures);
            out.push(DayView {
                date: date.to_string(),
                availability: r.availability,
                coverage_availability: r.coverage_availability,
                down_minutes: r.down_minutes,
                range_minutes: r.range_minutes,
                coverage_minutes: r.coverage_minutes,
                coverage_down_minutes: r.coverage_down_minutes,
            });
            if date >= today.date {
                return Ok(out);
            }
            date = date
                .tomorrow()
                .map_err(|source| day::DayError::from_jiff(date, source))?;
        }
    }

    /// Every node's records of `env` by date, this node's from memory.
    async fn records(
        &self,
        env: Environment,
        dates: (Date, Date),
    ) -> Result<BTreeMap<Date, Vec<DayRecord>>, StatusError> {
        let mut by_date: BTreeMap<Date, Vec<DayRecord>> = BTreeMap::new();
        let stored = record::load(&*self.store, env, dates).await?;
        let live = self.live_records();
        for (date, node, r) in stored {
            // This node's own record is in memory, newer than the store's.
            if node != self.node || !live.contains_key(&(env, date)) {
                by_date.entry(date).or_default().push(r);
            }
        }
        for ((e, date), r) in live.iter() {
            if *e == env && (dates.0..=dates.1).contains(date) {
                by_date.entry(*date).or_default().push(r.clone());
            }
        }
        Ok(by_date)
    }
}

/// The closures of `env` from the board: every maintenance that closed
/// or will close it, for as long as it really did (cancellations count).
pub fn closures(board: &Board, env: Environment) -> Vec<Closure> {
    board
        .maintenances
        .iter()
        .filter(|m| m.components.contains(&env) && m.ends_at() > m.scheduled_for)
        .map(|m| Closure {
            from: instant(m.scheduled_for),
            until: instant(m.ends_at()),
            emergency: m.emergency,
        })
        .collect()
}

/// The measured span: from the first start to now, and whether the
/// minute under way is already known down.
struct Span {
    since: Timestamp,
    now: Timestamp,
    current_down: bool,
}

impl Span {
    fn of(board: &Board, now: OffsetDateTime, current_down: bool) -> Span {
        let now = instant(now);
        let since = board.since.map(instant).unwrap_or(now);
        Span {
            since: Timestamp::from_second(since.as_second().div_euclid(60) * 60).unwrap_or(since),
            now,
            current_down,
        }
    }

    /// What was seen of each minute of `day`, unmeasured outside the span.
    /// A minute is settled [`FLUSH_GRACE_SECS`] after its end (each node
    /// writes it within a second of its end); before, only what is already
    /// known of it counts.
    fn seen(&self, day: &LocalDay, unioned: &[Seen]) -> Vec<Seen> {
        (0..day.minutes)
            .map(|i| {
                let start = day.minute_start(i);
                let end = start.as_second() + 60;
                let settled = end + FLUSH_GRACE_SECS <= self.now.as_second();
                let started = start <= self.now;
                let current = started && end > self.now.as_second();
                match unioned.get(i).copied().unwrap_or(Seen::Unobserved) {
                    _ if start < self.since || !started => Seen::Unmeasured,
                    Seen::Up => Seen::Up,
                    Seen::Down => Seen::Down,
                    _ if current && self.current_down => Seen::Down,
                    _ if settled => Seen::Unobserved,
                    _ => Seen::Unmeasured,
                }
            })
            .collect()
    }
}

/// Seconds after a minute's end before a minute no node recorded counts
/// as unobserved (down): the nodes write each minute within a second.
const FLUSH_GRACE_SECS: i64 = 3;
