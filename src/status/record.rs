//! What one node saw of one component over one local day, as it is kept:
//! two bitmaps over the day's minutes (seen up, seen down), one record per
//! component, local day and node under `minutes/{component}/{date}/{node}`
//! (about 400 bytes a day). A minute is up for the gateway if any node saw
//! it up ([`union`]): in a cluster each node writes only its own records,
//! and the reading side unions them, so no write ever races another node's.

use super::day::Seen;
use crate::domain::Environment;
use crate::store::{Pairs, Store, StoreError, Write};
use base64::Engine;
use base64::engine::general_purpose::STANDARD_NO_PAD as B64;
use jiff::civil::Date;
use serde::{Deserialize, Serialize};

/// The prefix of every minute record.
pub const PREFIX: &str = "minutes/";

/// One node's minutes of one component and local day.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DayRecord {
    /// Minutes in the day (1380, 1440 or 1500).
    pub minutes: u32,
    /// Bit `i` set: the node saw minute `i` up (base64, no padding).
    #[serde(with = "bits")]
    pub up: Vec<u8>,
    /// Bit `i` set: the node saw minute `i` down.
    #[serde(with = "bits")]
    pub down: Vec<u8>,
}

impl DayRecord {
    /// A day with no minute seen yet.
    pub fn new(minutes: usize) -> Self {
        let bytes = minutes.div_ceil(8);
        DayRecord {
            minutes: minutes as u32,
            up: vec![0; bytes],
            down: vec![0; bytes],
        }
    }

    /// Notes what the node saw of minute `i` (ignored past the day's end).
    /// A minute seen down stays down even if marked up later.
    pub fn mark(&mut self, i: usize, up: bool) {
        if i >= self.minutes as usize {
            return;
        }
        let (byte, bit) = (i / 8, 1u8 << (i % 8));
        let (set, clear) = match up {
            true if self.down.get(byte).is_some_and(|b| b & bit != 0) => return,
            true => (&mut self.up, &mut self.down),
            false => (&mut self.down, &mut self.up),
        };
        if let (Some(s), Some(c)) = (set.get_mut(byte), clear.get_mut(byte)) {
            *s |= bit;
            *c &= !bit;
        }
    }

    /// What the node saw of minute `i`: `Some(true)` up, `Some(false)`
    /// down, `None` nothing.
    pub fn get(&self, i: usize) -> Option<bool> {
        let (byte, bit) = (i / 8, 1u8 << (i % 8));
        let is = |v: &[u8]| v.get(byte).is_some_and(|b| b & bit != 0);
        match (is(&self.up), is(&self.down)) {
            (true, _) => Some(true),
            (false, true) => Some(false),
            (false, false) => None,
        }
    }
}

/// The minutes of a day as the gateway saw them: up if any node saw the
/// minute up, down if a node saw it down and none up, unobserved if none
/// saw it (the caller turns unobserved minutes outside the measured span
/// into unmeasured ones).
pub fn union(minutes: usize, records: &[DayRecord]) -> Vec<Seen> {
    (0..minutes)
        .map(|i| {
            let seen: Vec<_> = records.iter().filter_map(|r| r.get(i)).collect();
            match (seen.contains(&true), seen.is_empty()) {
                (true, _) => Seen::Up,
                (false, false) => Seen::Down,
                (false, true) => Seen::Unobserved,
            }
        })
        .collect()
}

/// The key of `node`'s record of `env` on `date`.
pub fn key(env: Environment, date: Date, node: &str) -> Vec<u8> {
    format!("{PREFIX}{env}/{date}/{node}").into_bytes()
}

/// The write that stores `record`.
pub fn put(
    env: Environment,
    date: Date,
    node: &str,
    record: &DayRecord,
) -> Result<Write, StoreError> {
    let value =
        serde_json::to_vec(record).map_err(|e| StoreError::backend_in("minute record", e))?;
    Ok(Write::Put(key(env, date, node), value))
}

/// Every node's record of `env` from `first` to `last` (local dates,
/// inclusive), by date, with the node that wrote each. A record that does
/// not read is skipped (and logged): one bad record must not hide a
/// status page.
pub async fn load(
    store: &dyn Store,
    env: Environment,
    (first, last): (Date, Date),
) -> Result<Vec<(Date, String, DayRecord)>, StoreError> {
    let start = format!("{PREFIX}{env}/{first}/");
    let end = format!("{PREFIX}{env}/{last}0");
    let pairs = store
        .range(start.as_bytes(), end.as_bytes(), false, usize::MAX)
        .await?;
    Ok(parse(&pairs))
}

/// The records of `pairs`, with their date and node.
fn parse(pairs: &Pairs) -> Vec<(Date, String, DayRecord)> {
    let mut out = Vec::with_capacity(pairs.len());
    for (k, v) in pairs {
        let key = String::from_utf8_lossy(k);
        let mut parts = key.trim_start_matches(PREFIX).splitn(3, '/').skip(1);
        let (Some(date), Some(node)) = (parts.next(), parts.next()) else {
            continue;
        };
        match (date.parse::<Date>(), serde_json::from_slice::<DayRecord>(v)) {
            (Ok(date), Ok(record)) => out.push((date, node.to_owned(), record)),
            _ => tracing::warn!(key = %key, "unreadable minute record skipped"),
        }
    }
    out
}

/// The deletes of every record dated before `cutoff` (retention).
pub async fn expired(
    store: &dyn Store,
    env: Environment,
    cutoff: Date,
) -> Result<Vec<Write>, StoreError> {
    let start = format!("{PREFIX}{env}/");
    let end = format!("{PREFIX}{env}/{cutoff}");
    let pairs = store
        .range(start.as_bytes(), end.as_bytes(), false, usize::MAX)
        .await?;
    Ok(pairs.into_iter().map(|(k, _)| Write::Delete(k)).collect())
}

/// Bitmaps as unpadded base64 in JSON.
mod bits {
    use super::{B64, Engine};
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&B64.encode(v))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let text = String::deserialize(d)?;
        B64.decode(text.as_bytes())
            .map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn marks_read_back_and_down_wins_within_a_node() {
        let mut r = DayRecord::new(1500);
        assert_eq!(r.up.len(), 188);
        r.mark(0, true);
        r.mark(1499, false);
        r.mark(7, false);
        r.mark(7, true);
        r.mark(1500, true);
        assert_eq!(
            (r.get(0), r.get(1499), r.get(7), r.get(3)),
            (Some(true), Some(false), Some(false), None)
        );
        let json = serde_json::to_vec(&r).unwrap();
        assert!(json.len() < 600, "{}", json.len());
        assert_eq!(serde_json::from_slice::<DayRecord>(&json).unwrap(), r);
    }

    #[test]
    fn a_minute_is_up_if_any_node_saw_it_up() {
        let (mut a, mut b) = (DayRecord::new(1440), DayRecord::new(1440));
        a.mark(0, false);
        b.mark(0, true);
        a.mark(1, false);
        b.mark(2, true);
        let u = union(4, &[a, b]);
        assert_eq!(u, [Seen::Up, Seen::Down, Seen::Up, Seen::Unobserved]);
    }
}
