//! Partner self-service on the dashboard (docs/contract.md §12) on a real
//! server over real mTLS, the forms posted as a browser posts them (form
//! encoding, `Sec-Fetch-Site`, the token read from the page): contacts
//! (the next notice reaches the new address through a real SMTP
//! receiver), secret rotation, a certificate from a CSR renewed by EST
//! with curl + openssl and then revoked; writes from another site or
//! without their token change nothing; one partner never reaches
//! another's records, on any route.
// A test crate: its helpers may unwrap like its #[test] functions (a
// panic is a failed test). The lib and binary deny it (Cargo.toml).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use hyper::Method;
use opale_apim::config::SmtpUrl;
use opale_apim::domain::Environment::Sandbox;
use opale_apim::domain::Thumbprint;
use serde_json::{Value, json};
use support::pki::{Identity, csr};
use support::smtp::{Sink, python};
use support::{Client, Reply, TestServer, form_token};
use time::{Duration, OffsetDateTime};

/// Header or form pairs.
type Headers<'a> = Vec<(&'a str, &'a str)>;

const DATA: &str = "/opale/v1/entreprises/732829320/declarations?annee=2024";
const SAME_ORIGIN: (&str, &str) = ("sec-fetch-site", "same-origin");
const FORM: (&str, &str) = ("content-type", "application/x-www-form-urlencoded");

/// `GET path` on the admin listener with `who`'s certificate: status and HTML.
async fn get(s: &TestServer, who: &Identity, path: &str) -> (u16, String) {
    let mut conn = s.connect(s.admin, Some(who)).await;
    let r = conn.send(Method::GET, path, &[], None).await;
    (r.status.as_u16(), html(&r))
}

fn html(r: &Reply) -> String {
    String::from_utf8_lossy(&r.raw).into_owned()
}

/// Posts `fields` (form-encoded) to `path` with `who`'s certificate and
/// `headers` (a browser's own page: [`SAME_ORIGIN`]).
async fn post(
    s: &TestServer,
    who: &Identity,
    path: &str,
    headers: &[(&str, &str)],
    fields: &[(&str, &str)],
) -> Reply {
    let body = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(fields)
        .finish();
    let mut h = vec![FORM];
    h.extend_from_slice(headers);
    let mut conn = s.connect(s.admin, Some(who)).await;
    conn.send_raw(Method::POST, path, &h, body.into_bytes(), false)
        .await
}

/// Reads the form to `action` on `page_path`, then posts it as the
/// browser does, with `fields` besides the token.
async fn submit(
    s: &TestServer,
    who: &Identity,
    (page_path, action): (&str, &str),
    fields: &[(&str, &str)],
) -> Reply {
    let (status, page) = get(s, who, page_path).await;
    assert_eq!(status, 200, "{page}");
    let token = form_token(&page, action);
    let mut all = vec![("jeton", token.as_str())];
    all.extend_from_slice(fields);
    post(s, who, action, &[SAME_ORIGIN], &all).await
}

/// The token request with the secret (client_secret_basic) → status.
async fn secret_works(s: &TestServer, c: &Client, secret: &str) -> u16 {
    let form = "grant_type=client_credentials";
    let r = s
        .token_request(Sandbox, Some(&c.cert), Some((&c.id, secret)), form)
        .await;
    r.status.as_u16()
}

/// A token with `who`'s certificate, then a data call: the call's status.
async fn data_works(s: &TestServer, client_id: &str, who: &Identity) -> u16 {
    let r = s
        .token_request(
            Sandbox,
            Some(who),
            None,
            &format!("grant_type=client_credentials&client_id={client_id}"),
        )
        .await;
    if r.status != 200 {
        return r.status.as_u16();
    }
    let token = r.body["access_token"].as_str().unwrap();
    let r = s.data_call_with_token(Sandbox, who, token, DATA).await;
    r.status.as_u16()
}

