//! `[status]` (docs/contract.md §11, docs/status.md): the time zone the
//! opening range and the coverage hours are read in, the maintenance
//! window and its longest maintenance, how often the gateway probes each
//! environment, and the availability objective over the coverage hours.
//! Parsed once into types: a real time zone from jiff's bundled database
//! (France changes offset twice a year; never a fixed UTC offset), local
//! times of day, a `Duration`.

use super::ConfigError;
use jiff::civil::Time;
use jiff::tz::TimeZone;
use serde::{Deserialize, Deserializer};
use std::time::Duration;

/// `[status]`, with the terms' defaults.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StatusSettings {
    /// The zone of the opening range and of the coverage hours (default
    /// `Europe/Paris`); an IANA name of the bundled tz database.
    pub timezone: Zone,
    /// The nightly maintenance window, local `HH:MM-HH:MM` (default
    /// `23:00-06:00`; may cross midnight).
    pub maintenance_window: LocalRange,
    /// The longest scheduled maintenance, minutes (default 120, 1 to 1440).
    pub maintenance_max_minutes: u32,
    /// Seconds between two probes of each environment (default 15, 1 to 60).
    pub probe_secs: u64,
    /// The hours the objective is measured over, local `HH:MM-HH:MM`
    /// (default `07:00-20:00`).
    pub coverage_hours: LocalRange,
    /// The availability promised over the coverage hours, a fraction
    /// (default 0.9716, i.e. 97.16 %).
    pub coverage_objective: f64,
}

impl Default for StatusSettings {
    fn default() -> Self {
        StatusSettings {
            timezone: Zone::paris(),
            maintenance_window: LocalRange::hours(23, 6),
            maintenance_max_minutes: 120,
            probe_secs: 15,
            coverage_hours: LocalRange::hours(7, 20),
            coverage_objective: 0.9716,
        }
    }
}

impl StatusSettings {
    /// The time between two probes.
    pub fn probe_interval(&self) -> Duration {
        Duration::from_secs(self.probe_secs)
    }

    /// Checks values that are well-formed but unusable.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |key: &str, message: &str| ConfigError::Invalid {
            key: format!("status.{key}"),
            message: message.into(),
        };
        if !(1..=1440).contains(&self.maintenance_max_minutes) {
            return Err(invalid(
                "maintenance_max_minutes",
                "must be between 1 and 1440",
            ));
        }
        if !(1..=60).contains(&self.probe_secs) {
            return Err(invalid("probe_secs", "must be between 1 and 60"));
        }
        if !(self.coverage_objective > 0.0 && self.coverage_objective <= 1.0) {
            return Err(invalid(
                "coverage_objective",
                "must be a fraction above 0 and at most 1 (0.9716 is 97.16 %)",
            ));
        }
        if self.maintenance_window.start == self.maintenance_window.end {
            return Err(invalid("maintenance_window", "must not be empty"));
        }
        if self.coverage_hours.start >= self.coverage_hours.end {
            return Err(invalid(
                "coverage_hours",
                "must start before it ends, within one day",
            ));
        }
        Ok(())
    }
}

/// A time zone of the bundled tz database, by its IANA name.
#[derive(Debug, Clone)]
pub struct Zone {
    /// The zone.
    pub tz: TimeZone,
    /// Its IANA name as configured (`Europe/Paris`).
    pub name: String,
}

impl Zone {
    /// `Europe/Paris`, the default. Bundled in the binary, so it is always
    /// found; were it not, UTC (and an error in the log) rather than a panic.
    fn paris() -> Self {
        Zone::named("Europe/Paris").unwrap_or_else(|e| {
            tracing::error!(error = %e, "Europe/Paris missing from the bundled tz database");
            Zone {
                tz: TimeZone::UTC,
                name: "UTC".into(),
            }
        })
    }

    /// The zone named `name`, or why not.
    pub fn named(name: &str) -> Result<Self, String> {
        TimeZone::get(name)
            .map(|tz| Zone {
                tz,
                name: name.to_owned(),
            })
            .map_err(|_| {
                format!("unknown time zone {name:?} (an IANA name such as \"Europe/Paris\")")
            })
    }
}

impl<'de> Deserialize<'de> for Zone {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Zone::named(&String::deserialize(d)?).map_err(serde::de::Error::custom)
    }
}

/// A range of local times of day, `HH:MM-HH:MM`: from `start` included to
/// `end` excluded, across midnight when `end` is not after `start`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LocalRange {
    /// First local time inside.
    pub start: Time,
    /// First local time after.
    pub end: Time,
}

impl LocalRange {
    /// `HH:00-HH:00`.
    fn hours(start: i8, end: i8) -> Self {
        LocalRange {
            start: Time::constant(start, 0, 0, 0),
            end: Time::constant(end, 0, 0, 0),
        }
    }

    /// Whether the local time `t` is inside.
    pub fn contains(&self, t: Time) -> bool {
        if self.start < self.end {
            self.start <= t && t < self.end
        } else {
            t >= self.start || t < self.end
        }
    }

