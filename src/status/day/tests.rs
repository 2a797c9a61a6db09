//! Hand-computed days in Europe/Paris: the numbers in each test are
//! counted by hand from the scenario in its comment, not from the code.

use super::*;
use jiff::civil::date;

fn paris() -> Hours {
    Hours {
        tz: TimeZone::get("Europe/Paris").unwrap(),
        window: LocalRange::parse("23:00-06:00").unwrap(),
        coverage: LocalRange::parse("07:00-20:00").unwrap(),
    }
}

/// The instant of a local wall-clock time (the earlier one when repeated).
fn at(hours: &Hours, d: Date, h: i8, m: i8) -> Timestamp {
    hours
        .tz
        .to_timestamp(DateTime::from_parts(d, Time::constant(h, m, 0, 0)))
        .unwrap()
}

fn utc(text: &str) -> Timestamp {
    text.parse().unwrap()
}

/// Every minute of `day` seen as `what`, then `overrides` (index ranges).
fn seen(day: &LocalDay, what: Seen, overrides: &[(std::ops::Range<usize>, Seen)]) -> Vec<Seen> {
    let mut v = vec![what; day.minutes];
    for (range, s) in overrides {
        v[range.clone()].iter_mut().for_each(|m| *m = *s);
    }
    v
}

fn close(got: Option<f64>, num: u32, den: u32) {
    let want = f64::from(num) / f64::from(den);
    let got = got.unwrap();
    assert!((got - want).abs() < 1e-12, "got {got}, want {num}/{den}");
}

#[test]
fn a_normal_day_counts_down_and_unobserved_minutes() {
    let h = paris();
    let d = date(2026, 6, 15);
    let day = LocalDay::of(d, &h.tz).unwrap();
    assert_eq!(day.minutes, 1440);
    // 10:00–10:29 down (30 min, coverage hours), 02:00–02:09 nobody
    // running (10 min, outside coverage).
    let s = seen(
        &day,
        Seen::Up,
        &[(600..630, Seen::Down), (120..130, Seen::Unobserved)],
    );
    let r = rate(&day, &h, &s, &[]);
    assert_eq!((r.range_minutes, r.down_minutes), (1440, 40));
    close(r.availability, 1400, 1440);
    assert_eq!((r.coverage_minutes, r.coverage_down_minutes), (780, 30));
    close(r.coverage_availability, 750, 780);
}

#[test]
fn the_spring_change_day_has_1380_minutes_and_no_2_am() {
    let h = paris();
    let d = date(2026, 3, 29);
    let day = LocalDay::of(d, &h.tz).unwrap();
    assert_eq!(day.minutes, 1380);
    // 00:00 CET is 23:00 UTC the day before; minute 120 is 03:00 CEST.
    assert_eq!(day.start, utc("2026-03-28T23:00:00Z"));
    assert_eq!(
        h.tz.to_datetime(day.minute_start(120)).time(),
        Time::constant(3, 0, 0, 0)
    );
    // Down from 01:30 to 03:30 local: 30 minutes before the jump and 30
    // after (the hour 02:00–02:59 does not exist), all outside coverage.
    let s = seen(&day, Seen::Up, &[(90..150, Seen::Down)]);
    let r = rate(&day, &h, &s, &[]);
    assert_eq!((r.range_minutes, r.down_minutes), (1380, 60));
    close(r.availability, 1320, 1380);
    assert_eq!(r.coverage_minutes, 780, "07:00–20:00 is still 13 hours");
    close(r.coverage_availability, 780, 780);
}

#[test]
fn the_autumn_change_day_has_1500_minutes_and_a_maintenance_over_the_repeated_hour() {
    let h = paris();
    let d = date(2026, 10, 25);
    let day = LocalDay::of(d, &h.tz).unwrap();
    assert_eq!(day.minutes, 1500);
    // Scheduled from 01:30 CEST (23:30 UTC) to the second 02:30, CET
    // (01:30 UTC): 120 minutes, all inside the window (before 06:00),
    // seen down (closed) by the node, so outside the range.
    let m = Closure {
        from: utc("2026-10-24T23:30:00Z"),
        until: utc("2026-10-25T01:30:00Z"),
        emergency: false,
    };
    let first = day.index_of(m.from).unwrap();
    assert_eq!(first, 90);
    let s = seen(&day, Seen::Up, &[(90..210, Seen::Down)]);
    let r = rate(&day, &h, &s, &[m]);
    assert_eq!((r.range_minutes, r.down_minutes), (1380, 0));
    close(r.availability, 1380, 1380);
    // The same closure as an emergency: 120 minutes of unavailability.
    let e = Closure {
        emergency: true,
        ..m
    };
    let r = rate(&day, &h, &s, &[e]);
    assert_eq!((r.range_minutes, r.down_minutes), (1500, 120));
    close(r.availability, 1380, 1500);
}

