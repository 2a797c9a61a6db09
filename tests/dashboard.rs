//! The dashboards over real mTLS on the admin listener: partner isolation,
//! one language per page chosen by `Accept-Language`, the admin view and
//! its suspend action, escaping. The pages in a real browser (look,
//! accessibility, keyboard) are tests/accessibility.rs.
// A test crate: its helpers may unwrap like its #[test] functions (a
// panic is a failed test). The lib and binary deny it (Cargo.toml).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use hyper::Method;
use opale_apim::domain::Environment::Sandbox;
use support::{Client, Reply, TestServer};

async fn traffic(s: &TestServer, c: &Client) {
    let t = s.token(Sandbox, &c.cert, &c.id).await;
    for year in [2024, 2019] {
        let p = format!("/opale/v1/entreprises/732829320/declarations?annee={year}");
        s.data_call_with_token(Sandbox, &c.cert, &t, &p).await;
    }
}

async fn dashboard(s: &TestServer, id: Option<&support::pki::Identity>) -> (u16, String) {
    let r = dashboard_in(s, id, None).await;
    (
        r.status.as_u16(),
        String::from_utf8_lossy(&r.raw).to_string(),
    )
}

/// `GET /dashboard` with this `Accept-Language`, if any.
async fn dashboard_in(
    s: &TestServer,
    id: Option<&support::pki::Identity>,
    accept_language: Option<&str>,
) -> Reply {
    let mut conn = s.connect(s.admin, id).await;
    let headers: Vec<_> = accept_language
        .map(|l| ("accept-language", l))
        .into_iter()
        .collect();
    conn.send(Method::GET, "/dashboard", &headers, None).await
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
        !html.contains("year 2019 not covered by the grant"),
        "French only: no English beside it"
    );
    assert!(html.contains("id=\"last-requests\""));
    let rows = html.matches("<tr><td>").count();
    assert!(rows >= 2);
    // The charts are on the usage page the home page leads to
    // (tests/dashboard_usage.rs checks their numbers).
    assert!(html.contains("href=\"/dashboard/usage\""));
    let mut conn = s.connect(s.admin, Some(&a.cert)).await;
    let r = conn.send(Method::GET, "/dashboard/usage", &[], None).await;
    assert_eq!(r.status, 200);
    let usage = String::from_utf8_lossy(&r.raw);
    assert!(usage.contains("<svg") && usage.contains(&a.id) && !usage.contains(&b.id));
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
    // Same origin without the form's token: refused too.
    let same_origin = [
        ("sec-fetch-site", "same-origin"),
        ("content-type", "application/x-www-form-urlencoded"),
    ];
    let r = conn
        .send_raw(Method::POST, &path, &same_origin, Vec::new(), false)
        .await;
    assert_eq!(r.status, 403);
    // With the token the admin's page gave for this form: done.
    let (_, page) = dashboard(&s, Some(&admin)).await;
    let body = format!("jeton={}", support::form_token(&page, &path));
    let r = conn
        .send_raw(Method::POST, &path, &same_origin, body.into_bytes(), false)
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
    assert!(html.contains(&format!("aria-label=\"Suspendre {escaped_name}\"")));
}

/// One language per page (docs/contract.md §13): French by default and for
/// a browser that ranks French first; English, with `<html lang="en">`,
/// when `Accept-Language` prefers it; never both.
#[tokio::test]
async fn each_page_is_in_one_language_chosen_by_accept_language() {
    let s = TestServer::start().await;
    let a = s.client(Sandbox).await;
    traffic(&s, &a).await;
    let fr_reason = "année 2019 non couverte par l'habilitation";
    let en_reason = "year 2019 not covered by the grant";
    for (accept, english) in [
        (None, false),
        (Some("fr-FR,fr;q=0.9,en-US;q=0.8,en;q=0.7"), false),
        (Some("en-US,en;q=0.9"), true),
        (Some("de-DE, en;q=0.5, fr;q=0.4"), true),
        (Some("en;q=0.5, fr;q=0.5"), false),
    ] {
        let r = dashboard_in(&s, Some(&a.cert), accept).await;
        assert_eq!(r.status, 200);
        let html = String::from_utf8_lossy(&r.raw).into_owned();
        let (lang, shown, hidden) = match english {
            true => ("en", en_reason, fr_reason),
            false => ("fr", fr_reason, en_reason),
        };
        assert!(
            html.contains(&format!("<html lang=\"{lang}\">")),
            "{accept:?}"
        );
        assert_eq!(r.headers["content-language"], lang, "{accept:?}");
        assert!(html.contains(shown) && !html.contains(hidden), "{accept:?}");
        let title = if english {
            "Partner dashboard"
        } else {
            "Tableau de bord partenaire"
        };
        assert!(
            html.contains(&format!("<h1>{title} — Partenaire Test</h1>")),
            "{html}"
        );
        let text = html.split("</style>").nth(1).unwrap();
        assert!(!text.contains(" / "), "a label written twice: {accept:?}");
        assert_eq!(r.headers["vary"], "accept-language");
    }
    // The error pages follow the same rule.
    let r = dashboard_in(&s, None, Some("en")).await;
    assert_eq!(r.status, 401);
    let html = String::from_utf8_lossy(&r.raw).into_owned();
    assert!(
        html.contains("<h1>Sign in with a certificate</h1>"),
        "{html}"
    );
    let r = dashboard_in(&s, None, None).await;
    let html = String::from_utf8_lossy(&r.raw).into_owned();
    assert!(html.contains("<h1>Connexion par certificat</h1>"), "{html}");
}

/// The pages load nothing but their own inlined stylesheet: the policy
/// names it by hash, with no `'unsafe-inline'` and no script at all.
#[tokio::test]
async fn the_page_policy_allows_only_its_own_stylesheet() {
    use base64::Engine;
    use sha2::Digest;
    let s = TestServer::start().await;
    let r = dashboard_in(&s, Some(&s.pki.admin()), None).await;
    assert_eq!(r.status, 200);
    let html = String::from_utf8_lossy(&r.raw).into_owned();
    let css = html
        .split("<style>")
        .nth(1)
        .unwrap()
        .split("</style>")
        .next()
        .unwrap();
    let hash = base64::engine::general_purpose::STANDARD.encode(sha2::Sha256::digest(css));
    let csp = r.headers["content-security-policy"].to_str().unwrap();
    assert!(csp.contains(&format!("style-src 'sha256-{hash}'")), "{csp}");
    assert!(
        csp.starts_with("default-src 'none'") && !csp.contains("unsafe"),
        "{csp}"
    );
    assert!(
        !html.contains("<script") && !html.contains(" style=\""),
        "inline script or style"
    );
    assert_eq!(r.headers["cache-control"], "no-store");
}
