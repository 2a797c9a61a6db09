//! The dashboards over real mTLS on the admin listener: partner isolation,
//! the admin view and its suspend action, and an end-to-end check in
//! headless Chromium (through a loopback forwarder that presents the
//! partner's client certificate, since a headless browser cannot pick one).
// A test crate: its helpers may unwrap like its #[test] functions (a
// panic is a failed test). The lib and binary deny it (Cargo.toml).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use http_body_util::Full;
use hyper::service::service_fn;
use hyper::{Method, Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo};
use opale_apim::domain::Environment::Sandbox;
use std::sync::Arc;
use support::{Client, TestServer};

async fn traffic(s: &TestServer, c: &Client) {
    let t = s.token(Sandbox, &c.cert, &c.id).await;
    for year in [2024, 2019] {
        let p = format!("/opale/v1/entreprises/732829320/declarations?annee={year}");
        s.data_call_with_token(Sandbox, &c.cert, &t, &p).await;
    }
}

async fn dashboard(s: &TestServer, id: Option<&support::pki::Identity>) -> (u16, String) {
    let mut conn = s.connect(s.admin, id).await;
    let r = conn.send(Method::GET, "/dashboard", &[], None).await;
    (
        r.status.as_u16(),
        String::from_utf8_lossy(&r.raw).to_string(),
    )
}

#[tokio::test]
async fn a_partner_sees_only_its_own_applications() {
    let s = TestServer::start().await;
    let a = s.client(Sandbox).await;
    let b = s.client(Sandbox).await;
    traffic(&s, &a).await;
    traffic(&s, &b).await;
    let (status, html) = dashboard(&s, Some(&a.cert)).await;
    assert_eq!(status, 200);
    assert!(html.contains(&a.id), "own application listed");
    assert!(
        !html.contains(&b.id),
        "another partner's application leaked"
    );
    assert!(
        html.contains("année 2019 non couverte par l'habilitation"),
        "denial explained in French"
    );
    assert!(
        html.contains("year 2019 not covered by the grant"),
        "and in English"
    );
    assert!(html.contains("<svg") && html.contains("id=\"last-requests\""));
    let rows = html.matches("<tr><td>").count();
    assert!(rows >= 2);
    // The admin sees every partner; no certificate or a stranger sees nothing.
    let admin = s.pki.admin();
    let (status, html) = dashboard(&s, Some(&admin)).await;
    assert_eq!(status, 200);
    assert!(html.contains(&a.partner) && html.contains(&b.partner));
    assert_eq!(dashboard(&s, None).await.0, 401);
    assert_eq!(
        dashboard(&s, Some(&s.pki.partner(Sandbox, "stranger")))
            .await
            .0,
        403
    );
    // A partner cannot use admin actions.
    let mut conn = s.connect(s.admin, Some(&a.cert)).await;
    let r = conn
        .send_raw(
            Method::POST,
            &format!("/dashboard/partners/{}/suspend", b.partner),
            &[],
            Vec::new(),
            false,
        )
        .await;
    assert_eq!(r.status, 404);
    // The admin can, from the same origin only.
    let mut conn = s.connect(s.admin, Some(&admin)).await;
    let path = format!("/dashboard/partners/{}/suspend", b.partner);
    let r = conn
        .send_raw(
            Method::POST,
            &path,
            &[("sec-fetch-site", "cross-site")],
            Vec::new(),
            false,
        )
        .await;
    assert_eq!(r.status, 403);
    let r = conn
        .send_raw(
            Method::POST,
            &path,
            &[("sec-fetch-site", "same-origin")],
            Vec::new(),
            false,
        )
        .await;
    assert_eq!(r.status, 303);
    let p = s
        .admin_call(
            Method::GET,
            &format!("/admin/v1/partners/{}", b.partner),
            None,
        )
        .await;
    assert_eq!(p.body["status"], "suspended");
}

/// What a caller fully controls and the dashboards show: the method token
/// (RFC 9110 tchars include `&`), the path (`&`, `;`, `'`, `"` pass
/// hyper as they are; `<` only percent-encoded) and the partner's name.
const METHOD: &str = "X&ltscript&gt";
const PATH: &str =
    "/opale/v1/%3Cscript%3Ealert(1)%3C/script%3E/&lt;script&gt;alert(2)&lt;/script&gt;/\"q\"";
const NAME: &str = "Evil <script>alert(3)</script> \"q\" & co";

/// The raw bytes of a request whose path carries a literal `<script>`:
/// hyper refuses it before any handler, so it never reaches the trace.
async fn raw_script_request(s: &TestServer, id: &support::pki::Identity) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let config = support::client_config(&s.pki.files.ca_pem(), Some(id));
    let tcp = tokio::net::TcpStream::connect(s.env_addr(Sandbox))
        .await
        .unwrap();
    let name = rustls_pki_types::ServerName::try_from("localhost").unwrap();
    let mut tls = tokio_rustls::TlsConnector::from(config)
        .connect(name, tcp)
        .await
        .unwrap();
    let req = "GET /opale/v1/<script>alert(4)</script> HTTP/1.1\r\nhost: localhost\r\nconnection: close\r\n\r\n";
    tls.write_all(req.as_bytes()).await.unwrap();
    let mut out = Vec::new();
    let _ = tls.read_to_end(&mut out).await;
    String::from_utf8_lossy(&out).into_owned()
}

