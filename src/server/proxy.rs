//! PROXY protocol (docs/contract.md §9), read after accept and before the TLS
//! handshake, within the handshake timeout. A peer in the listener's
//! `proxy_protocol_from` must open with a header (v2, or v1 text), whose
//! source address becomes the caller address of everything after: the
//! per-address cap, the chain's ip control, `/token`'s allowlist, the trace
//! and the logs. A `LOCAL` header (the balancer's own health check) or one
//! without an IP source keeps the peer address. A peer not in the list
//! that opens with a header is refused: it would fail TLS anyway, but is
//! counted as what it is. `X-Forwarded-For` is never read.
//!
//! Nothing past the header is read, so the TLS handshake sees the stream
//! as the client sent it: 15 bytes first (the shortest header, `PROXY
//! UNKNOWN\r\n`), then for v2 the 16th and the length it announces, for v1
//! byte by byte up to its CRLF (at most 107 bytes, trusted peers only).
//! Parsing is the `ppp` crate's.

use ppp::{v1, v2};
use std::net::SocketAddr;
use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;

/// Why a connection's PROXY header was refused.
#[derive(Debug, thiserror::Error)]
pub enum ProxyError {
    /// The peer left before sending a byte (e.g. a TCP health check).
    #[error("closed before sending anything")]
    Closed,
    /// The socket failed while the header was read.
    #[error("reading the PROXY header: {0}")]
    Io(#[from] std::io::Error),
    /// A trusted peer sent something that is not a PROXY header.
    #[error("a PROXY header is required from this peer")]
    Missing,
    /// A trusted peer sent a header that ends early or that `ppp`
    /// refuses.
    #[error("malformed PROXY header: {reason}")]
    Malformed {
        /// What is wrong with it.
        reason: String,
        /// `ppp`'s parse error (v1 or v2); `None` when the header was cut
        /// short before it could be parsed.
        #[source]
        source: Option<Box<dyn std::error::Error + Send + Sync>>,
    },
    /// A peer outside `proxy_protocol_from` sent a header.
    #[error("PROXY header from a peer not in proxy_protocol_from")]
    Untrusted,
}

impl ProxyError {
    /// A header that ended before it was whole (`reason` says how).
    fn cut_short(reason: &str) -> Self {
        ProxyError::Malformed {
            reason: reason.to_owned(),
            source: None,
        }
    }

    /// A whole header `ppp` refused with `error`.
    fn unparsed(error: impl std::error::Error + Send + Sync + 'static) -> Self {
        ProxyError::Malformed {
            reason: error.to_string(),
            source: Some(Box::new(error)),
        }
    }

    /// Whether the refusal is counted and logged at the edge; a connection
    /// that never sent a byte is not, as on a listener without PROXY.
    pub fn counted(&self) -> bool {
        !matches!(self, ProxyError::Closed)
    }
}

/// The `PROXY ` that opens a v1 header.
const V1_PREFIX: &[u8] = b"PROXY ";
/// The shortest header of either version (`PROXY UNKNOWN\r\n`).
const SHORTEST: usize = 15;
/// The fixed part of a v2 header: signature, command, family, length.
const V2_FIXED: usize = 16;
/// The longest v1 header, CRLF included.
const V1_LONGEST: usize = 107;

/// The caller address of a connection from `peer`: the header's source if
/// `trusted` (canonical, IPv4-mapped → IPv4), else `peer` itself once its
/// first bytes are known not to be a PROXY header.
pub async fn caller(
    tcp: &mut TcpStream,
    peer: SocketAddr,
    trusted: bool,
) -> Result<SocketAddr, ProxyError> {
    if !trusted {
        return refuse_header(tcp).await.map(|()| peer);
    }
    let header = read_header(tcp).await?;
    let source = source_of(&header)?.unwrap_or(peer);
    Ok(SocketAddr::new(source.ip().to_canonical(), source.port()))
}

/// Peeks at an untrusted peer's first bytes: a full v1 or v2 signature is
/// refused. Anything else (TLS, too few bytes to tell, an error) goes on
/// to the handshake, which closes whatever is not TLS.
async fn refuse_header(tcp: &TcpStream) -> Result<(), ProxyError> {
    let mut first = [0u8; 12];
    let seen = tcp.peek(&mut first).await.unwrap_or(0);
    let first = &first[..seen];
    if first.starts_with(v2::PROTOCOL_PREFIX) || first.starts_with(V1_PREFIX) {
        Err(ProxyError::Untrusted)
    } else {
        Ok(())
    }
}

/// Reads exactly one header's bytes from a trusted peer.
async fn read_header(tcp: &mut TcpStream) -> Result<Vec<u8>, ProxyError> {
    let mut header = vec![0u8; SHORTEST];
    let got = tcp.read(&mut header).await?;
    if got == 0 {
        return Err(ProxyError::Closed);
    }
    read_exactly(tcp, &mut header[got..]).await?;
    if header.starts_with(V1_PREFIX) {
        while !header.ends_with(b"\r\n") {
            if header.len() == V1_LONGEST {
                return Err(ProxyError::cut_short("v1 header without CRLF"));
            }
            let mut byte = [0u8; 1];
            read_exactly(tcp, &mut byte).await?;
            header.push(byte[0]);
        }
    } else if header.starts_with(v2::PROTOCOL_PREFIX) {
        header.resize(V2_FIXED, 0);
        read_exactly(tcp, &mut header[SHORTEST..]).await?;
        let announced = usize::from(u16::from_be_bytes([header[14], header[15]]));
        header.resize(V2_FIXED + announced, 0);
        read_exactly(tcp, &mut header[V2_FIXED..]).await?;
    } else {
        return Err(ProxyError::Missing);
    }
    Ok(header)
}

/// `read_exact`, with an early end of stream as a truncated header.
async fn read_exactly(tcp: &mut TcpStream, buf: &mut [u8]) -> Result<(), ProxyError> {
    match tcp.read_exact(buf).await {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
            Err(ProxyError::cut_short("truncated header"))
        }
        Err(e) => Err(e.into()),
    }
}

