//! `admin incident …` and `admin maintenance …` (docs/contract.md §11,
//! docs/status.md): the commands and the calls they make, with the API's
//! own request types (`crate::status`).

use super::CliError;
use super::request::{Call, plain, with_body};
use crate::admin::Op;
use crate::domain::Environment;
use clap::Subcommand;
use serde_json::Value;

/// `admin incident …`
#[derive(Debug, Subcommand)]
pub enum IncidentCommand {
    /// Open an incident (shown on /status, mailed to the partners concerned).
    Open {
        /// Its title.
        #[arg(long)]
        name: String,
        /// none, minor, major or critical.
        #[arg(long)]
        impact: String,
        /// An affected environment, sandbox or production (repeatable).
        #[arg(long = "component", required = true)]
        components: Vec<String>,
        /// The first message.
        #[arg(long)]
        message: String,
    },
    /// Post a message and a status (resolved closes it).
    Update {
        /// Incident id.
        id: String,
        /// investigating, identified, monitoring or resolved.
        #[arg(long)]
        status: String,
        /// The message.
        #[arg(long)]
        message: String,
    },
    /// Every incident, newest first.
    List,
}

/// `admin maintenance …`
#[derive(Debug, Subcommand)]
pub enum MaintenanceCommand {
    /// Schedule a maintenance: inside the window ([status]
    /// maintenance_window) and at most maintenance_max_minutes, unless
    /// --emergency.
    Schedule {
        /// An environment it closes, sandbox or production (repeatable).
        #[arg(long = "component", required = true)]
        components: Vec<String>,
        /// Start, RFC 3339 (e.g. 2026-12-08T23:30:00+01:00).
        #[arg(long)]
        from: String,
        /// End, RFC 3339.
        #[arg(long)]
        until: String,
        /// Shown to callers (503) and to partners.
        #[arg(long)]
        message: String,
        /// Its title.
        #[arg(long)]
        name: Option<String>,
        /// An unplanned closure: allowed anytime, counts as unavailability.
        #[arg(long)]
        emergency: bool,
    },
    /// Cancel a maintenance (one in progress ends now).
    Cancel {
        /// Maintenance id.
        id: String,
    },
    /// Every maintenance, with its status now.
    List,
}

pub(super) fn incident_request(cmd: &IncidentCommand) -> Result<Call, CliError> {
    use crate::status::{IncidentUpdate, NewIncident};
    match cmd {
        IncidentCommand::Open {
            name,
            impact,
            components,
            message,
        } => {
            let new = NewIncident {
                name: name.clone(),
                impact: word("impact", impact)?,
                components: environments(components)?,
                message: message.clone(),
                status: None,
            };
            with_body(Op::OpenIncident, &[], &new)
        }
        IncidentCommand::Update {
            id,
            status,
            message,
        } => {
            let change = IncidentUpdate {
                status: word("status", status)?,
                message: message.clone(),
            };
            with_body(Op::UpdateIncident, &[id], &change)
        }
        IncidentCommand::List => plain(Op::ListIncidents, &[]),
    }
}

pub(super) fn maintenance_request(cmd: &MaintenanceCommand) -> Result<Call, CliError> {
    use crate::status::NewMaintenance;
    use time::format_description::well_known::Rfc3339;
    match cmd {
        MaintenanceCommand::Schedule {
            components,
            from,
            until,
            message,
            name,
            emergency,
        } => {
            let at = |field: &str, text: &str| {
                time::OffsetDateTime::parse(text, &Rfc3339)
                    .map_err(|e| CliError::Usage(format!("{field}: not an RFC 3339 time ({e})")))
            };
            let new = NewMaintenance {
                components: environments(components)?,
                scheduled_for: at("scheduled_for", from)?,
                scheduled_until: at("scheduled_until", until)?,
                message: message.clone(),
                name: name.clone(),
                emergency: *emergency,
            };
            with_body(Op::ScheduleMaintenance, &[], &new)
        }
        MaintenanceCommand::Cancel { id } => plain(Op::CancelMaintenance, &[id]),
        MaintenanceCommand::List => plain(Op::ListMaintenances, &[]),
    }
}

