//! One application's tallies and the four detections, as pure functions of
//! the call's time (unix seconds, passed in: the injected clock) so that
//! tests move time by hand. Every update is O(1) (the address book is a
//! linear scan of at most `max_addresses_per_app` entries); memory per
//! application is bounded by `denial_burst` timestamps and
//! `max_addresses_per_app` addresses (see `docs/abuse.md`).

use super::Kind;
use crate::config::AbuseSettings;
use std::collections::VecDeque;
use std::net::IpAddr;

/// What one call was, as the detector sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Served, or refused for a reason that is not the caller's doing
    /// (maintenance, upstream) or already handled (suspended).
    Neutral,
    /// Refused by a control: counts toward a denial burst.
    Denied,
    /// Refused at step 2 (address outside the allowlist): a denial, and
    /// the address is not learnt.
    OutsideAllowlist,
    /// Refused by the quota (910501).
    OverQuota,
}

/// One call of the application.
#[derive(Debug, Clone, Copy)]
pub struct Call {
    /// Arrival, unix seconds.
    pub at: i64,
    /// The caller's address (canonical).
    pub ip: IpAddr,
    /// How it ended.
    pub verdict: Verdict,
}

/// A threshold crossed, with the figure that crossed it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Alert {
    /// Which detection.
    pub kind: Kind,
    /// Denials in the window, exhausted minutes, or calls in the hour
    /// (1 for a new address).
    pub observed: u32,
}

/// A change to the application's persisted address book.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AddressChange {
    /// The address was seen on this day (unix days).
    Seen(IpAddr, i64),
    /// The address was forgotten (least recently seen, over the bound).
    Forgotten(IpAddr),
}

/// What a call raised; empty (no allocation) for nearly every call.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Findings {
    /// Thresholds crossed.
    pub alerts: Vec<Alert>,
    /// Address-book writes to persist.
    pub addresses: Vec<AddressChange>,
}

impl Findings {
    /// Nothing to do.
    pub fn is_empty(&self) -> bool {
        self.alerts.is_empty() && self.addresses.is_empty()
    }
}

/// Quota refusals per minute and the run of exhausted minutes.
#[derive(Debug, Default)]
struct Streak {
    minute: i64,
    refusals: u32,
    run: u32,
    last_exhausted: i64,
}

/// One application's tallies.
#[derive(Debug, Default)]
pub struct Tally {
    denials: VecDeque<i64>,
    burst_quiet_until: i64,
    streak: Streak,
    hour: i64,
    calls_in_hour: u32,
    surge_raised: bool,
    addresses: Vec<(IpAddr, i64)>,
}

const DAY: i64 = 86_400;

impl Tally {
    /// A tally that already knows these addresses (address, unix day last
    /// seen), as loaded from the store.
    pub fn with_addresses(addresses: Vec<(IpAddr, i64)>) -> Self {
        Tally {
            addresses,
            ..Tally::default()
        }
    }

    /// Adds the addresses another node learnt (as stored): each address
    /// kept with the later of the two days, at most `max`, the most
    /// recently seen.
    pub fn merge_addresses(&mut self, stored: &[(IpAddr, i64)], max: usize) {
        for &(ip, day) in stored {
            match self.addresses.iter_mut().find(|(known, _)| *known == ip) {
                Some(entry) => entry.1 = entry.1.max(day),
                None => self.addresses.push((ip, day)),
            }
        }
        self.addresses
            .sort_by_key(|&(_, day)| std::cmp::Reverse(day));
        self.addresses.truncate(max);
    }

    /// Counts `call` under `rules`; what it raised goes into `out`.
    pub fn record(&mut self, call: &Call, rules: &AbuseSettings, out: &mut Findings) {
        if matches!(call.verdict, Verdict::Denied | Verdict::OutsideAllowlist) {
            self.denial(call.at, rules, out);
        }
        if call.verdict == Verdict::OverQuota {
            self.quota_refusal(call.at, rules, out);
        }
        if call.verdict != Verdict::OutsideAllowlist {
            self.address(call, rules, out);
        }
        self.off_hours(call.at, rules, out);
    }

