//! A real Chromium for the page tests, driven through chromedriver (W3C
//! WebDriver, JSON over HTTP on loopback), that presents a client
//! certificate over real mTLS like a person's browser does.
//!
//! The certificate: each browser gets its own `HOME`, whose NSS database
//! (`~/.pki/nssdb`, where Chromium on Linux keeps certificates) trusts the
//! test root CA (so the server's certificate is verified, no
//! `--ignore-certificate-errors`) and holds the client certificate and key
//! (PKCS #12, imported with `pk12util`). A headless browser cannot show
//! the certificate picker, so the profile's preferences carry the
//! `AutoSelectCertificateForUrls` setting (the content setting the policy
//! of that name fills) for the server's origins: Chromium then presents
//! that certificate by itself. Nothing is written outside temporary
//! directories (no system-wide policy file).
//!
//! One chromedriver per browser (its `HOME` is the browser's), in its own
//! process group, ended with its session and killed on drop.

use super::pki::Identity;
use serde_json::{Value, json};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// What a browser is set up with.
pub struct Setup<'a> {
    /// The CA that signed the server's certificate (trusted in NSS).
    pub ca_pem: &'a Path,
    /// The client certificate to present, if any.
    pub client: Option<&'a Identity>,
    /// The `https://localhost:port` origins that get the certificate.
    pub origins: &'a [String],
    /// The `Accept-Language` the browser sends (`intl.accept_languages`).
    pub accept_language: &'a str,
}

/// A running Chromium with one WebDriver session.
pub struct Browser {
    driver: Child,
    addr: SocketAddr,
    session: String,
    _home: tempfile::TempDir,
}

/// The programs the browser tests run; a missing one fails the test with
/// what to install (it never passes by skipping).
pub fn require_tools() {
    let missing: Vec<&str> = [
        ("chromium", "chromium"),
        ("chromedriver", "chromium-driver"),
        ("certutil", "libnss3-tools"),
        ("pk12util", "libnss3-tools"),
        ("openssl", "openssl"),
    ]
    .into_iter()
    .filter(|(tool, _)| which(tool).is_none())
    .map(|(_, package)| package)
    .collect();
    assert!(
        missing.is_empty(),
        "a real Chromium is needed for this test: install Debian's {} \
         (apt-get install {}; scripts/test.sh does it)",
        missing.join(", "),
        missing.join(" ")
    );
    let major = |tool: &str| {
        let out = Command::new(tool).arg("--version").output().unwrap();
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let version = text
            .split_whitespace()
            .find(|w| w.contains('.'))
            .unwrap_or("");
        version.split('.').next().unwrap_or("").to_owned()
    };
    let (browser, driver) = (major("chromium"), major("chromedriver"));
    assert_eq!(
        browser, driver,
        "chromium {browser} and chromedriver {driver} differ: install the same version of \
         Debian's chromium and chromium-driver"
    );
}

/// The path of `tool` on `PATH`.
pub fn which(tool: &str) -> Option<PathBuf> {
    std::env::var_os("PATH")
        .map(|p| {
            std::env::split_paths(&p)
                .map(|d| d.join(tool))
                .collect::<Vec<_>>()
        })
        .unwrap_or_default()
        .into_iter()
        .find(|p| p.is_file())
}

