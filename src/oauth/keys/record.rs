//! A registered public key: its store record (`keys/{env}/{kid}`, JSON,
//! also what `GET /admin/v1/keys` lists) and the in-memory verifier built
//! from it.

use crate::domain::Environment;
use crate::store::Write;
use jsonwebtoken::DecodingKey;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use time::OffsetDateTime;

/// Prefix of the registered keys in the store (area `keys`).
pub(super) const PREFIX: &str = "keys/";

/// One node's public key of one environment, as registered in the store.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyRecord {
    /// The node that holds the private key (`cluster.node_id`).
    pub node: String,
    /// The environment whose tokens it signs.
    pub environment: Environment,
    /// Key id: the RFC 7638 thumbprint of the public key, the `kid` of the
    /// tokens it signs.
    pub kid: String,
    /// The Ed25519 public key, base64url (RFC 8037 `x`).
    pub x: String,
    /// When the node registered it (RFC 3339).
    #[serde(with = "time::serde::rfc3339")]
    pub created: OffsetDateTime,
    /// When it stops verifying (RFC 3339): set by a rotation to the
    /// rotation's time plus the longest token lifetime, so that every
    /// token it signed expires first. `null` while it is its node's
    /// signing key.
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub retired_at: Option<OffsetDateTime>,
}

impl KeyRecord {
    /// The store key of the record.
    pub(super) fn key(&self) -> Vec<u8> {
        format!("{PREFIX}{}/{}", self.environment, self.kid).into_bytes()
    }

    /// The write that stores it.
    pub(super) fn put(&self) -> Option<Write> {
        let value = serde_json::to_vec(self).ok()?;
        Some(Write::Put(self.key(), value))
    }

    /// Whether tokens it signed still verify at `now` (Unix seconds).
    pub fn verifies_at(&self, now: i64) -> bool {
        self.retired_at.is_none_or(|r| now < r.unix_timestamp())
    }
}

/// A registered key, ready to verify.
pub struct PublicKey {
    /// The record it was built from.
    pub record: KeyRecord,
    /// For verifying.
    pub decoding: DecodingKey,
}

impl PublicKey {
    /// The verifier of `record`; `None` (logged) if its `x` is not an
    /// Ed25519 public key or does not match its kid.
    pub(super) fn of(record: KeyRecord) -> Option<PublicKey> {
        let decoding =
            super::decoding(&record.x).filter(|_| super::thumbprint(&record.x) == record.kid);
        let Some(decoding) = decoding else {
            tracing::warn!(kid = %record.kid, node = %record.node, "a registered signing key is unusable and ignored");
            return None;
        };
        Some(PublicKey { record, decoding })
    }

    /// The key as a JWK (RFC 7517 §4, RFC 8037 §2).
    pub fn jwk(&self) -> Value {
        json!({
            "kty": "OKP",
            "crv": "Ed25519",
            "x": self.record.x,
            "kid": self.record.kid,
            "use": "sig",
            "alg": "EdDSA",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_reads_back_and_knows_when_it_stops_verifying() {
        let record = KeyRecord {
            node: "node-a".into(),
            environment: Environment::Sandbox,
            kid: "k".into(),
            x: "x".into(),
            created: OffsetDateTime::from_unix_timestamp(1_000).unwrap(),
            retired_at: OffsetDateTime::from_unix_timestamp(2_000).ok(),
        };
        let text = serde_json::to_string(&record).unwrap();
        assert!(
            text.contains(r#""retired_at":"1970-01-01T00:33:20Z""#),
            "{text}"
        );
        assert_eq!(serde_json::from_str::<KeyRecord>(&text).unwrap(), record);
        assert_eq!(record.key(), b"keys/sandbox/k");
        assert!(record.verifies_at(1_999));
        assert!(!record.verifies_at(2_000));
        let current = KeyRecord {
            retired_at: None,
            ..record
        };
        assert!(current.verifies_at(i64::MAX));
        assert!(PublicKey::of(current).is_none(), "x is no key");
    }
}
