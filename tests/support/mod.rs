//! Shared test support: a real server on 127.0.0.1:0 with a PKI generated
//! at test start, certificates made with rcgen, and a real mTLS HTTP client.
#![allow(dead_code)]

pub mod browser;
pub mod cluster;
pub mod est;
pub mod handshake;
pub mod haproxy;
pub mod page_checks;
pub mod pki;
pub mod postgres;
pub mod redis_server;
pub mod smtp;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper::{HeaderMap, Method, Request, StatusCode};
use hyper_util::rt::TokioIo;
use opale_apim::app::{App, Held};
use opale_apim::config::Config;
use opale_apim::domain::Environment;
use opale_apim::reload::Reloader;
use opale_apim::server::{self, Listeners};
use pki::{Identity, TestPki};
use rustls::{ClientConfig, RootCertStore};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use serde_json::{Value, json};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// A parsed response.
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Value,
    pub raw: Bytes,
}

impl Reply {
    /// The error code in either rendering (problem+json or DGFIP envelope).
    pub fn code(&self) -> String {
        self.body["code"]
            .as_str()
            .or_else(|| self.body["erreur"]["code"].as_str())
            .unwrap_or("")
            .to_owned()
    }
    /// The admin API's error field.
    pub fn field(&self) -> String {
        self.body["error"]["field"]
            .as_str()
            .unwrap_or("")
            .to_owned()
    }
}

/// TLS client settings: trust the test CA, present `identity` if any.
pub fn client_config(ca_pem: &Path, identity: Option<&Identity>) -> Arc<ClientConfig> {
    let mut roots = RootCertStore::empty();
    for c in CertificateDer::pem_file_iter(ca_pem).unwrap() {
        roots.add(c.unwrap()).unwrap();
    }
    let builder = ClientConfig::builder_with_provider(opale_apim::tls::provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots);
    let mut config = match identity {
        Some(id) => {
            let chain = CertificateDer::pem_slice_iter(id.cert_pem.as_bytes())
                .collect::<Result<Vec<_>, _>>()
                .unwrap();
            let key = PrivateKeyDer::from_pem_slice(id.key_pem.as_bytes()).unwrap();
            builder.with_client_auth_cert(chain, key).unwrap()
        }
        None => builder.with_no_client_auth(),
    };
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Arc::new(config)
}

/// One keep-alive HTTP/1.1 connection over TLS.
pub struct Conn {
    sender: SendRequest<Full<Bytes>>,
}

/// TLS (server name `localhost`) then HTTP/1.1 over an open socket; the
/// connection is driven by its own task.
pub async fn http1_over_tls(
    tcp: TcpStream,
    config: Arc<ClientConfig>,
) -> std::io::Result<SendRequest<Full<Bytes>>> {
    let name = ServerName::try_from("localhost").unwrap();
    let tls = tokio_rustls::TlsConnector::from(config)
        .connect(name, tcp)
        .await?;
    let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
        .await
        .map_err(std::io::Error::other)?;
    tokio::spawn(conn);
    Ok(sender)
}

impl Conn {
    /// Connects to `addr` (server name `localhost`).
    pub async fn open(addr: SocketAddr, config: Arc<ClientConfig>) -> std::io::Result<Conn> {
        let tcp = TcpStream::connect(addr).await?;
        let sender = http1_over_tls(tcp, config).await?;
        Ok(Conn { sender })
    }

    /// Sends a request; `body` is sent as JSON.
    pub async fn send(
        &mut self,
        method: Method,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<&Value>,
    ) -> Reply {
        let bytes = body
            .map(|b| serde_json::to_vec(b).unwrap())
            .unwrap_or_default();
        self.send_raw(method, path, headers, bytes, body.is_some())
            .await
    }

    /// A GET that reports transport errors instead of panicking (for tests
    /// that kill the server mid-flight). Returns the status.
    pub async fn try_get(
        &mut self,
        path: &str,
        headers: &[(&str, &str)],
    ) -> Result<u16, hyper::Error> {
        let mut req = Request::builder().uri(path).header("host", "localhost");
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let resp = self
            .sender
            .send_request(req.body(Full::new(Bytes::new())).unwrap())
            .await?;
        let status = resp.status().as_u16();
        resp.into_body().collect().await?;
        Ok(status)
    }

