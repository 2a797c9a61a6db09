//! What a caller not yet authenticated can make the webhook hold: the
//! signature header's form is judged before the body is read, a declared
//! body over `[datapass] max_body_bytes` is refused before it is read, a
//! body growing past it while it arrives is refused then, and a signed
//! approval carries a bounded number of contact roles.

use super::support::TestServer;
use super::*;
use rustls_pki_types::ServerName;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// A well-formed signature of nothing in particular.
const SOME_SIGNATURE: &str =
    "sha256=0000000000000000000000000000000000000000000000000000000000000000";

/// Writes `bytes` over TLS to the admin listener (no client certificate)
/// and returns the status of the answer, which must come within 5 s
/// whatever the request announced and did not send.
async fn raw_status(s: &TestServer, bytes: &[u8]) -> u16 {
    let config = super::support::client_config(&s.pki.files.ca_pem(), None);
    let tcp = TcpStream::connect(s.admin).await.unwrap();
    let name = ServerName::try_from("localhost").unwrap();
    let mut tls = tokio_rustls::TlsConnector::from(config)
        .connect(name, tcp)
        .await
        .unwrap();
    tls.write_all(bytes).await.unwrap();
    tls.flush().await.unwrap();
    let mut head = Vec::new();
    let read = async {
        let mut buf = [0u8; 4096];
        while !head.windows(4).any(|w| w == b"\r\n\r\n") {
            let n = tls.read(&mut buf).await.unwrap();
            if n == 0 {
                break;
            }
            head.extend_from_slice(&buf[..n]);
        }
    };
    tokio::time::timeout(Duration::from_secs(5), read)
        .await
        .expect("an answer without the body");
    let head = String::from_utf8_lossy(&head);
    let status = head.split(' ').nth(1).and_then(|c| c.parse().ok());
    status.unwrap_or_else(|| panic!("no status line in {head:?}"))
}

/// A request head for the webhook with these extra header lines.
fn head(lines: &[&str]) -> String {
    let mut h = "POST /datapass/webhook HTTP/1.1\r\nhost: localhost\r\n".to_owned();
    for l in lines {
        h.push_str(l);
        h.push_str("\r\n");
    }
    h + "\r\n"
}

#[tokio::test]
async fn a_malformed_signature_is_401_before_the_body_is_read() {
    let s = server().await;
    // 40 000 bytes announced, none sent: the answer cannot wait for them.
    let announced = "content-length: 40000";
    for signature in [&["x-hub-signature-256: sha256=zz"][..], &[]] {
        let mut lines = vec![announced];
        lines.extend_from_slice(signature);
        assert_eq!(
            raw_status(&s, head(&lines).as_bytes()).await,
            401,
            "{lines:?}"
        );
    }
    assert_eq!(list(&s, "/admin/v1/partners").await, json!([]));
}

#[tokio::test]
async fn a_declared_body_over_max_body_bytes_is_413_before_it_is_read() {
    let s = TestServer::start_with(|c| {
        with_secret(c);
        c.datapass.max_body_bytes = 1024;
    })
    .await;
    // Over the webhook's cap, under every cap of the gateway itself.
    let sig = format!("x-hub-signature-256: {SOME_SIGNATURE}");
    let lines = ["content-length: 5000", sig.as_str()];
    assert_eq!(raw_status(&s, head(&lines).as_bytes()).await, 413);

    let r = deliver(&s, APPROVE, None).await;
    assert_eq!(r.status, 413, "{:?}", r.body);
    let msg = r.body["error"]["message"].as_str().unwrap();
    assert!(msg.contains("1024"), "the webhook's own answer: {msg}");
    assert_eq!(list(&s, "/admin/v1/partners").await, json!([]));
}

#[tokio::test]
async fn a_chunked_body_growing_past_max_body_bytes_is_413() {
    let s = TestServer::start_with(|c| {
        with_secret(c);
        c.datapass.max_body_bytes = 2048;
    })
    .await;
    let sig = format!("x-hub-signature-256: {SOME_SIGNATURE}");
    let mut request = head(&["transfer-encoding: chunked", sig.as_str()]);
    // Two chunks of 1 500 bytes; no last chunk: the answer cannot wait.
    for _ in 0..2 {
        request.push_str(&format!("5dc\r\n{}\r\n", " ".repeat(1500)));
    }
    assert_eq!(raw_status(&s, request.as_bytes()).await, 413);
    assert_eq!(list(&s, "/admin/v1/partners").await, json!([]));
}

#[tokio::test]
async fn bodies_over_limits_max_body_bytes_are_413() {
    let s = TestServer::start_with(|c| {
        with_secret(c);
        c.limits.max_body_bytes = 1024;
    })
    .await;
    let r = deliver(&s, APPROVE, None).await;
    assert_eq!(r.status, 413, "{:?}", r.body);
    assert_eq!(list(&s, "/admin/v1/partners").await, json!([]));
}

/// Issue 17: a signed approval with 600 contact roles was accepted whole.
#[tokio::test]
async fn too_many_contact_roles_is_400_and_writes_nothing() {
    let s = server().await;
    for extra in [8, 600] {
        let mut v: Value = serde_json::from_str(APPROVE).unwrap();
        for i in 0..extra {
            let [hi, lo] = [i / 26, i % 26].map(|d| char::from(b'a' + d as u8));
            let key = format!("contact_extra_{hi}{lo}_email");
            v["data"]["data"][key] = format!("r{i}@example.fr").into();
        }
        let r = deliver(&s, &v.to_string(), None).await;
        assert_eq!(r.status, 400, "{extra}: {:?}", r.body);
        let field = r.field();
        assert!(field.starts_with("data.data.contact_"), "{field}");
        let msg = r.body["error"]["message"].as_str().unwrap();
        assert!(msg.contains("at most 8 contact roles"), "{msg}");
    }
    assert_eq!(list(&s, "/admin/v1/partners").await, json!([]));
}
