//! PROXY protocol (docs/contract.md §9) over real sockets and real mTLS: a trusted
//! balancer's header names the caller for `/token`, the ip control, the
//! trace and the per-address cap; a trusted peer without a header and an
//! untrusted peer with one are closed and counted; and a real HAProxy
//! (`send-proxy-v2`) in front of the sandbox passes its client through.
// A test crate: its helpers may unwrap like its #[test] functions (a
// panic is a failed test). The lib and binary deny it (Cargo.toml).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper::{Method, Request};
use opale_apim::config::{Config, ProxyProtocolFrom};
use opale_apim::domain::Environment::Sandbox;
use serde_json::{Value, json};
use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::path::Path;
use support::haproxy::Haproxy;
use support::pki::Identity;
use support::{TestServer, client_config, correlation_id, http1_over_tls};
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpSocket, TcpStream};

const DATA: &str = "/opale/v1/entreprises/732829320/declarations?annee=2024";

/// A v2 `PROXY` header for TCP from `source` to 10.0.0.1:443, built byte
/// by byte as the spec (haproxy.org proxy-protocol.txt §2.2) lays it out.
fn v2_header(source: IpAddr) -> Vec<u8> {
    let mut h = b"\r\n\r\n\0\r\nQUIT\n".to_vec();
    h.push(0x21); // version 2, PROXY
    match source {
        IpAddr::V4(ip) => {
            h.extend([0x11, 0, 12]); // TCP over IPv4, 12 bytes of addresses
            h.extend(ip.octets());
            h.extend([10, 0, 0, 1]);
        }
        IpAddr::V6(ip) => {
            h.extend([0x21, 0, 36]); // TCP over IPv6, 36 bytes of addresses
            h.extend(ip.octets());
            h.extend(Ipv6Addr::from([0xfe80, 0, 0, 0, 0, 0, 0, 1]).octets());
        }
    }
    h.extend(40_000u16.to_be_bytes());
    h.extend(443u16.to_be_bytes());
    h
}

fn from(nets: &[&str]) -> ProxyProtocolFrom {
    ProxyProtocolFrom::new(nets.iter().map(|n| n.parse().unwrap()))
}

/// A TCP connection from `local` (any port) to `to`.
async fn tcp_from(local: IpAddr, to: SocketAddr) -> std::io::Result<TcpStream> {
    let socket = TcpSocket::new_v4()?;
    socket.bind(SocketAddr::new(local, 0))?;
    socket.connect(to).await
}

/// One HTTP/1.1 connection over mTLS, on a TCP stream that may already
/// carry a PROXY header.
struct Caller {
    sender: SendRequest<Full<Bytes>>,
}

impl Caller {
    /// Writes `header` (if any), then TLS with `identity`.
    async fn open(
        s: &TestServer,
        mut tcp: TcpStream,
        header: Option<&[u8]>,
        identity: &Identity,
    ) -> std::io::Result<Caller> {
        if let Some(header) = header {
            tcp.write_all(header).await?;
        }
        let config = client_config(&s.pki.files.ca_pem(), Some(identity));
        let sender = http1_over_tls(tcp, config).await?;
        Ok(Caller { sender })
    }

    /// Through a balancer at 127.0.0.1 that announces `source`.
    async fn behind(s: &TestServer, source: IpAddr, identity: &Identity) -> Caller {
        let tcp = TcpStream::connect(s.sandbox).await.unwrap();
        let header = v2_header(source);
        Caller::open(s, tcp, Some(&header), identity).await.unwrap()
    }

    async fn send(&mut self, req: Request<Full<Bytes>>) -> (u16, Value) {
        self.sender.ready().await.unwrap();
        let resp = self.sender.send_request(req).await.unwrap();
        let status = resp.status().as_u16();
        let raw = resp.into_body().collect().await.unwrap().to_bytes();
        (status, serde_json::from_slice(&raw).unwrap_or(Value::Null))
    }

    /// `POST /token` (tls_client_auth).
    async fn token(&mut self, client_id: &str) -> (u16, Value) {
        let form = format!("grant_type=client_credentials&client_id={client_id}");
        let req = Request::post("/token")
            .header("host", "localhost")
            .header("content-type", "application/x-www-form-urlencoded")
            .body(Full::new(Bytes::from(form)))
            .unwrap();
        self.send(req).await
    }

    /// A data call; returns its status, body and correlation id.
    async fn data(&mut self, token: &str) -> (u16, Value, String) {
        let cid = correlation_id();
        let req = Request::get(DATA)
            .header("host", "localhost")
            .header("x-correlation-id", &cid)
            .header("authorization", format!("Bearer {token}"))
            .header("x-forwarded-for", "192.0.2.99")
            .header("accept", "application/problem+json")
            .body(Full::new(Bytes::new()))
            .unwrap();
        let (status, body) = self.send(req).await;
        (status, body, cid)
    }
}

