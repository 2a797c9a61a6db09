//! Signed anchors of the chain: the head (last record's hash) after every
//! batch, and the checkpoint of a purged prefix. Signed with the audit key
//! (`data_dir/keys/audit-signing.pem`, Ed25519, 0600), so that replacing
//! the stored head or checkpoint needs that key too.

use super::AuditError;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rcgen::{KeyPair, SigningKey};
use rustls::SignatureScheme;
use serde::{Deserialize, Serialize};
use std::path::Path;

/// A signed statement "record `seq` has hash `hash`".
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Anchor {
    /// Record number (0 = nothing).
    pub seq: u64,
    /// Hex SHA-256 of that record's canonical bytes (GENESIS for 0).
    pub hash: String,
    /// base64url Ed25519 signature over `"{seq}:{hash}"`.
    pub sig: String,
}

/// The audit signing key.
pub struct AuditKey {
    key: KeyPair,
}

impl AuditKey {
    /// Loads or creates the key at `path` (mode 0600).
    pub fn load_or_create(path: &Path) -> Result<Self, AuditError> {
        let key =
            crate::pki::load_or_create_ed25519(path).map_err(|e| AuditError::Key(e.to_string()))?;
        Ok(AuditKey { key })
    }

    /// Signs an anchor.
    pub fn anchor(&self, seq: u64, hash: &str) -> Result<Anchor, AuditError> {
        let sig = self
            .key
            .sign(format!("{seq}:{hash}").as_bytes())
            .map_err(|e| AuditError::Key(e.to_string()))?;
        Ok(Anchor {
            seq,
            hash: hash.to_owned(),
            sig: URL_SAFE_NO_PAD.encode(sig),
        })
    }

    /// Whether `anchor` was signed by this key.
    pub fn verify(&self, anchor: &Anchor) -> bool {
        let Ok(sig) = URL_SAFE_NO_PAD.decode(&anchor.sig) else {
            return false;
        };
        let provider = crate::tls::provider();
        let Some((_, algs)) = provider
            .signature_verification_algorithms
            .mapping
            .iter()
            .find(|(scheme, _)| *scheme == SignatureScheme::ED25519)
        else {
            return false;
        };
        let message = format!("{}:{}", anchor.seq, anchor.hash);
        algs.iter().any(|alg| {
            alg.verify_signature(self.key.public_key_raw(), message.as_bytes(), &sig)
                .is_ok()
        })
    }
}
