//! Step 2 — ip: the socket peer address is inside the application's CIDR
//! allowlist. Headers such as `X-Forwarded-For` are never read.

use super::{Denial, Reason};
use crate::registry::Application;
use std::net::IpAddr;

/// Runs step 2 for the connection's peer address.
pub fn check(remote: IpAddr, application: &Application) -> Result<(), Denial> {
    let ip = match remote {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(remote),
        v4 => v4,
    };
    if application.ip_allowlist.iter().any(|net| net.contains(ip)) {
        Ok(())
    } else {
        Err(Denial::new(
            Reason::IpNotAllowed,
            format!(
                "IP {ip} is not declared for application {}",
                application.client_id
            ),
        ))
    }
}
