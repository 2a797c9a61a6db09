//! Values of the admin API's request bodies that arrive as text and are
//! typed at the JSON edge: a calendar day (`YYYY-MM-DD`) and a CIDR block.
//! Both read surrounding spaces away and refuse anything else with a
//! message that quotes the value, so the API's 400 (and the command line,
//! which parses its arguments into the same types) names what was wrong.

use ipnetwork::IpNetwork;
use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;
use std::str::FromStr;
use time::Date;

/// A value of a request body that does not read as its type.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct WireError(String);

/// A calendar day, written `YYYY-MM-DD`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Day(pub Date);

const DAY: &[time::format_description::BorrowedFormatItem<'static>] =
    time::macros::format_description!("[year]-[month]-[day]");

impl FromStr for Day {
    type Err = WireError;

    fn from_str(text: &str) -> Result<Self, WireError> {
        let value = text.trim();
        if value.is_empty() {
            return Err(WireError("must not be empty (YYYY-MM-DD)".into()));
        }
        Date::parse(value, DAY)
            .map(Day)
            .map_err(|e| WireError(format!("{text:?} is not a YYYY-MM-DD date: {e}")))
    }
}

impl fmt::Display for Day {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0.format(DAY) {
            Ok(text) => f.write_str(&text),
            Err(_) => Err(fmt::Error),
        }
    }
}

/// An IPv4 or IPv6 network, written `address/prefix` (a bare address is
/// its host network).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr(pub IpNetwork);

impl FromStr for Cidr {
    type Err = WireError;

    fn from_str(text: &str) -> Result<Self, WireError> {
        text.trim()
            .parse::<IpNetwork>()
            .map(Cidr)
            .map_err(|e| WireError(format!("{text:?} is not a CIDR block: {e}")))
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// Serializes through `Display` and reads through `FromStr`.
macro_rules! serde_as_text {
    ($ty:ty) => {
        impl Serialize for $ty {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.collect_str(self)
            }
        }

        impl<'de> Deserialize<'de> for $ty {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let text = std::borrow::Cow::<str>::deserialize(d)?;
                text.parse().map_err(D::Error::custom)
            }
        }
    };
}

serde_as_text!(Day);
serde_as_text!(Cidr);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_day_reads_trimmed_and_writes_back_the_same() {
        let day: Day = serde_json::from_str("\" 2026-12-07 \"").unwrap();
        assert_eq!(day.0, time::macros::date!(2026 - 12 - 07));
        assert_eq!(serde_json::to_string(&day).unwrap(), "\"2026-12-07\"");
    }

    #[test]
    fn a_bad_day_is_refused_quoting_it() {
        let e = serde_json::from_str::<Day>("\"2026-13-01\"").unwrap_err();
        assert!(
            e.to_string()
                .contains("\"2026-13-01\" is not a YYYY-MM-DD date"),
            "{e}"
        );
        let e = serde_json::from_str::<Day>("\"  \"").unwrap_err();
        assert!(e.to_string().contains("must not be empty"), "{e}");
        assert!(serde_json::from_str::<Day>("20261207").is_err());
    }

    #[test]
    fn a_cidr_reads_trimmed_and_a_bad_one_is_quoted() {
        let c: Cidr = serde_json::from_str("\" 10.0.0.0/8 \"").unwrap();
        assert_eq!(c.to_string(), "10.0.0.0/8");
        assert_eq!(serde_json::to_string(&c).unwrap(), "\"10.0.0.0/8\"");
        let v6: Cidr = "2001:db8::/64".parse().unwrap();
        assert!(v6.0.is_ipv6());
        let e = "10.0.0.0/33".parse::<Cidr>().unwrap_err();
        assert!(
            e.to_string()
                .starts_with("\"10.0.0.0/33\" is not a CIDR block"),
            "{e}"
        );
        assert!("localhost".parse::<Cidr>().is_err());
    }
}