    /// ≥ `denial_burst` denials within `denial_window_secs`, then quiet for
    /// one window.
    fn denial(&mut self, at: i64, rules: &AbuseSettings, out: &mut Findings) {
        let (n, window) = (rules.denial_burst, i64::from(rules.denial_window_secs));
        if n == 0 {
            return;
        }
        self.denials.push_back(at);
        while self.denials.len() > n as usize
            || self.denials.front().is_some_and(|t| at - t >= window)
        {
            self.denials.pop_front();
        }
        if self.denials.len() >= n as usize && at >= self.burst_quiet_until {
            out.alerts.push(Alert {
                kind: Kind::DenialBurst,
                observed: n,
            });
            self.burst_quiet_until = at + window;
            self.denials.clear();
        }
    }

    /// `quota_streak_minutes` consecutive minutes each with at least
    /// `quota_refusals_per_minute` refusals; the run restarts once raised.
    fn quota_refusal(&mut self, at: i64, rules: &AbuseSettings, out: &mut Findings) {
        let k = rules.quota_refusals_per_minute;
        if k == 0 {
            return;
        }
        let s = &mut self.streak;
        let minute = at.div_euclid(60);
        if minute != s.minute {
            s.minute = minute;
            s.refusals = 0;
        }
        s.refusals += 1;
        if s.refusals != k {
            return;
        }
        s.run = if s.run > 0 && s.last_exhausted == minute - 1 {
            s.run + 1
        } else {
            1
        };
        s.last_exhausted = minute;
        if s.run >= rules.quota_streak_minutes {
            out.alerts.push(Alert {
                kind: Kind::QuotaStreak,
                observed: s.run,
            });
            s.run = 0;
        }
    }

    /// More than `off_hours_calls_per_hour` calls in one local clock hour
    /// outside working hours, once per hour.
    fn off_hours(&mut self, at: i64, rules: &AbuseSettings, out: &mut Findings) {
        let x = rules.off_hours_calls_per_hour;
        if x == 0 || !is_off_hours(at, rules) {
            return;
        }
        let hour = local(at, rules).div_euclid(3600);
        if hour != self.hour {
            self.hour = hour;
            self.calls_in_hour = 0;
            self.surge_raised = false;
        }
        self.calls_in_hour = self.calls_in_hour.saturating_add(1);
        if self.calls_in_hour > x && !self.surge_raised {
            self.surge_raised = true;
            out.alerts.push(Alert {
                kind: Kind::OffHoursSurge,
                observed: self.calls_in_hour,
            });
        }
    }

    /// An address not seen in `new_address_days` (the application's very
    /// first address is learnt silently); the book keeps at most
    /// `max_addresses_per_app`, forgetting the least recently seen.
    fn address(&mut self, call: &Call, rules: &AbuseSettings, out: &mut Findings) {
        let days = i64::from(rules.new_address_days);
        if days == 0 {
            return;
        }
        let today = call.at.div_euclid(DAY);
        if let Some(entry) = self.addresses.iter_mut().find(|(ip, _)| *ip == call.ip) {
            if entry.1 == today {
                return;
            }
            if today - entry.1 > days {
                out.alerts.push(new_address());
            }
            entry.1 = today;
            out.addresses.push(AddressChange::Seen(call.ip, today));
            return;
        }
        if !self.addresses.is_empty() {
            out.alerts.push(new_address());
        }
        self.addresses.push((call.ip, today));
        out.addresses.push(AddressChange::Seen(call.ip, today));
        if self.addresses.len() > rules.max_addresses_per_app as usize
            && let Some(oldest) = (0..self.addresses.len()).min_by_key(|&i| self.addresses[i].1)
        {
            let (ip, _) = self.addresses.swap_remove(oldest);
            out.addresses.push(AddressChange::Forgotten(ip));
        }
    }
}

fn new_address() -> Alert {
    Alert {
        kind: Kind::NewAddress,
        observed: 1,
    }
}

/// Unix seconds shifted to local time (`utc_offset_minutes`).
fn local(at: i64, rules: &AbuseSettings) -> i64 {
    at + i64::from(rules.utc_offset_minutes) * 60
}

