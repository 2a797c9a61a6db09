//! Where a record's caller was (its `ip` field): one address for an HTTP
//! exchange or a security event, the source a summary of refusals counts
//! (`super::unidentified`), or nothing for the other system actions
//! (written `""`, as it always was).

use super::unidentified::Source;
use serde::de::{self, Deserializer, Visitor};
use serde::ser::Serializer;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// The caller's address as a record holds it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Address {
    /// One address: the socket peer of an HTTP exchange (IPv4-mapped IPv6
    /// written as IPv4), the caller that raised a security event, or the
    /// IPv4 source of a summary.
    Ip(IpAddr),
    /// The IPv6 /64 a summary counts, by its first address (written
    /// `2001:db8:1:2::/64`).
    Ipv6Prefix64(Ipv6Addr),
    /// Every source past the summary table's capacity (written `*`).
    Others,
}

impl From<IpAddr> for Address {
    fn from(ip: IpAddr) -> Self {
        Address::Ip(ip)
    }
}

impl From<Source> for Address {
    fn from(source: Source) -> Self {
        match source {
            Source::V4(octets) => Address::Ip(IpAddr::V4(Ipv4Addr::from(octets))),
            Source::V6(prefix) => {
                let mut full = [0; 16];
                full[..8].copy_from_slice(&prefix);
                Address::Ipv6Prefix64(Ipv6Addr::from(full))
            }
            Source::Others => Address::Others,
        }
    }
}

impl Address {
    /// Reads the written form back (`None` if it is not one).
    pub fn parse(text: &str) -> Option<Address> {
        if text == "*" {
            return Some(Address::Others);
        }
        if let Some(prefix) = text.strip_suffix("/64") {
            return prefix.parse().ok().map(Address::Ipv6Prefix64);
        }
        text.parse().ok().map(Address::Ip)
    }
}

impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Address::Ip(ip) => ip.fmt(f),
            Address::Ipv6Prefix64(first) => write!(f, "{first}/64"),
            Address::Others => f.write_str("*"),
        }
    }
}

/// Serde of `Option<Address>`: `None` is written `""` (records have always
/// carried `ip`, empty for a system action without a caller).
pub mod text {
    use super::*;

    /// Writes the address, or `""`, without allocating.
    pub fn serialize<S: Serializer>(a: &Option<Address>, s: S) -> Result<S::Ok, S::Error> {
        match a {
            Some(address) => s.collect_str(address),
            None => s.serialize_str(""),
        }
    }

    /// Reads an address, or `""` as `None`.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Address>, D::Error> {
        d.deserialize_str(AddressVisitor)
    }

    struct AddressVisitor;

    impl Visitor<'_> for AddressVisitor {
        type Value = Option<Address>;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("an IP address, an IPv6 /64, `*` or an empty string")
        }

        fn visit_str<E: de::Error>(self, v: &str) -> Result<Option<Address>, E> {
            if v.is_empty() {
                return Ok(None);
            }
            Address::parse(v)
                .map(Some)
                .ok_or_else(|| E::custom(format!("not a caller address: {v:?}")))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_written_form_reads_back_to_the_same_text() {
        for text in [
            "192.0.2.1",
            "2001:db8::7",
            "::ffff:192.0.2.1",
            "2001:db8:1:2::/64",
            "*",
        ] {
            let address = Address::parse(text).unwrap();
            assert_eq!(address.to_string(), text);
        }
        assert_eq!(Address::parse("192.0.2.0/24"), None);
        assert_eq!(Address::parse("localhost"), None);
    }

    #[test]
    fn a_summary_source_is_written_as_the_source_is() {
        for ip in ["192.0.2.1", "2001:db8:1:2:ffff::9"] {
            let source = Source::of(ip.parse().unwrap());
            assert_eq!(Address::from(source).to_string(), source.to_string());
        }
        assert_eq!(Address::from(Source::Others).to_string(), "*");
    }
}