    /// A GET that reports transport errors instead of panicking, with the
    /// whole reply (for tests that measure every call of a probe).
    pub async fn try_reply(
        &mut self,
        path: &str,
        headers: &[(&str, &str)],
    ) -> Result<Reply, hyper::Error> {
        let mut req = Request::builder().uri(path).header("host", "localhost");
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        self.sender.ready().await?;
        let resp = self
            .sender
            .send_request(req.body(Full::new(Bytes::new())).unwrap())
            .await?;
        let status = resp.status();
        let headers = resp.headers().clone();
        let raw = resp.into_body().collect().await?.to_bytes();
        let body = serde_json::from_slice(&raw).unwrap_or(Value::Null);
        Ok(Reply {
            status,
            headers,
            body,
            raw,
        })
    }

    /// Sends raw bytes (content type JSON when `json`).
    pub async fn send_raw(
        &mut self,
        method: Method,
        path: &str,
        headers: &[(&str, &str)],
        body: Vec<u8>,
        json: bool,
    ) -> Reply {
        let mut req = Request::builder()
            .method(method)
            .uri(path)
            .header("host", "localhost");
        if json {
            req = req.header("content-type", "application/json");
        }
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        // A fresh connection's task may not have run yet: wait for it.
        let _ = self.sender.ready().await;
        let resp = self
            .sender
            .send_request(req.body(Full::new(Bytes::from(body))).unwrap())
            .await
            .unwrap();
        let status = resp.status();
        let headers = resp.headers().clone();
        let raw = resp.into_body().collect().await.unwrap().to_bytes();
        let body = serde_json::from_slice(&raw).unwrap_or(Value::Null);
        Reply {
            status,
            headers,
            body,
            raw,
        }
    }
}

/// The token (`jeton`) of the dashboard form posting to `action` on the
/// HTML `page`, as a browser would send it back.
pub fn form_token(page: &str, action: &str) -> String {
    let form = page
        .split("<form ")
        .find(|f| f.contains(&format!("action=\"{action}\"")))
        .unwrap_or_else(|| panic!("no form to {action} in {page}"));
    let value = form.split("name=\"jeton\" value=\"").nth(1).unwrap();
    value.split('"').next().unwrap().to_owned()
}

/// A fresh UUID for X-Correlation-ID.
pub fn correlation_id() -> String {
    opale_apim::domain::random_uuid().unwrap().to_string()
}

static SIREN_COUNTER: AtomicU32 = AtomicU32::new(0);

/// A Luhn-valid SIREN different on every call.
pub fn fresh_siren() -> String {
    let n = 10_000_000
        + SIREN_COUNTER.fetch_add(1, Ordering::Relaxed)
        + std::process::id() % 1000 * 1000;
    let body = format!("{n:08}");
    (0..10)
        .map(|d| format!("{body}{d}"))
        .find(|s| opale_apim::domain::Siren::parse(s).is_ok())
        .unwrap()
}

/// Worker threads of a test server: more than one, so requests of one
/// test really spread over several current-thread runtimes.
pub const WORKERS: usize = 2;

/// A gateway running in-process on ephemeral ports.
pub struct TestServer {
    tmp: tempfile::TempDir,
    pub pki: TestPki,
    pub sandbox: SocketAddr,
    pub production: SocketAddr,
    pub admin: SocketAddr,
    reloader: Option<Arc<Reloader>>,
    held: Option<Held>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<std::io::Result<()>>>,
    tweak: Tweak,
    dual_stack: bool,
}

/// A change to the test configuration (kept for restarts).
pub type Tweak = Arc<dyn Fn(&mut Config) + Send + Sync>;

impl TestServer {
    /// PKI generated in a new temporary directory, then the server started.
    pub async fn start() -> TestServer {
        Self::start_with(|_| {}).await
    }

    /// As `start`, with a change to the configuration.
    pub async fn start_with(tweak: impl Fn(&mut Config) + Send + Sync + 'static) -> TestServer {
        let tweak: Tweak = Arc::new(tweak);
        let tmp = tempfile::tempdir().unwrap();
        let pki = TestPki::init(&tmp.path().join("certs"));
        Self::boot(tmp, pki, tweak, false).await
    }

    /// As `start`, with listeners on the IPv6 wildcard (dual stack): the
    /// addresses handed to tests are `127.0.0.1:port`, so callers reach the
    /// server as IPv4-mapped IPv6 peers (`::ffff:127.0.0.1`).
    pub async fn start_dual_stack() -> TestServer {
        let tmp = tempfile::tempdir().unwrap();
        let pki = TestPki::init(&tmp.path().join("certs"));
        Self::boot(tmp, pki, Arc::new(|_: &mut Config| {}), true).await
    }

