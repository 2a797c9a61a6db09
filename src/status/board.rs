//! Incidents and maintenances as they are stored (`status/incidents/{id}`,
//! `status/maintenances/{id}`, one JSON document each) and shown: the
//! Statuspage v2 shapes of docs/contract.md §11. A maintenance's status is
//! not stored but read off the clock (`scheduled`, `in_progress`,
//! `completed`), so every node agrees on it without a write at its start
//! or end. The request bodies of the admin API are defined here too, for
//! the server and the command line alike.

use crate::domain::Environment;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

/// Key prefix of incidents.
pub const INCIDENTS: &str = "status/incidents/";
/// Key prefix of maintenances.
pub const MAINTENANCES: &str = "status/maintenances/";

/// Where an incident stands (Statuspage's values).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IncidentStatus {
    /// Looking for the cause.
    Investigating,
    /// Cause found.
    Identified,
    /// Fixed, being watched.
    Monitoring,
    /// Over.
    Resolved,
}

/// How bad an incident is (Statuspage's values).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Impact {
    /// No visible effect.
    None,
    /// Degraded.
    Minor,
    /// Partly out.
    Major,
    /// Out.
    Critical,
}

/// The status an update announced: an incident's, or a maintenance's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UpdateStatus {
    /// Incident: looking for the cause.
    Investigating,
    /// Incident: cause found.
    Identified,
    /// Incident: fixed, being watched.
    Monitoring,
    /// Incident: over.
    Resolved,
    /// Maintenance: announced.
    Scheduled,
    /// Maintenance: cancelled (shown `completed` with `cancelled_at`).
    Cancelled,
}

impl From<IncidentStatus> for UpdateStatus {
    fn from(s: IncidentStatus) -> Self {
        match s {
            IncidentStatus::Investigating => UpdateStatus::Investigating,
            IncidentStatus::Identified => UpdateStatus::Identified,
            IncidentStatus::Monitoring => UpdateStatus::Monitoring,
            IncidentStatus::Resolved => UpdateStatus::Resolved,
        }
    }
}

/// One message of an incident or a maintenance (`incident_updates`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Update {
    /// Its id.
    pub id: String,
    /// The status it announced.
    pub status: UpdateStatus,
    /// The text shown to partners.
    pub body: String,
    /// When it was written.
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

/// An incident.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Incident {
    /// Its id.
    pub id: String,
    /// Its title.
    pub name: String,
    /// Where it stands.
    pub status: IncidentStatus,
    /// How bad it is.
    pub impact: Impact,
    /// The components (environments) it affects.
    pub components: Vec<Environment>,
    /// When it was opened.
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// Its last update.
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
    /// When it was resolved (`null` while open).
    #[serde(with = "time::serde::rfc3339::option")]
    pub resolved_at: Option<OffsetDateTime>,
    /// Its messages, newest first.
    pub incident_updates: Vec<Update>,
}

impl Incident {
    /// Whether it is still open.
    pub fn is_open(&self) -> bool {
        self.status != IncidentStatus::Resolved
    }
}

/// A maintenance as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Maintenance {
    /// Its id.
    pub id: String,
    /// Its title.
    pub name: String,
    /// The environments it closes.
    pub components: Vec<Environment>,
    /// When it closes them.
    #[serde(with = "time::serde::rfc3339")]
    pub scheduled_for: OffsetDateTime,
    /// When it reopens them.
    #[serde(with = "time::serde::rfc3339")]
    pub scheduled_until: OffsetDateTime,
    /// Outside the window or longer than the maximum: counts as
    /// unavailability.
    pub emergency: bool,
    /// Shown to callers while closed (503 detail) and to partners.
    pub message: String,
    /// When it was scheduled.
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// Its last change.
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
    /// When it was cancelled, if it was: it ends then if it had begun.
    #[serde(with = "time::serde::rfc3339::option")]
    pub cancelled_at: Option<OffsetDateTime>,
    /// Its messages, newest first.
    pub incident_updates: Vec<Update>,
}

/// A maintenance's status, read off the clock.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MaintenanceStatus {
    /// Not begun.
    Scheduled,
    /// Environments closed now.
    InProgress,
    /// Over (or cancelled).
    Completed,
}

impl Maintenance {
    /// When it really ends: its end, or its cancellation if earlier.
    pub fn ends_at(&self) -> OffsetDateTime {
        match self.cancelled_at {
            Some(c) if c < self.scheduled_until => c.max(self.scheduled_for),
            _ => self.scheduled_until,
        }
    }

