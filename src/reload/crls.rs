//! The CRL files of one environment (`[sandbox] crls`, `[production]
//! crls`): read, checked one file at a time (so that a bad file is named),
//! and stamped with their modification time and size so that the watcher
//! (`watch.rs`) sees when one is rewritten.

use super::ReloadError;
use crate::tls::ChainVerifier;
use rustls::crypto::CryptoProvider;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, CertificateRevocationListDer};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;

/// What a file looked like when it was read: modification time and size
/// (`None` when it could not be stat'ed).
pub type Stamp = Option<(SystemTime, u64)>;

/// One CRL file as read.
#[derive(Debug, Clone)]
pub struct CrlFile {
    /// The file.
    pub path: PathBuf,
    /// Its stamp, taken before it was read.
    pub stamp: Stamp,
    /// How many CRLs it holds (at least one).
    pub count: usize,
}

/// The CRLs of one environment.
#[derive(Debug, Clone, Default)]
pub struct CrlSet {
    /// The files, in configuration order.
    pub files: Vec<CrlFile>,
    /// Every CRL of every file, for the verifier.
    pub ders: Vec<CertificateRevocationListDer<'static>>,
}

impl CrlSet {
    /// Reads `paths`; each file must hold at least one PEM `X509 CRL` that
    /// rustls can parse with `ca` as trust anchor, or the file is named in
    /// the error.
    pub fn read(
        paths: &[PathBuf],
        ca: &CertificateDer<'static>,
        provider: &Arc<CryptoProvider>,
    ) -> Result<CrlSet, ReloadError> {
        let mut set = CrlSet::default();
        for path in paths {
            let stamp = stamp(path);
            let crls = read_file(path)?;
            ChainVerifier::new(provider.clone(), std::slice::from_ref(ca), crls.clone())
                .map_err(|e| crl_error(path, e.to_string()))?;
            set.files.push(CrlFile {
                path: path.clone(),
                stamp,
                count: crls.len(),
            });
            set.ders.extend(crls);
        }
        Ok(set)
    }

    /// The configured files.
    pub fn paths(&self) -> Vec<PathBuf> {
        self.files.iter().map(|f| f.path.clone()).collect()
    }

    /// The files' stamps as they are now on disk.
    pub fn stamps_now(&self) -> Vec<Stamp> {
        self.files.iter().map(|f| stamp(&f.path)).collect()
    }

    /// Whether any file changed on disk since it was read.
    pub fn changed(&self) -> bool {
        self.files
            .iter()
            .zip(self.stamps_now())
            .any(|(f, now)| f.stamp != now)
    }
}

/// Modification time and size of `path`, if it can be stat'ed.
pub fn stamp(path: &Path) -> Stamp {
    let meta = std::fs::metadata(path).ok()?;
    Some((meta.modified().ok()?, meta.len()))
}

fn read_file(path: &Path) -> Result<Vec<CertificateRevocationListDer<'static>>, ReloadError> {
    let crls = CertificateRevocationListDer::pem_file_iter(path)
        .map_err(|e| crl_error(path, e.to_string()))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| crl_error(path, e.to_string()))?;
    if crls.is_empty() {
        return Err(crl_error(path, "no PEM \"X509 CRL\" block found".into()));
    }
    Ok(crls)
}

fn crl_error(path: &Path, message: String) -> ReloadError {
    ReloadError::Crl {
        file: path.to_path_buf(),
        message,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rcgen::{
        BasicConstraints, CertificateParams, CertificateRevocationListParams, IsCa, Issuer,
        KeyIdMethod, KeyPair, KeyUsagePurpose, SerialNumber,
    };
    use time::{Duration, OffsetDateTime};

    /// A CA certificate and an empty CRL it signed (PEM).
    fn ca_and_crl() -> (CertificateDer<'static>, String) {
        let key = KeyPair::generate().unwrap();
        let mut p = CertificateParams::default();
        p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        p.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let cert = p.self_signed(&key).unwrap();
        let issuer = Issuer::new(p, key);
        let now = OffsetDateTime::now_utc();
        let crl = CertificateRevocationListParams {
            this_update: now - Duration::minutes(1),
            next_update: now + Duration::days(1),
            crl_number: SerialNumber::from(1u64),
            issuing_distribution_point: None,
            revoked_certs: Vec::new(),
            key_identifier_method: KeyIdMethod::Sha256,
        };
        (
            cert.der().clone(),
            crl.signed_by(&issuer).unwrap().pem().unwrap(),
        )
    }

    #[test]
    fn a_bad_or_missing_file_is_named_and_a_rewrite_is_seen() {
        let dir = tempfile::tempdir().unwrap();
        let (ca, crl) = ca_and_crl();
        let provider = crate::tls::provider();
        let (good, bad) = (dir.path().join("good.pem"), dir.path().join("bad.pem"));
        std::fs::write(&good, &crl).unwrap();
        std::fs::write(&bad, "not a CRL\n").unwrap();
        let set = CrlSet::read(std::slice::from_ref(&good), &ca, &provider).unwrap();
        assert_eq!((set.files[0].count, set.ders.len()), (1, 1));
        assert!(!set.changed());

        let both = [good.clone(), bad.clone()];
        let err = CrlSet::read(&both, &ca, &provider).unwrap_err();
        assert!(matches!(err, ReloadError::Crl { .. }), "{err}");
        assert_eq!(err.file(), bad);
        let missing = dir.path().join("missing.pem");
        let err = CrlSet::read(std::slice::from_ref(&missing), &ca, &provider).unwrap_err();
        assert_eq!(err.file(), missing);

        std::fs::write(&good, format!("{crl}{crl}")).unwrap();
        assert!(set.changed(), "a rewrite changes the stamp");
        let again = CrlSet::read(std::slice::from_ref(&good), &ca, &provider).unwrap();
        assert_eq!(again.files[0].count, 2);
    }
}
