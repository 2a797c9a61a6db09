//! The admin writes of §11: open and update an incident, schedule and
//! cancel a maintenance. Each validates its request, writes one document
//! under the store's writer lock (`transact`, so two nodes updating the
//! same incident do not lose a message) and refreshes the in-memory board.

use super::board::{
    INCIDENTS, IncidentStatus, MAINTENANCES, NewIncident, NewMaintenance, Update, UpdateStatus,
};
use super::{Incident, IncidentUpdate, Maintenance, Status, StatusError};
use crate::domain::Environment;
use crate::store::{Fetched, Read, Step, Write};
use serde::Serialize;
use serde::de::DeserializeOwned;
use time::OffsetDateTime;

/// Longest title.
const MAX_NAME: usize = 200;
/// Longest message.
const MAX_MESSAGE: usize = 5000;

impl Status {
    /// `POST /admin/v1/incidents`: opens an incident.
    pub async fn open_incident(
        &self,
        new: NewIncident,
        now: OffsetDateTime,
    ) -> Result<Incident, StatusError> {
        text("name", &new.name, MAX_NAME)?;
        text("message", &new.message, MAX_MESSAGE)?;
        components(&new.components)?;
        let status = new.status.unwrap_or(IncidentStatus::Investigating);
        let incident = Incident {
            id: fresh_id()?,
            name: new.name.trim().to_owned(),
            status,
            impact: new.impact,
            components: new.components,
            created_at: now,
            updated_at: now,
            resolved_at: (status == IncidentStatus::Resolved).then_some(now),
            incident_updates: vec![update(status.into(), &new.message, now)?],
        };
        self.write(INCIDENTS, &incident.id, &incident).await?;
        Ok(incident)
    }

    /// `POST /admin/v1/incidents/{id}/updates`: a new message and status.
    pub async fn update_incident(
        &self,
        id: &str,
        change: IncidentUpdate,
        now: OffsetDateTime,
    ) -> Result<Incident, StatusError> {
        text("message", &change.message, MAX_MESSAGE)?;
        let entry = update(change.status.into(), &change.message, now)?;
        self.modify(INCIDENTS, id, "incident", |mut i: Incident| {
            i.status = change.status;
            i.updated_at = now;
            i.resolved_at = match change.status {
                IncidentStatus::Resolved => i.resolved_at.or(Some(now)),
                _ => None,
            };
            i.incident_updates.insert(0, entry.clone());
            Ok(i)
        })
        .await
    }

    /// `POST /admin/v1/maintenances`: schedules a maintenance, checked
    /// against the window unless it is an emergency.
    pub async fn schedule(
        &self,
        new: NewMaintenance,
        now: OffsetDateTime,
    ) -> Result<Maintenance, StatusError> {
        text("message", &new.message, MAX_MESSAGE)?;
        components(&new.components)?;
        let span = (new.scheduled_for, new.scheduled_until);
        super::window::check(&self.settings, span, new.emergency, now)
            .map_err(|e| StatusError::invalid(e.field, e.message))?;
        let name = match (&new.name, new.emergency) {
            (Some(n), _) => n.trim().to_owned(),
            (None, false) => "Maintenance programmée".to_owned(),
            (None, true) => "Maintenance d'urgence".to_owned(),
        };
        text("name", &name, MAX_NAME)?;
        let maintenance = Maintenance {
            id: fresh_id()?,
            name,
            components: new.components,
            scheduled_for: new.scheduled_for.to_offset(time::UtcOffset::UTC),
            scheduled_until: new.scheduled_until.to_offset(time::UtcOffset::UTC),
            emergency: new.emergency,
            message: new.message.trim().to_owned(),
            created_at: now,
            updated_at: now,
            cancelled_at: None,
            incident_updates: vec![update(UpdateStatus::Scheduled, &new.message, now)?],
        };
        self.write(MAINTENANCES, &maintenance.id, &maintenance)
            .await?;
        Ok(maintenance)
    }

    /// `DELETE /admin/v1/maintenances/{id}`: cancels a maintenance not
    /// over yet (one in progress ends now).
    pub async fn cancel(&self, id: &str, now: OffsetDateTime) -> Result<Maintenance, StatusError> {
        let entry = update(UpdateStatus::Cancelled, "Maintenance annulée.", now)?;
        self.modify(MAINTENANCES, id, "maintenance", |mut m: Maintenance| {
            if !m.is_pending(now) {
                return Err(StatusError::Conflict {
                    field: "id".into(),
                    message: format!("maintenance {} is already over", m.id),
                });
            }
            m.cancelled_at = Some(now);
            m.updated_at = now;
            m.incident_updates.insert(0, entry.clone());
            Ok(m)
        })
        .await
    }

