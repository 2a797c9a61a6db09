//! Step 2 — ip: the caller address (the socket peer, or the source of a
//! trusted balancer's PROXY header, `server/proxy.rs`) is inside the
//! application's CIDR allowlist. Headers such as `X-Forwarded-For` are
//! never read. The token
//! endpoint (`oauth/gate.rs`) applies the same rule before issuing a token.
//!
//! Addresses and allowlist entries are compared in their canonical form
//! (IPv4-mapped is IPv4), as `registry::admission` explains.

use super::{Denial, Reason};
use crate::registry::Application;
use crate::registry::admission::canonical;
use std::net::IpAddr;

/// Runs step 2 for the connection's peer address.
pub fn check(remote: IpAddr, application: &Application) -> Result<(), Denial> {
    let ip = remote.to_canonical();
    if application
        .ip_allowlist
        .iter()
        .any(|net| canonical(*net).contains(ip))
    {
        Ok(())
    } else {
        Err(not_declared(remote, application))
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
