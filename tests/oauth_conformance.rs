//! Authorization server conformance over real mTLS: RFC 6749 §4.4/§5.2,
//! RFC 8705 (tls_client_auth, certificate-bound tokens, §6.3 cascade),
//! RFC 9068 token format, RFC 8414 metadata, RFC 7662 introspection,
//! RFC 7009 revocation, cross-environment refusal, forged tokens.
// A test crate: its helpers may unwrap like its #[test] functions (a
// panic is a failed test). The lib and binary deny it (Cargo.toml).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hyper::Method;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use opale_apim::domain::Environment::{self, Production, Sandbox};
use serde_json::{Value, json};
use support::{Client, Reply, TestServer, app_body};

const PATH: &str = "/opale/v1/entreprises/732829320/declarations?annee=2024";
const CC: &str = "grant_type=client_credentials";

async fn client(s: &TestServer, env: Environment) -> Client {
    s.client(env).await
}

fn claims_of(token: &str) -> Value {
    let part = token.split('.').nth(1).unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part).unwrap()).unwrap()
}

fn header_of(token: &str) -> Value {
    let part = token.split('.').next().unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part).unwrap()).unwrap()
}

fn assert_error(r: &Reply, status: u16, error: &str) {
    assert_eq!(r.status.as_u16(), status, "{:?}", r.body);
    assert_eq!(r.body["error"], error, "{:?}", r.body);
    assert!(r.body["error_description"].is_string());
    assert_eq!(r.headers["cache-control"], "no-store");
}

#[tokio::test]
async fn tls_client_auth_issues_a_certificate_bound_rfc9068_token() {
    let s = TestServer::start().await;
    let c = client(&s, Sandbox).await;
    let form = format!("{CC}&client_id={}", c.id);
    let r = s.token_request(Sandbox, Some(&c.cert), None, &form).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(r.headers["cache-control"], "no-store");
    assert!(
        r.headers.contains_key("x-correlation-id"),
        "every response carries one"
    );
    assert_eq!(r.body["token_type"], "Bearer");
    assert_eq!(r.body["expires_in"], 3600);
    assert!(r.body.get("refresh_token").is_none());
    let token = r.body["access_token"].as_str().unwrap();

    let h = header_of(token);
    assert_eq!(
        (h["typ"].as_str(), h["alg"].as_str()),
        (Some("at+jwt"), Some("EdDSA"))
    );
    let claims = claims_of(token);
    assert_eq!(claims["client_id"], c.id.as_str());
    assert_eq!(claims["sub"], c.id.as_str());
    assert_eq!(claims["aud"], "urn:opale:api:sandbox");
    assert_eq!(claims["cnf"]["x5t#S256"], c.cert.thumbprint.as_str());
    assert_eq!(
        claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(),
        3600
    );
    assert!(claims["jti"].as_str().unwrap().len() >= 32);
    let mut scopes: Vec<&str> = claims["scope"].as_str().unwrap().split(' ').collect();
    scopes.sort();
    assert_eq!(
        scopes,
        ["declarations", "paiements"],
        "default = all granted scopes"
    );

    // The signature verifies with the key published at jwks_uri.
    let mut conn = s.connect(s.sandbox, None).await;
    let meta = conn
        .send(
            Method::GET,
            "/.well-known/oauth-authorization-server",
            &[],
            None,
        )
        .await;
    assert_eq!(claims["iss"], meta.body["issuer"]);
    let jwks_path = meta.body["jwks_uri"]
        .as_str()
        .unwrap()
        .split_once("//")
        .unwrap()
        .1;
    let jwks_path = &jwks_path[jwks_path.find('/').unwrap()..];
    let jwks = conn.send(Method::GET, jwks_path, &[], None).await.body;
    let key = &jwks["keys"][0];
    assert_eq!(key["kid"], h["kid"]);
    let dk = DecodingKey::from_ed_components(key["x"].as_str().unwrap()).unwrap();
    let mut v = Validation::new(Algorithm::EdDSA);
    v.set_audience(&["urn:opale:api:sandbox"]);
    jsonwebtoken::decode::<Value>(token, &dk, &v).unwrap();

    // A scope subset is honoured.
    let r = s
        .token_request(
            Sandbox,
            Some(&c.cert),
            None,
            &format!("{form}&scope=paiements"),
        )
        .await;
    assert_eq!(
        claims_of(r.body["access_token"].as_str().unwrap())["scope"],
        "paiements"
    );
}

