//! `POST /.well-known/est/simplereenroll` (RFC 7030 §4.2.2): who is
//! renewing (the connection's certificate, judged as step 1 of the chain
//! and by the admission policy), what it asks for (a CSR under the same
//! subject), then the certificate signed and registered.

use super::{EstError, MAX_CSR_BODY, Refused, certs_only, decode_base64};
use crate::chain::{self, Denial, Reason, certificate::Certified};
use crate::pki::PkiError;
use crate::registry::admission::Refusal;
use crate::registry::{CertOrigin, CertificateRecord, Registry};
use crate::respond::{self, Body};
use crate::server::{BodyError, RequestBody};
use crate::tls::ConnInfo;
use hyper::header::{CONTENT_TYPE, HeaderValue};
use hyper::{HeaderMap, Response, StatusCode};
use std::sync::Arc;
use x509_parser::prelude::FromDer;

/// The media type of a renewal's answer (RFC 7030 §4.2.3).
const CERTS_ONLY: &str = "application/pkcs7-mime; smime-type=certs-only";

/// What a renewal needs: the caller's chain context, the CA and limit,
/// and the registry it writes to.
pub struct Renewal<'a> {
    /// Step 1 and admission read this (environment, snapshot, clock).
    pub chain: chain::Context<'a>,
    /// The issuing CA and the certificate limit.
    pub est: &'a super::Est,
    /// Where the new certificate is registered.
    pub registry: &'a Arc<Registry>,
}

/// Renews the connection's certificate from the CSR in `body`; the new
/// certificate's record on success (the caller traces it).
pub async fn simplereenroll(
    cx: &Renewal<'_>,
    conn: &ConnInfo,
    headers: &HeaderMap,
    body: RequestBody,
) -> Result<(Response<Body>, CertificateRecord), Refused> {
    // The body is read (bounded) before anything is refused: an answer
    // sent while the client is still sending makes HTTP/2 clients (curl)
    // report a stream error instead of the status.
    let bytes = body.read(MAX_CSR_BODY).await.map_err(body_denial)?;
    let holder = caller(&cx.chain, conn)?;
    media_type(headers)?;
    let csr = decode_base64(&bytes).map_err(EstError::Body)?;
    same_subject(&csr, &holder.certificate.subject)?;
    let env = cx.chain.env;
    let now = cx.chain.now;
    let der = cx.est.ca(env).issue_der(&csr, now).map_err(EstError::Csr)?;
    let client_id = &holder.application.client_id;
    let record = CertificateRecord::active(client_id, env, &der, CertOrigin::Issued, now)
        .map_err(EstError::Csr)?;
    let stored = register(cx, record).await?;
    let text = certs_only(&der).map_err(EstError::Encode)?;
    let mut resp = respond::bytes(StatusCode::OK, CERTS_ONLY, text);
    resp.headers_mut().insert(
        "content-transfer-encoding",
        HeaderValue::from_static("base64"),
    );
    Ok((resp, stored))
}

/// The caller: step 1 of the chain (certificate), step 2 (address) and
/// the admission policy's remaining conditions (application and partner
/// active, within the application's dates), refused as the chain does.
pub fn caller<'s>(cx: &chain::Context<'s>, conn: &ConnInfo) -> Result<Certified<'s>, Denial> {
    let certified = chain::certificate::check(cx, conn)?;
    chain::ip::check(conn.remote.ip(), &certified)?;
    let app = &certified.application.client_id;
    match certified.admission {
        Ok(()) => Ok(certified),
        Err(Refusal::OutsideValidity(_)) => Err(Denial::new(
            Reason::GrantNotValidToday,
            format!("application {app} is outside its validity dates"),
        )),
        Err(_) => Err(Denial::new(
            Reason::Suspended,
            format!("application {app} or its partner is suspended"),
        )),
    }
}

/// `Content-Type: application/pkcs10` (parameters allowed).
fn media_type(headers: &HeaderMap) -> Result<(), EstError> {
    if crate::server::media_type(headers) == "application/pkcs10" {
        return Ok(());
    }
    let value = headers.get(CONTENT_TYPE).and_then(|v| v.to_str().ok());
    let shown = value.unwrap_or("").chars().take(100).collect();
    Err(EstError::MediaType(shown))
}

/// A body that could not be read, as the catalogue says it.
fn body_denial(e: BodyError) -> Refused {
    let reason = match e {
        BodyError::TimedOut(_) => Reason::BodyTimeout,
        BodyError::TooLarge(_) => Reason::BodyTooLarge,
        _ => Reason::BodyInvalid,
    };
    Refused::Caller(Denial::new(reason, format!("body: {e}")))
}

/// The CSR asks for the subject of the certificate presented (both as
/// RFC 4514 text, the registry's form). A CSR that does not parse is left
/// to the CA, which says why in the admin's words.
fn same_subject(csr: &[u8], presented: &str) -> Result<(), EstError> {
    let parsed = x509_parser::certification_request::X509CertificationRequest::from_der(csr);
    let Ok((_, request)) = parsed else {
        return Err(EstError::Csr(PkiError::Csr(
            rcgen::Error::CouldNotParseCertificationRequest,
        )));
    };
    let requested = request.certification_request_info.subject.to_string();
    if requested == presented {
        Ok(())
    } else {
        Err(EstError::SubjectMismatch {
            requested,
            presented: presented.to_owned(),
        })
    }
}

/// Registers the new certificate within the application's limit.
async fn register(
    cx: &Renewal<'_>,
    record: CertificateRecord,
) -> Result<CertificateRecord, EstError> {
    let limit = Some((cx.est.max_certificates, cx.chain.now));
    cx.registry
        .add_certificate_within(record, limit)
        .await
        .map_err(EstError::from)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn media_type_accepts_pkcs10_with_parameters_only() {
        let mut h = HeaderMap::new();
        assert!(media_type(&h).is_err());
        h.insert(
            CONTENT_TYPE,
            HeaderValue::from_static("application/PKCS10; x=1"),
        );
        assert!(media_type(&h).is_ok());
        h.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        assert!(media_type(&h).is_err());
    }

    #[test]
    fn garbage_csr_is_refused_not_a_panic() {
        assert!(matches!(
            same_subject(b"\x30\x03abc", "CN=x"),
            Err(EstError::Csr(_))
        ));
    }

    #[test]
    fn subject_is_compared_as_text() {
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params = rcgen::CertificateParams::default();
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "app-1");
        let csr = params.serialize_request(&key).unwrap();
        assert!(same_subject(csr.der(), "CN=app-1").is_ok());
        let err = same_subject(csr.der(), "CN=app-2").unwrap_err();
        assert!(err.to_string().contains("CN=app-2"), "{err}");
    }
}
