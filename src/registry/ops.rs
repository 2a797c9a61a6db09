//! Admin operations on the registry: the JSON bodies they accept (also
//! serialized by the admin CLI, so both sides share one definition), their
//! validation (every error names the field) and the records they write.
//! Each function is one all-or-nothing operation run by [`Registry::apply`].

use super::{
    AdminRecord, Application, CertStatus, CertificateRecord, Contact, Grant, Partner, Record,
    Registry, RegistryError, SuspendedBy, YearBound, YearSpec, generate_secret,
};
use crate::domain::{
    Cidr, ClientId, Day, Environment, PartnerId, Scope, Siren, Status, Thumbprint,
};
use ipnetwork::IpNetwork;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use time::{Date, OffsetDateTime};

/// Quota applied when an application names none (calls per minute).
pub const DEFAULT_QUOTA_PER_MINUTE: u32 = 50;
/// Highest quota an admin may set (calls per minute).
pub const MAX_QUOTA_PER_MINUTE: u32 = 1_000_000;
const YEARS: std::ops::RangeInclusive<i32> = 1990..=2100;

/// A contact as sent by an admin.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewContact {
    /// Full name.
    pub nom: String,
    /// E-mail address.
    pub email: String,
    /// Phone number.
    #[serde(default)]
    pub telephone: Option<String>,
}

/// `POST /admin/v1/partners`
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewPartner {
    /// The partner's SIREN.
    pub siren: String,
    /// Display name.
    pub name: String,
    /// Contacts by role.
    #[serde(default)]
    pub contacts: BTreeMap<String, NewContact>,
}

/// `PATCH /admin/v1/partners/{id}`
#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PartnerPatch {
    /// `active` or `suspended`.
    pub status: Option<Status>,
    /// New display name.
    pub name: Option<String>,
    /// Replaces all contacts.
    pub contacts: Option<BTreeMap<String, NewContact>>,
}

/// A grant as sent by an admin.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewGrant {
    /// Scope name.
    pub scope: String,
    /// Fiscal years: `2023`, `"2020..2023"` or `"N-3..N-1"`.
    pub years: Vec<YearSpec>,
}

/// `POST /admin/v1/applications`
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewApplication {
    /// Owner.
    pub partner_id: String,
    /// Display name.
    pub name: String,
    /// `sandbox` or `production`.
    pub environment: Environment,
    /// Scopes and years.
    #[serde(default)]
    pub grants: Vec<NewGrant>,
    /// First day of validity.
    pub valid_from: Day,
    /// Last day of validity, not before `valid_from`.
    pub valid_until: Day,
    /// CIDR blocks.
    pub ip_allowlist: Vec<Cidr>,
    /// Calls per minute; default 50.
    #[serde(default)]
    pub quota_per_minute: Option<u32>,
}

/// `PATCH /admin/v1/applications/{client_id}`
#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApplicationPatch {
    /// `active` or `suspended`.
    pub status: Option<Status>,
    /// Replaces all grants.
    pub grants: Option<Vec<NewGrant>>,
    /// Replaces the allowlist.
    pub ip_allowlist: Option<Vec<Cidr>>,
    /// New quota.
    pub quota_per_minute: Option<u32>,
    /// New last day of validity.
    pub valid_until: Option<Day>,
}

/// What `create_application` returns: the application and its secret,
/// shown this once.
#[derive(Debug)]
pub struct CreatedApplication {
    /// The stored application.
    pub application: Application,
    /// The client secret in clear (never stored).
    pub client_secret: String,
}

/// What `rotate_secret` returns.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RotatedSecret {
    /// The application.
    pub client_id: ClientId,
    /// The new secret in clear (never stored).
    pub client_secret: String,
}

impl Registry {
    /// Registers a partner.
    pub async fn create_partner(
        &self,
        input: NewPartner,
        now: OffsetDateTime,
    ) -> Result<Partner, RegistryError> {
        self.apply(|snap| {
            let siren =
                Siren::parse(input.siren.trim()).map_err(|e| RegistryError::invalid("siren", e))?;
            if snap.partners.values().any(|p| p.siren == siren) {
                return Err(RegistryError::conflict(
                    "siren",
                    format!("a partner with SIREN {siren} already exists"),
                ));
            }
            let partner = Partner {
                id: PartnerId::generate()?,
                siren,
                name: non_empty("name", &input.name)?,
                contacts: contacts(input.contacts)?,
                status: Status::Active,
                created_at: now,
            };
            Ok((vec![Record::Partner(partner.clone())], partner))
        })
        .await
    }

