//! Per-environment token signing keys: Ed25519 (JWS `EdDSA`), generated on
//! first start into `data_dir/keys/{env}-token-signing.pem` (PKCS #8, mode
//! 0600) and loaded from there afterwards.

use super::OAuthError;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{DecodingKey, EncodingKey};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use std::path::Path;

/// An Ed25519 signing key and its public half.
pub struct SigningKey {
    encoding: EncodingKey,
    decoding: DecodingKey,
    public: Vec<u8>,
    kid: String,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKey")
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

impl SigningKey {
    /// Loads the key at `path`, creating it (and its directory, mode 0700)
    /// when absent.
    pub fn load_or_create(path: &Path) -> Result<Self, OAuthError> {
        let key = crate::pki::load_or_create_ed25519(path).map_err(|e| OAuthError::Key {
            path: path.display().to_string(),
            message: e.to_string(),
        })?;
        Ok(Self::from_parts(&key.serialize_der(), key.public_key_raw()))
    }

    fn from_parts(pkcs8: &[u8], public: &[u8]) -> Self {
        let x = URL_SAFE_NO_PAD.encode(public);
        // RFC 7638 thumbprint: members in lexicographic order, no spaces.
        let canonical = format!(r#"{{"crv":"Ed25519","kty":"OKP","x":"{x}"}}"#);
        SigningKey {
            encoding: EncodingKey::from_ed_der(pkcs8),
            decoding: DecodingKey::from_ed_der(public),
            public: public.to_vec(),
            kid: URL_SAFE_NO_PAD.encode(Sha256::digest(canonical.as_bytes())),
        }
    }

    /// The key id put in token headers (RFC 7638 thumbprint).
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// For signing.
    pub fn encoding(&self) -> &EncodingKey {
        &self.encoding
    }

    /// For verifying.
    pub fn decoding(&self) -> &DecodingKey {
        &self.decoding
    }

    /// The public key as a JWK (RFC 8037).
    pub fn jwk(&self) -> Value {
        json!({
            "kty": "OKP",
            "crv": "Ed25519",
            "x": URL_SAFE_NO_PAD.encode(&self.public),
            "kid": self.kid,
            "use": "sig",
            "alg": "EdDSA",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn key_is_created_once_with_mode_0600_and_reloaded() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keys/sandbox-token-signing.pem");
        let a = SigningKey::load_or_create(&path).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let b = SigningKey::load_or_create(&path).unwrap();
        assert_eq!(a.kid(), b.kid());
        assert_eq!(a.jwk()["x"].as_str().unwrap().len(), 43);
    }
}
