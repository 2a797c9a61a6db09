//! Certificate calls: issue from a CSR (signed by the application's
//! environment CA), register an externally issued PEM, register admins.

use super::ApiError;
use super::api::blocking;
use crate::app::App;
use crate::pki::{self, CertInfo, PkiError};
use crate::registry::{AdminRecord, CertOrigin, CertStatus, CertificateRecord};
use crate::respond::{self, Body};
use hyper::{Response, StatusCode};
use rustls_pki_types::CertificateDer;
use serde::Deserialize;
use serde_json::json;
use std::sync::Arc;
use time::OffsetDateTime;

/// `POST /admin/v1/applications/{client_id}/certificates`: exactly one of
/// `csr` (to be signed) or `certificate` (to be registered).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CertificateInput {
    /// A PKCS #10 request, PEM.
    #[serde(default)]
    pub csr: Option<String>,
    /// A certificate (optionally followed by intermediates), PEM.
    #[serde(default)]
    pub certificate: Option<String>,
}

/// `POST /admin/v1/admins`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdminInput {
    /// The admin's client certificate, PEM, issued by the root CA.
    pub certificate: String,
}

/// Issues or registers a certificate for an application.
pub async fn add(
    app: &Arc<App>,
    client_id: &str,
    input: CertificateInput,
) -> Result<Response<Body>, ApiError> {
    let environment = app
        .registry
        .snapshot()
        .application("client_id", client_id)?
        .environment;
    let env = app.env(environment);
    let now = OffsetDateTime::now_utc();
    let (der, origin) = match (input.csr, input.certificate) {
        (Some(csr), None) => {
            let der = env
                .ca
                .issue(&csr, now)
                .map_err(|e| ApiError::bad_request("csr", e.to_string()))?;
            (der, CertOrigin::Issued)
        }
        (None, Some(pem)) => {
            let chain = pki::parse_certificate_chain(&pem).map_err(cert_error)?;
            env.verifier.verdict(&chain).map_err(|fault| {
                ApiError::bad_request(
                    "certificate",
                    format!("{fault} ({environment} environment)"),
                )
            })?;
            let leaf = chain
                .into_iter()
                .next()
                .ok_or_else(|| cert_error(PkiError::NotACertificate("empty".into())))?;
            (leaf, CertOrigin::Registered)
        }
        _ => {
            return Err(ApiError::bad_request(
                "body",
                "give exactly one of \"csr\" (to be signed) or \"certificate\" (to be registered)",
            ));
        }
    };
    let record = record(client_id, environment, &der, origin, now)?;
    let stored = blocking(app, move |app| app.registry.add_certificate(record)).await?;
    let mut body = serde_json::to_value(&stored).unwrap_or_default();
    body["certificate"] = json!(stored.pem);
    Ok(respond::json(StatusCode::CREATED, &body))
}

/// Registers another admin certificate (must chain to `ca.pem`).
pub async fn add_admin(app: &Arc<App>, input: AdminInput) -> Result<Response<Body>, ApiError> {
    let chain = pki::parse_certificate_chain(&input.certificate).map_err(cert_error)?;
    app.admin_verifier.verdict(&chain).map_err(|fault| {
        ApiError::bad_request("certificate", format!("{fault} (admin root CA)"))
    })?;
    let info = CertInfo::from_der(&chain[0]).map_err(cert_error)?;
    let record = AdminRecord {
        thumbprint: info.thumbprint,
        subject: info.subject,
        registered_at: OffsetDateTime::now_utc(),
    };
    let stored = blocking(app, move |app| app.registry.add_admin(record)).await?;
    Ok(respond::json(StatusCode::CREATED, &stored))
}

fn cert_error(e: PkiError) -> ApiError {
    ApiError::bad_request("certificate", e.to_string())
}

fn record(
    client_id: &str,
    environment: crate::domain::Environment,
    der: &CertificateDer<'static>,
    origin: CertOrigin,
    now: OffsetDateTime,
) -> Result<CertificateRecord, ApiError> {
    let info = CertInfo::from_der(der).map_err(cert_error)?;
    Ok(CertificateRecord {
        thumbprint: info.thumbprint,
        client_id: crate::domain::ClientId::new(client_id),
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
        pem: pki::pem_encode(der),
    })
}
