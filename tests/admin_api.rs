//! The admin API over real mTLS: who may call it, every bad-input case of
//! the foundation issue (400/404/409 naming the field, nothing written),
//! certificate issuance from CSRs, PATCH of applications.
// A test crate: its helpers may unwrap like its #[test] functions (a
// panic is a failed test). The lib and binary deny it (Cargo.toml).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use hyper::Method;
use opale_apim::domain::Environment::{Production, Sandbox};
use serde_json::{Value, json};
use support::pki::{TestPki, csr};
use support::{TestServer, app_body, fresh_siren};

#[tokio::test]
async fn admin_listener_requires_an_admin_certificate() {
    let s = TestServer::start().await;
    let mut none = s.connect(s.admin, None).await;
    let r = none
        .send(Method::GET, "/admin/v1/partners", &[], None)
        .await;
    assert_eq!(r.status, 401);

    let (_, partner_id) = s.provisioned(Sandbox).await;
    let mut partner = s.connect(s.admin, Some(&partner_id)).await;
    let r = partner
        .send(Method::GET, "/admin/v1/partners", &[], None)
        .await;
    assert_eq!(r.status, 403);

    // Signed by the root CA but never registered as an admin.
    let rogue = TestPki::untrusted("admin-lookalike");
    let mut c = s.connect(s.admin, Some(&rogue)).await;
    assert_eq!(
        c.send(Method::GET, "/admin/v1/partners", &[], None)
            .await
            .status,
        403
    );

    let r = s.admin_call(Method::GET, "/admin/v1/partners", None).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body.as_array().unwrap().len(), 1);
}

async fn count(s: &TestServer, path: &str) -> usize {
    let r = s.admin_call(Method::GET, path, None).await;
    assert_eq!(r.status, 200, "{path}: {:?}", r.body);
    r.body.as_array().unwrap().len()
}

/// Sends `body` to `path`, expects `status` naming `field`, and checks the
/// listing at `list` did not change.
async fn refused(s: &TestServer, path: &str, body: Value, status: u16, field: &str, list: &str) {
    let before = count(s, list).await;
    let r = s.admin_call(Method::POST, path, Some(body.clone())).await;
    assert_eq!(r.status.as_u16(), status, "{body}: {:?}", r.body);
    assert_eq!(r.field(), field, "{body}: {:?}", r.body);
    assert!(!r.body["error"]["message"].as_str().unwrap().is_empty());
    assert_eq!(count(s, list).await, before, "nothing written for {body}");
}

#[tokio::test]
async fn partner_bad_input_names_the_field_and_writes_nothing() {
    let s = TestServer::start().await;
    let p = "/admin/v1/partners";
    let ok = |siren: &str| {
        json!({"siren": siren, "name": "X",
        "contacts": {"technique": {"nom": "A", "email": "a@example.fr"}}})
    };
    refused(&s, p, ok("73282932"), 400, "siren", p).await;
    refused(&s, p, ok("7328293201"), 400, "siren", p).await;
    refused(&s, p, ok("732829321"), 400, "siren", p).await; // Luhn
    refused(&s, p, ok("73282932A"), 400, "siren", p).await;
    let mut bad_mail = ok(&fresh_siren());
    bad_mail["contacts"]["technique"]["email"] = json!("not-an-email");
    refused(&s, p, bad_mail, 400, "contacts.technique.email", p).await;
    refused(
        &s,
        p,
        json!({"siren": fresh_siren(), "name": "  "}),
        400,
        "name",
        p,
    )
    .await;
    refused(
        &s,
        p,
        json!({"siren": fresh_siren(), "name": "X", "color": 1}),
        400,
        "color",
        p,
    )
    .await;
    refused(&s, p, json!({"name": "X"}), 400, "siren", p).await;
    refused(
        &s,
        p,
        json!({"siren": 732829320, "name": "X"}),
        400,
        "siren",
        p,
    )
    .await;

    let r = s.admin_call(Method::POST, p, Some(ok("732829320"))).await;
    assert_eq!(r.status, 201);
    refused(&s, p, ok("732829320"), 409, "siren", p).await;
    let r = s
        .admin_call(Method::GET, "/admin/v1/partners/nope", None)
        .await;
    assert_eq!((r.status.as_u16(), r.field().as_str()), (404, "id"));
}

