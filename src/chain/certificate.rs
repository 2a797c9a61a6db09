//! Step 1 — certificate: a certificate was presented, chains to a trusted CA
//! of this environment, is within its dates, is not revoked (configured CRLs
//! and platform revocations), and is pinned to an application of this
//! environment.
//!
//! The connection's TLS verdict is judged here; the registration is
//! judged by the admission policy (`registry::admission`), asked once for
//! the whole chain. What it finds against the application (its address,
//! its state, its dates) is kept in [`Certified`] for the steps that
//! report it, in the order of docs/contract.md §2.

use super::{Context, Denial, Reason};
use crate::domain::Environment;
use crate::registry::admission::{self, Call, Purpose, Refusal};
use crate::registry::{Application, CertificateRecord, Snapshot};
use crate::tls::{CertFault, ConnInfo, PeerCert};

/// What step 1 established: the registered certificate and its application.
#[derive(Debug, Clone, Copy)]
pub struct Certified<'s> {
    /// The registry entry of the presented certificate.
    pub certificate: &'s CertificateRecord,
    /// The application it is pinned to.
    pub application: &'s Application,
    /// What admission found against the application, if anything: reported
    /// by the step that owns the condition (ip, identity or rights), so
    /// that an earlier step (the token) is still reported first.
    pub admission: Result<(), Refusal<'s>>,
}

/// Runs step 1 against the context's registry snapshot, and asks the
/// admission policy about the caller for the steps after it.
pub fn check<'s>(cx: &Context<'s>, conn: &ConnInfo) -> Result<Certified<'s>, Denial> {
    let env = cx.env;
    let peer = verified(conn, env)?;
    let call = Purpose::Call(Call {
        environment: env,
        address: conn.remote.ip(),
        today: cx.now.date(),
    });
    let (holder, admission) = match admission::admit(cx.snapshot, &peer.thumbprint, call) {
        Ok(admitted) => (admitted.holder, Ok(())),
        Err(Refusal::CertificateRevoked) => {
            let detail = format!("certificate {} was revoked", peer.thumbprint);
            return Err(Denial::new(Reason::CertRevoked, detail));
        }
        Err(refusal) => match refusal.holder() {
            Some(holder) => (holder, Err(refusal)),
            None => {
                let detail = format!(
                    "certificate {} is not registered to an application of the {env} environment",
                    peer.thumbprint
                );
                return Err(Denial::new(Reason::CertUnregistered, detail));
            }
        },
    };
    Ok(Certified {
        certificate: holder.certificate,
        application: holder.application,
        admission,
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

/// The connection's certificate, if one was presented and the TLS verdict
/// (chain, dates, CRLs) accepted it.
fn verified(conn: &ConnInfo, env: Environment) -> Result<&PeerCert, Denial> {
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
    Ok(peer)
}