    async fn boot(
        tmp: tempfile::TempDir,
        pki: TestPki,
        tweak: Tweak,
        dual_stack: bool,
    ) -> TestServer {
        let mut config = Config {
            data_dir: tmp.path().join("data"),
            certs_dir: tmp.path().join("certs"),
            ..Config::default()
        };
        tweak(&mut config);
        let (app, startup) = App::build(config).await.unwrap();
        assert!(!startup.created_pki, "the test made the PKI");
        let planes = app.planes();
        let host = if dual_stack { "[::]:0" } else { "127.0.0.1:0" };
        let bind = || async { TcpListener::bind(host).await.unwrap() };
        let listeners = Listeners {
            sandbox: bind().await,
            production: bind().await,
            admin: bind().await,
        };
        let v4 =
            |l: &TcpListener| SocketAddr::from(([127, 0, 0, 1], l.local_addr().unwrap().port()));
        let (sandbox, production, admin) = (
            v4(&listeners.sandbox),
            v4(&listeners.production),
            v4(&listeners.admin),
        );
        let (stop, stopped) = oneshot::channel::<()>();
        // The serving path production uses: thread-per-core workers.
        let (reloader, held) = (planes.reloader.clone(), planes.held.clone());
        let task = tokio::spawn(server::run_workers(
            (planes.server, planes.tasks),
            listeners,
            WORKERS,
            async {
                let _ = stopped.await;
            },
        ));
        TestServer {
            tmp,
            pki,
            sandbox,
            production,
            admin,
            reloader: Some(reloader),
            held: Some(held),
            stop: Some(stop),
            task: Some(task),
            tweak,
            dual_stack,
        }
    }

