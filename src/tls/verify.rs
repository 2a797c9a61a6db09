//! Client-certificate verification in two halves: the handshake proves key
//! possession ([`ChainVerifier::handshake_verifier`]); [`ChainVerifier::verdict`]
//! then judges the chain, the dates and the CRLs with rustls' own WebPKI
//! verifier, once per connection. A partner reconnecting presents the same
//! chain again: its verdict is kept ([`VERDICTS`] chains, [`VERDICT_TTL`]
//! at most, and only while the leaf is within its dates), so the chain's
//! signatures are checked once, not at every handshake. The cache belongs
//! to one verifier: a reload or a CRL change builds a new one, empty.

use super::TlsError;
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::{CertificateDer, CertificateRevocationListDer, UnixTime};
use rustls::server::WebPkiClientVerifier;
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{
    CertificateError, DigitallySignedStruct, DistinguishedName, RootCertStore, SignatureScheme,
};
use sha2::{Digest, Sha256};
use std::sync::Arc;
use std::time::Duration;

/// Chains whose verdict a verifier keeps, at most.
pub const VERDICTS: u64 = 10_000;
/// How long a verdict is kept, at most (a CA's or an intermediate's own
/// dates are checked again after that).
pub const VERDICT_TTL: Duration = Duration::from_secs(300);

/// A kept verdict, and the leaf's dates (unix seconds) outside which it is
/// not reused.
type Kept = (Result<(), CertFault>, i64, i64);

/// Why a presented certificate is not acceptable (before registration).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CertFault {
    /// Not issued by a trusted CA of this listener, or malformed (910101).
    Untrusted(String),
    /// Past its `notAfter` (910101).
    Expired,
    /// Before its `notBefore` (910101).
    NotYetValid,
    /// Listed in a configured CRL (910102).
    Revoked,
}

impl std::fmt::Display for CertFault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CertFault::Untrusted(why) => write!(f, "certificate not trusted: {why}"),
            CertFault::Expired => f.write_str("certificate expired"),
            CertFault::NotYetValid => f.write_str("certificate not yet valid"),
            CertFault::Revoked => f.write_str("certificate revoked (CRL)"),
        }
    }
}

/// The trust policy of one listener: its CA roots and CRLs.
#[derive(Debug, Clone)]
pub struct ChainVerifier {
    webpki: Arc<dyn ClientCertVerifier>,
    algorithms: WebPkiSupportedAlgorithms,
    hints: Vec<DistinguishedName>,
    /// Verdicts by the SHA-256 of the chain (see the module's text).
    kept: moka::sync::Cache<[u8; 32], Kept>,
}