    /// Changes a partner's status, name or contacts.
    pub async fn update_partner(
        &self,
        id: &str,
        patch: PartnerPatch,
    ) -> Result<Partner, RegistryError> {
        self.apply(|snap| {
            let mut partner = snap.partner("id", id)?.clone();
            if let Some(s) = patch.status {
                partner.status = s;
            }
            if let Some(n) = &patch.name {
                partner.name = non_empty("name", n)?;
            }
            if let Some(c) = patch.contacts {
                partner.contacts = contacts(c)?;
            }
            Ok((vec![Record::Partner(partner.clone())], partner))
        })
        .await
    }

    /// Registers an application and generates its client secret.
    pub async fn create_application(
        &self,
        input: NewApplication,
        now: OffsetDateTime,
    ) -> Result<CreatedApplication, RegistryError> {
        self.apply(|snap| {
            let partner = snap.partner("partner_id", &input.partner_id)?;
            let environment = input.environment;
            let (valid_from, valid_until) = (input.valid_from.0, input.valid_until.0);
            check_period(valid_from, valid_until)?;
            let application = Application {
                client_id: ClientId::generate()?,
                partner_id: partner.id.clone(),
                name: non_empty("name", &input.name)?,
                environment,
                grants: grants(&input.grants)?,
                valid_from,
                valid_until,
                ip_allowlist: networks(&input.ip_allowlist),
                quota_per_minute: quota(input.quota_per_minute)?,
                status: Status::Active,
                suspended_by: None,
                created_at: now,
            };
            let (client_secret, digest) = generate_secret()?;
            let records = vec![
                Record::Application(application.clone()),
                Record::Secret(application.client_id.clone(), digest),
            ];
            Ok((
                records,
                CreatedApplication {
                    application,
                    client_secret,
                },
            ))
        })
        .await
    }

    /// Changes any of an application's status, grants, allowlist, quota or
    /// end of validity.
    pub async fn update_application(
        &self,
        client_id: &str,
        patch: ApplicationPatch,
    ) -> Result<Application, RegistryError> {
        self.apply(|snap| {
            let mut app = snap.application("client_id", client_id)?.clone();
            if let Some(s) = patch.status {
                app.status = s;
                app.suspended_by = (app.status == Status::Suspended).then_some(SuspendedBy::Admin);
            }
            if let Some(g) = &patch.grants {
                app.grants = grants(g)?;
            }
            if let Some(ips) = &patch.ip_allowlist {
                app.ip_allowlist = networks(ips);
            }
            if patch.quota_per_minute.is_some() {
                app.quota_per_minute = quota(patch.quota_per_minute)?;
            }
            if let Some(until) = patch.valid_until {
                app.valid_until = until.0;
                check_period(app.valid_from, app.valid_until)?;
            }
            Ok((vec![Record::Application(app.clone())], app))
        })
        .await
    }

    /// Pins a certificate (already verified against the environment's CA by
    /// the caller) to an application.
    pub async fn add_certificate(
        &self,
        record: CertificateRecord,
    ) -> Result<CertificateRecord, RegistryError> {
        self.add_certificate_within(record, None).await
    }

    /// As [`Registry::add_certificate`], refused (409) when `limit` =
    /// `(max, now)` is given and the application already holds `max`
    /// active certificates (neither revoked nor past `not_after` at
    /// `now`): self-service and EST renewals (docs/contract.md §12).
    /// Counted inside the write, so two renewals at once cannot both pass.
    pub async fn add_certificate_within(
        &self,
        record: CertificateRecord,
        limit: Option<(usize, OffsetDateTime)>,
    ) -> Result<CertificateRecord, RegistryError> {
        self.apply(|snap| {
            let app = snap.application("client_id", record.client_id.as_str())?;
            if let Some((max, now)) = limit {
                let active = snap
                    .certificates_of(&app.client_id)
                    .into_iter()
                    .filter(|c| c.status == CertStatus::Active && c.not_after > now)
                    .count();
                if active >= max {
                    return Err(RegistryError::conflict(
                        "certificate",
                        format!(
                            "application {} already holds {active} active certificates \
                             (at most {max}); revoke one first",
                            app.client_id
                        ),
                    ));
                }
            }
            if app.environment != record.environment {
                return Err(RegistryError::invalid(
                    "certificate",
                    format!(
                        "application {} is a {} application",
                        app.client_id, app.environment
                    ),
                ));
            }
            if snap.certificates.contains_key(&record.thumbprint)
                || snap.admins.contains_key(&record.thumbprint)
            {
                return Err(RegistryError::conflict(
                    "certificate",
                    format!("certificate {} is already registered", record.thumbprint),
                ));
            }
            Ok((vec![Record::Certificate(record.clone())], record))
        })
        .await
    }

