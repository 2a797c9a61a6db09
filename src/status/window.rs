//! Whether a maintenance fits the terms (CGU §11): it begins inside the
//! nightly window (local time in `[status] timezone`), ends before that
//! occurrence of the window closes, and lasts at most
//! `maintenance_max_minutes`. An emergency is exempt (it then counts as
//! unavailability). A refusal names the field at fault, as the admin API
//! answers it (400).

use crate::config::StatusSettings;
use jiff::Timestamp;
use jiff::civil::{Date, DateTime};
use time::OffsetDateTime;

/// A maintenance refused: the field and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutOfTerms {
    /// `scheduled_for` or `scheduled_until`.
    pub field: &'static str,
    /// What is wrong, with the window and the zone.
    pub message: String,
}

/// Checks `[from, until)` against the terms at `now`.
pub fn check(
    s: &StatusSettings,
    (from, until): (OffsetDateTime, OffsetDateTime),
    emergency: bool,
    now: OffsetDateTime,
) -> Result<(), OutOfTerms> {
    let refuse = |field, message: String| Err(OutOfTerms { field, message });
    if until <= from {
        return refuse("scheduled_until", "must be after scheduled_for".into());
    }
    if until <= now {
        return refuse("scheduled_until", "must be in the future".into());
    }
    if emergency {
        return Ok(());
    }
    let (window, zone) = (s.maintenance_window, &s.timezone);
    let local = zone.tz.to_datetime(instant(from));
    if !window.contains(local.time()) {
        let at = local.strftime("%H:%M").to_string();
        let message = format!(
            "{at} ({}) is outside the maintenance window {window}; \
             send \"emergency\": true for an unplanned closure",
            zone.name
        );
        return refuse("scheduled_for", message);
    }
    let closes = window_end(s, local);
    if closes.is_none_or(|end| instant(until) > end) {
        let message = format!(
            "ends after the maintenance window {window} ({}) closes",
            zone.name
        );
        return refuse("scheduled_until", message);
    }
    let max = i64::from(s.maintenance_max_minutes);
    if (until - from).whole_seconds() > max * 60 {
        let message = format!("lasts longer than the {max} minutes a maintenance may last");
        return refuse("scheduled_until", message);
    }
    Ok(())
}

/// The instant of an `OffsetDateTime` (to the second).
pub fn instant(t: OffsetDateTime) -> Timestamp {
    Timestamp::from_second(t.unix_timestamp()).unwrap_or(Timestamp::UNIX_EPOCH)
}

/// The instant the window occurrence holding the local time `begins`
/// closes: the same day's end when the window does not cross midnight or
/// `begins` is after midnight, else the next day's.
fn window_end(s: &StatusSettings, begins: DateTime) -> Option<Timestamp> {
    let w = s.maintenance_window;
    let same_day = !w.crosses_midnight() || begins.time() < w.end;
    let date: Date = match same_day {
        true => begins.date(),
        false => begins.date().tomorrow().ok()?,
    };
    s.timezone
        .tz
        .to_timestamp(DateTime::from_parts(date, w.end))
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    fn check_at(
        from: OffsetDateTime,
        until: OffsetDateTime,
        emergency: bool,
    ) -> Result<(), OutOfTerms> {
        let now = datetime!(2026-06-01 0:00 UTC);
        check(&StatusSettings::default(), (from, until), emergency, now)
    }

    fn field(r: Result<(), OutOfTerms>) -> &'static str {
        r.map(|()| "ok").unwrap_or_else(|e| e.field)
    }

    #[test]
    fn inside_the_window_in_paris_summer_time() {
        // 23:30–01:00 Paris (UTC+2) = 21:30–23:00 UTC.
        let ok = check_at(
            datetime!(2026-06-15 21:30 UTC),
            datetime!(2026-06-15 23:00 UTC),
            false,
        );
        assert_eq!(ok, Ok(()));
        // 04:30–06:00 Paris: ends exactly when the window closes.
        let ok = check_at(
            datetime!(2026-06-16 2:30 UTC),
            datetime!(2026-06-16 4:00 UTC),
            false,
        );
        assert_eq!(ok, Ok(()));
    }

    #[test]
    fn noon_is_refused_naming_scheduled_for_unless_an_emergency() {
        let (from, until) = (
            datetime!(2026-06-15 10:00 UTC),
            datetime!(2026-06-15 10:30 UTC),
        );
        let e = check_at(from, until, false).unwrap_err();
        assert_eq!(e.field, "scheduled_for");
        assert!(
            e.message.contains("12:00") && e.message.contains("Europe/Paris"),
            "{}",
            e.message
        );
        assert_eq!(check_at(from, until, true), Ok(()));
    }

    #[test]
    fn past_the_window_or_too_long_names_scheduled_until() {
        // 05:00–06:30 Paris: past 06:00.
        let r = check_at(
            datetime!(2026-06-16 3:00 UTC),
            datetime!(2026-06-16 4:30 UTC),
            false,
        );
        assert_eq!(field(r), "scheduled_until");
        // 23:00–02:00 Paris: inside the window but 3 hours.
        let r = check_at(
            datetime!(2026-06-15 21:00 UTC),
            datetime!(2026-06-16 0:00 UTC),
            false,
        );
        assert_eq!(field(r), "scheduled_until");
        // 22:59 Paris: one minute too early.
        let r = check_at(
            datetime!(2026-06-15 20:59 UTC),
            datetime!(2026-06-15 21:30 UTC),
            false,
        );
        assert_eq!(field(r), "scheduled_for");
        // Ends before it begins, or already over.
        let r = check_at(
            datetime!(2026-06-15 22:00 UTC),
            datetime!(2026-06-15 21:30 UTC),
            true,
        );
        assert_eq!(field(r), "scheduled_until");
        let r = check_at(
            datetime!(2026-05-01 22:00 UTC),
            datetime!(2026-05-01 22:30 UTC),
            true,
        );
        assert_eq!(field(r), "scheduled_until");
    }

    #[test]
    fn winter_time_moves_the_window_in_utc() {
        // 23:00 Paris in January is 22:00 UTC (UTC+1): accepted there,
        // while 21:30 UTC (22:30 Paris) is refused.
        let now = datetime!(2026-01-01 0:00 UTC);
        let s = StatusSettings::default();
        let ok = check(
            &s,
            (
                datetime!(2026-01-15 22:00 UTC),
                datetime!(2026-01-15 23:00 UTC),
            ),
            false,
            now,
        );
        assert_eq!(ok, Ok(()));
        let r = check(
            &s,
            (
                datetime!(2026-01-15 21:30 UTC),
                datetime!(2026-01-15 22:30 UTC),
            ),
            false,
            now,
        );
        assert_eq!(field(r), "scheduled_for");
    }
}
