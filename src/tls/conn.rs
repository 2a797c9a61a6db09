//! Facts about one connection, computed once right after the handshake and
//! shared by every request on it. Security decisions read these, never a
//! header a client can forge.

use super::{CertFault, ChainVerifier};
use crate::domain::{Plane, Thumbprint};
use rustls_pki_types::CertificateDer;
use std::net::SocketAddr;

/// The client certificate presented on a connection.
#[derive(Debug, Clone)]
pub struct PeerCert {
    /// The leaf certificate.
    pub der: CertificateDer<'static>,
    /// `x5t#S256` of the leaf.
    pub thumbprint: Thumbprint,
    /// Subject DN of the leaf (RFC 4514), empty if unparseable.
    pub subject: String,
    /// Chain, dates and CRL verdict of this listener's trust policy.
    pub verdict: Result<(), CertFault>,
}

/// Per-connection facts.
#[derive(Debug, Clone)]
pub struct ConnInfo {
    /// The listener.
    pub plane: Plane,
    /// The caller address: the socket peer, or the source named by the
    /// PROXY header of a trusted balancer (docs/contract.md §9, `server/proxy.rs`).
    pub remote: SocketAddr,
    /// The client certificate, if one was presented.
    pub peer: Option<PeerCert>,
}

impl ConnInfo {
    /// Whether a client certificate was presented and passed this
    /// listener's trust policy (chain, dates, CRLs). Connections without
    /// one get the tighter limits of unauthenticated callers.
    pub fn verified(&self) -> bool {
        self.peer.as_ref().is_some_and(|p| p.verdict.is_ok())
    }

    /// The same facts with the certificate judged again by `verifier`
    /// (after a reload or a CRL change); `chain` is the peer chain of the
    /// handshake.
    pub fn judged_again(&self, chain: &[CertificateDer<'_>], verifier: &ChainVerifier) -> Self {
        let mut again = self.clone();
        if let Some(peer) = again.peer.as_mut() {
            peer.verdict = verifier.verdict(chain);
        }
        again
    }

    /// Builds the facts of a finished handshake.
    pub fn new(
        plane: Plane,
        remote: SocketAddr,
        peer_chain: Option<&[CertificateDer<'_>]>,
        verifier: &ChainVerifier,
    ) -> Self {
        let peer = peer_chain.and_then(|chain| {
            let leaf = chain.first()?;
            let parsed = x509_parser::parse_x509_certificate(leaf).ok();
            let subject = parsed.as_ref().map(|(_, c)| c.subject().to_string());
            let verdict = match &parsed {
                Some((_, c)) => {
                    let v = c.validity();
                    let dates = (v.not_before.timestamp(), v.not_after.timestamp());
                    verifier.verdict_kept(chain, dates, rustls::pki_types::UnixTime::now())
                }
                None => verifier.verdict(chain),
            };
            Some(PeerCert {
                der: leaf.clone().into_owned(),
                thumbprint: Thumbprint::of_der(leaf),
                subject: subject.unwrap_or_default(),
                verdict,
            })
        });
        ConnInfo {
            plane,
            remote,
            peer,
        }
    }
}
