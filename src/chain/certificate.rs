//! Step 1 — certificate: a certificate was presented, chains to a trusted CA
//! of this environment, is within its dates, is not revoked (configured CRLs
//! and platform revocations), and is pinned to an application of this
//! environment.

use super::{Denial, Reason};
use crate::domain::Environment;
use crate::registry::{Application, CertStatus, CertificateRecord, Snapshot};
use crate::tls::{CertFault, ConnInfo};

/// What step 1 established: the registered certificate and its application.
#[derive(Debug, Clone, Copy)]
pub struct Certified<'s> {
    /// The registry entry of the presented certificate.
    pub certificate: &'s CertificateRecord,
    /// The application it is pinned to.
    pub application: &'s Application,
}

/// Runs step 1 against the current registry snapshot.
pub fn check<'s>(
    conn: &ConnInfo,
    env: Environment,
    snap: &'s Snapshot,
) -> Result<Certified<'s>, Denial> {
    let peer = conn.peer.as_ref().ok_or_else(|| {
        Denial::new(
            Reason::CertMissing,
            "no client certificate was presented in the TLS handshake",
        )
    })?;
    if let Err(fault) = &peer.verdict {
        let reason = match fault {
            CertFault::Revoked => Reason::CertRevoked,
            _ => Reason::CertUntrusted,
        };
        return Err(Denial::new(reason, format!("{fault} ({env} listener)")));
    }
    let unregistered = || {
        Denial::new(
            Reason::CertUnregistered,
            format!(
                "certificate {} is not registered to an application of the {env} environment",
                peer.thumbprint
            ),
        )
    };
    let certificate = snap
        .certificates
        .get(&peer.thumbprint)
        .ok_or_else(unregistered)?;
    if certificate.status == CertStatus::Revoked {
        return Err(Denial::new(
            Reason::CertRevoked,
            format!("certificate {} was revoked", peer.thumbprint),
        ));
    }
    let application = snap
        .applications
        .get(&certificate.client_id)
        .filter(|a| a.environment == env && certificate.environment == env)
        .ok_or_else(unregistered)?;
    Ok(Certified {
        certificate,
        application,
    })
}

/// The application the presented certificate is registered to, whatever
/// its state: names the caller in traces of routes outside the chain
/// (`/token`, health). Judges nothing.
pub fn registered<'s>(conn: &ConnInfo, snap: &'s Snapshot) -> Option<&'s Application> {
    let peer = conn.peer.as_ref()?;
    let certificate = snap.certificates.get(&peer.thumbprint)?;
    snap.applications.get(&certificate.client_id)
}
