//! Identifiers: partner ids, OAuth client ids, certificate thumbprints, and
//! the random source they are drawn from (the TLS crypto provider's CSPRNG).

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::fmt;

/// `n` bytes from the process's crypto provider (aws-lc-rs).
pub fn random_bytes<const N: usize>() -> [u8; N] {
    let mut buf = [0u8; N];
    // aws-lc-rs's RNG does not fail on a supported platform; if it ever did,
    // a zeroed id would collide and be refused by the registry, not trusted.
    let _ = rustls::crypto::aws_lc_rs::default_provider()
        .secure_random
        .fill(&mut buf);
    buf
}

/// A random (version 4) UUID.
pub fn random_uuid() -> uuid::Uuid {
    uuid::Builder::from_random_bytes(random_bytes::<16>()).into_uuid()
}

macro_rules! string_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            /// Wraps an id read from a path, a body or the store.
            pub fn new(s: impl Into<String>) -> Self {
                $name(s.into())
            }
            /// The id as text.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

string_id!(
    /// A partner's id (a UUID assigned at creation).
    PartnerId
);
string_id!(
    /// An application's OAuth `client_id` (a UUID assigned at creation).
    ClientId
);
string_id!(
    /// A certificate's `x5t#S256`: base64url (no padding) of the SHA-256 of
    /// its DER encoding (RFC 8705 §3.1).
    Thumbprint
);

impl PartnerId {
    /// A fresh random id.
    pub fn generate() -> Self {
        PartnerId(random_uuid().to_string())
    }
}

impl ClientId {
    /// A fresh random id.
    pub fn generate() -> Self {
        ClientId(random_uuid().to_string())
    }
}

impl Thumbprint {
    /// The thumbprint of a DER-encoded certificate.
    pub fn of_der(der: &[u8]) -> Self {
        Thumbprint(URL_SAFE_NO_PAD.encode(Sha256::digest(der)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thumbprint_is_unpadded_base64url_of_sha256() {
        let t = Thumbprint::of_der(b"abc");
        // SHA-256("abc") = ba7816bf...; 32 bytes -> 43 base64url chars.
        assert_eq!(t.as_str(), "ungWv48Bz-pBQUDeXa4iI7ADYaOWF3qctBD_YfIAFa0");
    }

    #[test]
    fn random_ids_differ_and_are_v4() {
        let (a, b) = (random_uuid(), random_uuid());
        assert_ne!(a, b);
        assert_eq!(a.get_version_num(), 4);
    }
}
