//! Incidents and maintenances in the admin API (docs/contract.md §11):
//! open and update an incident, schedule and cancel a maintenance, list
//! both. A write is stored, installed at once on
//! this node (a cancelled maintenance reopens now; other nodes follow
//! within a second), announced by e-mail to the partners concerned, and
//! traced by the admin plane with the document before and after.

use super::ApiError;
use super::api::{Answer, Call, read_json};
use crate::respond;
use crate::status::announce::Announcement;
use crate::status::{IncidentUpdate, NewIncident, NewMaintenance, StatusError};
use hyper::StatusCode;
use time::OffsetDateTime;

/// `GET /admin/v1/incidents`: every incident, newest first.
pub(super) async fn list_incidents(c: Call) -> Answer {
    Ok(respond::json(
        StatusCode::OK,
        &c.admin.status.board().incidents,
    ))
}

/// `POST /admin/v1/incidents` → 201 incident.
pub(super) async fn open_incident(c: Call) -> Answer {
    let admin = c.admin.clone();
    let new: NewIncident = read_json(c.req).await?;
    let now = OffsetDateTime::now_utc();
    let incident = admin.status.open_incident(new, now).await?;
    admin.announce(Announcement::Incident(incident.clone()));
    Ok(respond::json(StatusCode::CREATED, &incident))
}

/// `POST /admin/v1/incidents/{id}/updates` → 201 incident.
pub(super) async fn update_incident(c: Call) -> Answer {
    let (admin, id) = (c.admin.clone(), c.param("id").to_owned());
    let change: IncidentUpdate = read_json(c.req).await?;
    let now = OffsetDateTime::now_utc();
    let incident = admin.status.update_incident(&id, change, now).await?;
    admin.announce(Announcement::Incident(incident.clone()));
    Ok(respond::json(StatusCode::CREATED, &incident))
}

/// `GET /admin/v1/maintenances`: every maintenance, by start, with its
/// status now.
pub(super) async fn list_maintenances(c: Call) -> Answer {
    let now = OffsetDateTime::now_utc();
    let board = c.admin.status.board();
    let views: Vec<_> = board.maintenances.iter().map(|m| m.view(now)).collect();
    Ok(respond::json(StatusCode::OK, &views))
}

/// `POST /admin/v1/maintenances` → 201 maintenance; 400 naming
/// `scheduled_for`/`scheduled_until` outside the terms unless `emergency`.
pub(super) async fn schedule(c: Call) -> Answer {
    let admin = c.admin.clone();
    let new: NewMaintenance = read_json(c.req).await?;
    let m = admin
        .status
        .schedule(new, OffsetDateTime::now_utc())
        .await?;
    crate::status::task::install(
        &admin.status,
        &admin.availability,
        OffsetDateTime::now_utc(),
    );
    admin.announce(Announcement::Scheduled(m.clone()));
    Ok(respond::json(
        StatusCode::CREATED,
        &m.view(OffsetDateTime::now_utc()),
    ))
}

/// `DELETE /admin/v1/maintenances/{id}` → 204: cancelled (ended now if in
/// progress) and announced.
pub(super) async fn cancel(c: Call) -> Answer {
    let (admin, id) = (c.admin.clone(), c.param("id").to_owned());
    let m = admin.status.cancel(&id, OffsetDateTime::now_utc()).await?;
    crate::status::task::install(
        &admin.status,
        &admin.availability,
        OffsetDateTime::now_utc(),
    );
    admin.announce(Announcement::Cancelled(m));
    Ok(respond::empty(StatusCode::NO_CONTENT))
}

impl crate::admin::Admin {
    /// E-mails `what` to the partners concerned (in the background).
    fn announce(&self, what: Announcement) {
        self.announcer.announce(&self.registry.snapshot(), what);
    }
}

impl From<StatusError> for ApiError {
    fn from(e: StatusError) -> Self {
        match e {
            StatusError::Invalid { field, message } => {
                ApiError::new(StatusCode::BAD_REQUEST, Some(&field), message)
            }
            StatusError::NotFound { field, message } => {
                ApiError::new(StatusCode::NOT_FOUND, Some(&field), message)
            }
            StatusError::Conflict { field, message } => {
                ApiError::new(StatusCode::CONFLICT, Some(&field), message)
            }
            StatusError::Store(e) => ApiError::from(e),
            other => {
                tracing::error!(error = %other, "status write failed");
                ApiError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    None,
                    "the status could not be written",
                )
            }
        }
    }
}
