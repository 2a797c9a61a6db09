//! Security events of the abnormal-usage detector (`crate::abuse`): the
//! open ones, newest first, and clearing one. The clear is traced like any
//! admin call, with the acting admin (`admin::handle`).

use super::ApiError;
use super::api::{Answer, Call};
use crate::abuse::AbuseError;
use crate::respond;
use hyper::StatusCode;

/// `GET /admin/v1/security-events`: open events, newest first.
pub(super) async fn list(c: Call) -> Answer {
    Ok(respond::json(StatusCode::OK, &c.admin.abuse.open_events()))
}

/// `POST /admin/v1/security-events/{id}/clear` → 200 with the event,
/// which leaves the open list (a durable delete); 404 if none is open.
pub(super) async fn clear(c: Call) -> Answer {
    let cleared = c.admin.abuse.clear(c.param("id")).await;
    match cleared {
        Ok(event) => Ok(respond::json(StatusCode::OK, &event)),
        Err(AbuseError::NotFound(id)) => Err(ApiError::new(
            StatusCode::NOT_FOUND,
            Some("id"),
            format!("no open security event {id}"),
        )),
        Err(e) => {
            tracing::error!(error = %e, "security event not cleared");
            Err(ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                None,
                "the event could not be cleared; nothing was changed",
            ))
        }
    }
}
