//! Client secrets: 256-bit random values shown once. They are not passwords,
//! so only their SHA-256 digest is kept (no slow KDF on the token path) and
//! comparison is constant-time.

use crate::domain::{RandomError, random_bytes};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// The SHA-256 digest of a client secret.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretDigest([u8; 32]);

impl std::fmt::Debug for SecretDigest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretDigest(..)")
    }
}

impl SecretDigest {
    /// Digest of a presented secret.
    pub fn of(secret: &str) -> Self {
        SecretDigest(Sha256::digest(secret.as_bytes()).into())
    }

    /// Whether `presented` is the secret this digest was made from
    /// (constant time in the digest comparison).
    pub fn matches(&self, presented: &str) -> bool {
        let other = SecretDigest::of(presented);
        self.0.ct_eq(&other.0).into()
    }
}

/// A freshly generated secret (to show once) and its digest (to keep).
pub fn generate_secret() -> Result<(String, SecretDigest), RandomError> {
    let secret = URL_SAFE_NO_PAD.encode(random_bytes::<32>()?);
    let digest = SecretDigest::of(&secret);
    Ok((secret, digest))
}

impl Serialize for SecretDigest {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&URL_SAFE_NO_PAD.encode(self.0))
    }
}

impl<'de> Deserialize<'de> for SecretDigest {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        let bytes = URL_SAFE_NO_PAD
            .decode(s)
            .map_err(serde::de::Error::custom)?;
        let arr: [u8; 32] = bytes
            .try_into()
            .map_err(|_| serde::de::Error::custom("secret digest is not 32 bytes"))?;
        Ok(SecretDigest(arr))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_secret_has_256_bits_and_matches_only_itself() {
        let (secret, digest) = generate_secret().unwrap();
        assert_eq!(URL_SAFE_NO_PAD.decode(&secret).unwrap().len(), 32);
        assert!(digest.matches(&secret));
        assert!(!digest.matches(&format!("{secret}x")));
        let (other, _) = generate_secret().unwrap();
        assert_ne!(secret, other);
    }
}
