//! Certificates made by the tests with rcgen: partner certificates of each
//! environment (valid, expired, not yet valid), certificates from an
//! untrusted CA, CSRs and CRLs.

use opale_apim::domain::{Environment, Thumbprint};
use opale_apim::pki::{self, PkiFiles};
use rcgen::{
    CertificateParams, CertificateRevocationListParams, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyIdMethod, KeyPair, KeyUsagePurpose, RevokedCertParams, SerialNumber,
};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use time::{Duration, OffsetDateTime};

/// A certificate and its key, PEM.
#[derive(Debug, Clone)]
pub struct Identity {
    pub cert_pem: String,
    pub key_pem: String,
    pub thumbprint: String,
    pub serial: Vec<u8>,
}

/// The PKI of a test server (made with `opale_apim::pki::init`).
#[derive(Debug, Clone)]
pub struct TestPki {
    pub files: PkiFiles,
}

static SERIAL: AtomicU64 = AtomicU64::new(1);

fn next_serial() -> Vec<u8> {
    let n = SERIAL.fetch_add(1, Ordering::Relaxed) + (std::process::id() as u64) * 1_000_000;
    let mut v = n.to_be_bytes().to_vec();
    v.insert(0, 0x11);
    v
}

impl TestPki {
    /// Writes a dev PKI into `dir`.
    pub fn init(dir: &Path) -> TestPki {
        let files = PkiFiles::new(dir);
        pki::init(&files, false).unwrap();
        TestPki { files }
    }

    fn issuer(&self, env: Environment) -> Issuer<'static, KeyPair> {
        let key = KeyPair::from_pem(&std::fs::read_to_string(self.files.env_ca_key(env)).unwrap())
            .unwrap();
        Issuer::from_ca_cert_pem(
            &std::fs::read_to_string(self.files.env_ca_pem(env)).unwrap(),
            key,
        )
        .unwrap()
    }

    /// A partner certificate of `env`, valid now.
    pub fn partner(&self, env: Environment, cn: &str) -> Identity {
        let now = OffsetDateTime::now_utc();
        self.partner_valid(env, cn, now - Duration::days(1), now + Duration::days(30))
    }

    /// A partner certificate of `env` valid between the two dates.
    pub fn partner_valid(
        &self,
        env: Environment,
        cn: &str,
        not_before: OffsetDateTime,
        not_after: OffsetDateTime,
    ) -> Identity {
        leaf(cn, not_before, not_after, &self.issuer(env))
    }

    /// A certificate from a CA nobody trusts.
    pub fn untrusted(cn: &str) -> Identity {
        let key = KeyPair::generate().unwrap();
        let mut ca = CertificateParams::default();
        ca.distinguished_name.push(DnType::CommonName, "Rogue CA");
        ca.is_ca = IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let issuer = Issuer::new(ca, key);
        let now = OffsetDateTime::now_utc();
        leaf(
            cn,
            now - Duration::days(1),
            now + Duration::days(30),
            &issuer,
        )
    }

    /// The admin identity written by `pki init`.
    pub fn admin(&self) -> Identity {
        let cert_pem = std::fs::read_to_string(self.files.admin_pem()).unwrap();
        let key_pem = std::fs::read_to_string(self.files.admin_key()).unwrap();
        let der = opale_apim::pki::parse_certificate_chain(&cert_pem).unwrap();
        Identity {
            thumbprint: Thumbprint::of_der(&der[0]).to_string(),
            cert_pem,
            key_pem,
            serial: Vec::new(),
        }
    }

    /// A CRL of `env`'s CA listing `revoked`, PEM.
    pub fn crl(&self, env: Environment, revoked: &[&Identity]) -> String {
        let now = OffsetDateTime::now_utc();
        let params = CertificateRevocationListParams {
            this_update: now - Duration::minutes(5),
            next_update: now + Duration::days(7),
            crl_number: SerialNumber::from(1u64),
            issuing_distribution_point: None,
            revoked_certs: revoked
                .iter()
                .map(|id| RevokedCertParams {
                    serial_number: SerialNumber::from_slice(&id.serial),
                    revocation_time: now - Duration::minutes(1),
                    reason_code: Some(rcgen::RevocationReason::KeyCompromise),
                    invalidity_date: None,
                })
                .collect(),
            key_identifier_method: KeyIdMethod::Sha256,
        };
        params.signed_by(&self.issuer(env)).unwrap().pem().unwrap()
    }
}

fn leaf(
    cn: &str,
    not_before: OffsetDateTime,
    not_after: OffsetDateTime,
    issuer: &Issuer<'_, KeyPair>,
) -> Identity {
    let key = KeyPair::generate().unwrap();
    let mut p = CertificateParams::default();
    p.distinguished_name.push(DnType::CommonName, cn);
    p.not_before = not_before;
    p.not_after = not_after;
    let serial = next_serial();
    p.serial_number = Some(SerialNumber::from_slice(&serial));
    p.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    p.use_authority_key_identifier_extension = true;
    let cert = p.signed_by(&key, issuer).unwrap();
    Identity {
        thumbprint: Thumbprint::of_der(cert.der()).to_string(),
        cert_pem: cert.pem(),
        key_pem: key.serialize_pem(),
        serial,
    }
}

/// A PEM CSR for a new key, and the key.
pub fn csr(cn: &str) -> (String, String) {
    let key = KeyPair::generate().unwrap();
    let mut p = CertificateParams::default();
    p.distinguished_name.push(DnType::CommonName, cn);
    let csr = p.serialize_request(&key).unwrap();
    (csr.pem().unwrap(), key.serialize_pem())
}
