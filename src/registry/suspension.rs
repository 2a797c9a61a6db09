//! Who suspended an application, and the suspension the abuse detector
//! makes. The answer decides who may lift it: an admin's or the abuse
//! detector's suspension is lifted only by an admin (`PATCH … status:
//! active`); the one a DataPass `revoke` made is also lifted by a later
//! DataPass `approve` of the same request (`crate::datapass::apply`).

use super::{Application, Record, Registry, RegistryError};
use crate::domain::Status;
use serde::{Deserialize, Serialize};

/// Who suspended an application (`suspended_by` in the admin API).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SuspendedBy {
    /// An admin: `PATCH /admin/v1/applications/{client_id}` with
    /// `status: suspended` (the CLI's `app suspend`).
    Admin,
    /// The abuse detector, under `[abuse] auto_suspend`.
    Abuse,
    /// A DataPass `revoke` of the application's authorization request.
    Datapass,
}

impl SuspendedBy {
    /// `admin`, `abuse` or `datapass`, as stored and shown.
    pub fn as_str(self) -> &'static str {
        match self {
            SuspendedBy::Admin => "admin",
            SuspendedBy::Abuse => "abuse",
            SuspendedBy::Datapass => "datapass",
        }
    }
}

impl std::fmt::Display for SuspendedBy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Application {
    /// Who suspended it: `None` while active. A suspended record written
    /// before `suspended_by` existed counts as an admin's suspension, the
    /// one nothing but an admin lifts.
    pub fn suspension(&self) -> Option<SuspendedBy> {
        match self.status {
            Status::Active => None,
            Status::Suspended => Some(self.suspended_by.unwrap_or(SuspendedBy::Admin)),
        }
    }
}

impl Registry {
    /// Suspends an application on behalf of `by`. An application already
    /// suspended is left as it is (status and who suspended it): nothing is
    /// written.
    pub async fn suspend_application(
        &self,
        client_id: &str,
        by: SuspendedBy,
    ) -> Result<Application, RegistryError> {
        self.apply(|snap| {
            let current = snap.application("client_id", client_id)?;
            if current.status == Status::Suspended {
                return Ok((Vec::new(), current.clone()));
            }
            let app = Application {
                status: Status::Suspended,
                suspended_by: Some(by),
                ..current.clone()
            };
            Ok((vec![Record::Application(app.clone())], app))
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{ClientId, Environment, PartnerId};
    use time::OffsetDateTime;

    fn application(status: Status, suspended_by: Option<SuspendedBy>) -> Application {
        Application {
            client_id: ClientId::new("c"),
            partner_id: PartnerId::new("p"),
            name: "a".into(),
            environment: Environment::Sandbox,
            grants: Vec::new(),
            valid_from: time::macros::date!(2025 - 01 - 01),
            valid_until: time::macros::date!(2030 - 12 - 31),
            ip_allowlist: Vec::new(),
            quota_per_minute: 50,
            status,
            suspended_by,
            created_at: OffsetDateTime::UNIX_EPOCH,
        }
    }

    #[test]
    fn a_suspension_without_its_author_counts_as_an_admins() {
        // A suspended record as stored before `suspended_by` existed.
        let mut old = serde_json::to_value(application(Status::Suspended, None)).unwrap();
        assert!(old.get("suspended_by").is_none(), "{old}");
        old["status"] = "suspended".into();
        let app: Application = serde_json::from_value(old).unwrap();
        assert_eq!(app.suspended_by, None);
        assert_eq!(app.suspension(), Some(SuspendedBy::Admin));

        let abuse = application(Status::Suspended, Some(SuspendedBy::Abuse));
        let json = serde_json::to_value(&abuse).unwrap();
        assert_eq!(json["suspended_by"], SuspendedBy::Abuse.as_str());
        let back: Application = serde_json::from_value(json).unwrap();
        assert_eq!(back.suspension(), Some(SuspendedBy::Abuse));
        assert_eq!(application(Status::Active, None).suspension(), None);
    }
}