    /// Stops the server and releases the state directory.
    async fn shutdown(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            task.await.unwrap().unwrap();
        }
        drop(self.reloader.take());
        if let Some(held) = self.held.take() {
            // Connection tasks may still hold the planes for a moment.
            for _ in 0..500 {
                if held.released() {
                    return;
                }
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
            }
            panic!("the store or the trail is still held after shutdown");
        }
    }

    /// Stops and starts again on the same state and PKI.
    pub async fn restart(self) -> TestServer {
        self.restart_with(|_| {}).await
    }

    /// Stops, lets `between` act on the stopped state directory (e.g. to
    /// tamper with the store), and starts again.
    pub async fn restart_with(mut self, between: impl FnOnce(&std::path::Path)) -> TestServer {
        self.shutdown().await;
        between(self.tmp.path());
        let tmp = std::mem::replace(&mut self.tmp, tempfile::tempdir().unwrap());
        let pki = self.pki.clone();
        Self::boot(tmp, pki, self.tweak.clone(), self.dual_stack).await
    }

    /// Two nodes over the same state: stops this server, copies its state
    /// directory (PKI, signing keys, registry), starts it again and starts
    /// a second server on the copy. Both know the same applications and
    /// accept the same tokens; they share nothing else (a cluster test
    /// gives them a shared backend through the configuration).
    pub async fn twin(self) -> (TestServer, TestServer) {
        let copy = tempfile::tempdir().unwrap();
        let a = self.restart_with(|dir| copy_tree(dir, copy.path())).await;
        let b = Self::boot(copy, a.pki.clone(), a.tweak.clone(), a.dual_stack).await;
        (a, b)
    }

    /// The running gateway's reloader (e.g. to install its signal handler).
    pub fn reloader(&self) -> Arc<Reloader> {
        self.reloader.clone().unwrap()
    }

    /// The state directory root.
    pub fn dir(&self) -> PathBuf {
        self.tmp.path().to_path_buf()
    }

    /// Listener address of an environment.
    pub fn env_addr(&self, env: Environment) -> SocketAddr {
        match env {
            Environment::Sandbox => self.sandbox,
            Environment::Production => self.production,
        }
    }

    /// A new connection presenting `identity`.
    pub async fn connect(&self, addr: SocketAddr, identity: Option<&Identity>) -> Conn {
        Conn::open(addr, client_config(&self.pki.files.ca_pem(), identity))
            .await
            .unwrap()
    }

    /// One admin call with the admin certificate. A POST without a body
    /// sends `{}` as JSON, as the CLI does (the API refuses a POST of
    /// another content type, docs/contract.md §8).
    pub async fn admin_call(&self, method: Method, path: &str, body: Option<Value>) -> Reply {
        let body = body.or_else(|| (method == Method::POST).then(|| json!({})));
        let admin = self.pki.admin();
        let mut conn = self.connect(self.admin, Some(&admin)).await;
        conn.send(method, path, &[], body.as_ref()).await
    }

    /// `POST /admin/v1/trace/verify` (with an optional body): the report.
    pub async fn verify_trail(&self, body: Option<Value>) -> Value {
        let r = self
            .admin_call(Method::POST, "/admin/v1/trace/verify", body)
            .await;
        assert_eq!(r.status, 200, "{:?}", r.body);
        r.body
    }

    /// The value of the unlabelled series `name` on `/metrics`.
    pub async fn metric(&self, name: &str) -> f64 {
        let r = self.admin_call(Method::GET, "/metrics", None).await;
        let text = String::from_utf8_lossy(&r.raw).into_owned();
        text.lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
            .unwrap_or_else(|| panic!("{name} not in /metrics"))
    }

    /// A data call on `env` with a fresh correlation id.
    pub async fn data_call(
        &self,
        env: Environment,
        identity: Option<&Identity>,
        path: &str,
    ) -> Reply {
        let mut conn = self.connect(self.env_addr(env), identity).await;
        let cid = correlation_id();
        conn.send(Method::GET, path, &[("x-correlation-id", &cid)], None)
            .await
    }

    /// Registers a partner; returns its id.
    pub async fn partner(&self) -> String {
        let r = self
            .admin_call(
                Method::POST,
                "/admin/v1/partners",
                Some(json!({"siren": fresh_siren(), "name": "Partenaire Test",
                    "contacts": {"technique": {"nom": "Jeanne Dupont", "email": "jd@example.fr"}}})),
            )
            .await;
        assert_eq!(r.status, 201, "{:?}", r.body);
        r.body["id"].as_str().unwrap().to_owned()
    }

    /// Registers an application of `env`; returns (client_id, client_secret).
    pub async fn application(&self, partner_id: &str, env: Environment) -> (String, String) {
        let r = self
            .admin_call(
                Method::POST,
                "/admin/v1/applications",
                Some(app_body(partner_id, env)),
            )
            .await;
        assert_eq!(r.status, 201, "{:?}", r.body);
        (
            r.body["client_id"].as_str().unwrap().to_owned(),
            r.body["client_secret"].as_str().unwrap().to_owned(),
        )
    }

    /// Registers `identity`'s certificate to `client_id`.
    pub async fn register(&self, client_id: &str, identity: &Identity) -> Reply {
        self.admin_call(
            Method::POST,
            &format!("/admin/v1/applications/{client_id}/certificates"),
            Some(json!({"certificate": identity.cert_pem})),
        )
        .await
    }

    /// A partner, an application of `env` and a registered certificate.
    pub async fn provisioned(&self, env: Environment) -> (String, Identity) {
        let partner = self.partner().await;
        let (client_id, _) = self.application(&partner, env).await;
        let id = self.pki.partner(env, "app-test");
        let r = self.register(&client_id, &id).await;
        assert_eq!(r.status, 201, "{:?}", r.body);
        (client_id, id)
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// Copies the directory tree `from` into `to`.
pub fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_tree(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

/// A date (`YYYY-MM-DD`) at least `years` years after today: validity
/// periods relative to the day the suite runs, so that it never expires.
pub fn years_from_today(years: i64) -> String {
    let today = time::OffsetDateTime::now_utc().date();
    (today + time::Duration::days(366 * years)).to_string()
}

/// A valid application body (valid from 2025 until three years from today).
pub fn app_body(partner_id: &str, env: Environment) -> Value {
    json!({
        "partner_id": partner_id,
        "name": "Application test",
        "environment": env.as_str(),
        "grants": [{"scope": "declarations", "years": [2023, 2024]}],
        "valid_from": "2025-01-01",
        "valid_until": years_from_today(3),
        "ip_allowlist": ["127.0.0.1/32"],
        "quota_per_minute": 50
    })
}

impl Conn {
    /// Whether the connection can still carry a request: sends one and
    /// reports whether any response came back.
    pub async fn sender_ready(&mut self) -> bool {
        let req = Request::builder()
            .uri("/opale/v1/etatSante")
            .header("host", "localhost")
            .body(Full::new(Bytes::new()))
            .unwrap();
        self.sender.send_request(req).await.is_ok()
    }
}

impl TestServer {
    /// `POST /token` on `env` with a form body, over a connection presenting
    /// `identity`, optionally with HTTP Basic credentials.
    pub async fn token_request(
        &self,
        env: Environment,
        identity: Option<&Identity>,
        basic: Option<(&str, &str)>,
        form: &str,
    ) -> Reply {
        let mut conn = self.connect(self.env_addr(env), identity).await;
        let auth = basic.map(|(id, secret)| {
            let enc =
                |s: &str| url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
            format!(
                "Basic {}",
                base64::Engine::encode(
                    &base64::engine::general_purpose::STANDARD,
                    format!("{}:{}", enc(id), enc(secret))
                )
            )
        });
        let mut headers = vec![("content-type", "application/x-www-form-urlencoded")];
        if let Some(a) = &auth {
            headers.push(("authorization", a.as_str()));
        }
        conn.send_raw(
            Method::POST,
            "/token",
            &headers,
            form.as_bytes().to_vec(),
            false,
        )
        .await
    }

    /// The first exported trail record `matches` accepts (the trail is
    /// written asynchronously: polled for five seconds); `what` names it
    /// in the panic.
    pub async fn trail_record(&self, what: &str, matches: impl Fn(&Value) -> bool) -> Value {
        for _ in 0..50 {
            let r = self
                .admin_call(Method::GET, "/admin/v1/trace/export", None)
                .await;
            let found = String::from_utf8_lossy(&r.raw)
                .lines()
                .filter_map(|l| serde_json::from_str::<Value>(l).ok())
                .find(|v| matches(v));
            if let Some(v) = found {
                return v;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        panic!("no trail record of {what}");
    }

    /// A token obtained with tls_client_auth.
    pub async fn token(&self, env: Environment, identity: &Identity, client_id: &str) -> String {
        let r = self
            .token_request(
                env,
                Some(identity),
                None,
                &format!("grant_type=client_credentials&client_id={client_id}"),
            )
            .await;
        assert_eq!(r.status, 200, "{:?}", r.body);
        r.body["access_token"].as_str().unwrap().to_owned()
    }

    /// A data call with a bearer token.
    pub async fn data_call_with_token(
        &self,
        env: Environment,
        identity: &Identity,
        token: &str,
        path: &str,
    ) -> Reply {
        let mut conn = self.connect(self.env_addr(env), Some(identity)).await;
        let cid = correlation_id();
        let bearer = format!("Bearer {token}");
        let h = [
            ("x-correlation-id", cid.as_str()),
            ("authorization", bearer.as_str()),
        ];
        conn.send(Method::GET, path, &h, None).await
    }

    /// The PEM of an environment's token signing key (for forging tests):
    /// the node's first key, the one it signs with until a rotation.
    pub fn signing_key_pem(&self, env: Environment) -> String {
        let path = self
            .dir()
            .join("data/keys")
            .join(format!("{env}-token-signing.pem"));
        std::fs::read_to_string(path).unwrap()
    }

    /// The kid of that key (its RFC 7638 thumbprint), which a forged token
    /// names so that the gateway picks the key to verify it with.
    pub fn signing_kid(&self, env: Environment) -> String {
        use base64::Engine;
        use sha2::Digest;
        let pair = rcgen::KeyPair::from_pem(&self.signing_key_pem(env)).unwrap();
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let x = b64.encode(pair.public_key_raw());
        let canonical = format!(r#"{{"crv":"Ed25519","kty":"OKP","x":"{x}"}}"#);
        b64.encode(sha2::Sha256::digest(canonical.as_bytes()))
    }
}

/// An application with its secret and registered certificate.
pub struct Client {
    pub id: String,
    pub secret: String,
    pub cert: Identity,
    pub partner: String,
}

impl TestServer {
    /// A partner, an application of `env` (grants declarations 2023–2024 and
    /// paiements 2024, quota 50) and its registered certificate.
    pub async fn client(&self, env: Environment) -> Client {
        let grants = json!([
            {"scope": "declarations", "years": [2023, 2024]},
            {"scope": "paiements", "years": [2024]}
        ]);
        self.client_with(env, grants, 50).await
    }

    /// As `client`, with these grants and quota.
    pub async fn client_with(&self, env: Environment, grants: Value, quota: u32) -> Client {
        let partner = self.partner().await;
        let mut body = app_body(&partner, env);
        body["grants"] = grants;
        body["quota_per_minute"] = json!(quota);
        let r = self
            .admin_call(Method::POST, "/admin/v1/applications", Some(body))
            .await;
        assert_eq!(r.status, 201, "{:?}", r.body);
        let id = r.body["client_id"].as_str().unwrap().to_owned();
        let cert = self.pki.partner(env, "client");
        assert_eq!(self.register(&id, &cert).await.status, 201);
        Client {
            secret: r.body["client_secret"].as_str().unwrap().to_owned(),
            id,
            cert,
            partner,
        }
    }
}