    /// Revokes an application's certificate at once.
    pub async fn revoke_certificate(
        &self,
        client_id: &str,
        thumbprint: &str,
        now: OffsetDateTime,
    ) -> Result<CertificateRecord, RegistryError> {
        self.apply(|snap| {
            snap.application("client_id", client_id)?;
            let mut cert = snap
                .certificates
                .get(&Thumbprint::new(thumbprint))
                .filter(|c| c.client_id.as_str() == client_id)
                .ok_or_else(|| RegistryError::not_found("thumbprint", "certificate", thumbprint))?
                .clone();
            if cert.status == CertStatus::Revoked {
                return Ok((Vec::new(), cert));
            }
            cert.status = CertStatus::Revoked;
            cert.revoked_at = Some(now);
            Ok((vec![Record::Certificate(cert.clone())], cert))
        })
        .await
    }

    /// Replaces an application's client secret; the old one stops working
    /// at once. Returns the new secret, shown this once.
    pub async fn rotate_secret(&self, client_id: &str) -> Result<RotatedSecret, RegistryError> {
        self.apply(|snap| {
            let app = snap.application("client_id", client_id)?;
            let (client_secret, digest) = generate_secret()?;
            let out = RotatedSecret {
                client_id: app.client_id.clone(),
                client_secret,
            };
            Ok((vec![Record::Secret(app.client_id.clone(), digest)], out))
        })
        .await
    }

    /// Allows a certificate on the admin listener (idempotent).
    pub async fn add_admin(&self, record: AdminRecord) -> Result<AdminRecord, RegistryError> {
        self.apply(|snap| {
            if let Some(existing) = snap.admins.get(&record.thumbprint) {
                return Ok((Vec::new(), existing.clone()));
            }
            if snap.certificates.contains_key(&record.thumbprint) {
                return Err(RegistryError::conflict(
                    "certificate",
                    "this certificate is registered to a partner application",
                ));
            }
            Ok((vec![Record::Admin(record.clone())], record))
        })
        .await
    }
}

fn non_empty(field: &str, value: &str) -> Result<String, RegistryError> {
    let v = value.trim();
    if v.is_empty() {
        return Err(RegistryError::invalid(field, "must not be empty"));
    }
    Ok(v.to_owned())
}

fn contacts(
    input: BTreeMap<String, NewContact>,
) -> Result<BTreeMap<String, Contact>, RegistryError> {
    input
        .into_iter()
        .map(|(role, c)| {
            let field = format!("contacts.{role}");
            if role.is_empty() || !role.chars().all(|ch| ch.is_ascii_lowercase() || ch == '_') {
                return Err(RegistryError::invalid(
                    field,
                    "a contact role is a lowercase word such as \"technique\"",
                ));
            }
            let email = c.email.trim();
            if !valid_email(email) {
                return Err(RegistryError::invalid(
                    format!("{field}.email"),
                    format!("{email:?} is not an e-mail address"),
                ));
            }
            let telephone = c
                .telephone
                .map(|t| t.trim().to_owned())
                .filter(|t| !t.is_empty());
            if let Some(t) = &telephone
                && !valid_phone(t)
            {
                return Err(RegistryError::invalid(
                    format!("{field}.telephone"),
                    format!(
                        "{t:?} is not a phone number (digits, with spaces, dots, dashes or \
                         parentheses, an optional leading +; 6 to 15 digits)"
                    ),
                ));
            }
            let contact = Contact {
                nom: non_empty(&format!("{field}.nom"), &c.nom)?,
                email: email.to_owned(),
                telephone,
            };
            Ok((role, contact))
        })
        .collect()
}

/// A phone number as people write it: digits grouped by spaces, dots,
/// dashes or parentheses, an optional leading `+`; 6 to 15 digits (E.164
/// allows 15; short numbers are internal extensions).
pub(crate) fn valid_phone(phone: &str) -> bool {
    let body = phone.strip_prefix('+').unwrap_or(phone);
    let digits = body.chars().filter(char::is_ascii_digit).count();
    body.chars()
        .all(|c| c.is_ascii_digit() || matches!(c, ' ' | '.' | '-' | '(' | ')'))
        && (6..=15).contains(&digits)
}

