//! The product as a user runs it: the `opale-apim` binary (`pki init`,
//! `serve`, `admin …`), `curl` and `openssl` as clients, restarts, and a
//! SIGKILL that must not lose an acknowledged admin write.
// A test crate: its helpers may unwrap like its #[test] functions (a
// panic is a failed test). The lib and binary deny it (Cargo.toml).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use hyper::Method;
use opale_apim::domain::Environment::Sandbox;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};
use support::TestServer;

const BIN: &str = env!("CARGO_BIN_EXE_opale-apim");
const PATH: &str = "/opale/v1/entreprises/732829320/declarations?annee=2024";

#[tokio::test]
async fn registry_survives_a_restart() {
    let s = TestServer::start().await;
    let (client_id, kept) = s.provisioned(Sandbox).await;
    let revoked = s.pki.partner(Sandbox, "to-revoke");
    assert_eq!(s.register(&client_id, &revoked).await.status, 201);
    let del = format!(
        "/admin/v1/applications/{client_id}/certificates/{}",
        revoked.thumbprint
    );
    assert_eq!(s.admin_call(Method::DELETE, &del, None).await.status, 204);
    let app_path = format!("/admin/v1/applications/{client_id}");
    let before = s.admin_call(Method::GET, &app_path, None).await.body;

    let s = s.restart().await;
    let after = s.admin_call(Method::GET, &app_path, None).await.body;
    assert_eq!(before, after);
    assert_eq!(after["certificates"].as_array().unwrap().len(), 2);
    assert_eq!(
        s.data_call(Sandbox, Some(&kept), PATH).await.code(),
        "900902"
    );
    assert_eq!(
        s.data_call(Sandbox, Some(&revoked), PATH).await.code(),
        "910102"
    );
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A `serve` process with its own config, state and PKI.
struct Served {
    child: Child,
    dir: PathBuf,
    sandbox: u16,
    production: u16,
    admin: u16,
}

impl Served {
    fn start(dir: &Path) -> Served {
        // A restart on the same directory keeps the same ports.
        let ports_file = dir.join("ports");
        let (sandbox, production, admin) = match std::fs::read_to_string(&ports_file) {
            Ok(text) => {
                let p: Vec<u16> = text.split(' ').map(|x| x.parse().unwrap()).collect();
                (p[0], p[1], p[2])
            }
            Err(_) => (free_port(), free_port(), free_port()),
        };
        std::fs::write(&ports_file, format!("{sandbox} {production} {admin}")).unwrap();
        let config = format!(
            "data_dir = \"{d}/data\"\ncerts_dir = \"{d}/certs\"\n[sandbox]\nlisten = \"127.0.0.1:{sandbox}\"\n\
             [production]\nlisten = \"127.0.0.1:{production}\"\n[admin]\nlisten = \"127.0.0.1:{admin}\"\n",
            d = dir.display()
        );
        std::fs::write(dir.join("opale.toml"), config).unwrap();
        let child = Command::new(BIN)
            .args(["serve", "--config"])
            .arg(dir.join("opale.toml"))
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let served = Served {
            child,
            dir: dir.to_path_buf(),
            sandbox,
            production,
            admin,
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", admin)).is_err() {
            assert!(Instant::now() < deadline, "serve did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        served
    }

    fn cli(&self, args: &[&str]) -> Output {
        Command::new(BIN)
            .arg("admin")
            .arg("--config")
            .arg(self.dir.join("opale.toml"))
            .args(args)
            .output()
            .unwrap()
    }

    fn cli_json(&self, args: &[&str]) -> Value {
        let mut all = vec!["--json"];
        all.extend_from_slice(args);
        let out = self.cli(&all);
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap()
    }

    fn certs(&self) -> PathBuf {
        self.dir.join("certs")
    }

    fn kill9(mut self) {
        // SIGKILL: no shutdown path runs.
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A sandbox caller provisioned as a user would: partner and application
/// with the CLI, a key and CSR with openssl, the certificate issued with
/// the CLI, a token with curl (tls_client_auth).
struct Caller {
    key: PathBuf,
    pem: PathBuf,
    bearer: String,
}

impl Served {
    fn sandbox_caller(&self, siren: &str, grants: &[&str], quota: &str) -> Caller {
        let pid =
            self.cli_json(&["partner", "add", "--siren", siren, "--name", "Appelant SA"])["id"]
                .as_str()
                .unwrap()
                .to_owned();
        let mut args = vec![
            "app",
            "add",
            "--partner",
            &pid,
            "--name",
            "caller",
            "--env",
            "sandbox",
        ];
        for g in grants {
            args.extend(["--grant", g]);
        }
        let until = support::years_from_today(3);
        args.extend(["--valid-from", "2025-01-01", "--valid-until", &until]);
        args.extend(["--ip", "127.0.0.1/32", "--quota", quota]);
        let cid = self.cli_json(&args)["client_id"]
            .as_str()
            .unwrap()
            .to_owned();
        let (key, csr, pem) = (
            self.dir.join("k.pem"),
            self.dir.join("r.csr"),
            self.dir.join("c.pem"),
        );
        let openssl = Command::new("openssl")
            .args([
                "req",
                "-new",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:P-256",
            ])
            .args(["-nodes", "-subj", "/CN=caller", "-keyout"])
            .arg(&key)
            .arg("-out")
            .arg(&csr)
            .output()
            .expect("openssl is installed (scripts/test.sh installs it)");
        assert!(openssl.status.success());
        let issue = [
            "cert",
            "issue",
            &cid,
            "--csr",
            csr.to_str().unwrap(),
            "--out",
            pem.to_str().unwrap(),
        ];
        assert!(self.cli(&issue).status.success());
        let ca = self.certs().join("ca.pem");
        let (url, form) = (
            format!("https://localhost:{}/token", self.sandbox),
            format!("client_id={cid}"),
        );
        let (code, tok) = curl(&[
            "--cacert",
            ca.to_str().unwrap(),
            "--cert",
            pem.to_str().unwrap(),
            "--key",
            key.to_str().unwrap(),
            "-d",
            "grant_type=client_credentials",
            "-d",
            &form,
            &url,
        ]);
        assert_eq!(code, 200, "{tok}");
        let bearer = format!("Bearer {}", tok["access_token"].as_str().unwrap());
        Caller { key, pem, bearer }
    }
}

fn curl(args: &[&str]) -> (u16, Value) {
    let out = Command::new("curl")
        .args(["-sS", "-o", "-", "-w", "\n%{http_code}"])
        .args(args)
        .output()
        .expect("curl is installed (scripts/test.sh installs it)");
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let (body, code) = text.rsplit_once('\n').unwrap_or(("", "0"));
    (
        code.trim().parse().unwrap_or(0),
        serde_json::from_str(body).unwrap_or(Value::Null),
    )
}

#[test]
fn pki_init_writes_the_design_files_and_refuses_to_overwrite() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("certs");
    let run = |force: bool| {
        let mut c = Command::new(BIN);
        c.args(["pki", "init", "--dir"]).arg(&dir);
        if force {
            c.arg("--force");
        }
        c.output().unwrap()
    };
    assert!(run(false).status.success());
    for f in [
        "ca.pem",
        "server.pem",
        "server.key",
        "sandbox-ca.pem",
        "sandbox-ca.key",
        "production-ca.pem",
        "production-ca.key",
        "admin.pem",
        "admin.key",
    ] {
        assert!(dir.join(f).is_file(), "{f}");
    }
    let key = std::fs::read(dir.join("server.key")).unwrap();
    let again = run(false);
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("--force"));
    assert_eq!(std::fs::read(dir.join("server.key")).unwrap(), key);
    assert!(run(true).status.success());
    assert_ne!(std::fs::read(dir.join("server.key")).unwrap(), key);
    // The server certificate names localhost, 127.0.0.1 and ::1.
    let out = Command::new("openssl")
        .args(["x509", "-noout", "-ext", "subjectAltName", "-in"])
        .arg(dir.join("server.pem"))
        .output()
        .expect("openssl is installed (scripts/test.sh installs it)");
    let sans = String::from_utf8_lossy(&out.stdout);
    assert!(
        sans.contains("DNS:localhost")
            && sans.contains("127.0.0.1")
            && sans.contains("0:0:0:0:0:0:0:1"),
        "{sans}"
    );
}

#[test]
fn a_user_provisions_with_the_cli_and_calls_with_curl() {
    let tmp = tempfile::tempdir().unwrap();
    let s = Served::start(tmp.path());
    let certs = s.certs();
    let ca = certs.join("ca.pem");
    let ca = ca.to_str().unwrap();

    // serve created the PKI on first start.
    assert!(certs.join("admin.key").is_file());
    let (code, body) = curl(&[
        "--cacert",
        ca,
        &format!("https://localhost:{}/opale/v1/etatSante", s.sandbox),
    ]);
    assert_eq!((code, body["statut"].as_str()), (200, Some("UP")));

    let partner = s.cli_json(&[
        "partner",
        "add",
        "--siren",
        "732829320",
        "--name",
        "Exemple SA",
        "--contact",
        "technique:Jeanne Dupont:jd@example.fr",
    ]);
    let pid = partner["id"].as_str().unwrap();
    let until = support::years_from_today(3);
    let app = s.cli_json(&[
        "app",
        "add",
        "--partner",
        pid,
        "--name",
        "demo",
        "--env",
        "sandbox",
        "--grant",
        "declarations:2022-2024",
        "--valid-from",
        "2025-01-01",
        "--valid-until",
        &until,
        "--ip",
        "127.0.0.1/32",
    ]);
    let cid = app["client_id"].as_str().unwrap();
    assert_eq!(app["client_secret"].as_str().unwrap().len(), 43);

    let key = tmp.path().join("app.key");
    let csr = tmp.path().join("app.csr");
    let pem = tmp.path().join("app.pem");
    let ok = Command::new("openssl")
        .args([
            "req",
            "-new",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-subj",
            "/CN=demo",
            "-keyout",
        ])
        .arg(&key)
        .arg("-out")
        .arg(&csr)
        .output()
        .expect("openssl is installed (scripts/test.sh installs it)");
    assert!(ok.status.success());
    let out = s.cli(&[
        "cert",
        "issue",
        cid,
        "--csr",
        csr.to_str().unwrap(),
        "--out",
        pem.to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let uuid = opale_apim::domain::random_uuid().unwrap().to_string();
    let with_cert = |port: u16, accept: &str| {
        curl(&[
            "--cacert",
            ca,
            "--cert",
            pem.to_str().unwrap(),
            "--key",
            key.to_str().unwrap(),
            "-H",
            &format!("X-Correlation-ID: {uuid}"),
            "-H",
            &format!("Accept: {accept}"),
            &format!("https://127.0.0.1:{port}{PATH}"),
        ])
    };
    let (code, body) = with_cert(s.sandbox, "application/problem+json");
    assert_eq!(
        (code, body["code"].as_str()),
        (401, Some("900902")),
        "{body}"
    );
    assert_eq!(body["correlation_id"], uuid.as_str());
    let (code, body) = with_cert(s.production, "application/json");
    assert_eq!(
        (code, body["erreur"]["code"].as_str()),
        (401, Some("910101")),
        "{body}"
    );
    let (code, _) = curl(&[
        "--cacert",
        ca,
        &format!("https://127.0.0.1:{}/admin/v1/partners", s.admin),
    ]);
    assert_eq!(code, 401);
    let (code, _) = curl(&[
        "--cacert",
        ca,
        "--cert",
        pem.to_str().unwrap(),
        "--key",
        key.to_str().unwrap(),
        &format!("https://127.0.0.1:{}/admin/v1/partners", s.admin),
    ]);
    assert_eq!(code, 403);

    // Human output, and a refused call exits non-zero with the field named.
    let out = s.cli(&["app", "show", cid]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("client_id: ") && text.contains("certificates:"),
        "{text}"
    );
    let out = s.cli(&["app", "set-ips", cid, "10.0.0.0/40"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("ip_allowlist[0]"));
    let out = s.cli(&["partner", "add", "--siren", "123456789", "--name", "X"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("(siren)"));

    // Revocation through the CLI is effective at once.
    let thumb = s.cli_json(&["cert", "list", cid])[0]["thumbprint"]
        .as_str()
        .unwrap()
        .to_owned();
    let out = s.cli(&["cert", "revoke", cid, &thumb]);
    assert!(
        out.status.success(),
        "cert revoke: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (code, body) = with_cert(s.sandbox, "application/json");
    assert_eq!(
        (code, body["erreur"]["code"].as_str()),
        (401, Some("910102"))
    );
}

#[test]
fn acknowledged_admin_writes_survive_sigkill() {
    let tmp = tempfile::tempdir().unwrap();
    let s = Served::start(tmp.path());
    let pid = s.cli_json(&[
        "partner",
        "add",
        "--siren",
        "552100554",
        "--name",
        "Durable SA",
    ])["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let mut apps = Vec::new();
    for i in 0..5 {
        let app = s.cli_json(&[
            "app",
            "add",
            "--partner",
            &pid,
            "--name",
            &format!("app{i}"),
            "--env",
            "production",
            "--grant",
            "paiements:2024",
            "--valid-from",
            "2025-01-01",
            "--valid-until",
            "2026-12-31",
            "--ip",
            "127.0.0.1/32",
        ]);
        apps.push(app["client_id"].as_str().unwrap().to_owned());
    }
    s.cli_json(&["app", "suspend", &apps[0]]);
    s.cli_json(&["app", "set-quota", &apps[1], "75"]);
    // Kill right after the last acknowledged write, before sled's own
    // periodic flush could run.
    s.kill9();

    let s = Served::start(tmp.path());
    let listed = s.cli_json(&["app", "list", "--partner", &pid]);
    let ids: Vec<&str> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["client_id"].as_str().unwrap())
        .collect();
    for id in &apps {
        assert!(ids.contains(&id.as_str()), "{id} lost after SIGKILL");
    }
    assert_eq!(
        s.cli_json(&["app", "show", &apps[0]])["status"],
        "suspended"
    );
    assert_eq!(
        s.cli_json(&["app", "show", &apps[1]])["quota_per_minute"],
        75
    );
}

#[test]
fn an_acknowledged_transmission_survives_sigkill() {
    let tmp = tempfile::tempdir().unwrap();
    let s = Served::start(tmp.path());
    let ca = s.certs().join("ca.pem");
    let ca = ca.to_str().unwrap().to_owned();
    let c = s.sandbox_caller(
        "443061841",
        &["creances:2024", "creances_transmission:2024"],
        "50",
    );
    let (pem, key) = (c.pem.clone(), c.key.clone());
    let tls = [
        "--cacert",
        ca.as_str(),
        "--cert",
        pem.to_str().unwrap(),
        "--key",
        key.to_str().unwrap(),
    ];
    let base = format!("https://localhost:{}", s.sandbox);
    let bearer = format!("Authorization: {}", c.bearer);
    let body = r#"{"annee":2024,"creances":[{"reference":"K9-1","montant":"99.90","date_echeance":"2024-12-31","impot":"CFE"}]}"#;
    let post_url = format!("{base}/opale/v1/entreprises/443061841/creances");
    let uuid = opale_apim::domain::random_uuid().unwrap().to_string();
    let cid_h = format!("X-Correlation-ID: {uuid}");
    let post = |extra: &[&str]| {
        let mut a: Vec<&str> = tls.to_vec();
        a.extend([
            "-H",
            bearer.as_str(),
            "-H",
            cid_h.as_str(),
            "-H",
            "Content-Type: application/json",
            "-H",
            "Idempotency-Key: kill-9",
            "--data-binary",
            body,
        ]);
        a.extend_from_slice(extra);
        a.push(&post_url);
        curl(&a)
    };
    let (code, first) = post(&[]);
    assert_eq!(code, 201, "{first}");
    s.kill9();

    let s = Served::start(tmp.path());
    let (code, again) = post(&[]);
    assert_eq!(
        (code, &again),
        (201, &first),
        "the replay returns the stored answer"
    );
    let mut a: Vec<&str> = tls.to_vec();
    let get_url = format!("{base}/opale/v1/entreprises/443061841/creances?annee=2024");
    a.extend([
        "-H",
        bearer.as_str(),
        "-H",
        cid_h.as_str(),
        get_url.as_str(),
    ]);
    let (code, doc) = curl(&a);
    assert_eq!(code, 200, "{doc}");
    assert_eq!(doc["transmises"][0]["id"], first["id"]);
    drop(s);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_answered_request_is_in_the_trace_after_sigkill_under_load() {
    let tmp = tempfile::tempdir().unwrap();
    let s = Served::start(tmp.path());
    let c = s.sandbox_caller("356000000", &["declarations:2024"], "1000000");
    let (pem, key, bearer) = (c.pem.clone(), c.key.clone(), c.bearer.clone());
    let ca = s.certs().join("ca.pem");
    let identity = support::pki::Identity {
        cert_pem: std::fs::read_to_string(&pem).unwrap(),
        key_pem: std::fs::read_to_string(&key).unwrap(),
        thumbprint: String::new(),
        serial: Vec::new(),
    };
    let addr: std::net::SocketAddr = format!("127.0.0.1:{}", s.sandbox).parse().unwrap();
    let answered = std::sync::Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let cfg = support::client_config(&ca, Some(&identity));
            let (answered, bearer) = (answered.clone(), bearer.clone());
            tokio::spawn(async move {
                let Ok(mut conn) = support::Conn::open(addr, cfg).await else {
                    return;
                };
                let deadline = Instant::now() + Duration::from_secs(10);
                while Instant::now() < deadline {
                    let id = opale_apim::domain::random_uuid().unwrap().to_string();
                    let h = [
                        ("x-correlation-id", id.as_str()),
                        ("authorization", bearer.as_str()),
                    ];
                    match conn
                        .try_get(
                            "/opale/v1/entreprises/732829320/declarations?annee=2024",
                            &h,
                        )
                        .await
                    {
                        Ok(_) => answered.lock().unwrap().push(id),
                        Err(_) => return,
                    }
                }
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    s.kill9();
    for t in tasks {
        t.await.unwrap();
    }
    let answered = answered.lock().unwrap().clone();
    assert!(
        answered.len() > 100,
        "the load ran ({} answers)",
        answered.len()
    );

    let s = Served::start(tmp.path());
    let out = s.cli(&["trace", "export"]);
    assert!(out.status.success());
    let traced: std::collections::HashSet<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter_map(|v| v["correlation_id"].as_str().map(str::to_owned))
        .collect();
    let missing: Vec<&String> = answered.iter().filter(|id| !traced.contains(*id)).collect();
    assert!(
        missing.is_empty(),
        "{} of {} answered requests have no trace record",
        missing.len(),
        answered.len()
    );
    let report = s.cli_json(&["trace", "verify"]);
    assert_eq!(report["ok"], true, "{report}");
}
