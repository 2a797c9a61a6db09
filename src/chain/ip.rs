//! Step 2 — ip: the caller address (the socket peer, or the source of a
//! trusted balancer's PROXY header, `server/proxy.rs`) is inside the
//! application's CIDR allowlist. Headers such as `X-Forwarded-For` are
//! never read.
//!
//! The rule (addresses and entries compared in their canonical form,
//! IPv4-mapped being IPv4) is the admission policy's
//! (`registry::admission`), which the token endpoint applies too before
//! issuing a token; this step reports its refusal.

use super::certificate::Certified;
use super::{Denial, Reason};
use crate::registry::Application;
use crate::registry::admission::Refusal;
use std::net::IpAddr;

/// Runs step 2 for the caller address `remote`.
pub fn check(remote: IpAddr, certified: &Certified<'_>) -> Result<(), Denial> {
    match certified.admission {
        Err(Refusal::AddressNotAllowed(holder)) => Err(not_declared(remote, holder.application)),
        _ => Ok(()),
    }
}

/// The step 2 refusal of `remote` for `application`; its detail is also
/// the token endpoint's `error_description`.
pub fn not_declared(remote: IpAddr, application: &Application) -> Denial {
    Denial::new(
        Reason::IpNotAllowed,
        format!(
            "IP {} is not declared for application {}",
            remote.to_canonical(),
            application.client_id
        ),
    )
}