#[test]
fn a_maintenance_inside_the_window_is_outside_the_range() {
    let h = paris();
    let d = date(2026, 6, 15);
    let day = LocalDay::of(d, &h.tz).unwrap();
    // Scheduled 00:30–02:00 local: 90 minutes excluded; the node saw them
    // closed (down).
    let m = Closure {
        from: at(&h, d, 0, 30),
        until: at(&h, d, 2, 0),
        emergency: false,
    };
    let s = seen(&day, Seen::Up, &[(30..120, Seen::Down)]);
    let r = rate(&day, &h, &s, &[m]);
    assert_eq!((r.range_minutes, r.down_minutes), (1350, 0));
    close(r.availability, 1350, 1350);
    close(r.coverage_availability, 780, 780);
}

#[test]
fn a_maintenance_partly_outside_the_window_is_down_outside_it() {
    let h = paris();
    let d = date(2026, 6, 15);
    let day = LocalDay::of(d, &h.tz).unwrap();
    // Scheduled 05:00–07:00: 05:00–05:59 inside the window (excluded),
    // 06:00–06:59 outside it (down); coverage starts at 07:00.
    let m = Closure {
        from: at(&h, d, 5, 0),
        until: at(&h, d, 7, 0),
        emergency: false,
    };
    let s = seen(&day, Seen::Up, &[(300..420, Seen::Down)]);
    let r = rate(&day, &h, &s, &[m]);
    assert_eq!((r.range_minutes, r.down_minutes), (1380, 60));
    close(r.availability, 1320, 1380);
    close(r.coverage_availability, 780, 780);
}

#[test]
fn an_emergency_is_unavailability_even_inside_the_window() {
    let h = paris();
    let d = date(2026, 6, 15);
    let day = LocalDay::of(d, &h.tz).unwrap();
    // Emergencies 14:00–14:30 (coverage) and 01:00–01:30 (window): both
    // down, 60 minutes, even if a node saw some of them up.
    let e = |from, until| Closure {
        from,
        until,
        emergency: true,
    };
    let closures = [
        e(at(&h, d, 14, 0), at(&h, d, 14, 30)),
        e(at(&h, d, 1, 0), at(&h, d, 1, 30)),
    ];
    let s = seen(&day, Seen::Up, &[(840..870, Seen::Down)]);
    let r = rate(&day, &h, &s, &closures);
    assert_eq!((r.range_minutes, r.down_minutes), (1440, 60));
    close(r.availability, 1380, 1440);
    close(r.coverage_availability, 750, 780);
}

#[test]
fn a_partly_closed_minute_is_closed_and_unmeasured_minutes_are_outside() {
    let h = paris();
    let d = date(2026, 6, 15);
    let day = LocalDay::of(d, &h.tz).unwrap();
    // First start at 12:00 (720 minutes unmeasured before), now 13:00
    // (the rest unmeasured); an emergency 12:10:30–12:11:10 touches two
    // minutes.
    let mut s = vec![Seen::Unmeasured; day.minutes];
    s[720..780].iter_mut().for_each(|m| *m = Seen::Up);
    let from = at(&h, d, 12, 10)
        .saturating_add(SignedDuration::from_secs(30))
        .unwrap();
    let until = at(&h, d, 12, 11)
        .saturating_add(SignedDuration::from_secs(10))
        .unwrap();
    let closures = [Closure {
        from,
        until,
        emergency: true,
    }];
    let r = rate(&day, &h, &s, &closures);
    assert_eq!((r.range_minutes, r.down_minutes), (60, 2));
    close(r.availability, 58, 60);
    assert_eq!(
        rate(&day, &h, &[], &[]).availability,
        None,
        "nothing measured"
    );
}

#[test]
fn index_and_holding_agree_with_the_zone() {
    let h = paris();
    let day = LocalDay::holding(utc("2026-10-25T01:30:00Z"), &h.tz).unwrap();
    assert_eq!(day.date, date(2026, 10, 25));
    assert_eq!(day.index_of(utc("2026-10-25T01:30:00Z")), Some(210));
    assert_eq!(day.index_of(utc("2026-10-25T23:00:00Z")), None, "next day");
    assert_eq!(
        day.index_of(utc("2026-10-24T21:59:59Z")),
        None,
        "day before"
    );
}