impl Browser {
    /// Starts chromedriver and a headless Chromium set up with `setup`.
    pub fn start(setup: &Setup<'_>) -> Browser {
        let home = tempfile::tempdir().unwrap();
        nss_db(home.path(), setup);
        let profile = home.path().join("profile");
        std::fs::create_dir_all(profile.join("Default")).unwrap();
        std::fs::write(
            profile.join("Default/Preferences"),
            preferences(setup).to_string(),
        )
        .unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        use std::os::unix::process::CommandExt;
        let driver = Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .env("HOME", home.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .unwrap();
        let mut browser = Browser {
            driver,
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
            session: String::new(),
            _home: home,
        };
        browser.wait_ready();
        let session = browser.call("POST", "/session", Some(capabilities(&profile)));
        browser.session = session["sessionId"].as_str().unwrap().to_owned();
        browser.cmd(
            "POST",
            "timeouts",
            json!({"script": 120_000, "pageLoad": 30_000}),
        );
        browser
    }

    /// Navigates to `url` and waits for the page to load.
    pub fn goto(&self, url: &str) {
        self.cmd("POST", "url", json!({ "url": url }));
    }

    /// Runs `script` (a function body) with `args`; its return value.
    pub fn run(&self, script: &str, args: Value) -> Value {
        self.cmd(
            "POST",
            "execute/sync",
            json!({"script": script, "args": args}),
        )
    }

    /// Runs `script`, which calls `arguments[arguments.length - 1]` with
    /// its result when done.
    pub fn run_async(&self, script: &str, args: Value) -> Value {
        self.cmd(
            "POST",
            "execute/async",
            json!({"script": script, "args": args}),
        )
    }

    /// Presses and releases one key (a WebDriver key code: `\u{E004}` Tab,
    /// `\u{E007}` Enter), as a keyboard would.
    pub fn press(&self, key: char) {
        let key = key.to_string();
        let actions = json!({"actions": [{"type": "key", "id": "keyboard", "actions": [
            {"type": "keyDown", "value": key}, {"type": "keyUp", "value": key}
        ]}]});
        self.cmd("POST", "actions", actions);
    }

    /// Resizes the window (the viewport follows in headless mode).
    pub fn resize(&self, width: u32, height: u32) {
        self.cmd(
            "POST",
            "window/rect",
            json!({"width": width, "height": height}),
        );
    }

    /// A PNG of the viewport.
    pub fn screenshot(&self) -> Vec<u8> {
        use base64::Engine;
        let b64 = self.cmd("GET", "screenshot", Value::Null);
        base64::engine::general_purpose::STANDARD
            .decode(b64.as_str().unwrap())
            .unwrap()
    }

    /// Waits until `script` returns `true` (polling every 50 ms, 15 s at most).
    pub fn wait_for(&self, what: &str, script: &str) {
        let deadline = Instant::now() + Duration::from_secs(15);
        while self.run(script, json!([])) != json!(true) {
            assert!(Instant::now() < deadline, "timed out waiting for {what}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// A command of this session; its `value`.
    fn cmd(&self, method: &str, path: &str, body: Value) -> Value {
        let body = (method == "POST").then_some(body);
        let path = format!("/session/{}/{path}", self.session);
        self.call(method, &path, body)
    }

    /// One WebDriver call; its `value`, or a panic naming the error.
    fn call(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let (status, reply) = http(self.addr, method, path, body.as_ref())
            .unwrap_or_else(|e| panic!("chromedriver {method} {path}: {e}"));
        let value = reply.get("value").cloned().unwrap_or(Value::Null);
        assert!(
            status == 200,
            "chromedriver {method} {path}: {status} {value}"
        );
        value
    }

    fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Ok((200, v)) = http(self.addr, "GET", "/status", None)
                && v["value"]["ready"] == json!(true)
            {
                return;
            }
            if let Ok(Some(exit)) = self.driver.try_wait() {
                panic!("chromedriver exited at start: {exit}");
            }
            assert!(
                Instant::now() < deadline,
                "chromedriver not ready after 20 s"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Browser {
    /// Ends the session (Chromium exits), then chromedriver's process group.
    fn drop(&mut self) {
        if !self.session.is_empty() {
            let _ = http(
                self.addr,
                "DELETE",
                &format!("/session/{}", self.session),
                None,
            );
        }
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{}", self.driver.id())])
            .status();
        let _ = self.driver.wait();
    }
}

/// An NSS database under `home` trusting `setup.ca_pem` for servers and
/// holding the client certificate, if any.
fn nss_db(home: &Path, setup: &Setup<'_>) {
    let db = home.join(".pki/nssdb");
    std::fs::create_dir_all(&db).unwrap();
    let db = format!("sql:{}", db.display());
    let ca = setup.ca_pem.to_str().unwrap();
    run("certutil", &["-N", "-d", &db, "--empty-password"]);
    run(
        "certutil",
        &[
            "-A",
            "-d",
            &db,
            "-n",
            "opale-test-ca",
            "-t",
            "C,,",
            "-i",
            ca,
        ],
    );
    if let Some(id) = setup.client {
        let (pem, p12) = (home.join("client.pem"), home.join("client.p12"));
        std::fs::write(&pem, format!("{}{}", id.cert_pem, id.key_pem)).unwrap();
        let (pem, p12) = (pem.to_str().unwrap(), p12.to_str().unwrap());
        run(
            "openssl",
            &[
                "pkcs12", "-export", "-in", pem, "-out", p12, "-passout", "pass:",
            ],
        );
        run("pk12util", &["-i", p12, "-d", &db, "-W", ""]);
    }
}

/// Runs a setup command; a failure fails the test with its output.
fn run(program: &str, args: &[&str]) {
    let out = Command::new(program).args(args).output().unwrap();
    assert!(
        out.status.success(),
        "{program} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The profile's preferences: the certificate chosen by itself for each
/// origin (by its subject's common name), and the languages sent.
fn preferences(setup: &Setup<'_>) -> Value {
    let mut auto = serde_json::Map::new();
    if let Some(id) = setup.client {
        let filter = json!({"setting": {"filters": [{"SUBJECT": {"CN": common_name(id)}}]}});
        for origin in setup.origins {
            auto.insert(format!("{origin},*"), filter.clone());
        }
    }
    json!({
        "profile": {"content_settings": {"exceptions": {"auto_select_certificate": auto}}},
        "intl": {"accept_languages": setup.accept_language},
    })
}

/// The subject common name of `id`'s certificate.
fn common_name(id: &Identity) -> String {
    let (_, pem) = x509_parser::pem::parse_x509_pem(id.cert_pem.as_bytes()).unwrap();
    let cert = pem.parse_x509().unwrap();
    let cn = cert.subject().iter_common_name().next().unwrap();
    cn.as_str().unwrap().to_owned()
}

/// The new session's capabilities: headless Debian Chromium on `profile`.
fn capabilities(profile: &Path) -> Value {
    let binary = which("chromium").unwrap();
    json!({"capabilities": {"alwaysMatch": {
        "browserName": "chrome",
        "acceptInsecureCerts": false,
        "goog:chromeOptions": {
            "binary": binary,
            "args": [
                "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--no-first-run", "--disable-background-networking", "--disable-sync",
                "--disable-component-update", "--hide-scrollbars", "--window-size=1280,800",
                format!("--user-data-dir={}", profile.display()),
            ],
        },
    }}})
}

/// One HTTP/1.1 exchange with chromedriver: status and JSON body.
fn http(
    addr: SocketAddr,
    method: &str,
    path: &str,
    body: Option<&Value>,
) -> std::io::Result<(u16, Value)> {
    let body = body.map(|b| b.to_string()).unwrap_or_default();
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
    stream.set_read_timeout(Some(Duration::from_secs(180)))?;
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )?;
    let mut reader = BufReader::new(stream);
    let (status, length) = head(&mut reader)?;
    let mut raw = Vec::new();
    match length {
        Some(n) => {
            raw.resize(n, 0);
            reader.read_exact(&mut raw)?;
        }
        None => {
            reader.read_to_end(&mut raw)?;
        }
    }
    Ok((status, serde_json::from_slice(&raw).unwrap_or(Value::Null)))
}

/// A response's status line and headers: the status and `Content-Length`.
fn head(reader: &mut impl BufRead) -> std::io::Result<(u16, Option<usize>)> {
    let mut line = String::new();
    reader.read_line(&mut line)?;
    let status = line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let mut length = None;
    loop {
        line.clear();
        reader.read_line(&mut line)?;
        if line.trim().is_empty() {
            return Ok((status, length));
        }
        if let Some((name, value)) = line.split_once(':')
            && name.eq_ignore_ascii_case("content-length")
        {
            length = value.trim().parse::<usize>().ok();
        }
    }
}
