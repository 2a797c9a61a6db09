//! `[abuse]` (docs/contract.md §9, "Abnormal usage"): the thresholds of the
//! per-application detector in `crate::abuse`, and whether a security
//! event suspends the application. Every threshold set to 0 turns its
//! detection off. See `docs/abuse.md`.

use super::ConfigError;
use crate::abuse::Kind;
use serde::Deserialize;

/// `[abuse]`, with documented defaults.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AbuseSettings {
    /// Runs the detector at all (default `true`).
    pub enabled: bool,
    /// Denials of one application within `denial_window_secs` that raise a
    /// `denial_burst` (default 20; 0 = off; at most 10 000).
    pub denial_burst: u32,
    /// The denial window, seconds (default 60); also the least time
    /// between two `denial_burst` events of one application.
    pub denial_window_secs: u32,
    /// A caller address not seen for the application in this many days
    /// raises a `new_address` (default 30; 0 = off).
    pub new_address_days: u32,
    /// Addresses remembered per application; the least recently seen is
    /// forgotten beyond it (default 32, at most 1024).
    pub max_addresses_per_app: u32,
    /// Quota refusals (910501) that make a minute "exhausted" (default 10;
    /// 0 = off).
    pub quota_refusals_per_minute: u32,
    /// Consecutive exhausted minutes that raise a `quota_streak`
    /// (default 5).
    pub quota_streak_minutes: u32,
    /// Calls within one (local) clock hour outside working hours above
    /// which an `off_hours_surge` is raised (default 1000; 0 = off).
    pub off_hours_calls_per_hour: u32,
    /// Fixed offset of local time from UTC, minutes (default 60: Paris in
    /// winter; there is no time-zone database, set 120 for summer time).
    pub utc_offset_minutes: i32,
    /// First working hour, local time, 0–23 (default 8).
    pub work_start_hour: u8,
    /// End of working hours (exclusive), local time, 1–24 (default 19).
    pub work_end_hour: u8,
    /// Saturdays and Sundays are off hours all day (default `true`).
    pub weekends_off_hours: bool,
    /// Suspends the application when it raises one of `auto_suspend_kinds`
    /// (default `false`).
    pub auto_suspend: bool,
    /// The kinds that suspend under `auto_suspend` (default all four).
    pub auto_suspend_kinds: Vec<Kind>,
    /// Open events kept; beyond it the oldest is dropped (default 10 000).
    pub max_open_events: u32,
}

impl Default for AbuseSettings {
    fn default() -> Self {
        AbuseSettings {
            enabled: true,
            denial_burst: 20,
            denial_window_secs: 60,
            new_address_days: 30,
            max_addresses_per_app: 32,
            quota_refusals_per_minute: 10,
            quota_streak_minutes: 5,
            off_hours_calls_per_hour: 1000,
            utc_offset_minutes: 60,
            work_start_hour: 8,
            work_end_hour: 19,
            weekends_off_hours: true,
            auto_suspend: false,
            auto_suspend_kinds: Kind::ALL.to_vec(),
            max_open_events: 10_000,
        }
    }
}

impl AbuseSettings {
    /// Ranges that keep memory bounded and the clock arithmetic sane.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let ranges: [(&str, i64, std::ops::RangeInclusive<i64>); 8] = [
            ("denial_burst", self.denial_burst.into(), 0..=10_000),
            (
                "denial_window_secs",
                self.denial_window_secs.into(),
                1..=86_400,
            ),
            (
                "max_addresses_per_app",
                self.max_addresses_per_app.into(),
                1..=1024,
            ),
            (
                "quota_streak_minutes",
                self.quota_streak_minutes.into(),
                1..=1440,
            ),
            (
                "utc_offset_minutes",
                self.utc_offset_minutes.into(),
                -840..=840,
            ),
            ("work_start_hour", self.work_start_hour.into(), 0..=23),
            ("work_end_hour", self.work_end_hour.into(), 1..=24),
            (
                "max_open_events",
                self.max_open_events.into(),
                1..=1_000_000,
            ),
        ];
        for (key, value, range) in ranges {
            if !range.contains(&value) {
                return Err(invalid(
                    key,
                    format!("must be between {} and {}", range.start(), range.end()),
                ));
            }
        }
        if self.work_start_hour >= self.work_end_hour {
            return Err(invalid(
                "work_end_hour",
                "must be after work_start_hour".into(),
            ));
        }
        Ok(())
    }
}

fn invalid(key: &str, message: String) -> ConfigError {
    ConfigError::Invalid {
        key: format!("abuse.{key}"),
        message,
    }
}

#[cfg(test)]
mod tests {
    use crate::config::{Config, ConfigError};
    use std::path::Path;

    fn parse(text: &str) -> Result<Config, ConfigError> {
        Config::parse(text, Path::new("test.toml"))
    }

    #[test]
    fn defaults_keys_and_ranges() {
        let c = parse("").unwrap();
        assert!(!c.abuse.auto_suspend);
        assert_eq!((c.abuse.denial_burst, c.abuse.denial_window_secs), (20, 60));
        let c = parse("[abuse]\nauto_suspend = true\nauto_suspend_kinds = [\"denial_burst\"]\n")
            .unwrap();
        assert_eq!(
            c.abuse.auto_suspend_kinds,
            [crate::abuse::Kind::DenialBurst]
        );
        let err = parse("[abuse]\nwork_start_hour = 20\nwork_end_hour = 8\n").unwrap_err();
        assert!(err.to_string().contains("abuse.work_end_hour"), "{err}");
        let err = parse("[abuse]\nmax_addresses_per_app = 0\n").unwrap_err();
        assert!(
            err.to_string().contains("abuse.max_addresses_per_app"),
            "{err}"
        );
        let shipped = parse(include_str!("../../config/opale.toml")).unwrap();
        assert_eq!(shipped.abuse, super::AbuseSettings::default());
        let err = parse("[abuse]\nauto_suspend_kinds = [\"sometimes\"]\n").unwrap_err();
        assert!(
            err.to_string().contains("abuse.auto_suspend_kinds"),
            "{err}"
        );
    }
}