    /// Its status at `now`.
    pub fn status(&self, now: OffsetDateTime) -> MaintenanceStatus {
        if self.cancelled_at.is_some_and(|c| c <= now) {
            MaintenanceStatus::Completed
        } else if now < self.scheduled_for {
            MaintenanceStatus::Scheduled
        } else if now < self.ends_at() {
            MaintenanceStatus::InProgress
        } else {
            MaintenanceStatus::Completed
        }
    }

    /// Whether it is announced or in progress at `now` (not over).
    pub fn is_pending(&self, now: OffsetDateTime) -> bool {
        self.status(now) != MaintenanceStatus::Completed
    }

    /// The Statuspage shape at `now`.
    pub fn view(&self, now: OffsetDateTime) -> MaintenanceView<'_> {
        MaintenanceView {
            maintenance: self,
            status: self.status(now),
            impact: "maintenance",
        }
    }
}

/// A maintenance as shown: stored fields, its status and `"impact":
/// "maintenance"`.
#[derive(Debug, Serialize)]
pub struct MaintenanceView<'a> {
    /// The stored fields.
    #[serde(flatten)]
    pub maintenance: &'a Maintenance,
    /// Its status now.
    pub status: MaintenanceStatus,
    /// Always `maintenance`.
    pub impact: &'static str,
}

/// `POST /admin/v1/incidents`
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewIncident {
    /// Its title.
    pub name: String,
    /// How bad it is.
    pub impact: Impact,
    /// The environments it affects.
    pub components: Vec<Environment>,
    /// The first message.
    pub message: String,
    /// Where it stands (default `investigating`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<IncidentStatus>,
}

/// `POST /admin/v1/incidents/{id}/updates`
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IncidentUpdate {
    /// Where it stands now (`resolved` closes it).
    pub status: IncidentStatus,
    /// The message.
    pub message: String,
}

/// `POST /admin/v1/maintenances`
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewMaintenance {
    /// The environments it closes.
    pub components: Vec<Environment>,
    /// When it closes them (RFC 3339).
    #[serde(with = "time::serde::rfc3339")]
    pub scheduled_for: OffsetDateTime,
    /// When it reopens them (RFC 3339).
    #[serde(with = "time::serde::rfc3339")]
    pub scheduled_until: OffsetDateTime,
    /// Shown to callers while closed and to partners.
    pub message: String,
    /// Its title (default "Maintenance programmée" or "Maintenance d'urgence").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Allowed outside the window and beyond the maximum; counts as
    /// unavailability (default `false`).
    #[serde(default)]
    pub emergency: bool,
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    fn m() -> Maintenance {
        Maintenance {
            id: "m".into(),
            name: "n".into(),
            components: vec![Environment::Sandbox],
            scheduled_for: datetime!(2026-06-15 22:00 UTC),
            scheduled_until: datetime!(2026-06-15 23:00 UTC),
            emergency: false,
            message: "x".into(),
            created_at: datetime!(2026-06-01 0:00 UTC),
            updated_at: datetime!(2026-06-01 0:00 UTC),
            cancelled_at: None,
            incident_updates: vec![],
        }
    }

    #[test]
    fn the_status_is_read_off_the_clock_and_a_cancellation_ends_it() {
        let mut m = m();
        use MaintenanceStatus::*;
        assert_eq!(m.status(datetime!(2026-06-15 21:59 UTC)), Scheduled);
        assert_eq!(m.status(datetime!(2026-06-15 22:00 UTC)), InProgress);
        assert_eq!(m.status(datetime!(2026-06-15 23:00 UTC)), Completed);
        m.cancelled_at = Some(datetime!(2026-06-15 22:30 UTC));
        assert_eq!(m.ends_at(), datetime!(2026-06-15 22:30 UTC));
        assert_eq!(m.status(datetime!(2026-06-15 22:29 UTC)), InProgress);
        assert_eq!(m.status(datetime!(2026-06-15 22:31 UTC)), Completed);
        m.cancelled_at = Some(datetime!(2026-06-10 0:00 UTC));
        assert_eq!(m.ends_at(), m.scheduled_for, "cancelled before it began");
        assert_eq!(m.status(datetime!(2026-06-11 0:00 UTC)), Completed);
        let v = serde_json::to_value(m.view(datetime!(2026-06-11 0:00 UTC))).unwrap();
        assert_eq!(
            (v["status"].as_str(), v["impact"].as_str()),
            (Some("completed"), Some("maintenance"))
        );
        assert_eq!(v["scheduled_for"], "2026-06-15T22:00:00Z");
    }
}