async fn set_allowlist(s: &TestServer, client_id: &str, nets: &[&str]) {
    let r = s
        .admin_call(
            Method::PATCH,
            &format!("/admin/v1/applications/{client_id}"),
            Some(json!({ "ip_allowlist": nets })),
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
}

/// The trace record of `cid`, found among the client's records.
async fn traced(s: &TestServer, client_id: &str, cid: &str) -> Value {
    let r = s
        .admin_call(
            Method::GET,
            &format!("/admin/v1/trace?client_id={client_id}"),
            None,
        )
        .await;
    let records = r.body.as_array().unwrap();
    let found = records.iter().find(|t| t["correlation_id"] == cid);
    found
        .unwrap_or_else(|| panic!("{cid} not in {records:?}"))
        .clone()
}

/// The `connections_closed_at_edge` count of one listener and reason.
async fn closed_at_edge(s: &TestServer, listener: &str, reason: &str) -> u64 {
    let raw = s.admin_call(Method::GET, "/metrics", None).await.raw;
    let text = String::from_utf8_lossy(&raw).into_owned();
    let series = format!(
        "opale_connections_closed_at_edge_total{{listener=\"{listener}\",reason=\"{reason}\"}} "
    );
    text.lines()
        .find_map(|l| l.strip_prefix(&series))
        .map(|n| n.parse().unwrap())
        .unwrap_or(0)
}

fn trust_loopback_on_sandbox(c: &mut Config) {
    c.sandbox.proxy_protocol_from = from(&["127.0.0.1/32"]);
}

#[tokio::test]
async fn the_header_source_is_the_caller_for_token_chain_and_trace() {
    let s = TestServer::start_with(trust_loopback_on_sandbox).await;
    let c = s.client(Sandbox).await;
    set_allowlist(&s, &c.id, &["203.0.113.7/32"]).await;
    let real: IpAddr = "203.0.113.7".parse().unwrap();
    let mut conn = Caller::behind(&s, real, &c.cert).await;
    let (status, body) = conn.token(&c.id).await;
    assert_eq!(status, 200, "{body:?}");
    let token = body["access_token"].as_str().unwrap().to_owned();
    let (status, body, cid) = conn.data(&token).await;
    assert_eq!(status, 200, "{body:?}");
    assert_eq!(traced(&s, &c.id, &cid).await["ip"], "203.0.113.7");
    // The same client as an IPv4-mapped IPv6 source: its IPv4 address.
    let mapped = IpAddr::V6("::ffff:203.0.113.7".parse().unwrap());
    let (status, body, cid) = Caller::behind(&s, mapped, &c.cert).await.data(&token).await;
    assert_eq!(status, 200, "{body:?}");
    assert_eq!(traced(&s, &c.id, &cid).await["ip"], "203.0.113.7");
    // Another source: the ip control refuses it, and so does /token.
    let other: IpAddr = "198.51.100.9".parse().unwrap();
    let mut conn = Caller::behind(&s, other, &c.cert).await;
    let (status, body, cid) = conn.data(&token).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (403, Some("910200")),
        "{body:?}"
    );
    assert_eq!(body["control"], "ip", "{body:?}");
    assert!(body["detail"].as_str().unwrap().contains("198.51.100.9"));
    assert_eq!(traced(&s, &c.id, &cid).await["ip"], "198.51.100.9");
    let (status, body) = conn.token(&c.id).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("unauthorized_client"))
    );
}

#[tokio::test]
async fn a_trusted_peer_without_a_header_is_closed_and_counted() {
    let s = TestServer::start_with(trust_loopback_on_sandbox).await;
    let c = s.client(Sandbox).await;
    let tcp = TcpStream::connect(s.sandbox).await.unwrap();
    let refused = Caller::open(&s, tcp, None, &c.cert).await;
    assert!(refused.is_err(), "TLS went through without a PROXY header");
    assert_eq!(closed_at_edge(&s, "sandbox", "proxy_protocol").await, 1);
    // A header of an unknown version is no better.
    let tcp = TcpStream::connect(s.sandbox).await.unwrap();
    let mut header = v2_header("203.0.113.7".parse().unwrap());
    header[12] = 0x31;
    let refused = Caller::open(&s, tcp, Some(&header), &c.cert).await;
    assert!(
        refused.is_err(),
        "TLS went through after a version 3 header"
    );
    assert_eq!(closed_at_edge(&s, "sandbox", "proxy_protocol").await, 2);
    // Nor a truncated one: the connection is closed, not left waiting.
    let mut tcp = TcpStream::connect(s.sandbox).await.unwrap();
    tcp.write_all(&v2_header("203.0.113.7".parse().unwrap())[..20])
        .await
        .unwrap();
    tcp.shutdown().await.unwrap();
    let mut rest = Vec::new();
    tokio::io::AsyncReadExt::read_to_end(&mut tcp, &mut rest)
        .await
        .unwrap();
    assert!(rest.is_empty());
    assert_eq!(closed_at_edge(&s, "sandbox", "proxy_protocol").await, 3);
}