#[tokio::test]
async fn client_secret_basic_and_post_work_with_the_registered_certificate_only() {
    let s = TestServer::start().await;
    let c = client(&s, Sandbox).await;
    let other = client(&s, Sandbox).await;
    let r = s
        .token_request(Sandbox, Some(&c.cert), Some((&c.id, &c.secret)), CC)
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let post = format!("{CC}&client_id={}&client_secret={}", c.id, c.secret);
    let r = s.token_request(Sandbox, Some(&c.cert), None, &post).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(
        claims_of(r.body["access_token"].as_str().unwrap())["cnf"]["x5t#S256"],
        c.cert.thumbprint.as_str()
    );

    // Right secret, but the certificate on the connection is another client's.
    let r = s
        .token_request(Sandbox, Some(&other.cert), Some((&c.id, &c.secret)), CC)
        .await;
    assert_error(&r, 401, "invalid_client");
    assert!(
        r.headers["www-authenticate"]
            .to_str()
            .unwrap()
            .starts_with("Basic")
    );
    let r = s
        .token_request(Sandbox, Some(&other.cert), None, &post)
        .await;
    assert_error(&r, 401, "invalid_client");
    assert!(
        !r.headers.contains_key("www-authenticate"),
        "no Basic used, no challenge"
    );
    // tls_client_auth naming another client.
    let r = s
        .token_request(
            Sandbox,
            Some(&other.cert),
            None,
            &format!("{CC}&client_id={}", c.id),
        )
        .await;
    assert_error(&r, 401, "invalid_client");
    // No certificate at all.
    let r = s
        .token_request(Sandbox, None, Some((&c.id, &c.secret)), CC)
        .await;
    assert_error(&r, 401, "invalid_client");
}

#[tokio::test]
async fn unknown_client_and_wrong_secret_get_the_same_answer() {
    let s = TestServer::start().await;
    let c = client(&s, Sandbox).await;
    let wrong = s
        .token_request(Sandbox, Some(&c.cert), Some((&c.id, "wrong")), CC)
        .await;
    let unknown = s
        .token_request(
            Sandbox,
            Some(&c.cert),
            Some(("00000000-0000-4000-8000-000000000000", &c.secret)),
            CC,
        )
        .await;
    assert_error(&wrong, 401, "invalid_client");
    assert_error(&unknown, 401, "invalid_client");
    assert_eq!(wrong.body, unknown.body);
    assert_eq!(
        wrong.headers["www-authenticate"],
        unknown.headers["www-authenticate"]
    );
}

#[tokio::test]
async fn invalid_request_cases() {
    let s = TestServer::start().await;
    let c = client(&s, Sandbox).await;
    let tls = format!("client_id={}", c.id);
    let cases: Vec<(&str, String)> = vec![
        ("missing grant_type", tls.clone()),
        (
            "repeated parameter",
            format!("{CC}&{tls}&scope=paiements&scope=declarations"),
        ),
        ("repeated grant_type", format!("{CC}&{CC}&{tls}")),
        (
            "two auth methods",
            format!("{CC}&{tls}&client_secret={}", c.secret),
        ),
        (
            "secret without id",
            format!("{CC}&client_secret={}", c.secret),
        ),
    ];
    for (what, form) in cases {
        let basic = (what == "two auth methods").then_some((c.id.as_str(), c.secret.as_str()));
        let r = s.token_request(Sandbox, Some(&c.cert), basic, &form).await;
        assert_error(&r, 400, "invalid_request");
        let _ = what;
    }
    let mut conn = s.connect(s.sandbox, Some(&c.cert)).await;
    let form_ct = ("content-type", "application/x-www-form-urlencoded");
    let body = format!("{CC}&{tls}");
    // Wrong content type.
    let r = conn
        .send_raw(
            Method::POST,
            "/token",
            &[("content-type", "application/json")],
            br#"{"grant_type":"client_credentials"}"#.to_vec(),
            false,
        )
        .await;
    assert_error(&r, 400, "invalid_request");
    // Not UTF-8.
    let r = conn
        .send_raw(
            Method::POST,
            "/token",
            &[form_ct],
            b"grant_type=%FF%FE".to_vec(),
            false,
        )
        .await;
    assert_error(&r, 400, "invalid_request");
    // Over 8 KiB.
    let big = format!("{body}&pad={}", "a".repeat(9000));
    let mut conn = s.connect(s.sandbox, Some(&c.cert)).await;
    let r = conn
        .send_raw(Method::POST, "/token", &[form_ct], big.into_bytes(), false)
        .await;
    assert_error(&r, 400, "invalid_request");
    // Parameters in the URL, GET.
    let mut conn = s.connect(s.sandbox, Some(&c.cert)).await;
    let r = conn
        .send_raw(
            Method::POST,
            &format!("/token?{body}"),
            &[form_ct],
            Vec::new(),
            false,
        )
        .await;
    assert_error(&r, 400, "invalid_request");
    let r = conn
        .send_raw(Method::GET, "/token", &[], Vec::new(), false)
        .await;
    assert_error(&r, 400, "invalid_request");
}

