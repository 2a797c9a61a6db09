//! Evidence from callers who never identify themselves, bounded
//! (docs/contract.md §8). A request refused before an application (or an
//! admin, or DataPass) is identified is traced one by one up to
//! `[limits] unauthenticated_traced_per_minute` per source address and
//! minute; past that its listener, code and status are only counted, and
//! one summary record per address and minute is appended when the minute
//! is over (by [`Unidentified::finished`], called every second). Requests
//! on connections without a verified client certificate are answered 429
//! once the address's refusals this minute pass
//! `unauthenticated_per_minute` ([`Unidentified::over_limit`]). Admitted
//! requests never come here: nothing admitted is summarised.
//!
//! A source is an IPv4 address or an IPv6 /64 (one host holds a whole
//! /64). The table holds at most [`MAX_SOURCES`] sources a minute; sources
//! past that share one row, so memory stays bounded whatever the number of
//! addresses an attacker has.

use super::{ActionKind, Actor, Address, Summary, TraceEvent};
use crate::config::LimitsSettings;
use crate::domain::Plane;
use arc_swap::ArcSwap;
use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::sync::{Mutex, PoisonError};

/// Sources tracked one by one in a minute; the rest share one row.
pub const MAX_SOURCES: usize = 50_000;

/// What to do with the record of a refused, unidentified request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Treatment {
    /// Append it as usual.
    Trace,
    /// Counted in its source's summary of the minute: append nothing now.
    Summarised,
}

/// Where unidentified refusals come from: an IPv4 address, an IPv6 /64, or
/// every source past [`MAX_SOURCES`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Source {
    /// One IPv4 address.
    V4([u8; 4]),
    /// One IPv6 /64 (the first 8 bytes).
    V6([u8; 8]),
    /// Sources past the table's capacity.
    Others,
}

impl Source {
    /// The source of `ip` (IPv4-mapped IPv6 counts as IPv4).
    pub fn of(ip: IpAddr) -> Source {
        match ip.to_canonical() {
            IpAddr::V4(v4) => Source::V4(v4.octets()),
            IpAddr::V6(v6) => {
                let mut prefix = [0; 8];
                prefix.copy_from_slice(&v6.octets()[..8]);
                Source::V6(prefix)
            }
        }
    }
}

impl std::fmt::Display for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Source::V4(o) => write!(f, "{}", std::net::Ipv4Addr::from(*o)),
            Source::V6(p) => {
                let mut full = [0; 16];
                full[..8].copy_from_slice(p);
                write!(f, "{}/64", std::net::Ipv6Addr::from(full))
            }
            Source::Others => f.write_str("*"),
        }
    }
}

/// One source's refusals in one minute on one listener.
#[derive(Debug, Default)]
struct Tally {
    /// Refusals counted, traced or not.
    refused: u64,
    /// Those appended one by one.
    traced: u64,
    /// The summarised ones by code (`"910100"`, `"invalid_client"`, `"401"`).
    codes: BTreeMap<String, u64>,
    /// The summarised ones by HTTP status.
    statuses: BTreeMap<u16, u64>,
}

#[derive(Debug, Default)]
struct Minute {
    /// Minutes since the Unix epoch.
    at: i64,
    tallies: HashMap<(Plane, Source), Tally>,
    /// Refusals per source, all listeners (the 429 threshold).
    per_source: HashMap<Source, u64>,
}

/// The per-minute tallies of unidentified refusals.
#[derive(Debug)]
pub struct Unidentified {
    minutes: Mutex<Vec<Minute>>,
    limits: ArcSwap<Thresholds>,
}

/// The thresholds of `[limits]` (they reload).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Thresholds {
    /// Traced one by one per source and minute.
    pub traced: u64,
    /// Answered 429 beyond this many refusals per source and minute.
    pub refused: u64,
}

impl Thresholds {
    /// The thresholds of `limits`.
    pub fn of(limits: &LimitsSettings) -> Self {
        Thresholds {
            traced: u64::from(limits.unauthenticated_traced_per_minute),
            refused: u64::from(limits.unauthenticated_per_minute),
        }
    }
}

/// Minutes since the Unix epoch, now.
pub fn this_minute() -> i64 {
    time::OffsetDateTime::now_utc()
        .unix_timestamp()
        .div_euclid(60)
}

