//! What an `approve` or a `revoke` does to the registry and the deny-list.
//! The application of a DataPass authorization request is the one named
//! `datapass-<data.id>` in the environment of the signed `form_uid`: the
//! name of an application cannot be changed (`PATCH` has no `name`), so
//! the same request always finds it again. Each operation first compares
//! the event with the last one applied to the request (`order.rs`) and
//! records it in the same registry operation: a superseded event or a
//! repeated delivery changes nothing.
//!
//! Suspensions: a `revoke` suspends the application as DataPass
//! (`suspended_by: datapass`); a later `approve` lifts only that one. An
//! application an admin or the abuse detector suspended stays suspended
//! whatever DataPass sends, until an admin resumes it.

use crate::datapass::order::{self, Order, Outcome};
use crate::datapass::payload::{Approval, Event};
use crate::domain::{ClientId, Environment, PartnerId, Scope, Status};
use crate::oauth::DenyList;
use crate::registry::ops::DEFAULT_QUOTA_PER_MINUTE;
use crate::registry::{
    Application, Grant, Partner, Record, Registry, RegistryError, Snapshot, SuspendedBy, YearBound,
    YearSpec, generate_secret,
};
use crate::store::StoreError;
use time::{Date, Month, OffsetDateTime};

/// Years granted for a newly approved scope: the three last closed fiscal
/// years, relative so that the grant follows the calendar (`N-3..N-1`).
pub const DEFAULT_YEARS: YearSpec =
    YearSpec::Range(YearBound::Relative(-3), YearBound::Relative(-1));
/// A new application is valid until 31 December of the approval's year
/// plus this many years.
pub const VALIDITY_YEARS: i32 = 3;

/// The name of the application of DataPass authorization request `id`.
pub fn application_name(request_id: &str) -> String {
    format!("datapass-{request_id}")
}

/// The application of authorization request `request_id` in `env`.
pub fn find<'s>(snap: &'s Snapshot, env: Environment, request_id: &str) -> Option<&'s Application> {
    let name = application_name(request_id);
    snap.applications
        .values()
        .find(|a| a.environment == env && a.name == name)
}