#[tokio::test]
async fn grant_type_scope_and_unauthorized_client_errors() {
    let s = TestServer::start().await;
    let c = client(&s, Sandbox).await;
    let base = format!("client_id={}", c.id);
    let r = s
        .token_request(
            Sandbox,
            Some(&c.cert),
            None,
            &format!("grant_type=password&{base}"),
        )
        .await;
    assert_error(&r, 400, "unsupported_grant_type");
    for scope in ["creances", "impots", "declarations+creances"] {
        let r = s
            .token_request(
                Sandbox,
                Some(&c.cert),
                None,
                &format!("{CC}&{base}&scope={scope}"),
            )
            .await;
        assert_error(&r, 400, "invalid_scope");
    }
    // Suspended application, then suspended partner, then outside validity.
    let app = format!("/admin/v1/applications/{}", c.id);
    let partner = format!("/admin/v1/partners/{}", c.partner);
    let form = format!("{CC}&{base}");
    s.admin_call(Method::PATCH, &app, Some(json!({"status": "suspended"})))
        .await;
    assert_error(
        &s.token_request(Sandbox, Some(&c.cert), None, &form).await,
        400,
        "unauthorized_client",
    );
    s.admin_call(Method::PATCH, &app, Some(json!({"status": "active"})))
        .await;
    s.admin_call(
        Method::PATCH,
        &partner,
        Some(json!({"status": "suspended"})),
    )
    .await;
    assert_error(
        &s.token_request(Sandbox, Some(&c.cert), None, &form).await,
        400,
        "unauthorized_client",
    );
    s.admin_call(Method::PATCH, &partner, Some(json!({"status": "active"})))
        .await;
    assert_eq!(
        s.token_request(Sandbox, Some(&c.cert), None, &form)
            .await
            .status,
        200
    );

    let mut old = app_body(&c.partner, Sandbox);
    old["valid_from"] = json!("2020-01-01");
    old["valid_until"] = json!("2021-12-31");
    let r = s
        .admin_call(Method::POST, "/admin/v1/applications", Some(old))
        .await;
    let old_id = r.body["client_id"].as_str().unwrap().to_owned();
    let old_cert = s.pki.partner(Sandbox, "old");
    s.register(&old_id, &old_cert).await;
    let r = s
        .token_request(
            Sandbox,
            Some(&old_cert),
            None,
            &format!("{CC}&client_id={old_id}"),
        )
        .await;
    assert_error(&r, 400, "unauthorized_client");
}

#[tokio::test]
async fn metadata_document() {
    let s = TestServer::start().await;
    for env in [Sandbox, Production] {
        let mut conn = s.connect(s.env_addr(env), None).await;
        let m = conn
            .send(
                Method::GET,
                "/.well-known/oauth-authorization-server",
                &[],
                None,
            )
            .await;
        assert_eq!(m.status, 200);
        let issuer = m.body["issuer"].as_str().unwrap();
        assert!(issuer.starts_with("https://"));
        assert_eq!(m.body["token_endpoint"], format!("{issuer}/token"));
        assert_eq!(m.body["tls_client_certificate_bound_access_tokens"], true);
        assert_eq!(
            m.body["grant_types_supported"],
            json!(["client_credentials"])
        );
        let methods = m.body["token_endpoint_auth_methods_supported"]
            .as_array()
            .unwrap();
        for method in [
            "tls_client_auth",
            "client_secret_basic",
            "client_secret_post",
        ] {
            assert!(methods.contains(&json!(method)), "{method}");
        }
        assert!(
            m.body["scopes_supported"]
                .as_array()
                .unwrap()
                .contains(&json!("comptes_bancaires"))
        );
        let jwks = conn
            .send(Method::GET, "/.well-known/jwks.json", &[], None)
            .await;
        assert_eq!(jwks.body["keys"][0]["crv"], "Ed25519");
    }
}