impl Unidentified {
    /// Empty tallies with `limits`.
    pub fn new(limits: Thresholds) -> Self {
        Unidentified {
            minutes: Mutex::default(),
            limits: ArcSwap::from_pointee(limits),
        }
    }

    /// New thresholds after a reload of `[limits]`.
    pub fn set_limits(&self, limits: Thresholds) {
        self.limits.store(std::sync::Arc::new(limits));
    }

    /// Counts the refused, unidentified request `event` made at `minute`
    /// (minutes since the epoch) and says whether to trace it.
    pub fn count(&self, event: &TraceEvent, minute: i64) -> Treatment {
        let limits = **self.limits.load();
        let source = match event.ip {
            Some(Address::Ip(ip)) => Source::of(ip),
            _ => Source::Others,
        };
        let mut minutes = self.lock();
        let current = current(&mut minutes, minute);
        let key = (event.plane, source);
        let key = if current.tallies.len() >= MAX_SOURCES && !current.tallies.contains_key(&key) {
            (event.plane, Source::Others)
        } else {
            key
        };
        *current.per_source.entry(key.1).or_default() += 1;
        let tally = current.tallies.entry(key).or_default();
        tally.refused += 1;
        if tally.refused <= limits.traced && key.1 != Source::Others {
            tally.traced += 1;
            return Treatment::Trace;
        }
        let code = event
            .code
            .as_ref()
            .map(|c| c.to_string())
            .unwrap_or_default();
        *tally.codes.entry(code).or_default() += 1;
        *tally.statuses.entry(event.status).or_default() += 1;
        Treatment::Summarised
    }

    /// Whether `ip` was refused more than `limits.refused` times in `minute`.
    pub fn over_limit(&self, ip: IpAddr, minute: i64) -> bool {
        let limits = **self.limits.load();
        let minutes = self.lock();
        let Some(m) = minutes.iter().find(|m| m.at == minute) else {
            return false;
        };
        let source = Source::of(ip);
        let source = if m.per_source.contains_key(&source) || m.tallies.len() < MAX_SOURCES {
            source
        } else {
            Source::Others
        };
        m.per_source
            .get(&source)
            .is_some_and(|n| *n >= limits.refused)
    }

