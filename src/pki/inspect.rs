//! Reading certificates: PEM to DER chain, and the facts the registry keeps
//! (subject, issuer, serial, validity, thumbprint).

use super::PkiError;
use crate::domain::Thumbprint;
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;
use time::OffsetDateTime;

/// Facts read from one certificate.
#[derive(Debug, Clone)]
pub struct CertInfo {
    /// `x5t#S256`.
    pub thumbprint: Thumbprint,
    /// Subject DN (RFC 4514).
    pub subject: String,
    /// Issuer DN (RFC 4514).
    pub issuer: String,
    /// Serial, lowercase hex.
    pub serial: String,
    /// Start of validity.
    pub not_before: OffsetDateTime,
    /// End of validity.
    pub not_after: OffsetDateTime,
}

impl CertInfo {
    /// Parses a DER certificate.
    pub fn from_der(der: &[u8]) -> Result<CertInfo, PkiError> {
        let (_, cert) = x509_parser::parse_x509_certificate(der).map_err(PkiError::X509)?;
        let validity = cert.validity();
        Ok(CertInfo {
            thumbprint: Thumbprint::of_der(der),
            subject: cert.subject().to_string(),
            issuer: cert.issuer().to_string(),
            serial: cert.raw_serial_as_string().replace(':', ""),
            not_before: validity.not_before.to_datetime(),
            not_after: validity.not_after.to_datetime(),
        })
    }
}

/// The certificates in a PEM text, leaf first. Fails when there is none or
/// when the leaf is not a parseable X.509 certificate.
pub fn parse_certificate_chain(pem: &str) -> Result<Vec<CertificateDer<'static>>, PkiError> {
    let chain = CertificateDer::pem_slice_iter(pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .map_err(PkiError::Pem)?;
    let leaf = chain
        .first()
        .ok_or_else(|| PkiError::NotACertificate("no CERTIFICATE block found".into()))?;
    CertInfo::from_der(leaf)?;
    Ok(chain)
}

/// PEM text of a DER certificate.
pub fn pem_encode(der: &[u8]) -> String {
    pem::encode(&pem::Pem::new("CERTIFICATE", der.to_vec()))
}