/// Regression (issue 8): the admin dashboard wrote the recorded method
/// unescaped, so a caller's request line landed as markup in the admin's
/// page. Everything a caller or a partner record controls is now escaped.
#[tokio::test]
async fn a_request_carrying_html_is_shown_escaped_on_both_dashboards() {
    let s = TestServer::start().await;
    let a = s.client(Sandbox).await;
    let patch = serde_json::json!({ "name": NAME });
    let path = format!("/admin/v1/partners/{}", a.partner);
    assert_eq!(
        s.admin_call(Method::PATCH, &path, Some(patch)).await.status,
        200
    );
    let method = Method::from_bytes(METHOD.as_bytes()).unwrap();
    let mut conn = s.connect(s.env_addr(Sandbox), Some(&a.cert)).await;
    conn.send_raw(method.clone(), PATH, &[], Vec::new(), false)
        .await;
    let admin = s.pki.admin();
    let mut conn = s.connect(s.admin, Some(&admin)).await;
    conn.send_raw(method, PATH, &[], Vec::new(), false).await;
    let refused = raw_script_request(&s, &a.cert).await;
    assert!(refused.starts_with("HTTP/1.1 400"), "{refused}");
    let escaped_method = "X&amp;ltscript&amp;gt";
    let escaped_path = "/opale/v1/%3Cscript%3Ealert(1)%3C/script%3E/\
                        &amp;lt;script&amp;gt;alert(2)&amp;lt;/script&amp;gt;/&quot;q&quot;";
    let escaped_name = "Evil &lt;script&gt;alert(3)&lt;/script&gt; &quot;q&quot; &amp; co";
    for who in [&a.cert, &admin] {
        let (status, html) = dashboard(&s, Some(who)).await;
        assert_eq!(status, 200);
        assert!(!html.to_lowercase().contains("<script"), "{html}");
        assert!(!html.contains(METHOD) && !html.contains("\"q\""), "{html}");
        let shown = format!("{escaped_method} {escaped_path}");
        assert!(html.contains(&shown), "request line escaped: {html}");
        assert!(html.contains(escaped_name), "partner name escaped: {html}");
    }
    let (_, html) = dashboard(&s, Some(&admin)).await;
    assert!(html.contains(&format!(
        "aria-label=\"Suspendre / Suspend {escaped_name}\""
    )));
}

/// Plain HTTP on 127.0.0.1 → mTLS to the admin listener with `identity`.
async fn forwarder(s: Arc<TestServer>, identity: support::pki::Identity) -> std::net::SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let (s, identity) = (s.clone(), identity.clone());
            tokio::spawn(async move {
                let svc = service_fn(move |req: Request<hyper::body::Incoming>| {
                    let (s, identity) = (s.clone(), identity.clone());
                    async move {
                        let mut conn = s.connect(s.admin, Some(&identity)).await;
                        let r = conn
                            .send_raw(
                                req.method().clone(),
                                req.uri().path(),
                                &[],
                                Vec::new(),
                                false,
                            )
                            .await;
                        let mut resp = Response::new(Full::new(r.raw.clone()));
                        *resp.status_mut() = r.status;
                        if let Some(ct) = r.headers.get("content-type") {
                            resp.headers_mut().insert("content-type", ct.clone());
                        }
                        Ok::<_, std::convert::Infallible>(resp)
                    }
                });
                let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(tcp), svc)
                    .await;
            });
        }
    });
    addr
}

fn chromium(args: &[&str]) -> std::process::Output {
    let profile = tempfile::tempdir().unwrap();
    std::process::Command::new("chromium")
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .args(args)
        .output()
        .expect("chromium is installed (scripts/test.sh installs it)")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn headless_chromium_shows_the_denial_reason_in_the_last_requests_table() {
    let s = Arc::new(TestServer::start().await);
    let a = s.client(Sandbox).await;
    traffic(&s, &a).await;
    let partner_url = format!(
        "http://{}/dashboard",
        forwarder(s.clone(), a.cert.clone()).await
    );
    let admin_url = format!(
        "http://{}/dashboard",
        forwarder(s.clone(), s.pki.admin()).await
    );
    let url = partner_url.clone();
    let dom = tokio::task::spawn_blocking(move || chromium(&["--dump-dom", &url]))
        .await
        .unwrap();
    let dom = String::from_utf8_lossy(&dom.stdout).to_string();
    let table = dom
        .split("id=\"last-requests\"")
        .nth(1)
        .expect("the last-requests table is rendered");
    assert!(
        table.contains("année 2019 non couverte par l'habilitation"),
        "{table}"
    );
    assert!(table.contains("denied"));
    // Screenshots for people to look at: desktop and phone widths.
    let shots = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("dashboards");
    std::fs::create_dir_all(&shots).unwrap();
    for (name, url, size) in [
        ("partner-1280x800.png", &partner_url, "1280,800"),
        ("partner-390x844.png", &partner_url, "390,844"),
        ("admin-1280x800.png", &admin_url, "1280,800"),
    ] {
        let file = shots.join(name);
        let (url, file2) = (url.clone(), file.clone());
        let out = tokio::task::spawn_blocking(move || {
            chromium(&[
                &format!("--screenshot={}", file2.display()),
                &format!("--window-size={size}"),
                &url,
            ])
        })
        .await
        .unwrap();
        assert!(
            file.is_file() && std::fs::metadata(&file).unwrap().len() > 5000,
            "{name}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
