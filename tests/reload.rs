//! Reload without restart (docs/contract.md §9) over real TLS: a new server
//! certificate taken by `POST /admin/v1/reload` and by `SIGHUP` on the
//! real binary (with `[limits]` from the rewritten config file), a bad key
//! refusing the whole reload, and a CRL rewritten on disk taking effect
//! within seconds with no action.
// A test crate: its helpers may unwrap like its #[test] functions (a
// panic is a failed test). The lib and binary deny it (Cargo.toml).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::Request;
use hyper::client::conn::http1::SendRequest;
use hyper::{Method, StatusCode};
use hyper_util::rt::TokioIo;
use opale_apim::domain::Environment::Sandbox;
use opale_apim::pki::{CertInfo, PkiFiles};
use rcgen::{CertificateParams, DnType, ExtendedKeyUsagePurpose, Issuer, KeyPair, SanType};
use rustls_pki_types::ServerName;
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use support::pki::TestPki;
use support::{TestServer, client_config, correlation_id};
use tokio::net::TcpStream;

const BIN: &str = env!("CARGO_BIN_EXE_opale-apim");
const PATH: &str = "/opale/v1/entreprises/732829320/declarations?annee=2024";

/// A keep-alive HTTP/1.1 connection that also tells which server
/// certificate it was given.
struct Observed {
    sender: SendRequest<Full<Bytes>>,
    /// Serial (lowercase hex) of the server certificate of the handshake.
    serial: String,
}

impl Observed {
    async fn open(addr: SocketAddr, ca: &Path) -> Observed {
        let tcp = TcpStream::connect(addr).await.unwrap();
        let name = ServerName::try_from("localhost").unwrap();
        let tls = tokio_rustls::TlsConnector::from(client_config(ca, None))
            .connect(name, tcp)
            .await
            .unwrap();
        let leaf = tls.get_ref().1.peer_certificates().unwrap()[0].clone();
        let serial = CertInfo::from_der(&leaf).unwrap().serial;
        let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
            .await
            .unwrap();
        tokio::spawn(conn);
        Observed { sender, serial }
    }

    /// `GET /opale/v1/etatSante` on this connection.
    async fn health(&mut self) -> StatusCode {
        let req = Request::get("/opale/v1/etatSante")
            .header("host", "localhost")
            .body(Full::new(Bytes::new()))
            .unwrap();
        self.sender.ready().await.unwrap();
        let resp = self.sender.send_request(req).await.unwrap();
        let status = resp.status();
        resp.into_body().collect().await.unwrap();
        status
    }
}

/// Writes a new server certificate and key (signed by the dev root CA)
/// over `server.pem`/`server.key`; returns its serial.
fn replace_server_certificate(files: &PkiFiles) -> String {
    let ca_key = KeyPair::from_pem(&std::fs::read_to_string(files.ca_key()).unwrap()).unwrap();
    let ca_pem = std::fs::read_to_string(files.ca_pem()).unwrap();
    let issuer = Issuer::from_ca_cert_pem(&ca_pem, ca_key).unwrap();
    let key = KeyPair::generate().unwrap();
    let mut p = CertificateParams::new(vec!["localhost".to_owned()]).unwrap();
    p.distinguished_name.push(DnType::CommonName, "reloaded");
    p.subject_alt_names
        .push(SanType::IpAddress([127, 0, 0, 1].into()));
    p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let cert = p.signed_by(&key, &issuer).unwrap();
    std::fs::write(files.server_key(), key.serialize_pem()).unwrap();
    std::fs::write(files.server_pem(), cert.pem()).unwrap();
    CertInfo::from_der(cert.der()).unwrap().serial
}

#[tokio::test]
async fn reload_serves_the_new_certificate_to_new_connections_only() {
    let s = TestServer::start().await;
    let ca = s.pki.files.ca_pem();
    let mut old = Observed::open(s.sandbox, &ca).await;
    assert_eq!(old.health().await, 200);
    let new_serial = replace_server_certificate(&s.pki.files);
    assert_ne!(old.serial, new_serial);

    let r = s.admin_call(Method::POST, "/admin/v1/reload", None).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(r.body["server_certificate"]["serial"], new_serial.as_str());
    assert_eq!(r.body["ca_files"].as_array().unwrap().len(), 3);
    assert_eq!(r.body["crls"]["total"], 0);
    assert_eq!(r.body["limits"]["max_body_bytes"], 262_144);

    // The open connection keeps working on the state it was accepted with.
    assert_eq!(old.health().await, 200);
    // New connections, on every listener, get the new certificate.
    for addr in [s.sandbox, s.production, s.admin] {
        assert_eq!(Observed::open(addr, &ca).await.serial, new_serial);
    }
    // The reload is traced as an admin action.
    let trace = s
        .admin_call(Method::GET, "/admin/v1/trace?limit=20", None)
        .await;
    let records = trace.body.as_array().unwrap();
    let traced = records.iter().find(|r| r["path"] == "/admin/v1/reload");
    let traced = traced.expect("reload traced");
    assert_eq!(traced["status"], 200);
    assert_eq!(traced["actor"]["kind"], "admin");
    assert!(traced["actor"]["thumbprint"].as_str().unwrap().len() > 10);
}

