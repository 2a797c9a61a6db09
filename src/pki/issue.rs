//! Generating the dev PKI and issuing partner certificates from CSRs.

use super::PkiError;
use super::files::{PkiFiles, write_private, write_public};
use crate::domain::{Environment, random_bytes};
use rcgen::{
    BasicConstraints, CertificateParams, CertificateSigningRequestParams, DistinguishedName,
    DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair, KeyUsagePurpose, SerialNumber,
};
use rustls_pki_types::CertificateDer;
use std::path::PathBuf;
use time::{Duration, OffsetDateTime};

const ORG: &str = "opale-apim (dev PKI)";
/// Validity of partner certificates issued from a CSR.
pub const PARTNER_CERT_DAYS: i64 = 365;

/// Creates the dev PKI in `files.dir()`. Refuses when any file exists
/// unless `force`. Returns the files written.
pub fn init(files: &PkiFiles, force: bool) -> Result<Vec<PathBuf>, PkiError> {
    if let Some(existing) = files.all().into_iter().find(|p| p.exists())
        && !force
    {
        return Err(PkiError::Exists(existing));
    }
    std::fs::create_dir_all(files.dir()).map_err(|source| PkiError::Io {
        path: files.dir().to_path_buf(),
        source,
    })?;
    let now = OffsetDateTime::now_utc();

    let root_key = KeyPair::generate()?;
    let root_params = ca_params("OPALE dev root CA", now, 0)?;
    let root_cert = root_params.self_signed(&root_key)?;
    let root = Issuer::from_params(&root_params, &root_key);

    let server_key = KeyPair::generate()?;
    let mut server = leaf_params("localhost", now, Duration::days(825))?;
    server.subject_alt_names = vec![
        rcgen::SanType::DnsName("localhost".try_into()?),
        rcgen::SanType::IpAddress([127, 0, 0, 1].into()),
        rcgen::SanType::IpAddress(std::net::Ipv6Addr::LOCALHOST.into()),
    ];
    server.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let server_cert = server.signed_by(&server_key, &root)?;

    let admin_key = KeyPair::generate()?;
    let mut admin = leaf_params("opale-admin", now, Duration::days(730))?;
    admin.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    let admin_cert = admin.signed_by(&admin_key, &root)?;

    write_public(&files.ca_pem(), root_cert.pem().as_bytes())?;
    write_private(&files.ca_key(), root_key.serialize_pem().as_bytes())?;
    write_public(&files.server_pem(), server_cert.pem().as_bytes())?;
    write_private(&files.server_key(), server_key.serialize_pem().as_bytes())?;
    for env in Environment::ALL {
        let key = KeyPair::generate()?;
        let cert = ca_params(&format!("OPALE {env} partner CA"), now, 0)?.self_signed(&key)?;
        write_public(&files.env_ca_pem(env), cert.pem().as_bytes())?;
        write_private(&files.env_ca_key(env), key.serialize_pem().as_bytes())?;
    }
    write_public(&files.admin_pem(), admin_cert.pem().as_bytes())?;
    write_private(&files.admin_key(), admin_key.serialize_pem().as_bytes())?;
    Ok(files.all())
}

/// An environment's issuing CA, loaded from `certs_dir`.
pub struct IssuingCa {
    environment: Environment,
    certificate: CertificateDer<'static>,
    issuer: Issuer<'static, KeyPair>,
}

impl std::fmt::Debug for IssuingCa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IssuingCa")
            .field("environment", &self.environment)
            .finish_non_exhaustive()
    }
}

impl IssuingCa {
    /// Loads `{env}-ca.pem` and `{env}-ca.key`.
    pub fn load(files: &PkiFiles, environment: Environment) -> Result<Self, PkiError> {
        let cert_path = files.env_ca_pem(environment);
        let key_path = files.env_ca_key(environment);
        let cert_pem = files.read(&cert_path)?;
        let key = KeyPair::from_pem(&files.read(&key_path)?).map_err(|e| PkiError::BadKey {
            path: key_path.clone(),
            message: e.to_string(),
        })?;
        let chain = super::parse_certificate_chain(&cert_pem)?;
        let certificate = chain
            .into_iter()
            .next()
            .ok_or_else(|| PkiError::NotACertificate(cert_path.display().to_string()))?;
        let issuer = Issuer::from_ca_cert_der(&certificate, key)?;
        Ok(IssuingCa {
            environment,
            certificate,
            issuer,
        })
    }

    /// The CA certificate (a trust anchor of its environment).
    pub fn certificate(&self) -> &CertificateDer<'static> {
        &self.certificate
    }

    /// Signs a partner client certificate from a PEM CSR whose signature
    /// verifies. Only the CSR's subject and key are taken: validity, key
    /// usage (digitalSignature) and EKU (clientAuth) are the CA's choice.
    pub fn issue(
        &self,
        csr_pem: &str,
        now: OffsetDateTime,
    ) -> Result<CertificateDer<'static>, PkiError> {
        let csr = CertificateSigningRequestParams::from_pem(csr_pem).map_err(PkiError::Csr)?;
        self.sign(csr, now)
    }

    /// As [`IssuingCa::issue`], from a DER CSR (EST, RFC 7030 §4.2.1).
    pub fn issue_der(
        &self,
        csr_der: &[u8],
        now: OffsetDateTime,
    ) -> Result<CertificateDer<'static>, PkiError> {
        let der = rustls_pki_types::CertificateSigningRequestDer::from(csr_der);
        let csr = CertificateSigningRequestParams::from_der(&der).map_err(PkiError::Csr)?;
        self.sign(csr, now)
    }

    /// The one place a partner certificate is signed: the CSR's subject
    /// and key, the CA's validity, key usage and EKU.
    fn sign(
        &self,
        mut csr: CertificateSigningRequestParams,
        now: OffsetDateTime,
    ) -> Result<CertificateDer<'static>, PkiError> {
        let requested_dn = std::mem::take(&mut csr.params.distinguished_name);
        let mut params = leaf_params("", now, Duration::days(PARTNER_CERT_DAYS))?;
        params.distinguished_name = requested_dn;
        if params.distinguished_name.iter().next().is_none() {
            return Err(PkiError::BadCsr("the CSR has an empty subject".into()));
        }
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        csr.params = params;
        Ok(csr.signed_by(&self.issuer)?.der().clone())
    }
}