    /// Writes a new document, then refreshes the board.
    async fn write<T: Serialize>(
        &self,
        prefix: &str,
        id: &str,
        doc: &T,
    ) -> Result<(), StatusError> {
        let value = serde_json::to_vec(doc)
            .map_err(|e| crate::store::StoreError::backend_in("status document", e))?;
        let key = format!("{prefix}{id}").into_bytes();
        self.store.commit(vec![Write::Put(key, value)]).await?;
        self.reload().await
    }

    /// Reads, changes and writes back one document under the writer lock.
    async fn modify<T, F>(
        &self,
        prefix: &str,
        id: &str,
        what: &str,
        change: F,
    ) -> Result<T, StatusError>
    where
        T: Serialize + DeserializeOwned + Send,
        F: Fn(T) -> Result<T, StatusError> + Send + Sync,
    {
        let key = format!("{prefix}{id}").into_bytes();
        let mut outcome: Option<Result<T, StatusError>> = None;
        let mut transaction = |_, fetched: &Fetched| {
            if fetched.is_empty() {
                return Step::Read(vec![Read::Get(key.clone())]);
            }
            let result = changed(fetched.value(0), &key, what, id, &change);
            let step = match &result {
                Ok((_, bytes)) => Step::Commit(vec![Write::Put(key.clone(), bytes.clone())]),
                Err(_) => Step::Nothing,
            };
            outcome = Some(result.map(|(doc, _)| doc));
            step
        };
        self.store.transact(super::AREA, &mut transaction).await?;
        let doc = outcome.unwrap_or_else(|| Err(StatusError::invalid("id", "not written")))?;
        self.reload().await?;
        Ok(doc)
    }
}

/// The document stored as `stored` (at `key`) after `change`, and its
/// bytes.
fn changed<T, F>(
    stored: Option<&[u8]>,
    key: &[u8],
    what: &str,
    id: &str,
    change: &F,
) -> Result<(T, Vec<u8>), StatusError>
where
    T: Serialize + DeserializeOwned,
    F: Fn(T) -> Result<T, StatusError>,
{
    let Some(bytes) = stored else {
        return Err(StatusError::NotFound {
            field: "id".into(),
            message: format!("no {what} {id}"),
        });
    };
    let doc: T = serde_json::from_slice(bytes).map_err(|source| StatusError::Corrupt {
        key: String::from_utf8_lossy(key).into_owned(),
        source,
    })?;
    let doc = change(doc)?;
    let bytes = serde_json::to_vec(&doc)
        .map_err(|e| crate::store::StoreError::backend_in("status document", e))?;
    Ok((doc, bytes))
}

/// A message of an incident or a maintenance.
fn update(status: UpdateStatus, body: &str, now: OffsetDateTime) -> Result<Update, StatusError> {
    Ok(Update {
        id: fresh_id()?,
        status,
        body: body.trim().to_owned(),
        created_at: now,
    })
}

/// A new random id (hex, 16 characters).
fn fresh_id() -> Result<String, StatusError> {
    Ok(hex::encode(crate::domain::random_bytes::<8>()?))
}

/// A non-blank text of at most `max` characters.
fn text(field: &str, value: &str, max: usize) -> Result<(), StatusError> {
    match value.trim().chars().count() {
        0 => Err(StatusError::invalid(field, "must not be empty")),
        n if n > max => Err(StatusError::invalid(
            field,
            format!("at most {max} characters"),
        )),
        _ => Ok(()),
    }
}

/// At least one component, each once.
fn components(list: &[Environment]) -> Result<(), StatusError> {
    if list.is_empty() {
        return Err(StatusError::invalid(
            "components",
            "name at least one of sandbox, production",
        ));
    }
    if list.len() > 1 && list[0] == list[1] {
        return Err(StatusError::invalid("components[1]", "listed twice"));
    }
    if list.len() > Environment::ALL.len() {
        return Err(StatusError::invalid(
            "components",
            "sandbox and production at most once each",
        ));
    }
    Ok(())
}
