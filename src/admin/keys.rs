//! Token signing keys (docs/cluster.md "Signing keys"): every node's
//! registered keys, and rotating the answering node's (`crate::oauth`'s
//! keyring does the work; this is its admin face).

use super::ApiError;
use super::api::{Answer, Call, MAX_BODY, parse_json, read_limited};
use super::types::KeyRotation;
use crate::domain::Environment;
use crate::oauth::OAuthError;
use crate::respond;
use hyper::StatusCode;

/// `GET /admin/v1/keys`: every registered key, by environment, node and
/// age, with its retirement (`null` for a node's signing key).
pub(super) async fn list(c: Call) -> Answer {
    Ok(respond::json(StatusCode::OK, &c.admin.oauth.keys.list()))
}

/// `POST /admin/v1/keys/rotate` → 200 with the new keys: the answering
/// node signs with them at once; the keys they replace verify until every
/// token they signed has expired. The body is optional (`{}` or empty:
/// both environments).
pub(super) async fn rotate(c: Call) -> Answer {
    let bytes = read_limited(c.req, MAX_BODY).await?;
    let request = match bytes.iter().all(u8::is_ascii_whitespace) {
        true => KeyRotation::default(),
        false => parse_json(&bytes)?,
    };
    let environments = match request.environment {
        Some(env) => vec![env],
        None => Environment::ALL.to_vec(),
    };
    let now = time::OffsetDateTime::now_utc();
    let rotated = c.admin.oauth.keys.rotate(&environments, now).await;
    match rotated {
        Ok(records) => Ok(respond::json(StatusCode::OK, &records)),
        Err(OAuthError::Store(e)) => Err(ApiError::from(e)),
        Err(e) => {
            tracing::error!(error = %e, "signing key not rotated");
            Err(ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                None,
                "the new signing key could not be written; nothing was changed",
            ))
        }
    }
}