/// The source address a whole header announces; `None` for `LOCAL`, an
/// `UNKNOWN`/unspecified family or UNIX sockets (the peer then stands).
fn source_of(header: &[u8]) -> Result<Option<SocketAddr>, ProxyError> {
    if header.starts_with(V1_PREFIX) {
        let parsed = v1::Header::try_from(header).map_err(ProxyError::unparsed)?;
        return Ok(match parsed.addresses {
            v1::Addresses::Tcp4(a) => Some((a.source_address, a.source_port).into()),
            v1::Addresses::Tcp6(a) => Some((a.source_address, a.source_port).into()),
            v1::Addresses::Unknown => None,
        });
    }
    let parsed = v2::Header::try_from(header).map_err(ProxyError::unparsed)?;
    Ok(match (parsed.command, parsed.addresses) {
        (v2::Command::Local, _) => None,
        (v2::Command::Proxy, v2::Addresses::IPv4(a)) => {
            Some((a.source_address, a.source_port).into())
        }
        (v2::Command::Proxy, v2::Addresses::IPv6(a)) => {
            Some((a.source_address, a.source_port).into())
        }
        (v2::Command::Proxy, v2::Addresses::Unspecified | v2::Addresses::Unix(_)) => None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v2(command: u8, family: u8, addresses: &[u8]) -> Vec<u8> {
        let mut h = v2::PROTOCOL_PREFIX.to_vec();
        h.extend([0x20 | command, family]);
        h.extend((addresses.len() as u16).to_be_bytes());
        h.extend(addresses);
        h
    }

    #[test]
    fn sources_of_each_form() {
        let v4 = [203, 0, 113, 7, 10, 0, 0, 1, 0x1f, 0x90, 1, 187];
        let got = source_of(&v2(1, 0x11, &v4)).unwrap();
        assert_eq!(got, Some("203.0.113.7:8080".parse().unwrap()));
        assert_eq!(source_of(&v2(0, 0x11, &v4)).unwrap(), None, "LOCAL");
        assert_eq!(source_of(&v2(1, 0x00, &[])).unwrap(), None, "UNSPEC");
        let v1 = b"PROXY TCP6 2001:db8::1 2001:db8::2 4000 443\r\n";
        let got = source_of(v1).unwrap();
        assert_eq!(got, Some("[2001:db8::1]:4000".parse().unwrap()));
        assert_eq!(source_of(b"PROXY UNKNOWN\r\n").unwrap(), None);
    }

    #[test]
    fn bad_headers_are_malformed() {
        let short = v2(1, 0x11, &[203, 0, 113, 7]);
        assert!(matches!(
            source_of(&short),
            Err(ProxyError::Malformed { .. })
        ));
        let mut version3 = v2(1, 0x11, &[0; 12]);
        version3[12] = 0x31;
        assert!(matches!(
            source_of(&version3),
            Err(ProxyError::Malformed { .. })
        ));
        let v1 = b"PROXY TCP4 999.0.0.1 10.0.0.1 1 2\r\n";
        assert!(matches!(source_of(v1), Err(ProxyError::Malformed { .. })));
    }

    #[test]
    fn a_refused_header_keeps_ppp_s_error_as_its_source() {
        use std::error::Error as _;
        let refused = source_of(b"PROXY TCP4 999.0.0.1 10.0.0.1 1 2\r\n").unwrap_err();
        let cause = refused.source().expect("ppp's error is kept");
        assert_eq!(
            refused.to_string(),
            format!("malformed PROXY header: {cause}")
        );
        assert!(ProxyError::cut_short("truncated header").source().is_none());
    }

    /// A connected pair: what the client end sends, then the server end.
    async fn pair(sent: &[u8]) -> (TcpStream, SocketAddr) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let mut client = TcpStream::connect(listener.local_addr().unwrap())
            .await
            .unwrap();
        tokio::io::AsyncWriteExt::write_all(&mut client, sent)
            .await
            .unwrap();
        drop(client);
        listener.accept().await.unwrap()
    }

    async fn rest(tcp: &mut TcpStream) -> Vec<u8> {
        let mut rest = Vec::new();
        tcp.read_to_end(&mut rest).await.unwrap();
        rest
    }

    #[tokio::test]
    async fn a_trusted_header_is_read_to_its_last_byte_and_no_further() {
        let mapped = [
            [0u8; 10].as_slice(),
            &[0xff, 0xff, 203, 0, 113, 7],
            &[0; 16],
            &[0, 80, 1, 187],
        ]
        .concat();
        let mut with_tlv = v2(1, 0x21, &[mapped.as_slice(), &[4, 0, 1, 42]].concat());
        with_tlv.extend(b"\x16TLS");
        let (mut tcp, peer) = pair(&with_tlv).await;
        let got = caller(&mut tcp, peer, true).await.unwrap();
        assert_eq!(got, "203.0.113.7:80".parse().unwrap(), "mapped → IPv4");
        assert_eq!(rest(&mut tcp).await, b"\x16TLS");
        let (mut tcp, peer) = pair(b"PROXY TCP4 198.51.100.1 10.0.0.1 5 443\r\n\x16").await;
        let got = caller(&mut tcp, peer, true).await.unwrap();
        assert_eq!(got, "198.51.100.1:5".parse().unwrap());
        assert_eq!(rest(&mut tcp).await, b"\x16");
        let (mut tcp, peer) = pair(&v2(0, 0x00, &[])).await;
        assert_eq!(caller(&mut tcp, peer, true).await.unwrap(), peer, "LOCAL");
    }

    #[tokio::test]
    async fn a_trusted_peer_without_a_valid_header_is_refused() {
        let hello = [0x16, 3, 1, 0, 200, 1, 0, 0, 196, 3, 3, 0, 0, 0, 0, 0, 0];
        let (mut tcp, peer) = pair(&hello).await;
        let refused = caller(&mut tcp, peer, true).await.unwrap_err();
        assert!(matches!(refused, ProxyError::Missing), "{refused}");
        let (mut tcp, peer) = pair(&v2(1, 0x11, &[1, 2, 3])).await;
        let refused = caller(&mut tcp, peer, true).await.unwrap_err();
        assert!(matches!(refused, ProxyError::Malformed { .. }), "{refused}");
        let (mut tcp, peer) = pair(&[b"PROXY TCP4 ".as_slice(), &[b'1'; 100]].concat()).await;
        let refused = caller(&mut tcp, peer, true).await.unwrap_err();
        assert!(matches!(refused, ProxyError::Malformed { .. }), "{refused}");
        let (mut tcp, peer) = pair(b"").await;
        let refused = caller(&mut tcp, peer, true).await.unwrap_err();
        assert!(!refused.counted(), "{refused}");
    }

    #[tokio::test]
    async fn an_untrusted_peer_may_not_send_one_and_keeps_its_bytes() {
        for header in [v2(1, 0x00, &[]), b"PROXY UNKNOWN\r\n".to_vec()] {
            let (mut tcp, peer) = pair(&header).await;
            let refused = caller(&mut tcp, peer, false).await.unwrap_err();
            assert!(matches!(refused, ProxyError::Untrusted), "{refused}");
        }
        let (mut tcp, peer) = pair(b"\x16\x03\x01hello").await;
        assert_eq!(caller(&mut tcp, peer, false).await.unwrap(), peer);
        assert_eq!(rest(&mut tcp).await, b"\x16\x03\x01hello", "only peeked");
    }
}