/// The application's certificates, as the admin API lists them.
async fn certificates(s: &TestServer, client_id: &str) -> Vec<Value> {
    let r = s
        .admin_call(
            Method::GET,
            &format!("/admin/v1/applications/{client_id}/certificates"),
            None,
        )
        .await;
    r.body.as_array().unwrap().clone()
}

async fn partner_json(s: &TestServer, id: &str) -> Value {
    let r = s
        .admin_call(Method::GET, &format!("/admin/v1/partners/{id}"), None)
        .await;
    assert_eq!(r.status, 200);
    r.body
}

/// The trail record of the POST to `path` answered `status`.
async fn traced(s: &TestServer, path: &str, status: u16) -> Value {
    let what = format!("POST {path} → {status}");
    s.trail_record(&what, |v| {
        v["path"] == path && v["method"] == "POST" && v["status"] == status
    })
    .await
}

/// The certificate PEM shown on the answer page.
fn shown_certificate(page: &str) -> String {
    let start = page.find("-----BEGIN CERTIFICATE-----").unwrap();
    let end = page.find("-----END CERTIFICATE-----").unwrap() + "-----END CERTIFICATE-----".len();
    format!("{}\n", &page[start..end])
}

#[tokio::test]
async fn contacts_are_updated_and_the_next_notice_goes_to_the_new_address() {
    let sink = Sink::start(python(), 0);
    let port = sink.port;
    let s = TestServer::start_with(move |c| {
        c.notify.check_interval_secs = 1;
        c.notify.smtp_url = Some(SmtpUrl::parse(&format!("smtp://127.0.0.1:{port}")).unwrap());
    })
    .await;
    let a = s.client(Sandbox).await;
    let path = format!("/dashboard/partners/{}/contacts", a.partner);
    let (status, page) = get(&s, &a.cert, &path).await;
    assert_eq!(status, 200);
    assert!(
        page.contains("value=\"jd@example.fr\""),
        "current contact shown"
    );
    assert!(page.contains("<label class=\"label\" for=\"technique-email\">"));

    // Refused field by field, nothing changed.
    let bad = [
        ("technique.nom", "Ada Martin"),
        ("technique.email", "pas-une-adresse"),
        ("technique.telephone", "12"),
    ];
    let r = submit(&s, &a.cert, (&path, &path), &bad).await;
    assert_eq!(r.status, 400);
    let page = html(&r);
    assert!(page.contains("Adresse e-mail invalide"), "{page}");
    assert!(page.contains("Numéro invalide"), "{page}");
    assert!(page.contains("aria-describedby=\"technique-email-error\""));
    assert!(page.contains("value=\"pas-une-adresse\""), "input kept");
    let p = partner_json(&s, &a.partner).await;
    assert_eq!(p["contacts"]["technique"]["email"], "jd@example.fr");

    let good = [
        ("technique.nom", "Ada Martin"),
        ("technique.email", "ada.martin@exemple.fr"),
        ("technique.telephone", "+33 1 23 45 67 89"),
        ("administratif.nom", ""),
        ("administratif.email", ""),
        ("administratif.telephone", ""),
    ];
    let r = submit(&s, &a.cert, (&path, &path), &good).await;
    assert_eq!(r.status, 303, "{}", html(&r));
    assert_eq!(r.headers["location"], format!("{path}?enregistre").as_str());
    let (_, page) = get(&s, &a.cert, &format!("{path}?enregistre")).await;
    assert!(page.contains("Contacts enregistrés"));
    let p = partner_json(&s, &a.partner).await;
    assert_eq!(
        p["contacts"],
        json!({"technique": {"nom": "Ada Martin", "email": "ada.martin@exemple.fr",
            "telephone": "+33 1 23 45 67 89"}})
    );
    let record = traced(&s, &path, 303).await;
    assert_eq!(record["actor"]["kind"], "partner", "{record}");
    assert_eq!(record["actor"]["thumbprint"], a.cert.thumbprint.as_str());
    assert_eq!(record["decision"], "admitted", "{record}");
    let after = &record["admin"]["after"]["partners"][&a.partner];
    assert_eq!(
        after["contacts"]["technique"]["email"],
        "ada.martin@exemple.fr"
    );

    // A certificate 20 days from expiry: its notice goes to the new address.
    let now = OffsetDateTime::now_utc();
    let soon = s.pki.partner_valid(
        Sandbox,
        "expire-bientot",
        now - Duration::days(1),
        now + Duration::days(20),
    );
    assert_eq!(s.register(&a.id, &soon).await.status, 201);
    let mail = sink.wait_for(1).await;
    assert_eq!(mail[0]["rcpt_tos"], json!(["ada.martin@exemple.fr"]));
    assert!(mail[0]["body"].as_str().unwrap().contains(&soon.thumbprint));
}