/// Whether `at` falls outside working hours in local time.
pub fn is_off_hours(at: i64, rules: &AbuseSettings) -> bool {
    let local = local(at, rules);
    let hour = local.rem_euclid(DAY) / 3600;
    // 1970-01-01 was a Thursday: day 0 → weekday 3 (Monday = 0).
    let weekday = (local.div_euclid(DAY) + 3).rem_euclid(7);
    let weekend = rules.weekends_off_hours && weekday >= 5;
    weekend || hour < i64::from(rules.work_start_hour) || hour >= i64::from(rules.work_end_hour)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    /// Monday 2026-11-30 12:00 UTC (13:00 in Paris, winter).
    const MONDAY_NOON: i64 = 1_796_040_000;

    fn rules() -> AbuseSettings {
        AbuseSettings {
            denial_burst: 3,
            denial_window_secs: 60,
            quota_refusals_per_minute: 2,
            quota_streak_minutes: 3,
            off_hours_calls_per_hour: 4,
            max_addresses_per_app: 2,
            new_address_days: 30,
            ..AbuseSettings::default()
        }
    }

    fn ip(last: u8) -> IpAddr {
        IpAddr::V4(Ipv4Addr::new(127, 0, 0, last))
    }

    /// Records a call and returns the kinds it raised.
    fn call(t: &mut Tally, at: i64, last: u8, verdict: Verdict) -> Vec<Kind> {
        let mut out = Findings::default();
        let c = Call {
            at,
            ip: ip(last),
            verdict,
        };
        t.record(&c, &rules(), &mut out);
        out.alerts.iter().map(|a| a.kind).collect()
    }

    #[test]
    fn the_clock_constant_is_a_monday_noon() {
        let t = time::OffsetDateTime::from_unix_timestamp(MONDAY_NOON).unwrap();
        assert_eq!(t.weekday(), time::Weekday::Monday);
        assert_eq!(t.hour(), 12);
    }

    #[test]
    fn a_burst_is_n_denials_inside_the_window_and_fires_once_per_window() {
        let mut t = Tally::default();
        let at = MONDAY_NOON;
        call(&mut t, at, 1, Verdict::Neutral);
        assert!(call(&mut t, at, 1, Verdict::Denied).is_empty());
        assert!(call(&mut t, at + 30, 1, Verdict::Denied).is_empty());
        // The first denial left the window: still two.
        assert!(call(&mut t, at + 61, 1, Verdict::Denied).is_empty());
        assert_eq!(
            call(&mut t, at + 62, 1, Verdict::OutsideAllowlist),
            [Kind::DenialBurst]
        );
        // Quiet for one window, however many denials come.
        for s in 63..122 {
            assert!(call(&mut t, at + s, 1, Verdict::Denied).is_empty(), "{s}");
        }
        assert_eq!(
            call(&mut t, at + 122, 1, Verdict::Denied),
            [Kind::DenialBurst]
        );
        // Served calls never count.
        let mut quiet = Tally::default();
        for s in 0..100 {
            assert!(call(&mut quiet, at + s, 1, Verdict::Neutral).is_empty());
        }
    }

    #[test]
    fn a_quota_streak_needs_consecutive_exhausted_minutes() {
        let mut t = Tally::default();
        let m = MONDAY_NOON; // a minute boundary
        let refuse = |t: &mut Tally, at| call(t, at, 1, Verdict::OverQuota);
        refuse(&mut t, m);
        refuse(&mut t, m + 1); // minute 0 exhausted (run 1)
        refuse(&mut t, m + 60);
        refuse(&mut t, m + 61); // minute 1 (run 2)
        refuse(&mut t, m + 180);
        assert!(
            refuse(&mut t, m + 181).is_empty(),
            "minute 2 was missed: run 1"
        );
        refuse(&mut t, m + 240);
        refuse(&mut t, m + 241); // run 2
        refuse(&mut t, m + 300);
        assert_eq!(refuse(&mut t, m + 301), [Kind::QuotaStreak]);
        // Raised: the next one needs three more minutes.
        assert!(refuse(&mut t, m + 302).is_empty());
        for minute in 6..8 {
            refuse(&mut t, m + minute * 60);
            assert!(refuse(&mut t, m + minute * 60 + 1).is_empty());
        }
        refuse(&mut t, m + 480);
        assert_eq!(refuse(&mut t, m + 481), [Kind::QuotaStreak]);
    }

    #[test]
    fn off_hours_follow_the_configured_offset_and_weekends() {
        let r = rules();
        // 12:00 UTC on a Monday is 13:00 in Paris: working hours.
        assert!(!is_off_hours(MONDAY_NOON, &r));
        // 18:30 UTC is 19:30 local: off hours; 06:30 UTC is 07:30: off.
        assert!(is_off_hours(MONDAY_NOON + 6 * 3600 + 1800, &r));
        assert!(is_off_hours(MONDAY_NOON - 5 * 3600 - 1800, &r));
        // 07:00 UTC is 08:00 local: working.
        assert!(!is_off_hours(MONDAY_NOON - 5 * 3600, &r));
        // Saturday noon.
        assert!(is_off_hours(MONDAY_NOON + 5 * DAY, &r));
        let weekdays_only = AbuseSettings {
            weekends_off_hours: false,
            ..r
        };
        assert!(!is_off_hours(MONDAY_NOON + 5 * DAY, &weekdays_only));
    }

    #[test]
    fn an_off_hours_surge_fires_once_per_hour() {
        let mut t = Tally::default();
        let night = MONDAY_NOON + 10 * 3600; // 23:00 local
        for s in 0..4 {
            assert!(call(&mut t, night + s, 1, Verdict::Neutral).is_empty());
        }
        assert_eq!(
            call(&mut t, night + 5, 1, Verdict::Neutral),
            [Kind::OffHoursSurge]
        );
        assert!(call(&mut t, night + 6, 1, Verdict::Neutral).is_empty());
        // The next local hour counts afresh; refused calls count too.
        for s in 0..4 {
            assert!(call(&mut t, night + 3600 + s, 1, Verdict::OverQuota).is_empty());
        }
        assert_eq!(
            call(&mut t, night + 3605, 1, Verdict::Neutral),
            [Kind::OffHoursSurge]
        );
        // The same volume in working hours raises nothing.
        let mut day = Tally::default();
        for s in 0..50 {
            assert!(call(&mut day, MONDAY_NOON + s, 1, Verdict::Neutral).is_empty());
        }
    }

    #[test]
    fn new_addresses_are_judged_against_the_last_days_and_the_book_is_bounded() {
        let mut t = Tally::default();
        let mut out = Findings::default();
        let first = Call {
            at: MONDAY_NOON,
            ip: ip(1),
            verdict: Verdict::Neutral,
        };
        t.record(&first, &rules(), &mut out);
        let today = MONDAY_NOON.div_euclid(DAY);
        assert_eq!(out.alerts, []);
        assert_eq!(out.addresses, [AddressChange::Seen(ip(1), today)]);
        // Same address, same day: nothing at all (no write).
        assert_eq!(call(&mut t, MONDAY_NOON + 5, 1, Verdict::Neutral), []);
        assert_eq!(
            call(&mut t, MONDAY_NOON + 6, 2, Verdict::Neutral),
            [Kind::NewAddress]
        );
        assert_eq!(call(&mut t, MONDAY_NOON + 7, 2, Verdict::Denied), []);
        // Refused at the allowlist: not learnt, not an address event.
        assert_eq!(
            call(&mut t, MONDAY_NOON + 8, 9, Verdict::OutsideAllowlist),
            []
        );
        // 31 days later, address 1 is new again.
        let later = MONDAY_NOON + 31 * DAY;
        assert_eq!(call(&mut t, later, 1, Verdict::Neutral), [Kind::NewAddress]);
        // A third address evicts the least recently seen (2).
        let mut out = Findings::default();
        let third = Call {
            at: later,
            ip: ip(3),
            verdict: Verdict::Neutral,
        };
        t.record(&third, &rules(), &mut out);
        assert!(out.addresses.contains(&AddressChange::Forgotten(ip(2))));
        assert_eq!(t.addresses.len(), 2);
    }

    /// Another node's addresses (docs/contract.md §10) join the book: the
    /// later day wins, the most recent `max` stay, and an address learnt
    /// here is kept even when the store does not have it yet.
    #[test]
    fn stored_addresses_merge_into_the_book() {
        let mut t = Tally::with_addresses(vec![(ip(1), 10), (ip(2), 12)]);
        t.merge_addresses(&[(ip(1), 15), (ip(3), 11)], 3);
        assert_eq!(t.addresses, [(ip(1), 15), (ip(2), 12), (ip(3), 11)]);
        t.merge_addresses(&[(ip(4), 20), (ip(2), 5)], 2);
        assert_eq!(t.addresses, [(ip(4), 20), (ip(1), 15)]);
    }
}
