//! Calendar dates and tax periods as the sandbox writes them: ISO 8601
//! (`2024-05-18`, `2024-03`, `2023`), computed with integers only.

use super::text::Text;
use serde::{Serialize, Serializer};
use std::fmt;

/// A proleptic Gregorian date, stored as year and day of year (1-based).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(super) struct Date {
    year: i32,
    ordinal: u16,
}

/// Days before the first of each month in a common year.
const DAYS_BEFORE: [u16; 12] = [0, 31, 59, 90, 120, 151, 181, 212, 243, 273, 304, 334];

impl Date {
    /// The date `year-month-day`; out-of-range months and days are clamped.
    pub(super) fn ymd(year: i32, month: u8, day: u8) -> Self {
        let month = month.clamp(1, 12);
        let day = u16::from(day.clamp(1, month_length(year, month)));
        let mut ordinal = DAYS_BEFORE[usize::from(month - 1)] + day;
        if month > 2 && is_leap(year) {
            ordinal += 1;
        }
        Date { year, ordinal }
    }

    /// 1 January of `year`.
    pub(super) fn first_of(year: i32) -> Self {
        Date { year, ordinal: 1 }
    }

    /// 31 December of `year`.
    pub(super) fn last_of(year: i32) -> Self {
        Date {
            year,
            ordinal: year_length(year),
        }
    }

    /// The calendar year.
    pub(super) fn year(self) -> i32 {
        self.year
    }

    /// Day of the year, from 1.
    pub(super) fn day_of_year(self) -> u16 {
        self.ordinal
    }

    /// The date `days` later (earlier when negative), across years.
    pub(super) fn plus_days(self, days: i64) -> Self {
        let mut year = self.year;
        let mut ordinal = i64::from(self.ordinal) + days;
        while ordinal > i64::from(year_length(year)) {
            ordinal -= i64::from(year_length(year));
            year += 1;
        }
        while ordinal < 1 {
            year -= 1;
            ordinal += i64::from(year_length(year));
        }
        Date {
            year,
            ordinal: ordinal as u16,
        }
    }

    /// This date, moved inside `year` if it falls before or after it.
    pub(super) fn clamp_to(self, year: i32) -> Self {
        self.clamp(Date::first_of(year), Date::last_of(year))
    }

    /// The part of the year from this date to 31 December inclusive, in basis points.
    pub(super) fn share_of_year_left(self) -> i64 {
        let length = i64::from(year_length(self.year));
        (length - i64::from(self.ordinal) + 1) * 10_000 / length
    }

    /// Month (1–12) and day of month.
    fn month_day(self) -> (u8, u16) {
        let leap = u16::from(is_leap(self.year));
        let mut month = 12;
        while month > 1 {
            let start = DAYS_BEFORE[usize::from(month - 1)] + if month > 2 { leap } else { 0 };
            if self.ordinal > start {
                return (month, self.ordinal - start);
            }
            month -= 1;
        }
        (1, self.ordinal)
    }

    /// `YYYY-MM-DD` (years 0–9999, the only ones the sandbox produces).
    fn text(self) -> Text<16> {
        let (month, day) = self.month_day();
        let mut t = Text::new();
        t.push_number(u64::from(self.year.unsigned_abs()), 4);
        t.push_ascii(b'-').push_number(u64::from(month), 2);
        t.push_ascii(b'-').push_number(u64::from(day), 2);
        t
    }
}

impl fmt::Display for Date {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.text().as_str())
    }
}

impl Serialize for Date {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.text().as_str())
    }
}

/// The period a return or a payment covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Periode {
    /// A financial year (`exercice`), always the calendar year here: `2023`.
    Annee(i32),
    /// A month: `2024-03`.
    Mois(i32, u8),
}

impl Periode {
    /// The month before `month` of `year` (December of the previous year for January).
    pub(super) fn month_before(year: i32, month: u8) -> Self {
        if month <= 1 {
            Periode::Mois(year - 1, 12)
        } else {
            Periode::Mois(year, month - 1)
        }
    }

    fn text(self) -> Text<8> {
        let mut t = Text::new();
        match self {
            Periode::Annee(year) => t.push_number(u64::from(year.unsigned_abs()), 4),
            Periode::Mois(year, month) => t
                .push_number(u64::from(year.unsigned_abs()), 4)
                .push_ascii(b'-')
                .push_number(u64::from(month), 2),
        };
        t
    }
}

impl fmt::Display for Periode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.text().as_str())
    }
}

impl Serialize for Periode {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.text().as_str())
    }
}

fn is_leap(year: i32) -> bool {
    year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)
}

fn year_length(year: i32) -> u16 {
    if is_leap(year) { 366 } else { 365 }
}

fn month_length(year: i32, month: u8) -> u8 {
    match month {
        2 if is_leap(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_iso_8601() {
        assert_eq!(Date::ymd(2024, 2, 29).to_string(), "2024-02-29");
        assert_eq!(Date::ymd(2023, 2, 29).to_string(), "2023-02-28");
        assert_eq!(Date::last_of(2024).to_string(), "2024-12-31");
        assert_eq!(Date::ymd(2024, 3, 1).to_string(), "2024-03-01");
        assert_eq!(Periode::Annee(2023).to_string(), "2023");
        assert_eq!(Periode::month_before(2024, 1).to_string(), "2023-12");
        assert_eq!(Periode::month_before(2024, 7).to_string(), "2024-06");
    }

    #[test]
    fn every_day_round_trips_through_month_and_day() {
        for year in [2015, 2016, 2100, 2000] {
            let mut date = Date::first_of(year);
            let mut count = 0;
            while date.year() == year {
                let (m, d) = date.month_day();
                assert_eq!(Date::ymd(year, m, d as u8), date);
                date = date.plus_days(1);
                count += 1;
            }
            assert_eq!(count, year_length(year));
        }
    }

    #[test]
    fn adds_days_across_years_and_clamps() {
        assert_eq!(Date::ymd(2024, 12, 30).plus_days(3), Date::ymd(2025, 1, 2));
        assert_eq!(Date::ymd(2024, 1, 2).plus_days(-3), Date::ymd(2023, 12, 30));
        assert_eq!(Date::ymd(2025, 1, 2).clamp_to(2024), Date::last_of(2024));
        assert_eq!(Date::ymd(2023, 6, 2).clamp_to(2024), Date::first_of(2024));
    }
}