#[tokio::test]
async fn application_bad_input_names_the_field_and_writes_nothing() {
    let s = TestServer::start().await;
    let partner = s.partner().await;
    let a = "/admin/v1/applications";
    let with = |f: &dyn Fn(&mut Value)| {
        let mut b = app_body(&partner, Sandbox);
        f(&mut b);
        b
    };
    refused(
        &s,
        a,
        with(&|b| b["ip_allowlist"] = json!(["127.0.0.1/32", "10.0.0.0/33"])),
        400,
        "ip_allowlist[1]",
        a,
    )
    .await;
    refused(
        &s,
        a,
        with(&|b| b["ip_allowlist"] = json!(["localhost"])),
        400,
        "ip_allowlist[0]",
        a,
    )
    .await;
    refused(
        &s,
        a,
        with(&|b| b["grants"][0]["scope"] = json!("impots")),
        400,
        "grants[0].scope",
        a,
    )
    .await;
    refused(
        &s,
        a,
        with(&|b| b["grants"][0]["years"] = json!([])),
        400,
        "grants[0].years",
        a,
    )
    .await;
    refused(
        &s,
        a,
        with(&|b| b["grants"][0]["years"] = json!(["N-3..soon"])),
        400,
        "grants[0].years[0]",
        a,
    )
    .await;
    refused(
        &s,
        a,
        with(&|b| b["valid_from"] = json!("")),
        400,
        "valid_from",
        a,
    )
    .await;
    refused(
        &s,
        a,
        with(&|b| b["valid_until"] = json!("")),
        400,
        "valid_until",
        a,
    )
    .await;
    refused(
        &s,
        a,
        with(&|b| b["valid_until"] = json!("2024-12-31")),
        400,
        "valid_until",
        a,
    )
    .await;
    refused(
        &s,
        a,
        with(&|b| b["valid_from"] = json!("2025-13-01")),
        400,
        "valid_from",
        a,
    )
    .await;
    refused(
        &s,
        a,
        with(&|b| b["environment"] = json!("staging")),
        400,
        "environment",
        a,
    )
    .await;
    refused(
        &s,
        a,
        with(&|b| b["quota_per_minute"] = json!(0)),
        400,
        "quota_per_minute",
        a,
    )
    .await;
    refused(
        &s,
        a,
        with(&|b| b["partner_id"] = json!("unknown")),
        404,
        "partner_id",
        a,
    )
    .await;
    let mut no_ips = app_body(&partner, Sandbox);
    no_ips.as_object_mut().unwrap().remove("ip_allowlist");
    refused(&s, a, no_ips, 400, "ip_allowlist", a).await;

    let r = s
        .admin_call(Method::GET, "/admin/v1/applications/unknown", None)
        .await;
    assert_eq!((r.status.as_u16(), r.field().as_str()), (404, "client_id"));
    let r = s
        .admin_call(
            Method::PATCH,
            "/admin/v1/applications/unknown",
            Some(json!({"status": "suspended"})),
        )
        .await;
    assert_eq!(r.status, 404);
}

#[tokio::test]
async fn application_creation_returns_a_256_bit_secret_once() {
    let s = TestServer::start().await;
    let partner = s.partner().await;
    let (client_id, secret) = s.application(&partner, Production).await;
    let bytes =
        base64::Engine::decode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, &secret).unwrap();
    assert_eq!(bytes.len(), 32);
    let r = s
        .admin_call(
            Method::GET,
            &format!("/admin/v1/applications/{client_id}"),
            None,
        )
        .await;
    assert_eq!(r.status, 200);
    assert!(
        !r.raw.windows(secret.len()).any(|w| w == secret.as_bytes()),
        "secret shown again"
    );
    assert!(r.body.get("client_secret").is_none());
    assert_eq!(r.body["environment"], "production");
    assert_eq!(r.body["quota_per_minute"], 50);
}