/// Why an `approve` or a `revoke` failed (the registry's own errors pass
/// through); the event is not recorded as applied.
#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    /// The registry refused or failed.
    #[error(transparent)]
    Registry(#[from] RegistryError),
    /// The deny-list could not be written.
    #[error("token revocation could not be stored: {0}")]
    DenyList(#[from] StoreError),
}

/// `approve`: the partner of that SIREN (created, or given the contact
/// roles it lacks) and the request's application (created with a secret
/// never shown, or given the approved scopes, and made active again if
/// DataPass's own revoke had suspended it), with the event's mark, in one
/// all-or-nothing registry operation. `body_sha256` identifies the
/// delivery.
pub async fn approve(
    registry: &Registry,
    event: &Event,
    approval: &Approval,
    body_sha256: &str,
    now: OffsetDateTime,
) -> Result<Outcome, RegistryError> {
    let approved_on = OffsetDateTime::from_unix_timestamp(event.fired_at)
        .map_err(|e| RegistryError::invalid("fired_at", e))?
        .date();
    registry
        .apply(|snap| {
            let existing = find(snap, event.environment, &event.request_id);
            if let Some(done) = unless_newer(snap, event, body_sha256, existing) {
                return Ok((Vec::new(), done));
            }
            let (partner, mut records) = partner(snap, approval, now)?;
            let app = match existing {
                Some(existing) if existing.partner_id != partner.id => {
                    return Err(RegistryError::conflict(
                        "data.organization.siret",
                        format!(
                            "DataPass request {} belongs to another partner",
                            event.request_id
                        ),
                    ));
                }
                Some(existing) => extend(existing, approval, approved_on, &mut records),
                None => create(
                    partner.id.clone(),
                    event,
                    approval,
                    approved_on,
                    now,
                    &mut records,
                )?,
            };
            records.push(Record::Datapass(order::mark(event, body_sha256, now)));
            Ok((records, Outcome::Applied(Some(app))))
        })
        .await
}

/// `revoke`: every token of the application issued until `now` is revoked,
/// then it is suspended as DataPass (left as it is if already suspended,
/// whoever did it), with the event's mark. A request with no application
/// here gets its mark only, so that an older `approve` arriving late
/// creates nothing.
pub async fn revoke(
    registry: &Registry,
    denylist: &DenyList,
    event: &Event,
    body_sha256: &str,
    now: OffsetDateTime,
) -> Result<Outcome, ApplyError> {
    let snap = registry.snapshot();
    let found = find(&snap, event.environment, &event.request_id);
    if let Some(done) = unless_newer(&snap, event, body_sha256, found) {
        return Ok(done);
    }
    if let Some(found) = found {
        // Tokens first: a crash in between leaves them revoked and the
        // event unrecorded, for DataPass's retry to apply it whole.
        denylist
            .revoke_client(found.client_id.as_str(), now.unix_timestamp())
            .await?;
    }
    Ok(registry
        .apply(|snap| {
            // Again under the write lock: another delivery may have won.
            let found = find(snap, event.environment, &event.request_id);
            if let Some(done) = unless_newer(snap, event, body_sha256, found) {
                return Ok((Vec::new(), done));
            }
            let mut records = vec![Record::Datapass(order::mark(event, body_sha256, now))];
            let after = found.map(|a| match a.status {
                Status::Suspended => a.clone(),
                Status::Active => {
                    let suspended = Application {
                        status: Status::Suspended,
                        suspended_by: Some(SuspendedBy::Datapass),
                        ..a.clone()
                    };
                    records.push(Record::Application(suspended.clone()));
                    suspended
                }
            });
            Ok((records, Outcome::Applied(after)))
        })
        .await?)
}

/// `None` when `event` applies; else what to answer, writing nothing.
fn unless_newer(
    snap: &Snapshot,
    event: &Event,
    body_sha256: &str,
    application: Option<&Application>,
) -> Option<Outcome> {
    let application = application.cloned();
    match order::order(snap, event, body_sha256) {
        Order::Newer => None,
        Order::Repeated => Some(Outcome::Repeated(application)),
        Order::Superseded(last) => Some(Outcome::Superseded { application, last }),
    }
}

/// The partner of the approval's SIREN, and its record if it changed.
fn partner(
    snap: &Snapshot,
    approval: &Approval,
    now: OffsetDateTime,
) -> Result<(Partner, Vec<Record>), RegistryError> {
    let Some(existing) = snap.partners.values().find(|p| p.siren == approval.siren) else {
        let partner = Partner {
            id: PartnerId::generate()?,
            siren: approval.siren,
            name: approval
                .organization
                .clone()
                .unwrap_or_else(|| format!("SIREN {}", approval.siren)),
            contacts: approval.contacts.clone(),
            status: Status::Active,
            created_at: now,
        };
        return Ok((partner.clone(), vec![Record::Partner(partner)]));
    };
    let mut partner = existing.clone();
    for (role, contact) in &approval.contacts {
        partner
            .contacts
            .entry(role.clone())
            .or_insert_with(|| contact.clone());
    }
    let records = if &partner == existing {
        Vec::new()
    } else {
        vec![Record::Partner(partner.clone())]
    };
    Ok((partner, records))
}

/// The approved scopes as grants: an already granted scope keeps its
/// years (an admin may have changed them), a new one gets
/// [`DEFAULT_YEARS`]; scopes no longer approved are dropped.
fn grants(current: &[Grant], scopes: &[Scope]) -> Vec<Grant> {
    scopes
        .iter()
        .map(|scope| {
            current
                .iter()
                .find(|g| g.scope == *scope)
                .cloned()
                .unwrap_or_else(|| Grant {
                    scope: *scope,
                    years: vec![DEFAULT_YEARS],
                })
        })
        .collect()
}

fn sorted(grants: &[Grant]) -> Vec<&Grant> {
    let mut out: Vec<&Grant> = grants.iter().collect();
    out.sort_by_key(|g| g.scope);
    out
}

/// The end of validity of an approval given on `approved_on`.
fn valid_until(approved_on: Date) -> Date {
    Date::from_calendar_date(approved_on.year() + VALIDITY_YEARS, Month::December, 31)
        .unwrap_or(approved_on)
}

fn extend(
    existing: &Application,
    approval: &Approval,
    approved_on: Date,
    records: &mut Vec<Record>,
) -> Application {
    let mut app = existing.clone();
    let granted = grants(&existing.grants, &approval.scopes);
    if sorted(&granted) != sorted(&existing.grants) {
        app.grants = granted;
    }
    if existing.suspension() == Some(SuspendedBy::Datapass) {
        app.status = Status::Active;
        app.suspended_by = None;
    }
    app.valid_until = app.valid_until.max(valid_until(approved_on));
    if app != *existing {
        records.push(Record::Application(app.clone()));
    }
    app
}

/// A new application: no IP allowed and no certificate until an admin
/// adds them; a client secret is generated (stored as a digest, never
/// shown: an admin rotates it to hand one out).
fn create(
    partner_id: PartnerId,
    event: &Event,
    approval: &Approval,
    approved_on: Date,
    now: OffsetDateTime,
    records: &mut Vec<Record>,
) -> Result<Application, RegistryError> {
    let app = Application {
        client_id: ClientId::generate()?,
        partner_id,
        name: application_name(&event.request_id),
        environment: event.environment,
        grants: grants(&[], &approval.scopes),
        valid_from: approved_on,
        valid_until: valid_until(approved_on),
        ip_allowlist: Vec::new(),
        quota_per_minute: DEFAULT_QUOTA_PER_MINUTE,
        status: Status::Active,
        suspended_by: None,
        created_at: now,
    };
    let (_, digest) = generate_secret()?;
    records.push(Record::Application(app.clone()));
    records.push(Record::Secret(app.client_id.clone(), digest));
    Ok(app)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grants_keep_admin_years_and_follow_the_approved_scopes() {
        let admin = Grant {
            scope: Scope::Paiements,
            years: vec![YearSpec::Year(2020)],
        };
        let out = grants(
            std::slice::from_ref(&admin),
            &[Scope::Declarations, Scope::Paiements],
        );
        assert_eq!(out[0].scope, Scope::Declarations);
        assert_eq!(out[0].years, vec![DEFAULT_YEARS]);
        assert_eq!(out[1], admin);
        assert!(grants(&[admin], &[Scope::Declarations]).len() == 1);
        assert_eq!(DEFAULT_YEARS.bounds(2026), (2023, 2025));
    }

    #[test]
    fn validity_ends_on_the_last_day_of_the_third_year() {
        let d = Date::from_calendar_date(2026, Month::March, 2).unwrap();
        assert_eq!(valid_until(d).to_string(), "2029-12-31");
    }
}
