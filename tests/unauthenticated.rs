//! Every state of a connection has a deadline (docs/contract.md §8), over
//! real TLS on the real serving path: a stalled request body is answered
//! (408, or 400 `invalid_request` on `/token`) and its connection closed at
//! `body_read_timeout_ms`, on HTTP/1.1 and HTTP/2, on the token endpoint,
//! the DataPass webhook and a claims transmission; 200 such connections do
//! not slow the admin API; a connection without a client certificate gets 4
//! HTTP/2 streams; a response nobody reads (HTTP/2 zero window, even with
//! PINGs; unread HTTP/1.1 socket) drops its connection at
//! `send_timeout_ms`; a certificate revoked by a new CRL or through the
//! admin API is refused (401 910102) on the connection already open, which
//! is then closed; and every connection is closed gracefully at
//! `max_connection_age_secs` (HTTP/1.1 `Connection: close`, HTTP/2 GOAWAY),
//! and dropped 10 s later if it still holds a request; a body answered
//! before its end (413) is drained so that a client still sending reads
//! the answer, and that drain ends within 2 s for a body that never does.
// A test crate: its helpers may unwrap like its #[test] functions (a
// panic is a failed test). The lib and binary deny it (Cargo.toml).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::body::{Body, Frame, Incoming};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use opale_apim::audit::Durability;
use opale_apim::config::{Config, WebhookSecret};
use opale_apim::domain::Environment::Sandbox;
use opale_apim::pki::PkiFiles;
use rustls::ClientConfig;
use rustls_pki_types::ServerName;
use serde_json::Value;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};
use support::pki::{Identity, TestPki};
use support::{Client, TestServer, client_config, correlation_id};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio::task::JoinHandle;
use tokio::time::{sleep, timeout};
use tokio_rustls::client::TlsStream;

const BODY_MS: u64 = 1500;
const SEND_MS: u64 = 1500;
const SECRET: &str = "datapass-secret-of-the-test-suite";
const CRL: &str = "sandbox.crl.pem";
const HEALTH: &str = "/opale/v1/etatSante";
const WEBHOOK: &str = "/datapass/webhook";
const DECLARATIONS: &str = "/opale/v1/entreprises/732829320/declarations?annee=2024";
const CREANCES: &str = "/opale/v1/entreprises/732829320/creances";
const SECOND: Duration = Duration::from_secs(1);

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// Short body and send deadlines, the DataPass webhook on, an (empty)
/// sandbox CRL file watched; then `tweak`.
async fn server(tweak: impl Fn(&mut Config) + Send + Sync + 'static) -> TestServer {
    TestServer::start_with(move |c| {
        c.limits.body_read_timeout_ms = BODY_MS;
        c.limits.send_timeout_ms = SEND_MS;
        c.datapass.webhook_secret = Some(WebhookSecret::new(SECRET).unwrap());
        let crl = c.certs_dir.join(CRL);
        if !crl.exists() {
            let files = PkiFiles::new(&c.certs_dir);
            std::fs::write(&crl, TestPki { files }.crl(Sandbox, &[])).unwrap();
        }
        c.sandbox.crls = vec![crl];
        tweak(c);
    })
    .await
}

/// A well-formed signature: the webhook reads the body to check it.
const SIGNED: [(&str, &str); 1] = [(
    "x-hub-signature-256",
    "sha256=abababababababababababababababababababababababababababababababab",
)];

/// Client TLS settings presenting `id`, offering only `alpn`.
fn cfg(s: &TestServer, id: Option<&Identity>, alpn: &[u8]) -> Arc<ClientConfig> {
    let mut config = (*client_config(&s.pki.files.ca_pem(), id)).clone();
    config.alpn_protocols = vec![alpn.to_vec()];
    Arc::new(config)
}