/// A one-word value of the API (`minor`, `resolved`) read as its type; the
/// error names the API's field.
fn word<T: serde::de::DeserializeOwned>(field: &str, text: &str) -> Result<T, CliError> {
    serde_json::from_value(Value::String(text.to_owned()))
        .map_err(|e| CliError::Usage(format!("{field}: {e}")))
}

/// `--component` values as environments.
fn environments(names: &[String]) -> Result<Vec<Environment>, CliError> {
    names
        .iter()
        .enumerate()
        .map(|(i, n)| {
            Environment::parse(n).ok_or_else(|| {
                CliError::Usage(format!(
                    "components[{i}]: must be \"sandbox\" or \"production\", got {n:?}"
                ))
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::admin::api::parse_json;
    use crate::status::{IncidentUpdate, NewIncident, NewMaintenance};
    use hyper::Method;
    use serde_json::json;

    #[test]
    fn every_status_body_is_what_the_api_reads() {
        let open = IncidentCommand::Open {
            name: "Lenteurs".into(),
            impact: "minor".into(),
            components: vec!["sandbox".into(), "production".into()],
            message: "Analyse en cours.".into(),
        };
        let (method, path, body) = incident_request(&open).unwrap();
        assert_eq!(
            (method, path.as_str()),
            (Method::POST, "/admin/v1/incidents")
        );
        let body = body.unwrap();
        let read: NewIncident = parse_json(&serde_json::to_vec(&body).unwrap()).unwrap();
        assert_eq!(serde_json::to_value(read).unwrap(), body);
        let update = IncidentCommand::Update {
            id: "a b".into(),
            status: "resolved".into(),
            message: "Rétabli.".into(),
        };
        let (_, path, body) = incident_request(&update).unwrap();
        assert_eq!(path, "/admin/v1/incidents/a%20b/updates");
        let read: IncidentUpdate =
            parse_json(&serde_json::to_vec(&body.unwrap()).unwrap()).unwrap();
        assert_eq!(serde_json::to_value(read).unwrap()["status"], "resolved");
        let schedule = MaintenanceCommand::Schedule {
            components: vec!["production".into()],
            from: "2026-12-09T23:30:00+01:00".into(),
            until: "2026-12-10T01:00:00+01:00".into(),
            message: "Montée de version.".into(),
            name: None,
            emergency: true,
        };
        let body = maintenance_request(&schedule).unwrap().2.unwrap();
        assert_eq!(body["emergency"], json!(true));
        let read: NewMaintenance = parse_json(&serde_json::to_vec(&body).unwrap()).unwrap();
        assert_eq!(serde_json::to_value(read).unwrap(), body);
        let cancel = maintenance_request(&MaintenanceCommand::Cancel { id: "m1".into() }).unwrap();
        assert_eq!(
            (cancel.0, cancel.1.as_str()),
            (Method::DELETE, "/admin/v1/maintenances/m1")
        );
    }

    #[test]
    fn bad_words_name_the_api_field() {
        let open = |impact: &str, component: &str| IncidentCommand::Open {
            name: "n".into(),
            impact: impact.into(),
            components: vec![component.into()],
            message: "m".into(),
        };
        let err = incident_request(&open("huge", "sandbox"))
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("impact:"), "{err}");
        let err = incident_request(&open("minor", "staging"))
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("components[0]:"), "{err}");
        let bad_time = MaintenanceCommand::Schedule {
            components: vec!["sandbox".into()],
            from: "demain".into(),
            until: "2026-12-10T01:00:00Z".into(),
            message: "m".into(),
            name: None,
            emergency: false,
        };
        let err = maintenance_request(&bad_time).unwrap_err().to_string();
        assert!(err.starts_with("scheduled_for:"), "{err}");
    }
}