#[tokio::test]
async fn a_partner_rotates_its_secret_gets_renews_and_revokes_a_certificate() {
    let s = TestServer::start().await;
    let a = s.client(Sandbox).await;
    let app = format!("/dashboard/applications/{}", a.id);
    let (status, page) = get(&s, &a.cert, "/dashboard").await;
    assert_eq!(status, 200);
    assert!(
        page.contains(&format!("href=\"{app}\"")),
        "home links the app"
    );

    // The secret: shown once, the old one refused at once.
    assert_eq!(secret_works(&s, &a, &a.secret).await, 200);
    let r = submit(&s, &a.cert, (&app, &format!("{app}/secret")), &[]).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.headers["cache-control"], "no-store");
    let page = html(&r);
    let secret = page
        .split("<code id=\"secret\">")
        .nth(1)
        .unwrap()
        .split('<')
        .next()
        .unwrap()
        .to_owned();
    assert!(secret.len() >= 32, "{secret}");
    assert_eq!(secret_works(&s, &a, &a.secret).await, 401);
    assert_eq!(secret_works(&s, &a, &secret).await, 200);
    let (_, again) = get(&s, &a.cert, &app).await;
    assert!(!again.contains(&secret), "the secret is shown once");
    let record = traced(&s, &format!("{app}/secret"), 200).await;
    assert_eq!(record["actor"]["thumbprint"], a.cert.thumbprint.as_str());
    assert!(
        !record.to_string().contains(&secret),
        "no secret in the trail"
    );

    // A CSR that is none: 400 saying so, the text kept in the form.
    let issue = format!("{app}/certificates");
    let r = submit(&s, &a.cert, (&app, &issue), &[("csr", "bonjour <b>")]).await;
    assert_eq!(r.status, 400);
    assert!(html(&r).contains("Demande de certificat illisible"));
    assert!(
        html(&r).contains(">bonjour &lt;b&gt;</textarea>"),
        "{}",
        html(&r)
    );
    assert_eq!(certificates(&s, &a.id).await.len(), 1);

    // A certificate from a CSR: it gets a token and a 200.
    let (csr_pem, key_pem) = csr("app-selfservice");
    let r = submit(&s, &a.cert, (&app, &issue), &[("csr", &csr_pem)]).await;
    assert_eq!(r.status, 200, "{}", html(&r));
    let cert_pem = shown_certificate(&html(&r));
    let der = opale_apim::pki::parse_certificate_chain(&cert_pem).unwrap();
    let issued = Identity {
        thumbprint: Thumbprint::of_der(&der[0]).to_string(),
        cert_pem,
        key_pem,
        serial: Vec::new(),
    };
    assert_eq!(data_works(&s, &a.id, &issued).await, 200);

    // Renewed by machine (EST) with curl + openssl: both work.
    let dir = support::est::workdir(&s, &issued);
    let url = support::est::base(&s, Sandbox);
    let renewed = support::est::renew(dir.path(), &url, "/CN=app-selfservice").await;
    assert_eq!(data_works(&s, &a.id, &renewed).await, 200);
    assert_eq!(data_works(&s, &a.id, &issued).await, 200);
    assert_eq!(certificates(&s, &a.id).await.len(), 3);

    // Three active (the limit): a fourth is refused, nothing registered.
    let (fourth, _) = csr("app-fourth");
    let r = submit(&s, &a.cert, (&app, &issue), &[("csr", &fourth)]).await;
    assert_eq!(r.status, 409);
    assert!(html(&r).contains("au plus 3"), "{}", html(&r));
    assert_eq!(certificates(&s, &a.id).await.len(), 3);

    // Revoked from the dashboard: refused at once, with its token.
    let token = s.token(Sandbox, &issued, &a.id).await;
    let revoke = format!("{app}/certificates/{}/revoke", issued.thumbprint);
    let r = submit(&s, &a.cert, (&app, &revoke), &[]).await;
    assert_eq!(r.status, 303, "{}", html(&r));
    let r = s.data_call_with_token(Sandbox, &issued, &token, DATA).await;
    assert_eq!(r.status, 401, "{:?}", r.body);
    assert_ne!(data_works(&s, &a.id, &issued).await, 200);
    assert_eq!(data_works(&s, &a.id, &renewed).await, 200);
    let listed = certificates(&s, &a.id).await;
    let status = |t: &str| {
        listed
            .iter()
            .find(|c| c["thumbprint"] == t)
            .map(|c| c["status"].clone())
            .unwrap()
    };
    assert_eq!(status(&issued.thumbprint), "revoked");
    assert_eq!(status(&renewed.thumbprint), "active");

    // The certificate signed in with is kept: the partner would lock itself out.
    let own = format!("{app}/certificates/{}/revoke", a.cert.thumbprint);
    let (_, page) = get(&s, &a.cert, &app).await;
    assert!(!page.contains(&format!("action=\"{own}\"")));
    let other = get(&s, &renewed, &app).await.1;
    let token = form_token(&other, &own);
    let r = post(&s, &a.cert, &own, &[SAME_ORIGIN], &[("jeton", &token)]).await;
    assert_eq!(
        r.status, 403,
        "a token is bound to the certificate it was shown to"
    );
    assert_eq!(status(&a.cert.thumbprint), "active");
}

