//! Memory held by callers without a certificate is bounded
//! (docs/contract.md §8): the HTTP/2 attack on the DataPass webhook that
//! once took the process from 145 MB to 1.1 GB — 40 connections from one
//! address, up to 100 streams each, bodies of ~256 KiB sent but for their
//! last byte — raises the resident memory of the process by less than
//! 64 MiB, and the memory comes back once the stalled bodies hit their
//! deadline. Alone in its test binary so that no other test's memory
//! counts.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use bytes::Bytes;
use hyper::body::{Body, Frame};
use hyper::client::conn::http2;
use hyper::{Request, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls_pki_types::ServerName;
use std::net::SocketAddr;
use std::pin::Pin;
use std::process::{Child, Command, Stdio};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};
use support::client_config;
use tokio::net::TcpSocket;

const CONNECTIONS: usize = 40;
const STREAMS: usize = 100;
const BODY_TIMEOUT_MS: u64 = 4_000;
const MIB: u64 = 1024 * 1024;

/// A body of `declared` bytes that sends all but the last one, then
/// stalls forever.
struct Stalling {
    left: usize,
}

impl Body for Stalling {
    type Data = Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        static CHUNK: [u8; 16_384] = [b'x'; 16_384];
        if self.left == 0 {
            return Poll::Pending;
        }
        let n = self.left.min(CHUNK.len());
        self.left -= n;
        Poll::Ready(Some(Ok(Frame::data(Bytes::from_static(&CHUNK[..n])))))
    }
}

const BIN: &str = env!("CARGO_BIN_EXE_opale-apim");

/// Resident memory of process `pid`, bytes.
fn rss(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap();
    kb * 1024
}

/// A `serve` process with the webhook on, short deadlines, and its admin
/// listener's address; killed when dropped.
struct Served {
    child: Child,
    dir: tempfile::TempDir,
    admin: SocketAddr,
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

async fn serve() -> Served {
    let dir = tempfile::tempdir().unwrap();
    let [sandbox, production, admin] = [free_port(), free_port(), free_port()];
    let config = format!(
        "data_dir = \"{d}/data\"\ncerts_dir = \"{d}/certs\"\n\
         [limits]\nbody_read_timeout_ms = {BODY_TIMEOUT_MS}\nidle_timeout_ms = 3000\n\
         [datapass]\nwebhook_secret = \"memory-test-secret-of-32-bytes-at-least\"\n\
         [sandbox]\nlisten = \"127.0.0.1:{sandbox}\"\n[production]\nlisten = \"127.0.0.1:{production}\"\n\
         [admin]\nlisten = \"127.0.0.1:{admin}\"\n",
        d = dir.path().display()
    );
    std::fs::write(dir.path().join("opale.toml"), config).unwrap();
    let child = Command::new(BIN)
        .args(["serve", "--config"])
        .arg(dir.path().join("opale.toml"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::net::TcpStream::connect(("127.0.0.1", admin)).is_err() {
        assert!(Instant::now() < deadline, "serve did not start");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Served {
        child,
        admin: SocketAddr::from(([127, 0, 0, 1], admin)),
        dir,
    }
}

/// One HTTP/2 connection without a client certificate from `from`.
async fn h2(s: &Served, from: &str) -> http2::SendRequest<Stalling> {
    let socket = TcpSocket::new_v4().unwrap();
    socket.bind(format!("{from}:0").parse().unwrap()).unwrap();
    let tcp = socket.connect(s.admin).await.unwrap();
    let mut config = (*client_config(&s.dir.path().join("certs/ca.pem"), None)).clone();
    config.alpn_protocols = vec![b"h2".to_vec()];
    let tls = tokio_rustls::TlsConnector::from(std::sync::Arc::new(config))
        .connect(ServerName::try_from("localhost").unwrap(), tcp)
        .await
        .unwrap();
    let (sender, conn) = http2::handshake(TokioExecutor::new(), TokioIo::new(tls))
        .await
        .unwrap();
    tokio::spawn(conn);
    sender
}

/// Starts `STREAMS` webhook deliveries declaring `declared` bytes on
/// `sender`; each resolves to its status, or `None` while it hangs.
fn attack(
    sender: &http2::SendRequest<Stalling>,
    declared: usize,
) -> Vec<tokio::task::JoinHandle<Option<StatusCode>>> {
    (0..STREAMS)
        .map(|_| {
            let mut sender = sender.clone();
            tokio::spawn(async move {
                sender.ready().await.ok()?;
                let req = Request::post("/datapass/webhook")
                    .header("content-type", "application/json")
                    .header("content-length", declared)
                    .header("x-hub-signature-256", format!("sha256={}", "0".repeat(64)))
                    .body(Stalling { left: declared - 1 })
                    .unwrap();
                sender.send_request(req).await.ok().map(|r| r.status())
            })
        })
        .collect()
}

/// One attack from `from`: 40 connections, each with 100 streams declaring
/// 262 144 bytes then 100 declaring 60 000. Returns the RSS while it holds
/// and once its connections are closed.
async fn round(s: &Served, from: &str) -> (u64, u64) {
    let pid = s.child.id();
    let mut senders = Vec::new();
    let mut streams = Vec::new();
    for _ in 0..CONNECTIONS {
        let sender = h2(s, from).await;
        streams.extend(attack(&sender, 262_144));
        senders.push(sender);
    }
    // Bodies under the cap too, which the webhook does read.
    for sender in &senders {
        streams.extend(attack(sender, 60_000));
    }
    tokio::time::sleep(Duration::from_millis(BODY_TIMEOUT_MS / 2)).await;
    let during = rss(pid);
    let deadline = Instant::now() + Duration::from_millis(BODY_TIMEOUT_MS + 15_000);
    let mut statuses = std::collections::BTreeMap::new();
    for stream in streams {
        let left = deadline.saturating_duration_since(Instant::now());
        let status = tokio::time::timeout(left, stream)
            .await
            .ok()
            .and_then(|r| r.unwrap());
        *statuses.entry(status.map(|s| s.as_u16())).or_insert(0) += 1;
    }
    println!("{from}: stream outcomes {statuses:?}");
    assert!(
        statuses.get(&Some(413)).copied().unwrap_or(0) >= CONNECTIONS,
        "{statuses:?}"
    );
    drop(senders);
    // The server closes the idle connections (3 s) and frees what they held.
    tokio::time::sleep(Duration::from_secs(5)).await;
    (during, rss(pid))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stalled_webhook_bodies_over_http2_hold_little_memory() {
    let s = serve().await;
    let before = rss(s.child.id());
    let mut rounds = Vec::new();
    // Three attacks from three addresses (each starts under the
    // per-address refusal limit).
    for from in ["127.0.0.2", "127.0.0.3", "127.0.0.4"] {
        let (during, after) = round(&s, from).await;
        println!(
            "{from}: RSS before {} MiB, during {} MiB (+{} KiB per attacking connection), after {} MiB",
            before / MIB,
            during / MIB,
            during.saturating_sub(before) / 1024 / CONNECTIONS as u64,
            after / MIB
        );
        assert!(
            during < before + 64 * MIB,
            "RSS grew by {} MiB",
            (during - before) / MIB
        );
        rounds.push(after);
    }
    // What the first attack left is reused by the next ones, not added to.
    let (first, last) = (rounds[0], rounds[rounds.len() - 1]);
    assert!(
        last < first + 4 * MIB,
        "RSS after each attack: {:?} MiB",
        rounds.iter().map(|r| r / MIB).collect::<Vec<_>>()
    );
}