#[tokio::test]
async fn a_bad_key_refuses_the_whole_reload_and_names_the_file() {
    let s = TestServer::start().await;
    let ca = s.pki.files.ca_pem();
    let before = Observed::open(s.sandbox, &ca).await.serial;
    let key_path = s.pki.files.server_key();
    let good_key = std::fs::read(&key_path).unwrap();

    std::fs::write(&key_path, "garbage, not a key\n").unwrap();
    let r = s.admin_call(Method::POST, "/admin/v1/reload", None).await;
    assert_eq!(r.status, 400, "{:?}", r.body);
    assert_eq!(r.field(), key_path.display().to_string());
    assert_eq!(Observed::open(s.sandbox, &ca).await.serial, before);

    // A well-formed key that is not the certificate's.
    std::fs::write(&key_path, KeyPair::generate().unwrap().serialize_pem()).unwrap();
    let r = s.admin_call(Method::POST, "/admin/v1/reload", None).await;
    assert_eq!(r.status, 400, "{:?}", r.body);
    assert_eq!(r.field(), key_path.display().to_string());
    let message = r.body["error"]["message"].as_str().unwrap();
    assert!(message.contains("server.pem"), "{message}");
    assert_eq!(Observed::open(s.sandbox, &ca).await.serial, before);

    // Repaired: the reload goes through. Arguments are refused.
    std::fs::write(&key_path, good_key).unwrap();
    let r = s
        .admin_call(
            Method::POST,
            "/admin/v1/reload",
            Some(serde_json::json!({"x": 1})),
        )
        .await;
    assert_eq!(r.status, 400, "{:?}", r.body);
    let r = s.admin_call(Method::POST, "/admin/v1/reload", None).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(r.body["server_certificate"]["serial"], before.as_str());
}

/// The certificate-step code of a data call presenting `id`.
async fn certificate_code(s: &TestServer, id: &support::pki::Identity) -> String {
    let mut conn = s.connect(s.sandbox, Some(id)).await;
    let cid = correlation_id();
    let r = conn
        .send(Method::GET, PATH, &[("x-correlation-id", &cid)], None)
        .await;
    r.code()
}