async fn introspect(s: &TestServer, token: &str) -> Value {
    let admin = s.pki.admin();
    let mut conn = s.connect(s.admin, Some(&admin)).await;
    let body = format!(
        "token={}",
        url::form_urlencoded::byte_serialize(token.as_bytes()).collect::<String>()
    );
    let h = [("content-type", "application/x-www-form-urlencoded")];
    let r = conn
        .send_raw(
            Method::POST,
            "/admin/v1/tokens/introspect",
            &h,
            body.into_bytes(),
            false,
        )
        .await;
    assert_eq!(r.status, 200);
    r.body
}

async fn revoke(s: &TestServer, token: &str) -> Reply {
    let admin = s.pki.admin();
    let mut conn = s.connect(s.admin, Some(&admin)).await;
    let body = format!("token={token}&token_type_hint=access_token");
    let h = [("content-type", "application/x-www-form-urlencoded")];
    conn.send_raw(
        Method::POST,
        "/admin/v1/tokens/revoke",
        &h,
        body.into_bytes(),
        false,
    )
    .await
}

#[tokio::test]
async fn introspection_and_revocation() {
    let s = TestServer::start().await;
    let c = client(&s, Sandbox).await;
    let token = s.token(Sandbox, &c.cert, &c.id).await;
    let i = introspect(&s, &token).await;
    assert_eq!(i["active"], true);
    assert_eq!(i["client_id"], c.id.as_str());
    assert_eq!(i["cnf"]["x5t#S256"], c.cert.thumbprint.as_str());
    assert!(i["exp"].as_i64().is_some() && i["scope"].is_string());
    for bad in ["garbage", "a.b.c", &format!("{token}x")] {
        assert_eq!(introspect(&s, bad).await, json!({"active": false}), "{bad}");
    }
    // The token passes step 3 before, is refused on the next request after.
    let r = s.data_call_with_token(Sandbox, &c.cert, &token, PATH).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(revoke(&s, &token).await.status, 200);
    assert_eq!(introspect(&s, &token).await, json!({"active": false}));
    let r = s.data_call_with_token(Sandbox, &c.cert, &token, PATH).await;
    assert_eq!((r.status.as_u16(), r.code().as_str()), (401, "900901"));
    assert!(
        r.headers["www-authenticate"]
            .to_str()
            .unwrap()
            .contains("invalid_token")
    );
    // Unknown tokens: 200 all the same; a missing parameter is invalid_request.
    assert_eq!(revoke(&s, "not-a-token").await.status, 200);
    let admin = s.pki.admin();
    let mut conn = s.connect(s.admin, Some(&admin)).await;
    let h = [("content-type", "application/x-www-form-urlencoded")];
    let r = conn
        .send_raw(
            Method::POST,
            "/admin/v1/tokens/revoke",
            &h,
            Vec::new(),
            false,
        )
        .await;
    assert_eq!(
        (r.status.as_u16(), r.body["error"].as_str()),
        (400, Some("invalid_request"))
    );

    // Revocation survives a restart.
    let s = s.restart().await;
    assert_eq!(introspect(&s, &token).await, json!({"active": false}));
}

#[tokio::test]
async fn revoking_or_rotating_the_certificate_revokes_its_tokens() {
    let s = TestServer::start().await;
    let c = client(&s, Sandbox).await;
    let token = s.token(Sandbox, &c.cert, &c.id).await;
    // Rotation: a new certificate is registered, the old one revoked.
    let next = s.pki.partner(Sandbox, "next");
    assert_eq!(s.register(&c.id, &next).await.status, 201);
    let next_token = s.token(Sandbox, &next, &c.id).await;
    let del = format!(
        "/admin/v1/applications/{}/certificates/{}",
        c.id, c.cert.thumbprint
    );
    assert_eq!(s.admin_call(Method::DELETE, &del, None).await.status, 204);
    assert_eq!(introspect(&s, &token).await["active"], false);
    assert_eq!(introspect(&s, &next_token).await["active"], true);
}

