//! Environment calls of the admin API: each environment's state, and the
//! maintenance switch (data calls answer 503 with `Retry-After` while on).

use super::ApiError;
use super::api::{Answer, Call, read_json};
use super::types::Maintenance;
use crate::domain::Environment;
use crate::respond;
use hyper::StatusCode;
use serde_json::json;

/// `GET /admin/v1/environments`
pub(super) async fn list(c: Call) -> Answer {
    let state: Vec<_> = Environment::ALL
        .iter()
        .map(|e| {
            json!({
                "environment": e,
                "maintenance": c.admin.availability.maintenance(*e).as_deref(),
            })
        })
        .collect();
    Ok(respond::json(StatusCode::OK, &state))
}

/// `PUT /admin/v1/environments/{environment}/maintenance`: closes it.
pub(super) async fn close(c: Call) -> Answer {
    let env = environment(&c)?;
    let m: Maintenance = read_json(c.req).await?;
    if !(1..=86_400).contains(&m.retry_after) {
        return Err(ApiError::bad_request(
            "retry_after",
            "between 1 and 86400 seconds",
        ));
    }
    set(c.admin, env, Some(m)).await
}

/// `DELETE /admin/v1/environments/{environment}/maintenance`: reopens it.
pub(super) async fn open(c: Call) -> Answer {
    let env = environment(&c)?;
    set(c.admin, env, None).await
}

fn environment(c: &Call) -> Result<Environment, ApiError> {
    let name = c.param("environment");
    Environment::parse(name).ok_or_else(|| {
        ApiError::new(
            StatusCode::NOT_FOUND,
            Some("environment"),
            format!("no environment {name}"),
        )
    })
}

/// Stores the state → 204.
async fn set(
    admin: std::sync::Arc<crate::admin::Admin>,
    env: Environment,
    m: Option<Maintenance>,
) -> Answer {
    admin
        .availability
        .set(env, m)
        .await
        .map_err(ApiError::from)?;
    Ok(respond::empty(StatusCode::NO_CONTENT))
}