async fn tls_on(cfg: Arc<ClientConfig>, socket: TcpSocket, to: SocketAddr) -> TlsStream<TcpStream> {
    let tcp = socket.connect(to).await.unwrap();
    let name = ServerName::try_from("localhost").unwrap();
    let connector = tokio_rustls::TlsConnector::from(cfg);
    connector.connect(name, tcp).await.unwrap()
}

/// A TLS connection from source address `from` (127.0.0.x).
async fn tls(cfg: Arc<ClientConfig>, from: &str, to: SocketAddr) -> TlsStream<TcpStream> {
    let socket = TcpSocket::new_v4().unwrap();
    socket.bind(format!("{from}:0").parse().unwrap()).unwrap();
    tls_on(cfg, socket, to).await
}

/// What a stalled HTTP/1.1 request got, timed from the end of its head.
struct Stalled {
    status: u16,
    text: String,
    answered: Option<Duration>,
    closed: Duration,
}

/// Sends a head declaring a 20 000-byte body and one byte of it.
async fn start_stall(tls: &mut TlsStream<TcpStream>, path: &str, headers: &[(&str, &str)]) {
    let mut head = format!("POST {path} HTTP/1.1\r\nhost: localhost\r\ncontent-length: 20000\r\n");
    for (k, v) in headers {
        head += &format!("{k}: {v}\r\n");
    }
    tls.write_all(format!("{head}\r\n{{").as_bytes())
        .await
        .unwrap();
    tls.flush().await.unwrap();
}

/// Reads until the server closes (at most 20 s).
async fn until_closed(mut tls: TlsStream<TcpStream>, started: Instant) -> Stalled {
    let (mut raw, mut answered, mut buf) = (Vec::new(), None, [0u8; 4096]);
    loop {
        match timeout(Duration::from_secs(20), tls.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => break,
            Ok(Ok(n)) => {
                answered.get_or_insert(started.elapsed());
                raw.extend_from_slice(&buf[..n]);
            }
            Err(_) => panic!("still open after 20 s"),
        }
    }
    let text = String::from_utf8_lossy(&raw).into_owned();
    let status = text.get(9..12).and_then(|s| s.parse().ok()).unwrap_or(0);
    let closed = started.elapsed();
    Stalled {
        status,
        text,
        answered,
        closed,
    }
}

/// A stalled request from 127.0.0.1 to `to`, until the server closes.
async fn stall_h1(
    cfg: Arc<ClientConfig>,
    to: SocketAddr,
    path: &str,
    h: &[(&str, &str)],
) -> Stalled {
    let mut tls = tls(cfg, "127.0.0.1", to).await;
    start_stall(&mut tls, path, h).await;
    until_closed(tls, Instant::now()).await
}

/// `took` is no earlier than `deadline` − 100 ms, no later than `deadline` + `margin`.
fn assert_between(what: &str, took: Duration, deadline: Duration, margin: Duration) {
    assert!(
        took + ms(100) >= deadline,
        "{what}: {took:?}, before {deadline:?}"
    );
    assert!(
        took <= deadline + margin,
        "{what}: {took:?}, past {deadline:?} + {margin:?}"
    );
}

/// A request body: empty, or one byte then nothing, ever.
struct Trickle {
    stall: bool,
    sent: bool,
}

const EMPTY: Trickle = Trickle {
    stall: false,
    sent: false,
};
const STALLED: Trickle = Trickle {
    stall: true,
    sent: false,
};

impl Body for Trickle {
    type Data = Bytes;
    type Error = Infallible;
    fn poll_frame(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        match (self.stall, self.sent) {
            (false, _) => Poll::Ready(None),
            (true, false) => {
                self.sent = true;
                Poll::Ready(Some(Ok(Frame::data(Bytes::from_static(b"{")))))
            }
            (true, true) => Poll::Pending,
        }
    }
    fn is_end_stream(&self) -> bool {
        !self.stall
    }
}