/// Waits up to 5 s for `id`'s certificate-step code to become `code`.
async fn wait_for_code(s: &TestServer, id: &support::pki::Identity, code: &str) -> Duration {
    let started = Instant::now();
    loop {
        let now = certificate_code(s, id).await;
        if now == code {
            return started.elapsed();
        }
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "still {now}, expected {code}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn a_rewritten_crl_takes_effect_without_any_action() {
    let crl_name = "sandbox.crl.pem";
    let s = TestServer::start_with(move |c| {
        let pki = TestPki {
            files: PkiFiles::new(&c.certs_dir),
        };
        let path = c.certs_dir.join(crl_name);
        if !path.exists() {
            std::fs::write(&path, pki.crl(Sandbox, &[])).unwrap();
        }
        c.sandbox.crls = vec![path];
    })
    .await;
    let crl_path = s.pki.files.dir().join(crl_name);
    let partner = s.pki.partner(Sandbox, "soon-revoked");
    let other = s.pki.partner(Sandbox, "still-fine");
    // Trusted and not revoked: step 1 goes on to registration (910103).
    assert_eq!(certificate_code(&s, &partner).await, "910103");

    std::fs::write(&crl_path, s.pki.crl(Sandbox, &[&partner])).unwrap();
    let took = wait_for_code(&s, &partner, "910102").await;
    assert!(took < Duration::from_secs(5));
    assert_eq!(certificate_code(&s, &other).await, "910103");

    // A broken CRL is not applied: the previous CRLs stay in force.
    std::fs::write(
        &crl_path,
        "-----BEGIN X509 CRL-----\nAAAA\n-----END X509 CRL-----\n",
    )
    .unwrap();
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(certificate_code(&s, &partner).await, "910102");
    assert_eq!(certificate_code(&s, &other).await, "910103");
    // And an explicit reload names it.
    let r = s.admin_call(Method::POST, "/admin/v1/reload", None).await;
    assert_eq!(r.status, 400, "{:?}", r.body);
    assert_eq!(r.field(), crl_path.display().to_string());

    // A good CRL again (the revocation withdrawn) is picked up.
    std::fs::write(&crl_path, s.pki.crl(Sandbox, &[])).unwrap();
    wait_for_code(&s, &partner, "910103").await;
}

fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

/// The real binary, killed when dropped.
struct Served(Child);

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `serve` on three free ports, once its admin listener accepts. A port
/// found free can be taken by a concurrent test before `serve` binds it
/// (the process then exits): such a start is tried again on new ports.
fn serve_on_free_ports(dir: &Path) -> (Served, [u16; 3]) {
    for _ in 0..3 {
        let ports = [free_port(), free_port(), free_port()];
        write_config(dir, ports, "");
        let mut served = Served(
            Command::new(BIN)
                .args(["serve", "--config"])
                .arg(dir.join("opale.toml"))
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap(),
        );
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if std::net::TcpStream::connect(("127.0.0.1", ports[2])).is_ok() {
                return (served, ports);
            }
            if served.0.try_wait().unwrap().is_some() {
                break; // exited: a port was taken meanwhile
            }
            assert!(Instant::now() < deadline, "serve did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    panic!("serve exited three times on fresh ports");
}

fn write_config(dir: &Path, ports: [u16; 3], limits: &str) {
    let [sandbox, production, admin] = ports;
    let config = format!(
        "data_dir = \"{d}/data\"\ncerts_dir = \"{d}/certs\"\n[sandbox]\nlisten = \"127.0.0.1:{sandbox}\"\n\
         [production]\nlisten = \"127.0.0.1:{production}\"\n[admin]\nlisten = \"127.0.0.1:{admin}\"\n{limits}",
        d = dir.display()
    );
    std::fs::write(dir.join("opale.toml"), config).unwrap();
}

/// Status of a POST whose declared body exceeds 100 bytes.
async fn post_200_bytes(addr: SocketAddr, ca: &Path) -> StatusCode {
    let mut conn = support::Conn::open(addr, client_config(ca, None))
        .await
        .unwrap();
    let cid = correlation_id();
    let r = conn
        .send_raw(
            Method::POST,
            "/token",
            &[
                ("x-correlation-id", cid.as_str()),
                ("content-type", "application/x-www-form-urlencoded"),
            ],
            vec![b'a'; 200],
            false,
        )
        .await;
    r.status
}

#[tokio::test]
async fn sighup_reloads_certificates_and_limits_of_the_running_binary() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let pki = TestPki::init(&dir.join("certs"));
    let (served, ports) = serve_on_free_ports(dir);
    let sandbox = SocketAddr::from(([127, 0, 0, 1], ports[0]));
    let ca = pki.files.ca_pem();
    let mut old = Observed::open(sandbox, &ca).await;
    assert_ne!(post_200_bytes(sandbox, &ca).await, 413);

    let new_serial = replace_server_certificate(&pki.files);
    write_config(dir, ports, "[limits]\nmax_body_bytes = 100\n");
    let kill = Command::new("kill")
        .args(["-HUP", &served.0.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    let started = Instant::now();
    while Observed::open(sandbox, &ca).await.serial != new_serial {
        assert!(started.elapsed() < Duration::from_secs(5), "no reload");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(old.health().await, 200, "the open connection goes on");
    assert_eq!(post_200_bytes(sandbox, &ca).await, 413, "[limits] reloaded");

    // The admin CLI reloads through the API and says what is in force.
    let out = Command::new(BIN)
        .args(["admin", "--json", "--config"])
        .arg(dir.join("opale.toml"))
        .arg("reload")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let body: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(body["server_certificate"]["serial"], new_serial.as_str());
    assert_eq!(body["limits"]["max_body_bytes"], 100);

    // A config that does not parse refuses the reload, naming the file.
    // (The CLI would read that config itself: it is given --url instead.)
    std::fs::write(dir.join("opale.toml"), "[limits]\nmax_body_bytes = \"x\"\n").unwrap();
    let url = format!("https://127.0.0.1:{}", ports[2]);
    let certs = dir.join("certs");
    let out = Command::new(BIN)
        .args(["admin", "--url", &url, "--cacert"])
        .arg(certs.join("ca.pem"))
        .arg("--cert")
        .arg(certs.join("admin.pem"))
        .arg("--key")
        .arg(certs.join("admin.key"))
        .arg("reload")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("400") && stderr.contains("opale.toml"),
        "{stderr}"
    );
    // The SIGHUP reload is in the trail, with its actor.
    let admin = pki.admin();
    let admin_addr = SocketAddr::from(([127, 0, 0, 1], ports[2]));
    let mut conn = support::Conn::open(admin_addr, client_config(&ca, Some(&admin)))
        .await
        .unwrap();
    let r = conn
        .send(Method::GET, "/admin/v1/trace?limit=50", &[], None)
        .await;
    let records = r.body.as_array().unwrap();
    let hup = records.iter().find(|r| r["action"]["kind"] == "reloaded");
    let hup = hup.expect("SIGHUP reload traced");
    assert_eq!(
        hup["actor"],
        serde_json::json!({"kind": "signal", "name": "SIGHUP"})
    );
    assert_eq!(hup["decision"], "admitted");
    assert!(
        hup.get("method").is_none(),
        "a signal is not an HTTP request"
    );
}