impl ChainVerifier {
    /// Trusts `roots`, checking `crls` (unknown revocation status is allowed,
    /// since not every issuer publishes a CRL).
    pub fn new(
        provider: Arc<CryptoProvider>,
        roots: &[CertificateDer<'static>],
        crls: Vec<CertificateRevocationListDer<'static>>,
    ) -> Result<Self, TlsError> {
        let mut store = RootCertStore::empty();
        for root in roots {
            store.add(root.clone()).map_err(TlsError::CaCertificate)?;
        }
        let algorithms = provider.signature_verification_algorithms;
        let webpki = WebPkiClientVerifier::builder_with_provider(Arc::new(store), provider)
            .with_crls(crls)
            .allow_unknown_revocation_status()
            .build()
            .map_err(TlsError::Verifier)?;
        let hints = webpki.root_hint_subjects().to_vec();
        let kept = moka::sync::Cache::builder()
            .max_capacity(VERDICTS)
            .time_to_live(VERDICT_TTL)
            .build();
        Ok(ChainVerifier {
            webpki,
            algorithms,
            hints,
            kept,
        })
    }

    /// The same verifier, whose CertificateRequest also names the subjects
    /// of `others` as acceptable issuers, without trusting them for
    /// [`verdict`](Self::verdict). A browser offers only certificates
    /// issued by a CA the server names: the admin listener's dashboards
    /// sign partners in with certificates of the environments' CAs (judged
    /// by registration, not by this chain), so it names those CAs too.
    pub fn also_naming(mut self, others: &[CertificateDer<'static>]) -> Result<Self, TlsError> {
        let mut store = RootCertStore::empty();
        for ca in others {
            store.add(ca.clone()).map_err(TlsError::CaCertificate)?;
        }
        self.hints.extend(store.subjects());
        Ok(self)
    }

    /// Judges a presented chain (leaf first) at the current time.
    pub fn verdict(&self, chain: &[CertificateDer<'_>]) -> Result<(), CertFault> {
        self.verdict_at(chain, UnixTime::now())
    }

    /// Judges a presented chain (leaf first) at `now`.
    fn verdict_at(&self, chain: &[CertificateDer<'_>], now: UnixTime) -> Result<(), CertFault> {
        let (leaf, intermediates) = chain
            .split_first()
            .ok_or_else(|| CertFault::Untrusted("empty chain".into()))?;
        self.webpki
            .verify_client_cert(leaf, intermediates, now)
            .map(|_| ())
            .map_err(fault)
    }

    /// As [`verdict`](Self::verdict), at `now`, kept for the next
    /// handshake presenting the same chain while it is within the leaf's
    /// dates `leaf_dates` (unix seconds: not before, not after).
    pub fn verdict_kept(
        &self,
        chain: &[CertificateDer<'_>],
        leaf_dates: (i64, i64),
        now: UnixTime,
    ) -> Result<(), CertFault> {
        let (not_before, not_after) = leaf_dates;
        let secs = i64::try_from(now.as_secs()).unwrap_or(i64::MAX);
        if secs < not_before || secs > not_after {
            return self.verdict_at(chain, now);
        }
        let mut hash = Sha256::new();
        for der in chain {
            hash.update((der.len() as u64).to_be_bytes());
            hash.update(der.as_ref());
        }
        let key: [u8; 32] = hash.finalize().into();
        if let Some((verdict, nb, na)) = self.kept.get(&key)
            && (nb..=na).contains(&secs)
        {
            return verdict;
        }
        let verdict = self.verdict_at(chain, now);
        self.kept
            .insert(key, (verdict.clone(), not_before, not_after));
        verdict
    }

    /// The verifier to put in the `ServerConfig`: the full WebPKI verifier
    /// when `reject_at_handshake`, else one that only checks key possession
    /// and accepts a missing certificate.
    pub fn handshake_verifier(&self, reject_at_handshake: bool) -> Arc<dyn ClientCertVerifier> {
        if reject_at_handshake {
            self.webpki.clone()
        } else {
            Arc::new(PossessionOnly {
                algorithms: self.algorithms,
                hints: self.hints.clone(),
            })
        }
    }

    /// As [`handshake_verifier`](Self::handshake_verifier), but a client
    /// may connect without any certificate even when `reject_at_handshake`
    /// (a presented certificate is still judged at the handshake then).
    /// For the admin listener while it serves a route authenticated
    /// otherwise (the DataPass webhook); every other route still demands
    /// an admin certificate over HTTP.
    pub fn handshake_verifier_allowing_none(
        &self,
        reject_at_handshake: bool,
    ) -> Arc<dyn ClientCertVerifier> {
        let inner = self.handshake_verifier(reject_at_handshake);
        if reject_at_handshake {
            Arc::new(CertificateOptional { inner })
        } else {
            inner
        }
    }
}

fn fault(e: rustls::Error) -> CertFault {
    match e {
        rustls::Error::InvalidCertificate(ce) => match ce {
            CertificateError::Expired | CertificateError::ExpiredContext { .. } => {
                CertFault::Expired
            }
            CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. } => {
                CertFault::NotYetValid
            }
            CertificateError::Revoked => CertFault::Revoked,
            CertificateError::UnknownIssuer => {
                CertFault::Untrusted("issuer is not a trusted CA of this listener".into())
            }
            other => CertFault::Untrusted(format!("{other:?}")),
        },
        other => CertFault::Untrusted(other.to_string()),
    }
}

/// Delegates everything to `inner` except that no certificate at all is
/// acceptable: rustls then skips verification for that handshake.
#[derive(Debug)]
struct CertificateOptional {
    inner: Arc<dyn ClientCertVerifier>,
}

impl ClientCertVerifier for CertificateOptional {
    fn offer_client_auth(&self) -> bool {
        true
    }

    fn client_auth_mandatory(&self) -> bool {
        false
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        self.inner.root_hint_subjects()
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        self.inner
            .verify_client_cert(end_entity, intermediates, now)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

/// Lets the handshake finish with any certificate whose key the client
/// proved it holds (the CertificateVerify signature is checked), or none.
#[derive(Debug)]
struct PossessionOnly {
    algorithms: WebPkiSupportedAlgorithms,
    hints: Vec<DistinguishedName>,
}

impl ClientCertVerifier for PossessionOnly {
    fn offer_client_auth(&self) -> bool {
        true
    }

    fn client_auth_mandatory(&self) -> bool {
        false
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &self.hints
    }

    fn verify_client_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        // Judged after the handshake by `ChainVerifier::verdict`.
        Ok(ClientCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ca(name: &str) -> CertificateDer<'static> {
        let key = rcgen::KeyPair::generate().unwrap();
        let mut p = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        p.distinguished_name.push(rcgen::DnType::CommonName, name);
        p.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        p.self_signed(&key).unwrap().der().clone()
    }

    /// A CA, and a leaf it signs valid from `from` to `until` (unix secs).
    fn signed_leaf(from: i64, until: i64) -> (CertificateDer<'static>, CertificateDer<'static>) {
        let ca_key = rcgen::KeyPair::generate().unwrap();
        let mut p = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        p.distinguished_name.push(rcgen::DnType::CommonName, "ca");
        p.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        let ca = p.self_signed(&ca_key).unwrap();
        let issuer = rcgen::Issuer::new(p, ca_key);
        let key = rcgen::KeyPair::generate().unwrap();
        let mut p = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        p.distinguished_name.push(rcgen::DnType::CommonName, "leaf");
        p.not_before = time::OffsetDateTime::from_unix_timestamp(from).unwrap();
        p.not_after = time::OffsetDateTime::from_unix_timestamp(until).unwrap();
        p.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ClientAuth];
        let leaf = p.signed_by(&key, &issuer).unwrap();
        (ca.der().clone(), leaf.der().clone())
    }

    fn at(secs: i64) -> UnixTime {
        UnixTime::since_unix_epoch(Duration::from_secs(secs as u64))
    }

    #[test]
    fn a_kept_verdict_is_not_reused_outside_the_leaf_dates() {
        let (from, until) = (1_800_000_000, 1_800_086_400);
        let (ca, leaf) = signed_leaf(from, until);
        let v = ChainVerifier::new(super::super::provider(), &[ca], Vec::new()).unwrap();
        let chain = [leaf];
        assert_eq!(
            v.verdict_kept(&chain, (from, until), at(until - 10)),
            Ok(())
        );
        // Kept: the same answer without checking again…
        assert_eq!(v.verdict_kept(&chain, (from, until), at(until - 5)), Ok(()));
        // …but not once the leaf has expired: judged again.
        assert_eq!(
            v.verdict_kept(&chain, (from, until), at(until + 10)),
            Err(CertFault::Expired)
        );
        assert_eq!(
            v.verdict_kept(&chain, (from, until), at(from - 10)),
            Err(CertFault::NotYetValid)
        );
    }

    #[test]
    fn a_new_verifier_keeps_nothing_of_the_old_one() {
        let (from, until) = (1_800_000_000, 1_800_086_400);
        let (ca, leaf) = signed_leaf(from, until);
        let (other_ca, _) = signed_leaf(from, until);
        let chain = [leaf];
        let v = ChainVerifier::new(super::super::provider(), &[ca], Vec::new()).unwrap();
        assert_eq!(v.verdict_kept(&chain, (from, until), at(from + 10)), Ok(()));
        // A reload that no longer trusts that CA: refused at once.
        let reloaded =
            ChainVerifier::new(super::super::provider(), &[other_ca], Vec::new()).unwrap();
        assert!(matches!(
            reloaded.verdict_kept(&chain, (from, until), at(from + 10)),
            Err(CertFault::Untrusted(_))
        ));
        // The clones of one verifier share what it kept.
        let clone = v.clone();
        assert_eq!(
            clone.verdict_kept(&chain, (from, until), at(from + 20)),
            Ok(())
        );
    }

    /// Regression (issue 19): the admin listener named only its root CA in
    /// its CertificateRequest, so a browser never offered a partner's
    /// certificate there and the partner dashboard could not be opened.
    #[test]
    fn the_other_cas_are_named_to_clients_but_not_trusted() {
        let (root, partners) = (ca("root"), ca("partners"));
        let v = ChainVerifier::new(
            super::super::provider(),
            std::slice::from_ref(&root),
            Vec::new(),
        )
        .unwrap()
        .also_naming(std::slice::from_ref(&partners))
        .unwrap();
        let named = v.handshake_verifier(false).root_hint_subjects().to_vec();
        let mut expected = RootCertStore::empty();
        expected.add(root).unwrap();
        expected.add(partners.clone()).unwrap();
        let bytes = |names: &[DistinguishedName]| {
            names
                .iter()
                .map(|n| n.as_ref().to_vec())
                .collect::<Vec<_>>()
        };
        assert_eq!(bytes(&named), bytes(&expected.subjects()));
        assert!(v.verdict(&[partners]).is_err(), "named, not trusted");
    }
}