    /// Whether the range crosses midnight (`23:00-06:00`).
    pub fn crosses_midnight(&self) -> bool {
        self.end <= self.start
    }

    /// Reads `HH:MM-HH:MM`.
    pub fn parse(text: &str) -> Result<Self, String> {
        let wrong = || format!("{text:?} is not HH:MM-HH:MM (e.g. \"23:00-06:00\")");
        let (start, end) = text.split_once('-').ok_or_else(wrong)?;
        Ok(LocalRange {
            start: hh_mm(start).ok_or_else(wrong)?,
            end: hh_mm(end).ok_or_else(wrong)?,
        })
    }
}

impl std::fmt::Display for LocalRange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (s, e) = (self.start, self.end);
        write!(
            f,
            "{:02}:{:02}-{:02}:{:02}",
            s.hour(),
            s.minute(),
            e.hour(),
            e.minute()
        )
    }
}

/// `HH:MM`, 00:00 to 23:59.
fn hh_mm(text: &str) -> Option<Time> {
    let (h, m) = text.trim().split_once(':')?;
    let two_digits = |s: &str| s.len() == 2 && s.bytes().all(|b| b.is_ascii_digit());
    if !two_digits(h) || !two_digits(m) {
        return None;
    }
    Time::new(h.parse().ok()?, m.parse().ok()?, 0, 0).ok()
}

impl<'de> Deserialize<'de> for LocalRange {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        LocalRange::parse(&String::deserialize(d)?).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use std::path::Path;

    fn parse(text: &str) -> Result<Config, ConfigError> {
        Config::parse(text, Path::new("t.toml"))
    }

    #[test]
    fn defaults_are_the_terms() {
        let s = parse("").unwrap().status;
        assert_eq!(s.timezone.name, "Europe/Paris");
        assert_eq!(s.maintenance_window.to_string(), "23:00-06:00");
        assert!(s.maintenance_window.crosses_midnight());
        assert_eq!(s.maintenance_max_minutes, 120);
        assert_eq!(s.probe_interval(), Duration::from_secs(15));
        assert_eq!(s.coverage_hours.to_string(), "07:00-20:00");
        assert_eq!(s.coverage_objective, 0.9716);
    }

    #[test]
    fn a_written_section_is_read_into_types() {
        let text = "[status]\ntimezone = \"America/New_York\"\nmaintenance_window = \"22:30-01:15\"\n\
                    maintenance_max_minutes = 60\nprobe_secs = 5\ncoverage_objective = 0.99\n";
        let s = parse(text).unwrap().status;
        assert_eq!(s.timezone.tz.iana_name(), Some("America/New_York"));
        assert_eq!(s.maintenance_window.start, Time::constant(22, 30, 0, 0));
        assert_eq!(s.maintenance_window.end, Time::constant(1, 15, 0, 0));
        assert_eq!((s.maintenance_max_minutes, s.probe_secs), (60, 5));
    }

    #[test]
    fn an_unknown_zone_is_refused_naming_the_key_and_line() {
        let err = parse("[status]\n\ntimezone = \"Europe/Pariss\"\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("status.timezone"), "{err}");
        assert!(err.contains("line 3"), "{err}");
        assert!(err.contains("Europe/Pariss"), "{err}");
    }

    #[test]
    fn bad_values_name_their_key() {
        for (text, key) in [
            (
                "maintenance_window = \"23h-6h\"",
                "status.maintenance_window",
            ),
            (
                "maintenance_window = \"24:00-06:00\"",
                "status.maintenance_window",
            ),
            (
                "maintenance_window = \"23:00-23:00\"",
                "status.maintenance_window",
            ),
            (
                "maintenance_max_minutes = 0",
                "status.maintenance_max_minutes",
            ),
            ("probe_secs = 0", "status.probe_secs"),
            ("probe_secs = 61", "status.probe_secs"),
            ("coverage_objective = 97.16", "status.coverage_objective"),
            ("coverage_hours = \"20:00-07:00\"", "status.coverage_hours"),
            ("objective = 0.9", "objective"),
        ] {
            let err = parse(&format!("[status]\n{text}\n"))
                .unwrap_err()
                .to_string();
            assert!(err.contains(key), "{text}: {err}");
        }
    }

    #[test]
    fn a_range_across_midnight_contains_both_ends_of_the_night() {
        let w = LocalRange::parse("23:00-06:00").unwrap();
        let t = |h, m| Time::constant(h, m, 0, 0);
        assert!(w.contains(t(23, 0)) && w.contains(t(0, 30)) && w.contains(t(5, 59)));
        assert!(!w.contains(t(6, 0)) && !w.contains(t(12, 0)) && !w.contains(t(22, 59)));
        let day = LocalRange::parse("07:00-20:00").unwrap();
        assert!(day.contains(t(7, 0)) && day.contains(t(19, 59)));
        assert!(!day.contains(t(20, 0)) && !day.contains(t(6, 59)));
    }
}
