//! The time of a record: a [`time::OffsetDateTime`] in memory, written as
//! the fixed-width UTC text `2026-11-23T20:17:15.929Z` (milliseconds,
//! `Z`). Fixed width so that comparing the texts compares the times; the
//! `from`/`to` filters and the purge cutoff are cut to the same precision,
//! so comparing the values compares what is written.

use serde::de::{self, Deserializer, Visitor};
use serde::ser::{self, Serializer};
use std::fmt;
use time::format_description::BorrowedFormatItem;
use time::format_description::well_known::Rfc3339;
use time::{OffsetDateTime, UtcOffset};

/// `[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z`.
const FORMAT: &[BorrowedFormatItem<'static>] = time::macros::format_description!(
    "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z"
);

/// Longest written form: 24 bytes while years have four digits.
const MAX_LEN: usize = 32;

/// The fixed-width UTC text of `t` (`2026-11-23T20:17:15.929Z`).
pub fn timestamp(t: OffsetDateTime) -> String {
    let mut buf = [0; MAX_LEN];
    written(t, &mut buf).unwrap_or_default().to_owned()
}

/// `t` in UTC, cut to the millisecond: the value a record holds, equal to
/// what reading its written form back gives.
pub fn millis(t: OffsetDateTime) -> OffsetDateTime {
    let utc = t.to_offset(UtcOffset::UTC);
    utc.replace_millisecond(utc.millisecond()).unwrap_or(utc)
}

/// An RFC 3339 time (any offset, any precision), in UTC cut to the
/// millisecond (as [`millis`]); `None` if it is not one.
pub fn parse_time(rfc3339: &str) -> Option<OffsetDateTime> {
    OffsetDateTime::parse(rfc3339, &Rfc3339).ok().map(millis)
}

/// Formats `t` into `buf`, without allocating.
fn written(t: OffsetDateTime, buf: &mut [u8; MAX_LEN]) -> Option<&str> {
    let mut out: &mut [u8] = buf;
    let len = t
        .to_offset(UtcOffset::UTC)
        .format_into(&mut out, FORMAT)
        .ok()?;
    std::str::from_utf8(buf.get(..len)?).ok()
}

/// Serde of a record's time: written as [`timestamp`] (no allocation), read
/// from any RFC 3339 text (records have always been written in the fixed
/// form, which is one).
pub mod text {
    use super::*;

    /// Writes `t` as [`timestamp`] does.
    pub fn serialize<S: Serializer>(t: &OffsetDateTime, s: S) -> Result<S::Ok, S::Error> {
        let mut buf = [0; MAX_LEN];
        let text = written(*t, &mut buf)
            .ok_or_else(|| ser::Error::custom(format!("{t} cannot be written as a timestamp")))?;
        s.serialize_str(text)
    }

    /// Reads an RFC 3339 time, cut to the millisecond.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<OffsetDateTime, D::Error> {
        d.deserialize_str(TimeVisitor)
    }

    struct TimeVisitor;

    impl Visitor<'_> for TimeVisitor {
        type Value = OffsetDateTime;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("an RFC 3339 time")
        }

        fn visit_str<E: de::Error>(self, v: &str) -> Result<OffsetDateTime, E> {
            parse_time(v).ok_or_else(|| E::custom(format!("not an RFC 3339 time: {v:?}")))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stamp(text: &str) -> String {
        timestamp(parse_time(text).unwrap())
    }

    #[test]
    fn timestamps_are_fixed_width_so_strings_order_like_times() {
        let a = stamp("2026-11-23T20:17:15Z");
        let b = stamp("2026-11-23T20:17:15.5+00:00");
        let c = stamp("2026-11-23T21:17:15.123456789+01:00");
        assert_eq!(a, "2026-11-23T20:17:15.000Z");
        assert_eq!(c, "2026-11-23T20:17:15.123Z");
        assert!(a < c && c < b);
        assert_eq!(parse_time("yesterday"), None);
        assert_eq!(
            stamp("0999-01-02T03:04:05.006Z"),
            "0999-01-02T03:04:05.006Z"
        );
    }

    #[test]
    fn a_record_time_is_cut_to_what_is_written() {
        let t = OffsetDateTime::parse("2026-12-07T03:59:09.891999+01:00", &Rfc3339).unwrap();
        let held = millis(t);
        assert_eq!(held.offset(), UtcOffset::UTC);
        assert_eq!(timestamp(held), "2026-12-07T02:59:09.891Z");
        assert_eq!(parse_time(&timestamp(held)), Some(held));
    }
}