#[tokio::test]
async fn secret_rotation_invalidates_the_old_secret() {
    let s = TestServer::start().await;
    let c = client(&s, Sandbox).await;
    let r = s
        .admin_call(
            Method::POST,
            &format!("/admin/v1/applications/{}/secret", c.id),
            None,
        )
        .await;
    assert_eq!(r.status, 200);
    let new_secret = r.body["client_secret"].as_str().unwrap();
    assert_ne!(new_secret, c.secret);
    let old = s
        .token_request(Sandbox, Some(&c.cert), Some((&c.id, &c.secret)), CC)
        .await;
    assert_error(&old, 401, "invalid_client");
    let new = s
        .token_request(Sandbox, Some(&c.cert), Some((&c.id, new_secret)), CC)
        .await;
    assert_eq!(new.status, 200);
}

#[tokio::test]
async fn environments_do_not_accept_each_others_clients_or_tokens() {
    let s = TestServer::start().await;
    let sb = client(&s, Sandbox).await;
    let prod = client(&s, Production).await;
    // A production client cannot get a sandbox token (its certificate is
    // not trusted there, and its client id is not a sandbox client).
    let r = s
        .token_request(
            Sandbox,
            Some(&prod.cert),
            Some((&prod.id, &prod.secret)),
            CC,
        )
        .await;
    assert_error(&r, 401, "invalid_client");
    let r = s
        .token_request(Sandbox, Some(&sb.cert), Some((&prod.id, &prod.secret)), CC)
        .await;
    assert_error(&r, 401, "invalid_client");
    // A sandbox token is refused on production, with a production certificate.
    let sandbox_token = s.token(Sandbox, &sb.cert, &sb.id).await;
    let r = s
        .data_call_with_token(Production, &prod.cert, &sandbox_token, PATH)
        .await;
    assert_eq!((r.status.as_u16(), r.code().as_str()), (401, "900901"));
    let prod_token = s.token(Production, &prod.cert, &prod.id).await;
    let r = s
        .data_call_with_token(Production, &prod.cert, &prod_token, PATH)
        .await;
    // Past the chain: no upstream runs in this test, so 502 from the proxy.
    assert_eq!((r.status.as_u16(), r.code().as_str()), (502, "910602"));
}

/// `token` with its payload replaced by `claims`, still valid base64url,
/// and its header and signature kept: the signature no longer matches.
fn repayload(token: &str, claims: &Value) -> String {
    let mut parts = token.split('.');
    let (header, _, signature) = (parts.next().unwrap(), parts.next(), parts.next().unwrap());
    let payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(claims).unwrap());
    format!("{header}.{payload}.{signature}")
}

/// Signs `claims` with `header` using an environment's real key (named
/// by its kid when `header` names none).
fn forge(s: &TestServer, env: Environment, header: &Header, claims: &Value) -> String {
    let pair = rcgen::KeyPair::from_pem(&s.signing_key_pem(env)).unwrap();
    let key = EncodingKey::from_ed_der(&pair.serialize_der());
    let mut header = header.clone();
    header.kid.get_or_insert_with(|| s.signing_kid(env));
    jsonwebtoken::encode(&header, claims, &key).unwrap()
}

