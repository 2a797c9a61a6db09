//! Registry records as stored and as returned by the admin API: partners,
//! applications with their grants, certificates, client-secret digests and
//! admin certificates.

use super::suspension::SuspendedBy;
use super::years::YearSpec;
use crate::domain::{ClientId, Environment, PartnerId, Scope, Siren, Status, Thumbprint};
use ipnetwork::IpNetwork;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use time::{Date, OffsetDateTime};

/// A person to reach at a partner (`technique`, `administratif`, …).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Contact {
    /// Full name.
    pub nom: String,
    /// E-mail address (validated on input).
    pub email: String,
    /// Phone number, free text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub telephone: Option<String>,
}

/// A conventioned organisation that owns applications.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Partner {
    /// Assigned at creation (UUID).
    pub id: PartnerId,
    /// The partner's own SIREN (unique across partners).
    pub siren: Siren,
    /// Display name.
    pub name: String,
    /// Contacts by role.
    pub contacts: BTreeMap<String, Contact>,
    /// Suspending a partner suspends all its applications.
    pub status: Status,
    /// Creation time (RFC 3339).
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

/// The right to use one scope for a set of fiscal years.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Grant {
    /// The dataset's scope.
    pub scope: Scope,
    /// Fiscal years (`annee`) the scope covers: years and ranges, absolute
    /// or relative to the current year (`"N-3..N-1"`).
    pub years: Vec<YearSpec>,
}

impl Grant {
    /// Whether `year` is covered when the current year is `current`.
    pub fn covers(&self, year: i32, current: i32) -> bool {
        self.years.iter().any(|y| y.covers(year, current))
    }
}

/// An OAuth client of one environment, owned by a partner.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Application {
    /// OAuth `client_id` (UUID assigned at creation).
    pub client_id: ClientId,
    /// Owner.
    pub partner_id: PartnerId,
    /// Display name.
    pub name: String,
    /// The only environment this application can call.
    pub environment: Environment,
    /// Scopes and years granted.
    pub grants: Vec<Grant>,
    /// First day the grants are valid (inclusive).
    pub valid_from: Date,
    /// Last day the grants are valid (inclusive).
    pub valid_until: Date,
    /// Caller addresses allowed (step 2 of the chain).
    pub ip_allowlist: Vec<IpNetwork>,
    /// Calls per minute admitted by the quota step (default 50).
    pub quota_per_minute: u32,
    /// `suspended` refuses every call (step 4).
    pub status: Status,
    /// Who suspended it, while `status` is `suspended` (absent when
    /// active). A suspended record written before this field existed reads
    /// as `None`, which counts as an admin's suspension.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub suspended_by: Option<SuspendedBy>,
    /// Creation time (RFC 3339).
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

/// Whether a registered certificate may still be used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CertStatus {
    /// Usable.
    Active,
    /// Revoked by an admin: refused at once with 910102.
    Revoked,
}

/// How a certificate entered the registry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CertOrigin {
    /// Signed by the environment's CA from a partner's CSR.
    Issued,
    /// An externally issued certificate registered by its PEM.
    Registered,
}

/// A client certificate pinned to an application by its thumbprint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CertificateRecord {
    /// `x5t#S256` of the DER.
    pub thumbprint: Thumbprint,
    /// The application it authenticates.
    pub client_id: ClientId,
    /// The application's environment (its CA issued or vouches for it).
    pub environment: Environment,
    /// Subject DN, RFC 4514 text.
    pub subject: String,
    /// Issuer DN, RFC 4514 text.
    pub issuer: String,
    /// Serial number, lowercase hex.
    pub serial: String,
    /// Start of validity (RFC 3339).
    #[serde(with = "time::serde::rfc3339")]
    pub not_before: OffsetDateTime,
    /// End of validity (RFC 3339).
    #[serde(with = "time::serde::rfc3339")]
    pub not_after: OffsetDateTime,
    /// Active or revoked.
    pub status: CertStatus,
    /// When it was revoked.
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub revoked_at: Option<OffsetDateTime>,
    /// Issued from a CSR or registered as a PEM.
    pub origin: CertOrigin,
    /// When it entered the registry (RFC 3339).
    #[serde(with = "time::serde::rfc3339")]
    pub registered_at: OffsetDateTime,
    /// The certificate itself (PEM), so it can be handed out again.
    pub pem: String,
}

impl CertificateRecord {
    /// The active record of the DER certificate `der`, pinned to
    /// `client_id` of `environment` at `now`: the one builder shared by the
    /// admin's `cert issue` / `cert add` and EST renewals.
    pub fn active(
        client_id: &ClientId,
        environment: Environment,
        der: &[u8],
        origin: CertOrigin,
        now: OffsetDateTime,
    ) -> Result<CertificateRecord, crate::pki::PkiError> {
        let info = crate::pki::CertInfo::from_der(der)?;
        Ok(CertificateRecord {
            thumbprint: info.thumbprint,
            client_id: client_id.clone(),
            environment,
            subject: info.subject,
            issuer: info.issuer,
            serial: info.serial,
            not_before: info.not_before,
            not_after: info.not_after,
            status: CertStatus::Active,
            revoked_at: None,
            origin,
            registered_at: now,
            pem: crate::pki::pem_encode(der),
        })
    }
}

/// A certificate allowed on the admin listener.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AdminRecord {
    /// `x5t#S256` of the DER.
    pub thumbprint: Thumbprint,
    /// Subject DN, RFC 4514 text.
    pub subject: String,
    /// When it was registered (RFC 3339).
    #[serde(with = "time::serde::rfc3339")]
    pub registered_at: OffsetDateTime,
}
