//! Reading one delivery off the wire, holding no more than the cap for a
//! caller not yet authenticated: the form of `X-Hub-Signature-256` is
//! checked before a byte of the body is read, a declared `Content-Length`
//! over the cap is refused before the body is read, and the body is read
//! frame by frame, each frame fed to the HMAC (and to the SHA-256 that
//! identifies the delivery) as it arrives, refused as soon as it grows past
//! the cap.

use crate::config::WebhookSecret;
use crate::datapass::DatapassError;
use crate::datapass::signature::{self, Verifier};
use crate::server::RequestBody;
use http_body_util::BodyExt;
use hyper::HeaderMap;
use hyper::header::CONTENT_LENGTH;
use sha2::{Digest, Sha256};

/// A body whose signature holds.
#[derive(Debug)]
pub struct Signed {
    /// The raw bytes, at most the cap.
    pub body: Vec<u8>,
    /// Their SHA-256, lowercase hex: what identifies the delivery.
    pub sha256: String,
}

/// Reads `body` (sent with `headers`), at most `cap` bytes, and checks
/// its signature with `secret`.
pub async fn signed(
    headers: &HeaderMap,
    body: RequestBody,
    secret: &WebhookSecret,
    cap: u64,
) -> Result<Signed, DatapassError> {
    let values: Vec<&[u8]> = headers
        .get_all(signature::HEADER)
        .iter()
        .map(|v| v.as_bytes())
        .collect();
    let mut verifier = Verifier::new(secret, &values)?;
    let declared = declared_length(headers);
    if declared.is_some_and(|n| n > cap) {
        return Err(DatapassError::TooLarge(cap));
    }
    let capacity = declared.unwrap_or(0).min(cap);
    let mut bytes = Vec::with_capacity(usize::try_from(capacity).unwrap_or(0));
    let mut sha256 = Sha256::new();
    // The body's own deadline (`[limits] body_read_timeout_ms`) bounds how
    // long this loop may wait.
    let mut body = std::pin::pin!(body);
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(DatapassError::Body)?;
        let Ok(data) = frame.into_data() else {
            continue; // trailers: not part of what is signed
        };
        if (bytes.len() as u64).saturating_add(data.len() as u64) > cap {
            return Err(DatapassError::TooLarge(cap));
        }
        verifier.update(&data);
        sha256.update(&data);
        bytes.extend_from_slice(&data);
    }
    verifier.finish()?;
    Ok(Signed {
        body: bytes,
        sha256: hex::encode(sha256.finalize()),
    })
}

/// The `Content-Length` the caller declared, if readable (hyper has
/// already refused a malformed one on HTTP/1).
fn declared_length(headers: &HeaderMap) -> Option<u64> {
    headers
        .get(CONTENT_LENGTH)?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()
}