type H1 = hyper::client::conn::http1::SendRequest<Trickle>;
type H2 = hyper::client::conn::http2::SendRequest<Trickle>;
type H2Builder = hyper::client::conn::http2::Builder<TokioExecutor>;
/// The task driving a client connection: it ends when the connection does.
type Driven = JoinHandle<hyper::Result<()>>;

async fn h1(tls: TlsStream<TcpStream>) -> (H1, Driven) {
    let io = TokioIo::new(tls);
    let (send, conn) = hyper::client::conn::http1::handshake(io).await.unwrap();
    (send, tokio::spawn(conn))
}

/// HTTP/2, with this initial stream window (hyper's default if `None`).
async fn h2(tls: TlsStream<TcpStream>, window: Option<u32>) -> (H2, Driven) {
    let (send, driven, _) = h2_with(tls, |b| {
        b.initial_stream_window_size(window);
    })
    .await;
    (send, driven)
}

/// HTTP/2 set up by `tweak`; also watches the server's
/// SETTINGS_MAX_CONCURRENT_STREAMS (as of the client task's last poll).
async fn h2_with(
    tls: TlsStream<TcpStream>,
    tweak: impl FnOnce(&mut H2Builder),
) -> (H2, Driven, tokio::sync::watch::Receiver<usize>) {
    let mut builder = H2Builder::new(TokioExecutor::new());
    tweak(&mut builder);
    let (send, conn) = builder.handshake(TokioIo::new(tls)).await.unwrap();
    let mut conn = Box::pin(conn);
    let (streams, watched) = tokio::sync::watch::channel(0);
    let driven = tokio::spawn(std::future::poll_fn(move |cx| {
        let polled = conn.as_mut().poll(cx);
        streams.send_replace(conn.current_max_send_streams());
        polled
    }));
    (send, driven, watched)
}

/// A request; HTTP/2 needs an absolute `uri`, HTTP/1.1 takes a path.
fn request(method: Method, uri: &str, headers: &[(&str, &str)], body: Trickle) -> Request<Trickle> {
    let mut req = Request::builder()
        .method(method)
        .uri(uri)
        .header("host", "localhost");
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    req.body(body).unwrap()
}

/// The status and error code of a response read whole.
async fn code(resp: Response<Incoming>) -> (StatusCode, String) {
    let status = resp.status();
    let raw = resp.into_body().collect().await.unwrap().to_bytes();
    let body: Value = serde_json::from_slice(&raw).unwrap_or(Value::Null);
    let code = body["code"]
        .as_str()
        .or_else(|| body["erreur"]["code"].as_str());
    (status, code.unwrap_or("").to_owned())
}

