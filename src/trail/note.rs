//! Signed checkpoints in the C2SP signed-note format
//! (<https://c2sp.org/signed-note>, <https://c2sp.org/tlog-checkpoint>):
//!
//! ```text
//! <origin>
//! <record count, decimal>
//! <base64 chain head>
//! [purge-before <unix ms>]          (only in a purge checkpoint)
//!
//! — <key name> <base64(4-byte key id || Ed25519 signature over the text)>
//! ```
//!
//! Deviation from tlog-checkpoint: the third line is the head of a hash
//! chain (see `frame`), not an RFC 6962 Merkle root; consistency between
//! two checkpoints is checked by re-walking the chain, not by proofs.
//! The key name is the origin. A purge checkpoint carries an extension
//! line so that an ordinary checkpoint cannot be passed off as one.

use super::TrailError;
use super::frame::Hash;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use rcgen::{KeyPair, SigningKey};
use rustls::SignatureScheme;
use sha2::{Digest, Sha256};
use std::sync::Arc;

/// Signature type byte of Ed25519 in signed notes.
const ED25519_TYPE: u8 = 0x01;
/// Prefix of a signature line: em dash and space.
const SIG_PREFIX: &str = "\u{2014} ";
/// Extension line prefix marking a purge checkpoint.
const PURGE: &str = "purge-before ";

/// The trail's signing key: an Ed25519 key (as loaded by
/// `crate::pki::load_or_create_ed25519`) and the key name, which is also
/// the checkpoint origin (e.g. `opale-apim.example/trail`).
pub struct NoteSigner {
    name: String,
    key: KeyPair,
    verifier: NoteVerifier,
}

/// Checks notes signed by one key: its name and raw public key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NoteVerifier {
    name: String,
    public_key: Vec<u8>,
    key_id: [u8; 4],
}

/// A parsed, signature-checked checkpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    /// Records covered (the last seq; 0 for an empty trail).
    pub count: u64,
    /// Chain value after record `count`.
    pub head: Hash,
    /// For a purge checkpoint: the cutoff it was made for (Unix ms).
    pub purge_before: Option<i64>,
    /// The full signed-note text.
    pub text: String,
}

impl NoteSigner {
    /// Wraps an Ed25519 key. Fails on another algorithm or a name with
    /// spaces or `+` (forbidden by signed-note).
    pub fn new(name: &str, key: KeyPair) -> Result<Self, TrailError> {
        if key.algorithm() != &rcgen::PKCS_ED25519 {
            return Err(TrailError::Key("not an Ed25519 key".into()));
        }
        let verifier = NoteVerifier::new(name, key.public_key_raw())?;
        Ok(NoteSigner {
            name: name.to_owned(),
            key,
            verifier,
        })
    }

    /// The matching verifier (the public half).
    pub fn verifier(&self) -> &NoteVerifier {
        &self.verifier
    }

    /// Signs a checkpoint for `count` records ending in `head`.
    pub fn sign(
        &self,
        count: u64,
        head: &Hash,
        purge_before: Option<i64>,
    ) -> Result<Checkpoint, TrailError> {
        let mut text = format!("{}\n{count}\n{}\n", self.name, STANDARD.encode(head));
        if let Some(ms) = purge_before {
            text.push_str(&format!("{PURGE}{ms}\n"));
        }
        let sig = self
            .key
            .sign(text.as_bytes())
            .map_err(|e| TrailError::Sign(Arc::new(e)))?;
        let mut blob = self.verifier.key_id.to_vec();
        blob.extend_from_slice(&sig);
        let note = format!(
            "{text}\n{SIG_PREFIX}{} {}\n",
            self.name,
            STANDARD.encode(blob)
        );
        Ok(Checkpoint {
            count,
            head: *head,
            purge_before,
            text: note,
        })
    }
}

impl NoteVerifier {
    /// A verifier for key `name` with the 32-byte Ed25519 `public_key`.
    pub fn new(name: &str, public_key: &[u8]) -> Result<Self, TrailError> {
        if name.is_empty() || name.chars().any(|c| c.is_whitespace() || c == '+') {
            return Err(TrailError::Key(format!("bad key name {name:?}")));
        }
        let mut h = Sha256::new();
        h.update(name.as_bytes());
        h.update([b'\n', ED25519_TYPE]);
        h.update(public_key);
        let digest = h.finalize();
        Ok(NoteVerifier {
            name: name.to_owned(),
            public_key: public_key.to_vec(),
            key_id: [digest[0], digest[1], digest[2], digest[3]],
        })
    }