#[tokio::test]
async fn patch_changes_status_ips_quota_grants_and_validity() {
    let s = TestServer::start().await;
    let partner = s.partner().await;
    let (client_id, _) = s.application(&partner, Sandbox).await;
    let path = format!("/admin/v1/applications/{client_id}");
    // Another last day than the application's (three years from today).
    let until = support::years_from_today(4);
    let patch = json!({
        "status": "suspended",
        "ip_allowlist": ["192.0.2.0/24", "2001:db8::/32"],
        "quota_per_minute": 120,
        "grants": [{"scope": "paiements", "years": [2021, 2022]}],
        "valid_until": until
    });
    let r = s.admin_call(Method::PATCH, &path, Some(patch)).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let r = s.admin_call(Method::GET, &path, None).await;
    assert_eq!(r.body["status"], "suspended");
    assert_eq!(
        r.body["ip_allowlist"],
        json!(["192.0.2.0/24", "2001:db8::/32"])
    );
    assert_eq!(r.body["quota_per_minute"], 120);
    assert_eq!(
        r.body["grants"],
        json!([{"scope": "paiements", "years": [2021, 2022]}])
    );
    assert_eq!(r.body["valid_until"], until.as_str());

    // All-or-nothing: one bad field leaves every other field as it was.
    let bad = json!({"quota_per_minute": 7, "ip_allowlist": ["nope"]});
    let r = s.admin_call(Method::PATCH, &path, Some(bad)).await;
    assert_eq!(
        (r.status.as_u16(), r.field().as_str()),
        (400, "ip_allowlist[0]")
    );
    let r = s.admin_call(Method::GET, &path, None).await;
    assert_eq!(r.body["quota_per_minute"], 120);
    let r = s
        .admin_call(
            Method::PATCH,
            &path,
            Some(json!({"valid_until": "2020-01-01"})),
        )
        .await;
    assert_eq!(
        (r.status.as_u16(), r.field().as_str()),
        (400, "valid_until")
    );

    let pp = format!("/admin/v1/partners/{partner}");
    let r = s
        .admin_call(Method::PATCH, &pp, Some(json!({"status": "suspended"})))
        .await;
    assert_eq!(r.body["status"], "suspended");
    let r = s
        .admin_call(Method::PATCH, &pp, Some(json!({"status": "paused"})))
        .await;
    assert_eq!((r.status.as_u16(), r.field().as_str()), (400, "status"));
}

