//! Step 2 — ip: the caller address (the socket peer, or the source of a
//! trusted balancer's PROXY header, `server/proxy.rs`) is inside the
//! application's CIDR allowlist. Headers such as `X-Forwarded-For` are
//! never read. The token
//! endpoint (`oauth/gate.rs`) applies the same rule before issuing a token.
//!
//! Addresses are compared in their canonical form: an IPv4 caller reaching
//! a dual-stack socket as `::ffff:a.b.c.d` is the IPv4 address `a.b.c.d`,
//! and an allowlist entry written as an IPv4-mapped IPv6 network
//! (`::ffff:10.0.0.0/104`) is the IPv4 network it maps (`10.0.0.0/8`). The
//! entries are canonicalised here, at check time, rather than rewritten
//! when an application is saved: registries written before this rule keep
//! working without a migration, and the admin reads back what was typed.

use super::{Denial, Reason};
use crate::registry::Application;
use ipnetwork::{IpNetwork, Ipv4Network};
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
        Err(Denial::new(
            Reason::IpNotAllowed,
            format!(
                "IP {ip} is not declared for application {}",
                application.client_id
            ),
        ))
    }
}

/// The IPv4 network an IPv4-mapped IPv6 network (`::ffff:0:0/96` or
/// narrower) stands for; any other network unchanged. A mapped network
/// wider than /96 also covers real IPv6 addresses, so it has no IPv4
/// equivalent and stays as written (it then matches no IPv4 caller).
pub fn canonical(net: IpNetwork) -> IpNetwork {
    let IpNetwork::V6(v6) = net else {
        return net;
    };
    match (v6.ip().to_ipv4_mapped(), v6.prefix().checked_sub(96)) {
        (Some(v4), Some(prefix)) => Ipv4Network::new(v4, prefix)
            .map(IpNetwork::V4)
            .unwrap_or(net),
        _ => net,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net(s: &str) -> IpNetwork {
        s.parse().unwrap()
    }

    #[test]
    fn mapped_networks_are_their_ipv4_network() {
        assert_eq!(canonical(net("::ffff:127.0.0.1/128")), net("127.0.0.1/32"));
        assert_eq!(canonical(net("::ffff:10.0.0.0/104")), net("10.0.0.0/8"));
        assert_eq!(canonical(net("::ffff:0:0/96")), net("0.0.0.0/0"));
        assert_eq!(canonical(net("::ffff:0:0/95")), net("::ffff:0:0/95"));
        assert_eq!(canonical(net("2001:db8::/32")), net("2001:db8::/32"));
        assert_eq!(canonical(net("10.0.0.0/8")), net("10.0.0.0/8"));
    }
}