    /// The raw Ed25519 public key.
    pub fn public_key(&self) -> &[u8] {
        &self.public_key
    }

    /// The key name (and checkpoint origin).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Parses `note` and checks our signature on it. Signatures by other
    /// keys are ignored (signed-note); at least ours must be present and
    /// valid, and the origin must be our name.
    pub fn open(&self, note: &str) -> Result<Checkpoint, TrailError> {
        let bad = |why: &str| TrailError::BadCheckpoint(why.to_owned());
        let (text, sigs) = note
            .split_once("\n\n")
            .ok_or_else(|| bad("no blank line before the signatures"))?;
        let text = format!("{text}\n");
        if !sigs.ends_with('\n') || note.chars().any(|c| c.is_control() && c != '\n') {
            return Err(bad("not a well-formed signed note"));
        }
        let ours = sigs.lines().filter_map(|l| self.our_signature(l));
        let mut any = false;
        for sig in ours {
            if !self.valid(text.as_bytes(), &sig) {
                return Err(bad("signature does not verify"));
            }
            any = true;
        }
        if !any {
            return Err(bad("not signed by the trail key"));
        }
        let mut cp = parse_text(&text).ok_or_else(|| bad("malformed checkpoint text"))?;
        if cp.0 != self.name {
            return Err(bad("origin is not the trail's"));
        }
        cp.1.text = note.to_owned();
        Ok(cp.1)
    }

    /// The signature bytes of a line signed by our key name and key id.
    fn our_signature(&self, line: &str) -> Option<Vec<u8>> {
        let rest = line.strip_prefix(SIG_PREFIX)?;
        let (name, b64) = rest.split_once(' ')?;
        let blob = STANDARD.decode(b64).ok()?;
        (name == self.name && blob.len() > 4 && blob[..4] == self.key_id)
            .then(|| blob[4..].to_vec())
    }

    fn valid(&self, message: &[u8], sig: &[u8]) -> bool {
        let provider = rustls::crypto::aws_lc_rs::default_provider();
        let Some((_, algs)) = provider
            .signature_verification_algorithms
            .mapping
            .iter()
            .find(|(scheme, _)| *scheme == SignatureScheme::ED25519)
        else {
            return false;
        };
        algs.iter()
            .any(|alg| alg.verify_signature(&self.public_key, message, sig).is_ok())
    }
}

/// The origin line of a signed note (unchecked), if it has one.
pub fn origin_of(note: &str) -> Option<&str> {
    note.lines().next().filter(|l| !l.is_empty())
}

/// Splits a text holding several signed notes one after the other into
/// the notes: a note ends with its last signature line (`— …`) before a
/// line that is not one.
pub fn split_notes(text: &str) -> Vec<&str> {
    let mut notes = Vec::new();
    let (mut start, mut at, mut in_sigs) = (0, 0, false);
    for line in text.split_inclusive('\n') {
        if in_sigs && !line.starts_with(SIG_PREFIX) && !line.trim().is_empty() {
            notes.push(&text[start..at]);
            start = at;
            in_sigs = false;
        }
        if line == "\n" {
            in_sigs = true;
        }
        at += line.len();
    }
    if text[start..].trim().is_empty() {
        return notes;
    }
    notes.push(&text[start..]);
    notes
}

/// Origin and checkpoint fields of a note text (text ends in a newline).
fn parse_text(text: &str) -> Option<(String, Checkpoint)> {
    let mut lines = text.lines();
    let origin = lines.next().filter(|s| !s.is_empty())?.to_owned();
    let count_line = lines.next()?;
    if count_line.len() > 1 && count_line.starts_with('0') {
        return None;
    }
    let count: u64 = count_line.parse().ok()?;
    let head: Hash = STANDARD.decode(lines.next()?).ok()?.try_into().ok()?;
    let purge_before = match lines.next() {
        None => None,
        Some(l) => Some(l.strip_prefix(PURGE)?.parse().ok()?),
    };
    if lines.next().is_some() {
        return None;
    }
    let cp = Checkpoint {
        count,
        head,
        purge_before,
        text: String::new(),
    };
    Some((origin, cp))
}