#[tokio::test]
async fn certificate_from_csr_is_signed_by_the_environment_ca() {
    let s = TestServer::start().await;
    let partner = s.partner().await;
    let (client_id, _) = s.application(&partner, Production).await;
    let (csr_pem, key_pem) = csr("prod-app");
    let path = format!("/admin/v1/applications/{client_id}/certificates");
    let r = s
        .admin_call(Method::POST, &path, Some(json!({"csr": csr_pem})))
        .await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    let cert_pem = r.body["certificate"].as_str().unwrap().to_owned();
    let der = opale_apim::pki::parse_certificate_chain(&cert_pem).unwrap();
    let thumb = opale_apim::domain::Thumbprint::of_der(&der[0]);
    assert_eq!(r.body["thumbprint"], thumb.as_str());
    assert!(
        r.body["issuer"]
            .as_str()
            .unwrap()
            .contains("production partner CA")
    );

    // The issued certificate passes step 1 on production, not on sandbox.
    let id = support::pki::Identity {
        cert_pem,
        key_pem,
        thumbprint: thumb.to_string(),
        serial: Vec::new(),
    };
    let path_data = "/opale/v1/entreprises/732829320/declarations";
    assert_eq!(
        s.data_call(Production, Some(&id), path_data).await.code(),
        "900902"
    );
    assert_eq!(
        s.data_call(Sandbox, Some(&id), path_data).await.code(),
        "910101"
    );

    let r = s.admin_call(Method::GET, &path, None).await;
    assert_eq!(r.body.as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn certificate_bad_input_names_the_field_and_writes_nothing() {
    let s = TestServer::start().await;
    let partner = s.partner().await;
    let (client_id, _) = s.application(&partner, Sandbox).await;
    let path = format!("/admin/v1/applications/{client_id}/certificates");

    refused(
        &s,
        &path,
        json!({"certificate": "hello"}),
        400,
        "certificate",
        &path,
    )
    .await;
    let (csr_pem, _) = csr("x");
    refused(
        &s,
        &path,
        json!({"certificate": csr_pem}),
        400,
        "certificate",
        &path,
    )
    .await;
    refused(&s, &path, json!({"csr": "-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n"}), 400, "csr", &path).await;
    // A CSR whose signature does not verify: flip a byte of the signature.
    let der = pem::parse(&csr_pem).unwrap().into_contents();
    let mut tampered = der.clone();
    let n = tampered.len();
    tampered[n - 5] ^= 0x40;
    let bad = pem::encode(&pem::Pem::new("CERTIFICATE REQUEST", tampered));
    let before = count(&s, &path).await;
    let r = s
        .admin_call(Method::POST, &path, Some(json!({"csr": bad})))
        .await;
    assert_eq!(
        (r.status.as_u16(), r.field().as_str()),
        (400, "csr"),
        "{:?}",
        r.body
    );
    assert!(
        r.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("does not verify")
    );
    assert_eq!(count(&s, &path).await, before);

    let rogue = TestPki::untrusted("rogue");
    refused(
        &s,
        &path,
        json!({"certificate": rogue.cert_pem}),
        400,
        "certificate",
        &path,
    )
    .await;
    let other_env = s.pki.partner(Production, "prod");
    refused(
        &s,
        &path,
        json!({"certificate": other_env.cert_pem}),
        400,
        "certificate",
        &path,
    )
    .await;
    refused(&s, &path, json!({}), 400, "body", &path).await;
    refused(
        &s,
        &path,
        json!({"csr": csr_pem, "certificate": other_env.cert_pem}),
        400,
        "body",
        &path,
    )
    .await;

    let good = s.pki.partner(Sandbox, "good");
    assert_eq!(s.register(&client_id, &good).await.status, 201);
    refused(
        &s,
        &path,
        json!({"certificate": good.cert_pem}),
        409,
        "certificate",
        &path,
    )
    .await;
    // Same certificate on another application: still a duplicate.
    let (other_app, _) = s.application(&partner, Sandbox).await;
    let r = s.register(&other_app, &good).await;
    assert_eq!(
        (r.status.as_u16(), r.field().as_str()),
        (409, "certificate")
    );

    let r = s
        .admin_call(Method::DELETE, &format!("{path}/not-a-thumbprint"), None)
        .await;
    assert_eq!((r.status.as_u16(), r.field().as_str()), (404, "thumbprint"));
    let r = s
        .admin_call(
            Method::DELETE,
            &format!(
                "/admin/v1/applications/nope/certificates/{}",
                good.thumbprint
            ),
            None,
        )
        .await;
    assert_eq!((r.status.as_u16(), r.field().as_str()), (404, "client_id"));
}

#[tokio::test]
async fn malformed_bodies_are_refused_cleanly() {
    let s = TestServer::start().await;
    let admin = s.pki.admin();
    let mut c = s.connect(s.admin, Some(&admin)).await;
    let r = c
        .send_raw(
            Method::POST,
            "/admin/v1/partners",
            &[],
            b"{not json".to_vec(),
            true,
        )
        .await;
    assert_eq!(r.status, 400);
    let r = c
        .send_raw(
            Method::POST,
            "/admin/v1/partners",
            &[],
            vec![0xff, 0xfe],
            true,
        )
        .await;
    assert_eq!(r.status, 400);
    let r = c
        .send_raw(
            Method::POST,
            "/admin/v1/partners",
            &[("content-type", "text/plain")],
            b"{}".to_vec(),
            false,
        )
        .await;
    assert_eq!(r.status, 415);
    let big = vec![b' '; 70 * 1024];
    let r = c
        .send_raw(Method::POST, "/admin/v1/partners", &[], big, true)
        .await;
    assert_eq!(r.status, 413);
    let r = s.admin_call(Method::GET, "/admin/v1/nothing", None).await;
    assert_eq!(r.status, 404);
    assert_eq!(count(&s, "/admin/v1/partners").await, 0);
}

#[tokio::test]
async fn another_admin_certificate_can_be_registered() {
    let s = TestServer::start().await;
    // A second admin certificate issued by the root CA.
    let root_key =
        rcgen::KeyPair::from_pem(&std::fs::read_to_string(s.pki.files.ca_key()).unwrap()).unwrap();
    let root = rcgen::Issuer::from_ca_cert_pem(
        &std::fs::read_to_string(s.pki.files.ca_pem()).unwrap(),
        root_key,
    )
    .unwrap();
    let key = rcgen::KeyPair::generate().unwrap();
    let mut p = rcgen::CertificateParams::default();
    p.distinguished_name
        .push(rcgen::DnType::CommonName, "second-admin");
    p.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ClientAuth];
    let cert = p.signed_by(&key, &root).unwrap();
    let second = support::pki::Identity {
        cert_pem: cert.pem(),
        key_pem: key.serialize_pem(),
        thumbprint: String::new(),
        serial: Vec::new(),
    };
    let mut c = s.connect(s.admin, Some(&second)).await;
    assert_eq!(
        c.send(Method::GET, "/admin/v1/partners", &[], None)
            .await
            .status,
        403
    );
    let r = s
        .admin_call(
            Method::POST,
            "/admin/v1/admins",
            Some(json!({"certificate": second.cert_pem})),
        )
        .await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    let mut c = s.connect(s.admin, Some(&second)).await;
    assert_eq!(
        c.send(Method::GET, "/admin/v1/partners", &[], None)
            .await
            .status,
        200
    );
    // A partner certificate cannot become an admin.
    let partner_cert = s.pki.partner(Sandbox, "p");
    let r = s
        .admin_call(
            Method::POST,
            "/admin/v1/admins",
            Some(json!({"certificate": partner_cert.cert_pem})),
        )
        .await;
    assert_eq!(
        (r.status.as_u16(), r.field().as_str()),
        (400, "certificate")
    );
}
