//! Client-certificate verification in two halves: the handshake proves key
//! possession ([`ChainVerifier::handshake_verifier`]); [`ChainVerifier::verdict`]
//! then judges the chain, the dates and the CRLs with rustls' own WebPKI
//! verifier, once per connection.

use super::TlsError;
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::{CertificateDer, CertificateRevocationListDer, UnixTime};
use rustls::server::WebPkiClientVerifier;
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{
    CertificateError, DigitallySignedStruct, DistinguishedName, RootCertStore, SignatureScheme,
};
use std::sync::Arc;

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
        Ok(ChainVerifier {
            webpki,
            algorithms,
            hints,
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
        let (leaf, intermediates) = chain
            .split_first()
            .ok_or_else(|| CertFault::Untrusted("empty chain".into()))?;
        self.webpki
            .verify_client_cert(leaf, intermediates, UnixTime::now())
            .map(|_| ())
            .map_err(fault)
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