#[tokio::test]
async fn a_write_from_another_site_or_without_its_token_changes_nothing() {
    let s = TestServer::start().await;
    let a = s.client(Sandbox).await;
    let app = format!("/dashboard/applications/{}", a.id);
    let contacts = format!("/dashboard/partners/{}/contacts", a.partner);
    let second = s.pki.partner(Sandbox, "second");
    assert_eq!(s.register(&a.id, &second).await.status, 201);
    let (_, page) = get(&s, &a.cert, &app).await;
    let (_, contacts_page) = get(&s, &a.cert, &contacts).await;
    let (csr_pem, _) = csr("never");
    let forms: Vec<(String, Vec<(&str, &str)>)> = vec![
        (
            contacts.clone(),
            vec![
                ("technique.nom", "X"),
                ("technique.email", "x@evil.example"),
            ],
        ),
        (format!("{app}/secret"), vec![]),
        (
            format!("{app}/certificates"),
            vec![("csr", csr_pem.as_str())],
        ),
        (
            format!("{app}/certificates/{}/revoke", second.thumbprint),
            vec![],
        ),
    ];
    for (action, fields) in &forms {
        let source = if action == &contacts {
            &contacts_page
        } else {
            &page
        };
        let token = form_token(source, action);
        let with_token = |extra: &[(&'static str, &'static str)]| {
            let mut f = fields.clone();
            f.extend_from_slice(extra);
            f
        };
        let mut signed = with_token(&[]);
        signed.push(("jeton", token.as_str()));
        let other_action = form_token(&page, &format!("{app}/secret"));
        let mut wrong = with_token(&[]);
        wrong.push(("jeton", other_action.as_str()));
        let cases: Vec<(&str, Headers, Headers)> = vec![
            (
                "cross-site",
                vec![("sec-fetch-site", "cross-site")],
                signed.clone(),
            ),
            (
                "same-site",
                vec![("sec-fetch-site", "same-site")],
                signed.clone(),
            ),
            (
                "foreign origin",
                vec![("origin", "https://evil.example")],
                signed.clone(),
            ),
            ("no token", vec![SAME_ORIGIN], with_token(&[])),
            (
                "forged token",
                vec![SAME_ORIGIN],
                with_token(&[("jeton", "4102444800.AAAA")]),
            ),
            ("another form's token", vec![SAME_ORIGIN], wrong),
        ];
        for (what, headers, body) in cases {
            if what == "another form's token" && action.ends_with("/secret") {
                continue;
            }
            let r = post(&s, &a.cert, action, &headers, &body).await;
            assert_eq!(r.status, 403, "{what} on {action}: {}", html(&r));
        }
        // The same token from the partner's other certificate: refused.
        let r = post(&s, &second, action, &[SAME_ORIGIN], &signed).await;
        assert_eq!(r.status, 403, "token of another certificate on {action}");
    }
    // Nothing changed.
    assert_eq!(secret_works(&s, &a, &a.secret).await, 200);
    let p = partner_json(&s, &a.partner).await;
    assert_eq!(p["contacts"]["technique"]["email"], "jd@example.fr");
    let listed = certificates(&s, &a.id).await;
    assert_eq!(listed.len(), 2);
    assert!(listed.iter().all(|c| c["status"] == "active"));
}

