//! `proxy_protocol_from` (docs/contract.md §9), under `[sandbox]`, `[production]`
//! and `[admin]`: the load balancers of one listener. A connection from
//! one of these networks must open with a PROXY protocol header, whose
//! source address becomes the caller's (`server/proxy.rs`); a connection
//! from anywhere else that sends one is closed. Empty by default: no
//! listener trusts anyone to speak for its callers.

use super::Config;
use crate::domain::{Environment, Plane};
use crate::registry::admission::canonical;
use ipnetwork::IpNetwork;
use serde::{Deserialize, Deserializer};
use std::net::IpAddr;

/// The networks whose connections carry a PROXY protocol header.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProxyProtocolFrom(Vec<IpNetwork>);

impl ProxyProtocolFrom {
    /// These networks, in canonical form (an IPv4-mapped IPv6 network is
    /// the IPv4 network it maps, as for application allowlists).
    pub fn new(networks: impl IntoIterator<Item = IpNetwork>) -> Self {
        ProxyProtocolFrom(networks.into_iter().map(canonical).collect())
    }

    /// Whether a TCP peer at `ip` must (and may) send a PROXY header;
    /// an IPv4-mapped peer is its IPv4 address.
    pub fn trusts(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        self.0.iter().any(|net| net.contains(ip))
    }

    /// Whether no peer is trusted (the default).
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl<'de> Deserialize<'de> for ProxyProtocolFrom {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Vec::<IpNetwork>::deserialize(d).map(ProxyProtocolFrom::new)
    }
}

impl Config {
    /// The `proxy_protocol_from` of `plane`'s listener.
    pub fn proxy_protocol_from(&self, plane: Plane) -> &ProxyProtocolFrom {
        match plane {
            Plane::Env(Environment::Sandbox) => &self.sandbox.proxy_protocol_from,
            Plane::Env(Environment::Production) => &self.production.proxy_protocol_from,
            Plane::Admin => &self.admin.proxy_protocol_from,
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::config::{Config, ConfigError};
    use std::net::IpAddr;
    use std::path::Path;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn absent_means_nobody_is_trusted() {
        let c = Config::parse("", Path::new("t.toml")).unwrap();
        assert!(c.sandbox.proxy_protocol_from.is_empty());
        assert!(c.production.proxy_protocol_from.is_empty());
        assert!(!c.admin.proxy_protocol_from.trusts(ip("127.0.0.1")));
    }

    #[test]
    fn each_listener_has_its_list_and_mapped_forms_match() {
        let text = "[sandbox]\nlisten = \"127.0.0.1:1\"\n\
                    proxy_protocol_from = [\"10.0.0.0/8\", \"::ffff:192.0.2.0/120\"]\n\
                    [admin]\nlisten = \"127.0.0.1:2\"\nproxy_protocol_from = [\"2001:db8::/32\"]\n";
        let c = Config::parse(text, Path::new("t.toml")).unwrap();
        let sandbox = &c.sandbox.proxy_protocol_from;
        assert!(sandbox.trusts(ip("10.1.2.3")));
        assert!(sandbox.trusts(ip("::ffff:10.1.2.3")));
        assert!(sandbox.trusts(ip("192.0.2.77")));
        assert!(!sandbox.trusts(ip("11.0.0.1")));
        assert!(c.admin.proxy_protocol_from.trusts(ip("2001:db8::5")));
        assert!(!c.admin.proxy_protocol_from.trusts(ip("10.1.2.3")));
        assert!(c.production.proxy_protocol_from.is_empty());
        let admin = c.proxy_protocol_from(crate::domain::Plane::Admin);
        assert!(admin.trusts(ip("2001:db8::5")));
    }

    #[test]
    fn a_bad_network_is_named_by_its_key() {
        let text = "[production]\nlisten = \"127.0.0.1:1\"\n\
                    proxy_protocol_from = [\"10.0.0.0/8\", \"10.0.0.0/33\"]\n";
        match Config::parse(text, Path::new("t.toml")).unwrap_err() {
            ConfigError::Parse { key, line, .. } => {
                assert_eq!(key, "production.proxy_protocol_from[1]");
                assert_eq!(line, 3);
            }
            other => panic!("unexpected {other}"),
        }
    }
}