/// RFC 5322 syntax (email_address crate) plus a dotted domain, since
/// partner contacts are reached over the Internet.
pub(crate) fn valid_email(email: &str) -> bool {
    email_address::EmailAddress::parse_with_options(email, Default::default())
        .map(|a| a.domain().contains('.') && !a.domain().starts_with('['))
        .unwrap_or(false)
}

fn check_period(from: Date, until: Date) -> Result<(), RegistryError> {
    if until < from {
        return Err(RegistryError::invalid(
            "valid_until",
            format!("{until} is before valid_from {from}"),
        ));
    }
    Ok(())
}

fn grants(input: &[NewGrant]) -> Result<Vec<Grant>, RegistryError> {
    let mut seen = BTreeSet::new();
    input
        .iter()
        .enumerate()
        .map(|(i, g)| {
            let scope = Scope::parse(&g.scope)
                .map_err(|e| RegistryError::invalid(format!("grants[{i}].scope"), e))?;
            if !seen.insert(scope) {
                return Err(RegistryError::invalid(
                    format!("grants[{i}].scope"),
                    format!("scope {scope} is granted twice"),
                ));
            }
            let field = format!("grants[{i}].years");
            if g.years.is_empty() {
                return Err(RegistryError::invalid(
                    field,
                    "at least one year is required",
                ));
            }
            for y in &g.years {
                let absolute_ok = match y {
                    YearSpec::Year(y) => YEARS.contains(y),
                    YearSpec::Range(a, b) => [a, b].iter().all(|b| match b {
                        YearBound::Absolute(y) => YEARS.contains(y),
                        YearBound::Relative(_) => true,
                    }),
                };
                if !absolute_ok {
                    return Err(RegistryError::invalid(
                        &field,
                        format!("{y} is not a fiscal year between 1990 and 2100"),
                    ));
                }
                if y.is_inverted() {
                    return Err(RegistryError::invalid(
                        &field,
                        format!("range {y} is inverted"),
                    ));
                }
            }
            let mut years = g.years.clone();
            years.sort_by_key(|y| (y.bounds(0), y.to_string()));
            years.dedup();
            Ok(Grant { scope, years })
        })
        .collect()
}

fn networks(input: &[Cidr]) -> Vec<IpNetwork> {
    input.iter().map(|c| c.0).collect()
}

fn quota(value: Option<u32>) -> Result<u32, RegistryError> {
    match value {
        None => Ok(DEFAULT_QUOTA_PER_MINUTE),
        Some(q) if (1..=MAX_QUOTA_PER_MINUTE).contains(&q) => Ok(q),
        Some(q) => Err(RegistryError::invalid(
            "quota_per_minute",
            format!("{q} is outside 1..={MAX_QUOTA_PER_MINUTE}"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phone_rules() {
        for ok in [
            "01 23 45 67 89",
            "+33 1 23 45 67 89",
            "01.23.45.67.89",
            "(01) 23-45-67-89",
            "123456",
        ] {
            assert!(valid_phone(ok), "{ok}");
        }
        for bad in [
            "0102",
            "abc",
            "01 23 45 67 89 ext 3",
            "++33123456789",
            "1234567890123456",
            "+",
        ] {
            assert!(!valid_phone(bad), "{bad}");
        }
    }

    #[test]
    fn email_rules() {
        assert!(valid_email("jeanne.dupont@example.fr"));
        assert!(!valid_email("not-an-email"));
        assert!(!valid_email("a@b"));
        assert!(!valid_email("a b@example.fr"));
    }

    #[test]
    fn grants_name_the_failing_index() {
        let bad = [
            NewGrant {
                scope: "declarations".into(),
                years: vec![YearSpec::Year(2023)],
            },
            NewGrant {
                scope: "impots".into(),
                years: vec![YearSpec::Year(2023)],
            },
        ];
        let err = grants(&bad).unwrap_err().to_string();
        assert!(err.starts_with("grants[1].scope"), "{err}");
    }

    #[test]
    fn inverted_period_names_valid_until() {
        let from = time::macros::date!(2026 - 01 - 01);
        let until = time::macros::date!(2025 - 01 - 01);
        let err = check_period(from, until).unwrap_err().to_string();
        assert!(err.starts_with("valid_until"), "{err}");
    }
}
