//! Certificate calls: issue from a CSR (signed by the application's
//! environment CA), register an externally issued PEM, register admins.

use super::ApiError;
use super::api::{Answer, Call, read_json};
use super::types::{AdminRequest, CertificateRequest, StoredCertificate};
use crate::pki::{self, CertInfo, PkiError};
use crate::registry::{AdminRecord, CertOrigin, CertificateRecord};
use crate::respond;
use hyper::StatusCode;
use rustls_pki_types::CertificateDer;
use time::OffsetDateTime;

/// `GET /admin/v1/applications/{client_id}/certificates`
pub(super) async fn list(c: Call) -> Answer {
    let s = c.admin.registry.snapshot();
    let app_rec = s.application("client_id", c.param("client_id"))?;
    Ok(respond::json(
        StatusCode::OK,
        &s.certificates_of(&app_rec.client_id),
    ))
}

/// `DELETE /admin/v1/applications/{client_id}/certificates/{thumbprint}`:
/// revoked at once → 204.
pub(super) async fn revoke(c: Call) -> Answer {
    let (id, thumb) = (
        c.param("client_id").to_owned(),
        c.param("thumbprint").to_owned(),
    );
    let now = OffsetDateTime::now_utc();
    c.admin
        .registry
        .revoke_certificate(&id, &thumb, now)
        .await?;
    Ok(respond::empty(StatusCode::NO_CONTENT))
}

/// `POST /admin/v1/applications/{client_id}/certificates`: issues (from
/// `csr`) or registers (`certificate`) a certificate → 201.
pub(super) async fn add(c: Call) -> Answer {
    let client_id = c.param("client_id").to_owned();
    let (admin, input): (_, CertificateRequest) = (c.admin, read_json(c.req).await?);
    let environment = admin
        .registry
        .snapshot()
        .application("client_id", &client_id)?
        .environment;
    let env = admin.reloader.env(environment);
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
    let record = record(&client_id, environment, &der, origin, now)?;
    let stored = admin.registry.add_certificate(record).await?;
    let view = StoredCertificate {
        certificate: stored.pem.clone(),
        record: stored,
    };
    Ok(respond::json(StatusCode::CREATED, &view))
}

/// `POST /admin/v1/admins`: registers another admin certificate (must
/// chain to `ca.pem`) → 201.
pub(super) async fn add_admin(c: Call) -> Answer {
    let (admin, input): (_, AdminRequest) = (c.admin, read_json(c.req).await?);
    let chain = pki::parse_certificate_chain(&input.certificate).map_err(cert_error)?;
    admin
        .reloader
        .trust()
        .admin
        .verifier
        .verdict(&chain)
        .map_err(|fault| {
            ApiError::bad_request("certificate", format!("{fault} (admin root CA)"))
        })?;
    let info = CertInfo::from_der(&chain[0]).map_err(cert_error)?;
    let record = AdminRecord {
        thumbprint: info.thumbprint,
        subject: info.subject,
        registered_at: OffsetDateTime::now_utc(),
    };
    let stored = admin.registry.add_admin(record).await?;
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
    let client_id = crate::domain::ClientId::new(client_id);
    CertificateRecord::active(&client_id, environment, der, origin, now).map_err(cert_error)
}
