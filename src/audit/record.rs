//! One trace record (DESIGN §7) and its place in the hash chain: each
//! record stores the SHA-256 of the previous record's canonical bytes, so
//! editing, deleting or reordering any record breaks a link.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};

/// The `prev` of the very first record.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// Who did what on the admin plane (secrets are never part of it).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AdminAction {
    /// The admin certificate's subject.
    pub actor_subject: String,
    /// The admin certificate's thumbprint.
    pub actor_thumbprint: String,
    /// The entity before the change (`null` when created).
    pub before: Value,
    /// The entity after the change (`null` when nothing was found).
    pub after: Value,
}

/// What happened to one request. Never a token, a secret, a key or data.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TraceEvent {
    /// RFC 3339 UTC time the request arrived.
    pub time: String,
    /// `sandbox`, `production` or `admin`.
    pub plane: String,
    /// The caller's X-Correlation-ID (or the one assigned).
    pub correlation_id: Option<String>,
    /// The application, once known.
    pub client_id: Option<String>,
    /// Its partner.
    pub partner_id: Option<String>,
    /// Thumbprint of the presented client certificate.
    pub thumbprint: Option<String>,
    /// Socket peer address.
    pub ip: String,
    /// HTTP method.
    pub method: String,
    /// Path without the query string.
    pub path: String,
    /// SIREN of a data call.
    pub siren: Option<String>,
    /// Dataset of a data call.
    pub dataset: Option<String>,
    /// Fiscal year of a data call.
    pub year: Option<i32>,
    /// `admitted` or `denied`.
    pub decision: String,
    /// The failing control, if denied.
    pub control: Option<String>,
    /// The error code, if denied (catalogue code or OAuth error).
    pub code: Option<String>,
    /// HTTP status sent.
    pub status: u16,
    /// Time spent in the gateway, microseconds (excluding this record).
    pub latency_us: u64,
    /// Why it was denied (the denial's detail).
    pub detail: Option<String>,
    /// For admin calls: actor and change.
    pub admin: Option<AdminAction>,
}

/// A stored record: its position, its link, its event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TraceRecord {
    /// Position in the chain, from 1, no gaps.
    pub seq: u64,
    /// Hex SHA-256 of the previous record's canonical bytes.
    pub prev: String,
    /// The event.
    #[serde(flatten)]
    pub event: TraceEvent,
}

impl TraceRecord {
    /// The bytes that are stored and hashed.
    pub fn canonical(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_default()
    }
}

/// The fixed-width UTC timestamp of records (`2026-11-23T20:17:15.929Z`):
/// fixed width so that comparing the strings compares the times.
pub fn timestamp(t: time::OffsetDateTime) -> String {
    let fmt = time::macros::format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z"
    );
    t.to_offset(time::UtcOffset::UTC)
        .format(&fmt)
        .unwrap_or_default()
}

/// Parses an RFC 3339 time (any offset, any precision) into [`timestamp`] form.
pub fn normalize(rfc3339: &str) -> Option<String> {
    time::OffsetDateTime::parse(rfc3339, &time::format_description::well_known::Rfc3339)
        .ok()
        .map(timestamp)
}

/// Hex SHA-256 of `bytes`.
pub fn digest(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The store key of record `seq` (zero-padded so keys sort by seq).
pub fn key(seq: u64) -> Vec<u8> {
    format!("audit/rec/{seq:020}").into_bytes()
}

/// First key after every record.
pub const KEY_END: &[u8] = b"audit/rec0";
/// First record key.
pub const KEY_START: &[u8] = b"audit/rec/";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_are_fixed_width_so_strings_order_like_times() {
        let a = normalize("2026-11-23T20:17:15Z").unwrap();
        let b = normalize("2026-11-23T20:17:15.5+00:00").unwrap();
        let c = normalize("2026-11-23T21:17:15.123456789+01:00").unwrap();
        assert_eq!(a, "2026-11-23T20:17:15.000Z");
        assert_eq!(c, "2026-11-23T20:17:15.123Z");
        assert!(a < c && c < b);
        assert_eq!(normalize("yesterday"), None);
    }
}