/// How long until `driven` ends (panics past `limit`).
async fn ended(driven: Driven, since: Instant, limit: Duration) -> Duration {
    timeout(limit, driven)
        .await
        .expect("the connection is still open")
        .unwrap()
        .ok();
    since.elapsed()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_http1_body_is_answered_and_its_connection_closed() {
    let s = server(|_| {}).await;
    let c = s.client(Sandbox).await;
    let bearer = format!("Bearer {}", s.token(Sandbox, &c.cert, &c.id).await);
    let cid = correlation_id();
    let data = [
        ("x-correlation-id", cid.as_str()),
        ("authorization", bearer.as_str()),
    ];
    let (anon, partner) = (
        cfg(&s, None, b"http/1.1"),
        cfg(&s, Some(&c.cert), b"http/1.1"),
    );
    let form = [("content-type", "application/x-www-form-urlencoded")];
    let (token, webhook, creances) = tokio::join!(
        stall_h1(anon.clone(), s.sandbox, "/token", &form),
        stall_h1(anon.clone(), s.admin, WEBHOOK, &SIGNED),
        stall_h1(partner, s.sandbox, CREANCES, &data),
    );
    assert_eq!(token.status, 400, "{}", token.text);
    assert!(token.text.contains("invalid_request"), "{}", token.text);
    assert_eq!(webhook.status, 408, "{}", webhook.text);
    assert_eq!(creances.status, 408, "{}", creances.text);
    assert!(creances.text.contains("910006"), "{}", creances.text);
    for (what, r) in [
        ("token", &token),
        ("webhook", &webhook),
        ("creances", &creances),
    ] {
        let head = r.text.to_ascii_lowercase();
        assert!(
            head.contains("\r\nconnection: close\r\n"),
            "{what}: {}",
            r.text
        );
        assert_between(what, r.answered.unwrap(), ms(BODY_MS), SECOND);
        assert_between(what, r.closed, ms(BODY_MS), SECOND);
    }
    // Without a certificate a transmission is refused at once, body unread.
    let refused = stall_h1(anon, s.sandbox, CREANCES, &data[..1]).await;
    assert_eq!(refused.status, 401, "{}", refused.text);
    assert!(refused.text.contains("910100"), "{}", refused.text);
    assert!(
        refused.answered.unwrap() < ms(BODY_MS - 500),
        "{:?}",
        refused.answered
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_http2_stream_is_answered_and_its_connection_closed() {
    let s = server(|_| {}).await;
    let (mut send, driven) = h2(tls(cfg(&s, None, b"h2"), "127.0.0.1", s.admin).await, None).await;
    let uri = format!("https://localhost{WEBHOOK}");
    let req = request(Method::POST, &uri, &SIGNED, STALLED);
    let started = Instant::now();
    let resp = timeout(ms(BODY_MS) + 3 * SECOND, send.send_request(req)).await;
    let resp = resp.expect("no answer").unwrap();
    assert_eq!(resp.status(), 408);
    assert_between("answer", started.elapsed(), ms(BODY_MS), SECOND);
    let closed = ended(driven, started, 15 * SECOND).await;
    assert_between("connection", closed, ms(BODY_MS), SECOND);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_without_a_certificate_gets_four_http2_streams() {
    let s = server(|_| {}).await;
    let admin = cfg(&s, Some(&s.pki.admin()), b"h2");
    let (verified, _v, limit) = h2_with(tls(admin, "127.0.0.1", s.admin).await, |_| {}).await;
    // Two calls: the SETTINGS are in, and seen by the client task.
    for _ in 0..2 {
        let r = Sender::H2(verified.clone())
            .call("/admin/v1/partners")
            .await;
        assert_eq!(r.unwrap().unwrap().status(), 200);
    }
    assert_eq!(*limit.borrow(), 100, "the control");
    let anon_tls = tls(cfg(&s, None, b"h2"), "127.0.0.1", s.admin).await;
    let (mut anon, _a, limit) = h2_with(anon_tls, |_| {}).await;
    let uri = format!("https://localhost{WEBHOOK}");
    for _ in 0..2 {
        Sender::H2(anon.clone())
            .call(WEBHOOK)
            .await
            .unwrap()
            .unwrap();
    }
    assert_eq!(*limit.borrow(), 4);
    // Ten stalled bodies at once: four handlers see them, the others wait.
    let started = Instant::now();
    let calls: Vec<_> = (0..10)
        .map(|_| {
            let req = request(Method::POST, &uri, &SIGNED, STALLED);
            let sent = anon.send_request(req);
            tokio::spawn(async move { sent.await.map(|r| (r.status(), started.elapsed())) })
        })
        .collect();
    sleep(ms(BODY_MS) + SECOND).await;
    let mut first_wave = 0;
    for call in calls {
        if !call.is_finished() {
            call.abort();
            continue;
        }
        if let Ok((status, at)) = call.await.unwrap() {
            assert_eq!(status, 408);
            assert!(at + ms(100) >= ms(BODY_MS), "answered at {at:?}");
            first_wave += 1;
        }
    }
    assert!(
        (1..=4).contains(&first_wave),
        "{first_wave} stalled streams answered at once"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_stalled_bodies_do_not_slow_the_admin_api() {
    const HELD_MS: u64 = 4000;
    let s = server(|c| c.limits.body_read_timeout_ms = HELD_MS).await;
    let (ready, mut heads) = tokio::sync::mpsc::channel(200);
    let held: Vec<JoinHandle<Stalled>> = (0..200)
        .map(|i| {
            let (anon, admin, ready) = (cfg(&s, None, b"http/1.1"), s.admin, ready.clone());
            let from = format!("127.0.0.{}", 2 + i % 4);
            tokio::spawn(async move {
                let mut tls = tls(anon, &from, admin).await;
                start_stall(&mut tls, WEBHOOK, &SIGNED).await;
                let started = Instant::now();
                ready.send(()).await.unwrap();
                until_closed(tls, started).await
            })
        })
        .collect();
    for _ in 0..200 {
        heads.recv().await.unwrap();
    }
    // All 200 heads are in, their bodies stalled: the admin API answers.
    for _ in 0..5 {
        let started = Instant::now();
        let call = s.admin_call(Method::GET, "/admin/v1/partners", None);
        let r = timeout(2 * SECOND, call)
            .await
            .expect("admin call over 2 s");
        assert_eq!(r.status, 200, "{:?}", r.body);
        eprintln!("admin call during the stall: {:?}", started.elapsed());
        sleep(ms(400)).await;
    }
    for stalled in held {
        let r = stalled.await.unwrap();
        assert_eq!(r.status, 408, "{}", r.text);
        assert_between("stalled webhook", r.closed, ms(HELD_MS), 2 * SECOND);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_http2_response_never_read_drops_its_connection() {
    let s = server(|_| {}).await;
    let tls = tls(cfg(&s, None, b"h2"), "127.0.0.1", s.sandbox).await;
    // hyper accepts 0: the server may send headers, never a byte of body.
    let (mut send, driven) = h2(tls, Some(0)).await;
    let uri = format!("https://localhost{HEALTH}");
    let started = Instant::now();
    let req = request(Method::GET, &uri, &[], EMPTY);
    let resp = send.send_request(req).await.unwrap();
    assert_eq!(resp.status(), 200);
    let closed = ended(driven, started, 15 * SECOND).await;
    assert_between("unread h2 response", closed, ms(SEND_MS), SECOND);
    drop(resp);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_zero_window_stream_is_dropped_even_if_the_client_pings() {
    let s = server(|_| {}).await;
    let tls = tls(cfg(&s, None, b"h2"), "127.0.0.1", s.sandbox).await;
    // A PING every 300 ms: the server writes its ACKs, the response never moves.
    let (mut send, driven, _) = h2_with(tls, |b| {
        b.initial_stream_window_size(0)
            .timer(TokioTimer::new())
            .keep_alive_interval(ms(300))
            .keep_alive_timeout(30 * SECOND)
            .keep_alive_while_idle(true);
    })
    .await;
    let uri = format!("https://localhost{HEALTH}");
    let started = Instant::now();
    let req = request(Method::GET, &uri, &[], EMPTY);
    let resp = send.send_request(req).await.unwrap();
    assert_eq!(resp.status(), 200);
    let closed = ended(driven, started, 20 * SECOND).await;
    assert_between("unread h2 response, pinged", closed, ms(SEND_MS), SECOND);
    drop(resp);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_http1_socket_never_read_drops_its_connection() {
    // On loopback the server's send buffer grows to 4 MiB (tcp_wmem). With
    // the trail's default durability each pipelined response waits for its
    // record's flush (~200 a second here), so the server keeps putting bytes
    // into that buffer for ~20 s: its socket does take bytes, no stall. With
    // `async` the responses fill it at once and the socket stops.
    let s = server(|c| c.audit.durability = Durability::Async).await;
    let socket = TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let tls = tls_on(cfg(&s, None, b"http/1.1"), socket, s.sandbox).await;
    let opened = Instant::now();
    let (_never_read, mut writer) = tokio::io::split(tls);
    let batch = format!("GET {HEALTH} HTTP/1.1\r\nhost: localhost\r\n\r\n").repeat(100);
    // Milliseconds since `opened` at which the last batch was taken.
    let taken = Arc::new(AtomicU64::new(0));
    let pipelined = {
        let taken = taken.clone();
        tokio::spawn(async move {
            let mut sent = 0;
            while writer.write_all(batch.as_bytes()).await.is_ok() {
                sent += 100;
                taken.store(opened.elapsed().as_millis() as u64, Ordering::Relaxed);
            }
            sent
        })
    };
    // The writer blocks once its own buffer and the server's are full; the
    // server's socket stops taking bytes soon after (4 MiB of responses).
    let blocked = loop {
        sleep(ms(50)).await;
        let last = ms(taken.load(Ordering::Relaxed));
        if pipelined.is_finished() || opened.elapsed() > last + ms(500) {
            break last;
        }
        assert!(opened.elapsed() < 30 * SECOND, "the socket never filled");
    };
    let sent = timeout(ms(SEND_MS) + 5 * SECOND, pipelined).await;
    let sent = sent.expect("the unread connection is still open").unwrap();
    let closed = opened.elapsed();
    eprintln!("{sent} requests pipelined; writer blocked at {blocked:?}, closed at {closed:?}");
    assert!(closed + ms(100) >= ms(SEND_MS), "closed at {closed:?}");
    let limit = blocked + ms(SEND_MS) + 2 * SECOND;
    assert!(
        closed <= limit,
        "blocked at {blocked:?}, closed at {closed:?}"
    );
}

/// A partner's keep-alive HTTP/1.1 connection, with its token.
struct Busy {
    send: H1,
    driven: Driven,
    bearer: String,
}

impl Busy {
    async fn open(s: &TestServer, c: &Client) -> Busy {
        let bearer = format!("Bearer {}", s.token(Sandbox, &c.cert, &c.id).await);
        let tls = tls(cfg(s, Some(&c.cert), b"http/1.1"), "127.0.0.1", s.sandbox).await;
        let (send, driven) = h1(tls).await;
        Busy {
            send,
            driven,
            bearer,
        }
    }

    /// One data call on this connection.
    async fn call(&mut self) -> (StatusCode, String) {
        let cid = correlation_id();
        let h = [
            ("x-correlation-id", cid.as_str()),
            ("authorization", self.bearer.as_str()),
        ];
        self.send.ready().await.expect("the connection closed");
        let req = request(Method::GET, DECLARATIONS, &h, EMPTY);
        code(self.send.send_request(req).await.unwrap()).await
    }

    /// Calls every 200 ms until one is refused: it must be 401 910102 and
    /// come within `within` of `since`; then the server closes the
    /// connection within 1 s.
    async fn refused_then_closed(mut self, since: Instant, within: Duration) {
        let (status, code) = loop {
            let (status, code) = self.call().await;
            if status != 200 || since.elapsed() > within + SECOND {
                break (status, code);
            }
            sleep(ms(200)).await;
        };
        let took = since.elapsed();
        assert_eq!(
            (status.as_u16(), code.as_str()),
            (401, "910102"),
            "{took:?}"
        );
        assert!(took <= within, "refused {took:?} after the revocation");
        let closed = ended(self.driven, since, 10 * SECOND).await;
        assert!(
            closed <= took + SECOND,
            "refused at {took:?}, closed at {closed:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_certificate_is_refused_on_its_open_connection_which_closes() {
    let s = server(|_| {}).await;
    let (by_crl, by_admin) = (s.client(Sandbox).await, s.client(Sandbox).await);
    let (mut crl_conn, mut admin_conn) = (
        Busy::open(&s, &by_crl).await,
        Busy::open(&s, &by_admin).await,
    );
    for _ in 0..3 {
        assert_eq!(crl_conn.call().await.0, 200);
        assert_eq!(admin_conn.call().await.0, 200);
        sleep(ms(200)).await;
    }
    // A CRL revoking the first, written in place (polled every second).
    let crl = s.pki.files.dir().join(CRL);
    std::fs::write(&crl, s.pki.crl(Sandbox, &[&by_crl.cert])).unwrap();
    crl_conn
        .refused_then_closed(Instant::now(), 2 * SECOND)
        .await;
    // The second, revoked through the admin API.
    assert_eq!(admin_conn.call().await.0, 200, "a CRL revoking another");
    let path = format!(
        "/admin/v1/applications/{}/certificates/{}",
        by_admin.id, by_admin.cert.thumbprint
    );
    let revoked = Instant::now();
    assert_eq!(s.admin_call(Method::DELETE, &path, None).await.status, 204);
    admin_conn.refused_then_closed(revoked, SECOND).await;
}

/// HTTP/1.1 or HTTP/2, for the same calls.
enum Sender {
    H1(H1),
    H2(H2),
}

impl Sender {
    /// `GET path`; `None` if the connection takes no more requests.
    async fn call(&mut self, path: &str) -> Option<hyper::Result<Response<Incoming>>> {
        let get = |uri: &str| request(Method::GET, uri, &[], EMPTY);
        Some(match self {
            Sender::H1(s) => {
                s.ready().await.ok()?;
                s.send_request(get(path)).await
            }
            Sender::H2(s) => {
                s.ready().await.ok()?;
                s.send_request(get(&format!("https://localhost{path}")))
                    .await
            }
        })
    }
}

/// `GET etatSante` every 200 ms until the server ends the connection; every
/// request sent is answered 200 (one refused before it is sent, as the
/// connection closes, is not sent). Returns when the connection ended, from
/// `opened`, how many calls were answered, and whether the last answer said
/// `Connection: close`.
async fn call_until_closed(
    mut send: Sender,
    mut driven: Driven,
    opened: Instant,
) -> (Duration, u32, bool) {
    let mut answered = 0;
    let mut close = false;
    while !close {
        tokio::select! {
            _ = &mut driven => return (opened.elapsed(), answered, close),
            _ = sleep(ms(200)) => {}
        }
        assert!(opened.elapsed() < 15 * SECOND, "never closed");
        let resp = match send.call(HEALTH).await {
            None => break,
            Some(Ok(resp)) => resp,
            Some(Err(e)) if e.is_canceled() => break,
            Some(Err(e)) => panic!("a request failed mid-way at {:?}: {e:?}", opened.elapsed()),
        };
        close = resp
            .headers()
            .get("connection")
            .is_some_and(|v| v == "close");
        assert_eq!(code(resp).await.0, 200);
        answered += 1;
    }
    (ended(driven, opened, 15 * SECOND).await, answered, close)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_old_connection_is_closed_gracefully_at_its_age() {
    let s = server(|c| c.limits.max_connection_age_secs = 2).await;
    let (h1_tls, h2_tls) = tokio::join!(
        tls(cfg(&s, None, b"http/1.1"), "127.0.0.1", s.sandbox),
        tls(cfg(&s, None, b"h2"), "127.0.0.1", s.sandbox),
    );
    let opened = Instant::now();
    let ((send1, driven1), (send2, driven2)) = tokio::join!(h1(h1_tls), h2(h2_tls, None));
    let (http1, http2) = tokio::join!(
        call_until_closed(Sender::H1(send1), driven1, opened),
        call_until_closed(Sender::H2(send2), driven2, opened),
    );
    eprintln!("HTTP/1.1 closed at {:?} after {} calls", http1.0, http1.1);
    eprintln!("HTTP/2 closed at {:?} after {} calls", http2.0, http2.1);
    assert_between("HTTP/1.1", http1.0, 2 * SECOND, ms(1500));
    assert_between("HTTP/2", http2.0, 2 * SECOND, ms(1500));
    assert!(http1.1 >= 5 && http2.1 >= 5, "kept busy until its age");
    assert!(
        http1.2,
        "HTTP/1.1: the last response says Connection: close"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_old_connection_holding_a_stalled_body_is_dropped_after_the_grace() {
    let s = server(|c| {
        c.limits.max_connection_age_secs = 2;
        c.limits.body_read_timeout_ms = 60_000;
    })
    .await;
    let h2_tls = tls(cfg(&s, None, b"h2"), "127.0.0.1", s.admin).await;
    let opened = Instant::now();
    let (mut send, driven) = h2(h2_tls, None).await;
    let uri = format!("https://localhost{WEBHOOK}");
    let stalled = send.send_request(request(Method::POST, &uri, &SIGNED, STALLED));
    let stalled = tokio::spawn(stalled);
    let (http1, http2) = tokio::join!(
        stall_h1(cfg(&s, None, b"http/1.1"), s.admin, WEBHOOK, &SIGNED),
        ended(driven, opened, 20 * SECOND)
    );
    // Asked to close at 2 s, still busy: dropped 10 s later.
    let dropped = 12 * SECOND;
    assert_between("HTTP/1.1", http1.closed, dropped, SECOND);
    assert_between("HTTP/2", http2, dropped, SECOND);
    assert!(
        stalled.await.unwrap().is_err(),
        "the stalled stream got no answer"
    );
}

/// Sends a head declaring `total` body bytes to the EST renewal (which
/// answers 413 past 16 KiB), then `sent` of them in 16 KiB writes, without
/// reading (as Python's http.client does); whether every write went
/// through, then what the server answered, read until it closed.
async fn send_before_reading(s: &TestServer, total: usize, sent: usize) -> (bool, Stalled) {
    let mut tls = tls(cfg(s, None, b"http/1.1"), "127.0.0.1", s.sandbox).await;
    let head = format!(
        "POST /.well-known/est/simplereenroll HTTP/1.1\r\nhost: localhost\r\n\
         content-type: application/pkcs10\r\ncontent-length: {total}\r\n\r\n"
    );
    tls.write_all(head.as_bytes()).await.unwrap();
    let chunk = vec![b'A'; 16 * 1024];
    let mut all_written = true;
    for _ in 0..sent / chunk.len() {
        if tls.write_all(&chunk).await.is_err() || tls.flush().await.is_err() {
            all_written = false;
            break;
        }
        sleep(ms(2)).await;
    }
    (all_written, until_closed(tls, Instant::now()).await)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_answered_before_its_end_is_drained_so_the_client_reads_the_answer() {
    let s = server(|c| c.limits.body_read_timeout_ms = 10_000).await;
    // 512 KiB sent in full after the server's answer: drained, then the
    // answer is read whole (no reset, no TLS stream cut short).
    let (written, got) = send_before_reading(&s, 512 * 1024, 512 * 1024).await;
    assert!(written, "the server stopped taking the body");
    assert_eq!(got.status, 413, "{}", got.text);
    assert!(
        got.text.trim_end().ends_with('}'),
        "body read whole: {}",
        got.text
    );
    // A body that never ends is drained 2 s at most, then the connection
    // closes: the drain is bounded for callers who never authenticate.
    let mut tls = tls(cfg(&s, None, b"http/1.1"), "127.0.0.1", s.sandbox).await;
    let head = "POST /.well-known/est/simplereenroll HTTP/1.1\r\nhost: localhost\r\n\
                content-type: application/pkcs10\r\ncontent-length: 100000000\r\n\r\n";
    tls.write_all(head.as_bytes()).await.unwrap();
    tls.write_all(&[b'A'; 20 * 1024]).await.unwrap();
    let started = Instant::now();
    let mut closed = None;
    while started.elapsed() < 8 * SECOND {
        if tls.write_all(&[b'A'; 1024]).await.is_err() {
            closed = Some(started.elapsed());
            break;
        }
        sleep(ms(20)).await;
    }
    let closed = closed.expect("a trickling body was drained for 8 s");
    assert!(closed < 4 * SECOND, "closed after {closed:?}");
}