    /// The summary records (actions of node `node`) of the minutes before
    /// `minute`, which are then forgotten (sources that were only traced
    /// one by one give none).
    pub fn finished(&self, minute: i64, node: &str) -> Vec<TraceEvent> {
        let mut minutes = self.lock();
        let (done, open): (Vec<_>, Vec<_>) = minutes.drain(..).partition(|m| m.at < minute);
        *minutes = open;
        let mut records = Vec::new();
        for m in done {
            let mut rows: Vec<_> = m.tallies.into_iter().collect();
            rows.sort_by_key(|((plane, source), _)| (plane.as_str(), *source));
            for ((plane, source), tally) in rows {
                if tally.refused > tally.traced {
                    records.push(summary_record((plane, source), m.at, tally, node));
                }
            }
        }
        records
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Minute>> {
        self.minutes.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The tallies of `minute`, created if needed (a late request of the
/// previous minute still finds its own).
fn current(minutes: &mut Vec<Minute>, minute: i64) -> &mut Minute {
    let i = match minutes.iter().position(|m| m.at == minute) {
        Some(i) => i,
        None => {
            minutes.push(Minute {
                at: minute,
                ..Minute::default()
            });
            minutes.len() - 1
        }
    };
    &mut minutes[i]
}

/// One record for a source's summarised refusals in one minute.
fn summary_record(
    (plane, source): (Plane, Source),
    minute: i64,
    tally: Tally,
    node: &str,
) -> TraceEvent {
    let start = time::OffsetDateTime::from_unix_timestamp(minute * 60)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    let summarised = tally.refused - tally.traced;
    let actor = Actor::Node {
        id: node.to_owned(),
    };
    let kind = ActionKind::RefusalsSummarised;
    let mut event = TraceEvent::system(start, actor, kind, source.to_string());
    event.plane = plane;
    event.ip = Some(Address::from(source));
    event.decision = super::Decision::Denied;
    event.detail = Some(format!(
        "{summarised} more requests refused before identification in this minute, summarised \
         ({} traced one by one before them)",
        tally.traced
    ));
    event.summary = Some(Summary {
        minute: event.at,
        refused: tally.refused,
        summarised,
        codes: tally.codes,
        statuses: tally.statuses,
    });
    event
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::Code;
    use crate::chain::{Denial, Reason};
    use crate::domain::Environment;

    const LIMITS: Thresholds = Thresholds {
        traced: 3,
        refused: 5,
    };

    fn refused(ip: &str, reason: Reason) -> TraceEvent {
        let (plane, at) = (
            Plane::Env(Environment::Sandbox),
            time::OffsetDateTime::UNIX_EPOCH,
        );
        let mut e = TraceEvent::arriving(plane, at, &hyper::Method::GET, "/x");
        e.ip = Address::parse(ip);
        e.refuse(&Denial::new(reason, "no"));
        e.status = reason.status().as_u16();
        e
    }

    #[test]
    fn past_the_traced_count_refusals_are_summarised_per_source_and_minute() {
        let u = Unidentified::new(LIMITS);
        let a = refused("192.0.2.1", Reason::CertMissing);
        let treatments: Vec<_> = (0..5).map(|_| u.count(&a, 100)).collect();
        assert_eq!(&treatments[..3], &[Treatment::Trace; 3]);
        assert_eq!(&treatments[3..], &[Treatment::Summarised; 2]);
        let other = refused("192.0.2.2", Reason::CertMissing);
        assert_eq!(u.count(&other, 100), Treatment::Trace, "per address");
        assert_eq!(u.count(&a, 101), Treatment::Trace, "per minute");
        assert!(u.finished(100, "n").is_empty(), "minute 100 is not over");
        let records = u.finished(101, "n");
        assert_eq!(records.len(), 1, "only the summarised source of minute 100");
        let s = records[0].summary.as_ref().unwrap();
        assert_eq!((s.refused, s.summarised), (5, 2));
        assert_eq!(s.codes.get("910100"), Some(&2));
        assert_eq!(s.statuses.get(&401), Some(&2));
        assert_eq!(records[0].ip, Address::parse("192.0.2.1"));
        assert_eq!(
            crate::audit::timestamp(records[0].at),
            "1970-01-01T01:40:00.000Z"
        );
        assert!(u.finished(101, "n").is_empty(), "written once");
    }

    #[test]
    fn the_refusal_limit_is_per_source_across_listeners() {
        let u = Unidentified::new(LIMITS);
        let ip: IpAddr = "192.0.2.9".parse().unwrap();
        let mut admin = refused("192.0.2.9", Reason::CertMissing);
        admin.plane = Plane::Admin;
        admin.code = Some(Code::Status(401));
        for _ in 0..4 {
            u.count(&refused("192.0.2.9", Reason::CertMissing), 7);
        }
        assert!(!u.over_limit(ip, 7));
        u.count(&admin, 7);
        assert!(u.over_limit(ip, 7), "5 refusals over two listeners");
        assert!(!u.over_limit(ip, 8), "a new minute starts afresh");
        assert!(!u.over_limit("192.0.2.10".parse().unwrap(), 7));
    }

    #[test]
    fn an_ipv6_host_is_one_source_per_64() {
        let a = Source::of("2001:db8:1:2::1".parse().unwrap());
        let b = Source::of("2001:db8:1:2:ffff::9".parse().unwrap());
        let c = Source::of("2001:db8:1:3::1".parse().unwrap());
        assert_eq!(a, b);
        assert_ne!(a, c);
        assert_eq!(a.to_string(), "2001:db8:1:2::/64");
        let mapped = Source::of("::ffff:192.0.2.1".parse().unwrap());
        assert_eq!(mapped, Source::of("192.0.2.1".parse().unwrap()));
    }

    #[test]
    fn sources_past_the_capacity_share_one_summarised_row() {
        let u = Unidentified::new(LIMITS);
        for i in 0..MAX_SOURCES as u32 {
            let ip = std::net::Ipv4Addr::from(0x0a00_0000 + i).to_string();
            u.count(&refused(&ip, Reason::CertMissing), 1);
        }
        let late = refused("198.51.100.1", Reason::CertMissing);
        assert_eq!(u.count(&late, 1), Treatment::Summarised);
        let records = u.finished(2, "n");
        assert_eq!(records.len(), 1);
        assert_eq!(records[0].ip, Some(Address::Others));
    }
}