#[tokio::test]
async fn forged_and_stale_tokens_are_refused_with_900901() {
    let s = TestServer::start().await;
    let c = client(&s, Sandbox).await;
    let good = s.token(Sandbox, &c.cert, &c.id).await;
    let claims = claims_of(&good);
    let now = claims["iat"].as_i64().unwrap();
    let mut at = Header::new(Algorithm::EdDSA);
    at.typ = Some("at+jwt".into());
    let with = |k: &str, v: Value| {
        let mut c = claims.clone();
        c[k] = v;
        c
    };
    // Sanity: the forging path itself yields an accepted token.
    let r = s
        .data_call_with_token(
            Sandbox,
            &c.cert,
            &forge(&s, Sandbox, &at, &with("jti", json!("x1"))),
            PATH,
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);

    let another_key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ED25519).unwrap();
    let mut jwt_typ = at.clone();
    jwt_typ.typ = Some("JWT".into());
    let none = format!(
        "{}.{}.",
        URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"at+jwt"}"#),
        URL_SAFE_NO_PAD.encode(serde_json::to_vec(&claims).unwrap())
    );
    let cases = vec![
        ("alg none", none),
        (
            "other environment's key",
            forge(&s, Production, &at, &claims),
        ),
        ("typ JWT", forge(&s, Sandbox, &jwt_typ, &claims)),
        (
            "expired",
            forge(&s, Sandbox, &at, &with("exp", json!(now - 10))),
        ),
        (
            "iat in the future",
            forge(&s, Sandbox, &at, &with("iat", json!(now + 120))),
        ),
        (
            "nbf in the future",
            forge(&s, Sandbox, &at, &with("nbf", json!(now + 120))),
        ),
        (
            "other issuer",
            forge(
                &s,
                Sandbox,
                &at,
                &with("iss", json!("https://evil.example")),
            ),
        ),
        ("tampered", format!("{}x", &good[..good.len() - 1])),
        (
            "payload changed, signature kept",
            repayload(&good, &with("jti", json!("x2"))),
        ),
        (
            "same header, another key",
            jsonwebtoken::encode(
                &jsonwebtoken::decode_header(&good).unwrap(),
                &claims,
                &EncodingKey::from_ed_der(&another_key.serialize_der()),
            )
            .unwrap(),
        ),
    ];
    for (what, token) in cases {
        let r = s.data_call_with_token(Sandbox, &c.cert, &token, PATH).await;
        assert_eq!(
            (r.status.as_u16(), r.code().as_str()),
            (401, "900901"),
            "{what}: {:?}",
            r.body
        );
        assert!(
            r.headers["www-authenticate"]
                .to_str()
                .unwrap()
                .contains("invalid_token"),
            "{what}"
        );
        assert_eq!(
            introspect(&s, &token).await,
            json!({"active": false}),
            "{what}"
        );
    }
    // Within 60 s of skew is fine.
    let r = s
        .data_call_with_token(
            Sandbox,
            &c.cert,
            &forge(&s, Sandbox, &at, &with("iat", json!(now + 30))),
            PATH,
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    // Missing token, and a token in the query string.
    let r = s.data_call(Sandbox, Some(&c.cert), PATH).await;
    assert_eq!((r.status.as_u16(), r.code().as_str()), (401, "900902"));
    let r = s
        .data_call(
            Sandbox,
            Some(&c.cert),
            &format!("{PATH}&access_token={good}"),
        )
        .await;
    assert_eq!(r.code(), "900902");
}

#[tokio::test]
async fn a_real_oauth2_client_library_obtains_and_uses_a_token() {
    let s = TestServer::start().await;
    let c = client(&s, Sandbox).await;
    let dir = s.dir();
    let (cert, key) = (dir.join("client.pem"), dir.join("client.key"));
    std::fs::write(&cert, &c.cert.cert_pem).unwrap();
    std::fs::write(&key, &c.cert.key_pem).unwrap();
    let base = format!("https://localhost:{}", s.sandbox.port());
    for method in ["client_secret_basic", "tls_client_auth"] {
        let mut cmd = std::process::Command::new("python3");
        cmd.arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/clients/oauthlib_client.py"
        ))
        .args([method, &base])
        .arg(s.pki.files.ca_pem())
        .args([&cert, &key])
        .args([&c.id, &c.secret]);
        // Blocking pool: the server runs on this test's runtime.
        let out = tokio::task::spawn_blocking(move || cmd.output())
            .await
            .unwrap()
            .expect("python3 is installed (with requests-oauthlib: scripts/test.sh installs it)");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.success(),
            "{method}: {stderr}\n(scripts/test.sh installs requests-oauthlib)"
        );
        let v: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(v["token"]["token_type"], "Bearer", "{method}");
        let claims = claims_of(v["token"]["access_token"].as_str().unwrap());
        assert_eq!(claims["cnf"]["x5t#S256"], c.cert.thumbprint.as_str());
        // The token passes the token step of the data path.
        assert_eq!(v["status"], 200, "{method}: {v}");
        assert_eq!(v["body"]["siren"], "732829320");
    }
}
