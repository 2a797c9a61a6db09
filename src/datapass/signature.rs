//! `X-Hub-Signature-256: sha256=<hex>`: HMAC-SHA256 of the raw request body
//! keyed with `[datapass] webhook_secret`. The header's form is checked
//! before the body is read; the HMAC is then computed frame by frame as the
//! body arrives ([`Verifier`]) and compared with `hmac`'s `verify_slice`
//! (constant time) before anything is parsed.

use crate::config::WebhookSecret;
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// The header DataPass signs with.
pub const HEADER: &str = "x-hub-signature-256";
/// Its name as refusals report it (`field`).
pub const FIELD: &str = "X-Hub-Signature-256";

/// Why a delivery is not authenticated (all answered 401).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    /// No `X-Hub-Signature-256` header.
    #[error("the X-Hub-Signature-256 header is missing")]
    Missing,
    /// Not `sha256=` followed by 64 hex digits.
    #[error("X-Hub-Signature-256 is not sha256=<64 hex digits>")]
    Malformed,
    /// The header given more than once.
    #[error("X-Hub-Signature-256 is given more than once")]
    Repeated,
    /// Well formed, but not the HMAC of this body with our secret.
    #[error("X-Hub-Signature-256 does not match the body")]
    Mismatch,
}

/// An HMAC-SHA256 computed over the body as it arrives, frame by frame,
/// against the tag of a header whose form has already been checked: the
/// body is never held just to be hashed afterwards.
pub struct Verifier {
    mac: Hmac<Sha256>,
    tag: [u8; 32],
}

impl Verifier {
    /// Checks the form of `header` (the values of `X-Hub-Signature-256`,
    /// one expected): called before a byte of the body is read.
    pub fn new(secret: &WebhookSecret, header: &[&[u8]]) -> Result<Self, SignatureError> {
        let tag = match header {
            [] => return Err(SignatureError::Missing),
            [one] => parse(one).ok_or(SignatureError::Malformed)?,
            _ => return Err(SignatureError::Repeated),
        };
        // HMAC takes keys of any length: this cannot fail.
        let mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes())
            .map_err(|_| SignatureError::Mismatch)?;
        Ok(Verifier { mac, tag })
    }

    /// Feeds the next piece of the body.
    pub fn update(&mut self, chunk: &[u8]) {
        self.mac.update(chunk);
    }

    /// Whether the whole body fed was signed with the secret (`hmac`'s
    /// `verify_slice`: a constant-time comparison).
    pub fn finish(self) -> Result<(), SignatureError> {
        self.mac
            .verify_slice(&self.tag)
            .map_err(|_| SignatureError::Mismatch)
    }
}

/// Checks `header` (the header's value, if present) against a whole
/// `body`: [`Verifier`] in one step.
pub fn verify(
    secret: &WebhookSecret,
    header: Option<&[u8]>,
    body: &[u8],
) -> Result<(), SignatureError> {
    let values: Vec<&[u8]> = header.into_iter().collect();
    let mut verifier = Verifier::new(secret, &values)?;
    verifier.update(body);
    verifier.finish()
}

/// The 32 bytes of `sha256=<64 hex digits>` (hex in either case).
fn parse(header: &[u8]) -> Option<[u8; 32]> {
    let text = std::str::from_utf8(header).ok()?.trim();
    let hex_digits = text.strip_prefix("sha256=")?;
    let mut tag = [0u8; 32];
    hex::decode_to_slice(hex_digits, &mut tag).ok()?;
    Some(tag)
}

/// `sha256=<hex>` for `body` (what DataPass sends; used by tests and docs).
pub fn sign(secret: &WebhookSecret, body: &[u8]) -> String {
    let mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).map(|mut m| {
        m.update(body);
        m.finalize().into_bytes()
    });
    match mac {
        Ok(bytes) => format!("sha256={}", hex::encode(bytes)),
        // HMAC accepts keys of any length: unreachable.
        Err(_) => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secret() -> WebhookSecret {
        WebhookSecret::new("key-of-the-test-suite").unwrap()
    }

    #[test]
    fn matches_openssl_dgst_hmac() {
        // printf '{"test":true}' | openssl dgst -sha256 -hmac 'key-of-the-test-suite'
        let body = br#"{"test":true}"#;
        let expected = "sha256=7de17bf13189303ce9d4f75ca81d546bbf5b5b4a3cb98bae53d36a4406bb97ae";
        assert_eq!(sign(&secret(), body), expected);
        assert_eq!(verify(&secret(), Some(expected.as_bytes()), body), Ok(()));
    }

    #[test]
    fn refusals_are_named() {
        let body = b"{}";
        let good = sign(&secret(), body);
        assert_eq!(verify(&secret(), None, body), Err(SignatureError::Missing));
        for bad in ["sha256=zz", "sha1=00", "", "sha256="] {
            assert_eq!(
                verify(&secret(), Some(bad.as_bytes()), body),
                Err(SignatureError::Malformed),
                "{bad}"
            );
        }
        assert_eq!(
            verify(&secret(), Some(good.as_bytes()), b"{ }"),
            Err(SignatureError::Mismatch)
        );
        let upper = format!("sha256={}", good[7..].to_ascii_uppercase());
        assert_eq!(verify(&secret(), Some(upper.as_bytes()), body), Ok(()));
        let twice = Verifier::new(&secret(), &[good.as_bytes(), good.as_bytes()]);
        assert_eq!(twice.err(), Some(SignatureError::Repeated));
        let other = WebhookSecret::new("another-key-of-the-suite").unwrap();
        assert_eq!(
            verify(&other, Some(good.as_bytes()), body),
            Err(SignatureError::Mismatch)
        );
    }

    #[test]
    fn frames_hash_as_the_whole_body() {
        let body = br#"{"event":"approve","fired_at":1628253953,"data":{"id":9001}}"#;
        let header = sign(&secret(), body);
        for cut in [0, 1, 7, 31, body.len()] {
            let mut v = Verifier::new(&secret(), &[header.as_bytes()]).unwrap();
            v.update(&body[..cut]);
            v.update(&body[cut..]);
            assert_eq!(v.finish(), Ok(()), "cut at {cut}");
        }
        let mut v = Verifier::new(&secret(), &[header.as_bytes()]).unwrap();
        v.update(&body[1..]);
        assert_eq!(v.finish(), Err(SignatureError::Mismatch));
    }
}
