//! Identifiers: partner ids, OAuth client ids, certificate thumbprints, and
//! the random source they are drawn from (aws-lc-rs's CSPRNG, the one the
//! TLS stack uses). A failing random source is an error for the caller,
//! never a zeroed id.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::fmt;

/// The system random source failed (aws-lc-rs could not draw bytes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the system random source failed")]
pub struct RandomError;

/// `N` bytes from aws-lc-rs's CSPRNG (the one rustls uses).
pub fn random_bytes<const N: usize>() -> Result<[u8; N], RandomError> {
    let mut buf = [0u8; N];
    aws_lc_rs::rand::fill(&mut buf).map_err(|_| RandomError)?;
    Ok(buf)
}

/// A random (version 4) UUID.
pub fn random_uuid() -> Result<uuid::Uuid, RandomError> {
    Ok(uuid::Builder::from_random_bytes(random_bytes::<16>()?).into_uuid())
}

/// A correlation id for a response whose caller sent none. A correlation id
/// is a handle for the caller, not a credential: should the random source
/// fail, the nil UUID still lets the (error) response go out.
pub fn fresh_correlation_id() -> String {
    random_uuid().unwrap_or_default().to_string()
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

        /// Maps keyed by the id can be read with a `&str` (no allocation
        /// per lookup); hashing and ordering are the inner string's.
        impl std::borrow::Borrow<str> for $name {
            fn borrow(&self) -> &str {
                &self.0
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
    pub fn generate() -> Result<Self, RandomError> {
        Ok(PartnerId(random_uuid()?.to_string()))
    }
}

impl ClientId {
    /// A fresh random id.
    pub fn generate() -> Result<Self, RandomError> {
        Ok(ClientId(random_uuid()?.to_string()))
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
        let (a, b) = (random_uuid().unwrap(), random_uuid().unwrap());
        assert_ne!(a, b);
        assert_eq!(a.get_version_num(), 4);
    }
}
