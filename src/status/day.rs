//! The availability arithmetic of one component over one local day
//! (docs/contract.md §11, docs/status.md "How it is computed"), with no
//! I/O: what was seen of each minute and which closures covered it in,
//! the day's rates out.
//!
//! A local day is the minutes from one local midnight to the next in the
//! configured zone: 1440 on most days, 1380 on the spring change day and
//! 1500 on the autumn one in Europe/Paris. Minute `i` of the day starts
//! `i` minutes after its midnight (an instant), and its local time of day
//! is read in the zone, so the hour repeated in autumn is counted twice
//! and the skipped hour in spring never.
//!
//! The opening range is every measured minute except those closed by a
//! scheduled (non-emergency) maintenance while inside the maintenance
//! window. In the range, a minute is down when a closure covered it (an
//! emergency, or a scheduled maintenance outside the window), or when no
//! node saw it up; the coverage rate counts the same over the coverage
//! hours only.

use crate::config::LocalRange;
use jiff::civil::{Date, DateTime, Time};
use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp};

/// A local day that cannot be placed in time (a date at the ends of the
/// representable range).
#[derive(Debug, thiserror::Error)]
#[error("the local day {date} cannot be placed in time: {source}")]
pub struct DayError {
    /// The date.
    date: Date,
    /// jiff's account.
    #[source]
    source: jiff::Error,
}

impl DayError {
    /// jiff's `source` about `date`.
    pub fn from_jiff(date: Date, source: jiff::Error) -> Self {
        DayError { date, source }
    }
}

/// What was seen of one minute of a component.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Seen {
    /// At least one node saw it up.
    Up,
    /// A node saw it down (closed, probe failed, platform faults), none up.
    Down,
    /// No node observed it, after the first start and before now: the
    /// gateway was not running, which counts as unavailable.
    Unobserved,
    /// Not measured: before the gateway's first start, or not yet lived.
    Unmeasured,
}

/// An environment closed from `from` to `until` (an instant each).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Closure {
    /// First instant closed.
    pub from: Timestamp,
    /// First instant open again.
    pub until: Timestamp,
    /// An emergency: unavailability, even inside the window.
    pub emergency: bool,
}

/// The local hours the arithmetic reads minutes against.
#[derive(Debug, Clone)]
pub struct Hours {
    /// The zone of the local times.
    pub tz: TimeZone,
    /// The maintenance window.
    pub window: LocalRange,
    /// The coverage hours.
    pub coverage: LocalRange,
}

/// One local day in the zone: its date, the instant it starts, its length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LocalDay {
    /// The local date.
    pub date: Date,
    /// Its first instant (local midnight).
    pub start: Timestamp,
    /// Its minutes: 1440, or 1380 / 1500 on a change of offset.
    pub minutes: usize,
}

impl LocalDay {
    /// The day `date` in `tz`.
    pub fn of(date: Date, tz: &TimeZone) -> Result<LocalDay, DayError> {
        let fail = |source| DayError { date, source };
        let midnight = |d: Date| tz.to_timestamp(DateTime::from_parts(d, Time::midnight()));
        let start = midnight(date).map_err(fail)?;
        let next = midnight(date.tomorrow().map_err(fail)?).map_err(fail)?;
        let minutes = (next.as_second() - start.as_second()).max(0) / 60;
        Ok(LocalDay {
            date,
            start,
            minutes: minutes as usize,
        })
    }

    /// The local day holding the instant `at`.
    pub fn holding(at: Timestamp, tz: &TimeZone) -> Result<LocalDay, DayError> {
        LocalDay::of(tz.to_datetime(at).date(), tz)
    }

    /// The first instant of minute `i`.
    pub fn minute_start(&self, i: usize) -> Timestamp {
        let offset = SignedDuration::from_mins(i as i64);
        self.start.saturating_add(offset).unwrap_or(self.start)
    }

    /// The minute of this day that holds `at`, if `at` is in this day.
    pub fn index_of(&self, at: Timestamp) -> Option<usize> {
        let secs = at.as_second() - self.start.as_second();
        let i = usize::try_from(secs.div_euclid(60)).ok()?;
        (i < self.minutes).then_some(i)
    }
}

/// A component's rates over one local day.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DayRate {
    /// Up minutes over the minutes of the opening range that were
    /// measured; `None` when none was.
    pub availability: Option<f64>,
    /// The same over the coverage hours.
    pub coverage_availability: Option<f64>,
    /// Minutes of the opening range that were down.
    pub down_minutes: u32,
    /// Minutes of the opening range measured.
    pub range_minutes: u32,
    /// Minutes of the coverage hours measured.
    pub coverage_minutes: u32,
    /// Of those, the ones down.
    pub coverage_down_minutes: u32,
}

/// Where one minute falls.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verdict {
    /// Not in the opening range (unmeasured, or scheduled maintenance
    /// inside the window).
    Outside,
    /// In the range, available.
    Up,
    /// In the range, unavailable.
    Down,
}

/// The rates of `day`: `seen[i]` is what was seen of minute `i` (a
/// missing entry counts as unmeasured), `closures` the closures of the
/// component (scheduled and emergency, manual ones included as
/// emergencies).
pub fn rate(day: &LocalDay, hours: &Hours, seen: &[Seen], closures: &[Closure]) -> DayRate {
    let mut r = DayRate {
        availability: None,
        coverage_availability: None,
        down_minutes: 0,
        range_minutes: 0,
        coverage_minutes: 0,
        coverage_down_minutes: 0,
    };
    for i in 0..day.minutes {
        let start = day.minute_start(i);
        let local = hours.tz.to_datetime(start).time();
        let what = seen.get(i).copied().unwrap_or(Seen::Unmeasured);
        let verdict = verdict(what, local, hours, closed_by(start, closures));
        if verdict == Verdict::Outside {
            continue;
        }
        let down = verdict == Verdict::Down;
        r.range_minutes += 1;
        r.down_minutes += u32::from(down);
        if hours.coverage.contains(local) {
            r.coverage_minutes += 1;
            r.coverage_down_minutes += u32::from(down);
        }
    }
    r.availability = fraction(r.range_minutes, r.down_minutes);
    r.coverage_availability = fraction(r.coverage_minutes, r.coverage_down_minutes);
    r
}

/// The closures covering the minute starting at `start`: whether any did,
/// and whether every one of them was a scheduled (non-emergency) one.
fn closed_by(start: Timestamp, closures: &[Closure]) -> Option<bool> {
    let end = start.as_second() + 60;
    let mut covering = closures
        .iter()
        .filter(|c| c.from.as_second() < end && start < c.until)
        .peekable();
    covering.peek()?;
    Some(covering.all(|c| !c.emergency))
}

/// One minute's verdict; `closed` is `Some(scheduled_only)` when a closure
/// covered it.
fn verdict(seen: Seen, local: Time, hours: &Hours, closed: Option<bool>) -> Verdict {
    match (seen, closed) {
        (Seen::Unmeasured, _) => Verdict::Outside,
        (_, Some(true)) if hours.window.contains(local) => Verdict::Outside,
        (_, Some(_)) => Verdict::Down,
        (Seen::Up, None) => Verdict::Up,
        (Seen::Down | Seen::Unobserved, None) => Verdict::Down,
    }
}

/// `(total − down) / total`, or `None` over nothing.
fn fraction(total: u32, down: u32) -> Option<f64> {
    (total > 0).then(|| f64::from(total - down) / f64::from(total))
}

#[cfg(test)]
mod tests;
