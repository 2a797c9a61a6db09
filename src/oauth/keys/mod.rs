//! Token signing keys (docs/contract.md §10, docs/cluster.md "Signing
//! keys"). Each node signs with its own Ed25519 key (JWS `EdDSA`) per
//! environment; its private half lives only in the node's
//! `data_dir/keys/`, its public half is registered in the store
//! (`record.rs`) and every node verifies against every registered key that
//! is not retired (`ring.rs`, the [`Keyring`]).
//!
//! Files, PKCS #8 PEM, mode 0600: `{env}-token-signing.pem` is a node's
//! first key (the file a single node always had, so an upgraded node keeps
//! its kid); a rotation writes `{env}-token-signing.{n}.pem` with the next
//! `n`. The key with the highest `n` is the node's current key; the files
//! of the keys it replaced are removed once their retirement is recorded.

mod record;
mod ring;

pub use record::{KeyRecord, PublicKey};
pub use ring::Keyring;

use super::OAuthError;
use crate::domain::Environment;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{DecodingKey, EncodingKey};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};

/// An Ed25519 signing key of this node and its public half.
pub struct SigningKey {
    encoding: EncodingKey,
    public: Vec<u8>,
    kid: String,
    /// Its place among the node's keys of its environment (0 for the
    /// first, the file's `n` after).
    seq: u32,
    /// The file holding the private key.
    file: PathBuf,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKey")
            .field("kid", &self.kid)
            .field("seq", &self.seq)
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
        let seq = file_seq(path).unwrap_or(0);
        Ok(Self::from_parts(
            &key.serialize_der(),
            key.public_key_raw(),
            seq,
            path,
        ))
    }

    fn from_parts(pkcs8: &[u8], public: &[u8], seq: u32, file: &Path) -> Self {
        SigningKey {
            encoding: EncodingKey::from_ed_der(pkcs8),
            public: public.to_vec(),
            kid: thumbprint(&URL_SAFE_NO_PAD.encode(public)),
            seq,
            file: file.to_path_buf(),
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

    /// The public key, base64url (the JWK's `x`, RFC 8037).
    pub fn x(&self) -> String {
        URL_SAFE_NO_PAD.encode(&self.public)
    }
}

/// The RFC 7638 thumbprint of the Ed25519 public key `x`: the kid.
pub(crate) fn thumbprint(x: &str) -> String {
    // Members in lexicographic order, no spaces (RFC 7638 §3).
    let canonical = format!(r#"{{"crv":"Ed25519","kty":"OKP","x":"{x}"}}"#);
    URL_SAFE_NO_PAD.encode(Sha256::digest(canonical.as_bytes()))
}

/// The verifying half of the public key `x` (base64url), if it is one.
pub(crate) fn decoding(x: &str) -> Option<DecodingKey> {
    let raw = URL_SAFE_NO_PAD.decode(x).ok()?;
    (raw.len() == 32).then(|| DecodingKey::from_ed_der(&raw))
}

/// The file of key `seq` of `env` in `dir`.
fn key_file(dir: &Path, env: Environment, seq: u32) -> PathBuf {
    match seq {
        0 => dir.join(format!("{env}-token-signing.pem")),
        n => dir.join(format!("{env}-token-signing.{n}.pem")),
    }
}

/// The `n` of a key file's name (`0` for the first key), if it is one.
fn file_seq(path: &Path) -> Option<u32> {
    let name = path.file_name()?.to_str()?;
    let (_, rest) = name.split_once("-token-signing")?;
    match rest {
        ".pem" => Some(0),
        _ => rest.strip_prefix('.')?.strip_suffix(".pem")?.parse().ok(),
    }
}

/// This node's keys of `env` found in `dir`, oldest first.
fn own_keys(dir: &Path, env: Environment) -> Result<Vec<SigningKey>, OAuthError> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(key_error(dir, &e)),
    };
    let prefix = format!("{env}-token-signing");
    let mut keys = Vec::new();
    for entry in entries {
        let path = entry.map_err(|e| key_error(dir, &e))?.path();
        let ours = path
            .file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.starts_with(&prefix));
        if ours && file_seq(&path).is_some() {
            keys.push(SigningKey::load_or_create(&path)?);
        }
    }
    keys.sort_by_key(|k| k.seq);
    Ok(keys)
}

/// Removes a key file this node no longer signs with.
fn remove(key: &SigningKey) {
    if let Err(e) = std::fs::remove_file(&key.file) {
        tracing::warn!(file = %key.file.display(), error = %e, "a replaced signing key file was not removed");
    }
}

fn key_error(path: &Path, e: &dyn std::fmt::Display) -> OAuthError {
    OAuthError::Key {
        path: path.display().to_string(),
        message: e.to_string(),
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
        assert_eq!(a.x().len(), 43);
        assert_eq!(thumbprint(&a.x()), a.kid());
    }

    #[test]
    fn key_files_are_numbered_per_environment() {
        let dir = tempfile::tempdir().unwrap();
        let sandbox = Environment::Sandbox;
        assert_eq!(file_seq(&key_file(dir.path(), sandbox, 0)), Some(0));
        assert_eq!(file_seq(&key_file(dir.path(), sandbox, 12)), Some(12));
        assert_eq!(file_seq(Path::new("sandbox-token-signing.tmp")), None);
        assert_eq!(file_seq(Path::new("audit-signing.pem")), None);
        for seq in [3, 0, 1] {
            SigningKey::load_or_create(&key_file(dir.path(), sandbox, seq)).unwrap();
        }
        SigningKey::load_or_create(&key_file(dir.path(), Environment::Production, 7)).unwrap();
        let seqs: Vec<u32> = own_keys(dir.path(), sandbox)
            .unwrap()
            .iter()
            .map(|k| k.seq)
            .collect();
        assert_eq!(seqs, [0, 1, 3]);
    }
}
