//! `POST /admin/v1/reload` (docs/contract.md §9): re-reads the certificates, CAs,
//! CRLs and the `[limits]`/`[log]` sections (see `crate::reload`). Traced
//! like every admin call; a refused reload answers 400 with `field` naming
//! the file at fault.

use super::ApiError;
use super::api::{Answer, Call, MAX_BODY, interrupted, parse_json, read_limited};

use crate::respond;
use hyper::StatusCode;
use serde::Deserialize;

/// The body: `{}` (no argument).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ReloadRequest {}

/// `POST /admin/v1/reload` → 200 with what is now in force.
pub(super) async fn reload(c: Call) -> Answer {
    let bytes = read_limited(c.req, MAX_BODY).await?;
    if !bytes.iter().all(u8::is_ascii_whitespace) {
        let ReloadRequest {} = parse_json(&bytes)?;
    }
    let admin = c.admin.clone();
    let reloaded = tokio::task::spawn_blocking(move || crate::reload::reload(&admin.reloader))
        .await
        .map_err(|_| interrupted())?
        .map_err(|e| {
            let file = e.file().display().to_string();
            ApiError::new(
                StatusCode::BAD_REQUEST,
                Some(&file),
                format!("{e}; nothing was reloaded"),
            )
        })?;
    Ok(respond::json(StatusCode::OK, &reloaded))
}