#[tokio::test]
async fn a_partner_never_reaches_another_partners_records() {
    let s = TestServer::start().await;
    let a = s.client(Sandbox).await;
    let b = s.client(Sandbox).await;
    let b_app = format!("/dashboard/applications/{}", b.id);
    let b_contacts = format!("/dashboard/partners/{}/contacts", b.partner);
    let a_app = format!("/dashboard/applications/{}", a.id);
    // A's own forms carry valid tokens, for A's paths.
    let (_, a_page) = get(&s, &a.cert, &a_app).await;
    let a_token = form_token(&a_page, &format!("{a_app}/secret"));
    for path in [&b_app, &b_contacts] {
        let (status, page) = get(&s, &a.cert, path).await;
        assert_eq!(status, 404, "GET {path}");
        assert!(!page.contains(&b.id) && !page.contains(&b.partner));
    }
    let (csr_pem, _) = csr("intrus");
    let posts = [
        (
            b_contacts.clone(),
            vec![("technique.nom", "X"), ("technique.email", "x@x.fr")],
        ),
        (format!("{b_app}/secret"), vec![]),
        (
            format!("{b_app}/certificates"),
            vec![("csr", csr_pem.as_str())],
        ),
        (
            format!("{b_app}/certificates/{}/revoke", b.cert.thumbprint),
            vec![],
        ),
        // A's own application, B's certificate.
        (
            format!("{a_app}/certificates/{}/revoke", b.cert.thumbprint),
            vec![],
        ),
        // Ids that do not exist look the same.
        ("/dashboard/applications/inconnue/secret".to_owned(), vec![]),
        ("/dashboard/partners/inconnu/contacts".to_owned(), vec![]),
    ];
    for (path, mut fields) in posts {
        fields.push(("jeton", a_token.as_str()));
        let r = post(&s, &a.cert, &path, &[SAME_ORIGIN], &fields).await;
        assert_eq!(r.status, 404, "POST {path}: {}", html(&r));
        assert!(!html(&r).contains(&b.id));
    }
    // The admin has no self-service pages; B's records are unchanged.
    let admin = s.pki.admin();
    assert_eq!(get(&s, &admin, &b_app).await.0, 404);
    assert_eq!(get(&s, &admin, &b_contacts).await.0, 404);
    assert_eq!(secret_works(&s, &b, &b.secret).await, 200);
    assert_eq!(data_works(&s, &b.id, &b.cert).await, 200);
    let p = partner_json(&s, &b.partner).await;
    assert_eq!(p["contacts"]["technique"]["email"], "jd@example.fr");
    assert_eq!(certificates(&s, &b.id).await.len(), 1);
    // No certificate: the sign-in page, not B's data.
    let mut conn = s.connect(s.admin, None).await;
    let r = conn.send(Method::GET, &b_app, &[], None).await;
    assert_eq!(r.status, 401);
}