#[tokio::test]
async fn an_untrusted_peer_sending_a_header_is_closed_and_counted() {
    let s = TestServer::start().await;
    let c = s.client(Sandbox).await;
    let v1 = b"PROXY TCP4 203.0.113.7 10.0.0.1 40000 443\r\n".to_vec();
    for (n, header) in [v2_header("203.0.113.7".parse().unwrap()), v1]
        .iter()
        .enumerate()
    {
        let tcp = TcpStream::connect(s.sandbox).await.unwrap();
        let refused = Caller::open(&s, tcp, Some(header), &c.cert).await;
        assert!(refused.is_err(), "an untrusted PROXY header was accepted");
        assert_eq!(
            closed_at_edge(&s, "sandbox", "proxy_protocol").await,
            n as u64 + 1
        );
    }
    // Without a header the same peer is served as before.
    let tcp = TcpStream::connect(s.sandbox).await.unwrap();
    assert!(Caller::open(&s, tcp, None, &c.cert).await.is_ok());
}

/// Behind a balancer the per-address cap counts each caller, not the
/// balancer: with one connection per address, a second one of the same
/// caller is closed while another caller still gets in.
#[tokio::test]
async fn the_per_address_cap_counts_callers_behind_the_balancer() {
    let s = TestServer::start_with(|c| {
        trust_loopback_on_sandbox(c);
        c.limits.max_connections_per_ip = 1;
    })
    .await;
    let id = s.pki.partner(Sandbox, "capped");
    let open = |ip: &str| {
        let (s, id, ip) = (&s, &id, ip.parse::<IpAddr>().unwrap());
        async move {
            let tcp = TcpStream::connect(s.sandbox).await.unwrap();
            Caller::open(s, tcp, Some(&v2_header(ip)), id).await
        }
    };
    let _first = open("203.0.113.7").await.unwrap();
    assert!(open("203.0.113.7").await.is_err(), "second from one caller");
    let _other = open("203.0.113.8").await.unwrap();
}

/// HAProxy relaying to `backend` with `send-proxy-v2`.
async fn haproxy(dir: &Path, backend: SocketAddr) -> (Haproxy, SocketAddr) {
    support::haproxy::start(dir, &format!("  server gateway {backend} send-proxy-v2\n")).await
}

#[tokio::test]
async fn a_real_haproxy_passes_its_client_through() {
    let s = TestServer::start_with(trust_loopback_on_sandbox).await;
    let dir = tempfile::tempdir().unwrap();
    let (_haproxy, front) = haproxy(dir.path(), s.sandbox).await;
    let c = s.client(Sandbox).await;
    set_allowlist(&s, &c.id, &["127.0.0.2/32"]).await;
    let client: IpAddr = "127.0.0.2".parse().unwrap();
    // TLS passes through HAProxy untouched; opale's TCP peer is HAProxy
    // at 127.0.0.1, which alone may (and must) send the header.
    let tcp = tcp_from(client, front).await.unwrap();
    let mut conn = Caller::open(&s, tcp, None, &c.cert).await.unwrap();
    let (status, body) = conn.token(&c.id).await;
    assert_eq!(status, 200, "{body:?}");
    let token = body["access_token"].as_str().unwrap().to_owned();
    let (status, body, cid) = conn.data(&token).await;
    assert_eq!(status, 200, "{body:?}");
    assert_eq!(traced(&s, &c.id, &cid).await["ip"], "127.0.0.2");
    // 127.0.0.2 itself is no balancer: its own header is refused.
    let before = closed_at_edge(&s, "sandbox", "proxy_protocol").await;
    let tcp = tcp_from(client, s.sandbox).await.unwrap();
    let forged = v2_header("203.0.113.7".parse().unwrap());
    assert!(Caller::open(&s, tcp, Some(&forged), &c.cert).await.is_err());
    assert_eq!(
        closed_at_edge(&s, "sandbox", "proxy_protocol").await,
        before + 1
    );
}