/// The reason rcgen refused a CSR, said in the CSR's terms.
pub(super) fn csr_reason(e: &rcgen::Error) -> String {
    match e {
        rcgen::Error::CouldNotParseCertificationRequest => {
            "not a PEM certificate signing request (PKCS #10)".into()
        }
        rcgen::Error::InvalidCertificationRequestSignature => {
            "the CSR's signature does not verify".into()
        }
        rcgen::Error::UnsupportedExtension => {
            "the CSR requests an extension this CA does not issue".into()
        }
        rcgen::Error::UnsupportedSignatureAlgorithm => {
            "the CSR uses an unsupported signature algorithm".into()
        }
        other => format!("unusable CSR: {other}"),
    }
}

fn random_serial() -> Result<SerialNumber, PkiError> {
    let mut bytes = random_bytes::<16>()?;
    bytes[0] &= 0x7f; // positive INTEGER
    bytes[0] |= 0x01; // and never shortened
    Ok(SerialNumber::from_slice(&bytes))
}

fn dn(common_name: &str) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::OrganizationName, ORG);
    dn.push(DnType::CommonName, common_name);
    dn
}

fn ca_params(
    common_name: &str,
    now: OffsetDateTime,
    path_len: u8,
) -> Result<CertificateParams, PkiError> {
    let mut p = CertificateParams::default();
    p.distinguished_name = dn(common_name);
    p.is_ca = IsCa::Ca(BasicConstraints::Constrained(path_len));
    p.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    p.not_before = now - Duration::hours(1);
    p.not_after = now + Duration::days(3650);
    p.serial_number = Some(random_serial()?);
    Ok(p)
}

fn leaf_params(
    common_name: &str,
    now: OffsetDateTime,
    lifetime: Duration,
) -> Result<CertificateParams, PkiError> {
    let mut p = CertificateParams::default();
    p.distinguished_name = dn(common_name);
    p.is_ca = IsCa::ExplicitNoCa;
    p.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    p.not_before = now - Duration::minutes(5);
    p.not_after = now + lifetime;
    p.serial_number = Some(random_serial()?);
    p.use_authority_key_identifier_extension = true;
    Ok(p)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn init_writes_every_file_keys_0600_and_refuses_to_overwrite() {
        let dir = tempfile::tempdir().unwrap();
        let files = PkiFiles::new(dir.path());
        let written = init(&files, false).unwrap();
        assert_eq!(written.len(), 10);
        for f in &written {
            let mode = std::fs::metadata(f).unwrap().permissions().mode() & 0o777;
            if f.extension().is_some_and(|e| e == "key") {
                assert_eq!(mode, 0o600, "{}", f.display());
            } else {
                assert_eq!(mode, 0o644, "{}", f.display());
            }
        }
        let before = std::fs::read(files.ca_key()).unwrap();
        assert!(matches!(init(&files, false), Err(PkiError::Exists(_))));
        assert_eq!(std::fs::read(files.ca_key()).unwrap(), before);
        init(&files, true).unwrap();
        assert_ne!(std::fs::read(files.ca_key()).unwrap(), before);
    }

    #[test]
    fn issues_client_certificate_from_csr_and_rejects_tampered_csr() {
        let dir = tempfile::tempdir().unwrap();
        let files = PkiFiles::new(dir.path());
        init(&files, false).unwrap();
        let ca = IssuingCa::load(&files, Environment::Sandbox).unwrap();
        let key = KeyPair::generate().unwrap();
        let mut req = CertificateParams::default();
        req.distinguished_name = dn("partner-app");
        let csr = req.serialize_request(&key).unwrap();
        let der = ca
            .issue(&csr.pem().unwrap(), OffsetDateTime::now_utc())
            .unwrap();
        let info = crate::pki::CertInfo::from_der(&der).unwrap();
        assert!(info.subject.contains("partner-app"), "{}", info.subject);
        assert!(
            info.issuer.contains("sandbox partner CA"),
            "{}",
            info.issuer
        );

        // Flip one byte of the signature (last bytes of the DER).
        let mut bad = csr.der().to_vec();
        let n = bad.len();
        bad[n - 3] ^= 0x01;
        let bad_pem = format!(
            "-----BEGIN CERTIFICATE REQUEST-----\n{}\n-----END CERTIFICATE REQUEST-----\n",
            base64::Engine::encode(&base64::engine::general_purpose::STANDARD, &bad)
        );
        let err = ca.issue(&bad_pem, OffsetDateTime::now_utc()).unwrap_err();
        assert!(err.to_string().contains("does not verify"), "{err}");
        let err = ca.issue("hello", OffsetDateTime::now_utc()).unwrap_err();
        assert!(err.to_string().contains("not a PEM"), "{err}");
    }
}
