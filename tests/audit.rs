//! The audit trail over real mTLS: one record per request with the
//! documented fields, admin actions with actor and before/after, no secret
//! or token in any record, streamed export, and the Prometheus exposition.
//! Tampering with the trail's files is `tests/trail.rs`.
// A test crate: its helpers may unwrap like its #[test] functions (a
// panic is a failed test). The lib and binary deny it (Cargo.toml).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use hyper::Method;
use opale_apim::domain::Environment::Sandbox;
use serde_json::{Value, json};
use support::{TestServer, correlation_id};

async fn trace_of(s: &TestServer, correlation: &str) -> Value {
    let r = s
        .admin_call(
            Method::GET,
            &format!("/admin/v1/trace?correlation_id={correlation}"),
            None,
        )
        .await;
    assert_eq!(r.status, 200);
    r.body[0].clone()
}

#[tokio::test]
async fn every_request_is_traced_with_its_facts() {
    let s = TestServer::start().await;
    let c = s.client(Sandbox).await;
    let t = s.token(Sandbox, &c.cert, &c.id).await;
    let mut conn = s.connect(s.sandbox, Some(&c.cert)).await;
    let bearer = format!("Bearer {t}");
    for (year, status) in [(2024, 200), (2019, 403)] {
        let cid = correlation_id();
        let h = [
            ("x-correlation-id", cid.as_str()),
            ("authorization", bearer.as_str()),
        ];
        let path = format!("/opale/v1/entreprises/732829320/declarations?annee={year}");
        assert_eq!(
            conn.send(Method::GET, &path, &h, None)
                .await
                .status
                .as_u16(),
            status
        );
        let r = trace_of(&s, &cid).await;
        assert_eq!(r["plane"], "sandbox");
        assert_eq!(r["client_id"], c.id.as_str());
        assert_eq!(r["partner_id"], c.partner.as_str());
        assert_eq!(r["thumbprint"], c.cert.thumbprint.as_str());
        assert_eq!(r["ip"], "127.0.0.1");
        assert_eq!(
            (r["method"].as_str(), r["path"].as_str()),
            (
                Some("GET"),
                Some("/opale/v1/entreprises/732829320/declarations")
            )
        );
        assert_eq!(
            (
                r["siren"].as_str(),
                r["dataset"].as_str(),
                r["year"].as_i64()
            ),
            (Some("732829320"), Some("declarations"), Some(year as i64))
        );
        assert_eq!(r["status"], status);
        assert!(r["latency_us"].as_u64().unwrap() > 0);
        assert!(r["seq"].as_u64().unwrap() > 1);
        if status == 200 {
            assert_eq!(
                (r["decision"].as_str(), &r["control"]),
                (Some("admitted"), &Value::Null)
            );
        } else {
            assert_eq!(
                (
                    r["decision"].as_str(),
                    r["control"].as_str(),
                    r["code"].as_str()
                ),
                (Some("denied"), Some("rights"), Some("910500"))
            );
        }
    }
    // A certificate failure that reached HTTP is traced too.
    let mut none = s.connect(s.sandbox, None).await;
    let cid = correlation_id();
    none.send(
        Method::GET,
        "/opale/v1/entreprises/732829320/declarations",
        &[("x-correlation-id", &cid)],
        None,
    )
    .await;
    let r = trace_of(&s, &cid).await;
    assert_eq!(
        (
            r["control"].as_str(),
            r["code"].as_str(),
            r["status"].as_u64()
        ),
        (Some("certificate"), Some("910100"), Some(401))
    );

    // Admin actions: actor, before and after.
    let app = format!("/admin/v1/applications/{}", c.id);
    s.admin_call(Method::PATCH, &app, Some(json!({"quota_per_minute": 7})))
        .await;
    let r = s
        .admin_call(
            Method::GET,
            "/admin/v1/trace?environment=admin&limit=5",
            None,
        )
        .await;
    let patch = r
        .body
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["method"] == "PATCH")
        .expect("PATCH traced")
        .clone();
    assert!(
        patch["actor"]["subject"]
            .as_str()
            .unwrap()
            .contains("opale-admin")
    );
    assert_eq!(
        patch["actor"]["thumbprint"],
        s.pki.admin().thumbprint.as_str()
    );
    assert_eq!(
        patch["admin"]["before"]["applications"][&c.id]["quota_per_minute"],
        50
    );
    assert_eq!(
        patch["admin"]["after"]["applications"][&c.id]["quota_per_minute"],
        7
    );
    // Filters and pagination.
    let page = s
        .admin_call(
            Method::GET,
            &format!("/admin/v1/trace?client_id={}&decision=denied&limit=1", c.id),
            None,
        )
        .await;
    assert_eq!(page.body.as_array().unwrap().len(), 1);
    let seq = page.body[0]["seq"].as_u64().unwrap();
    let next = s
        .admin_call(
            Method::GET,
            &format!("/admin/v1/trace?before={seq}&limit=1"),
            None,
        )
        .await;
    assert!(next.body[0]["seq"].as_u64().unwrap() < seq);
    let stats = s
        .admin_call(
            Method::GET,
            &format!("/admin/v1/stats?client_id={}", c.id),
            None,
        )
        .await;
    assert_eq!(stats.body["per_dataset"]["declarations"], 2);
    assert_eq!(stats.body["per_control"]["rights"], 1);
    assert!(stats.body["latency_us"]["p50"].as_u64().is_some());
    assert_eq!(s.verify_trail(None).await["ok"], true);
}

#[tokio::test]
async fn no_secret_token_or_key_ever_reaches_the_trace() {
    let s = TestServer::start().await;
    let c = s.client(Sandbox).await;
    // Every call that carries a secret or a token, each checked to have
    // done what it does: the trace is then known to hold their records.
    let basic = s
        .token_request(
            Sandbox,
            Some(&c.cert),
            Some((&c.id, &c.secret)),
            "grant_type=client_credentials",
        )
        .await;
    assert_eq!(basic.status, 200, "{:?}", basic.body);
    let t = basic.body["access_token"].as_str().unwrap().to_owned();
    let post = format!(
        "grant_type=client_credentials&client_id={}&client_secret={}",
        c.id, c.secret
    );
    let posted = s.token_request(Sandbox, Some(&c.cert), None, &post).await;
    assert_eq!(posted.status, 200, "{:?}", posted.body);
    let wrong = s
        .token_request(
            Sandbox,
            Some(&c.cert),
            Some((&c.id, "not-the-secret-123")),
            "grant_type=client_credentials",
        )
        .await;
    assert_eq!(wrong.status, 401);
    let path = "/opale/v1/entreprises/732829320/declarations";
    let p = format!("{path}?annee=2024");
    let data = s.data_call_with_token(Sandbox, &c.cert, &t, &p).await;
    assert_eq!(data.status, 200, "{:?}", data.body);
    // A token in the query string is refused (docs/contract.md §5: 900902).
    let in_query = s
        .data_call_with_token(Sandbox, &c.cert, &t, &format!("{p}&access_token={t}"))
        .await;
    assert_eq!(
        (in_query.status.as_u16(), in_query.code()),
        (401, "900902".into())
    );
    let secret_path = format!("/admin/v1/applications/{}/secret", c.id);
    let rotated = s.admin_call(Method::POST, &secret_path, None).await;
    assert_eq!(rotated.status, 200, "{:?}", rotated.body);
    let new_secret = rotated.body["client_secret"].as_str().unwrap().to_owned();
    let admin = s.pki.admin();
    let mut conn = s.connect(s.admin, Some(&admin)).await;
    let h = [("content-type", "application/x-www-form-urlencoded")];
    let form = || format!("token={t}").into_bytes();
    let introspect = "/admin/v1/tokens/introspect";
    let introspected = conn
        .send_raw(Method::POST, introspect, &h, form(), false)
        .await;
    assert_eq!(introspected.status, 200, "{:?}", introspected.body);
    assert_eq!(introspected.body["active"], true);
    let revoke = "/admin/v1/tokens/revoke";
    let revoked = conn.send_raw(Method::POST, revoke, &h, form(), false).await;
    assert_eq!(revoked.status, 200, "{:?}", revoked.body);

    let export = s
        .admin_call(Method::GET, "/admin/v1/trace/export", None)
        .await;
    assert_eq!(export.status, 200);
    let text = String::from_utf8_lossy(&export.raw).to_string();
    let records: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let traced = |method: &str, path: &str, status: u16| {
        records
            .iter()
            .filter(|r| r["method"] == method && r["path"] == path && r["status"] == status)
            .collect::<Vec<_>>()
    };
    for (method, path, status, count) in [
        ("POST", "/token", 200, 2),
        ("POST", "/token", 401, 1),
        ("GET", path, 200, 1),
        ("GET", path, 401, 1),
        ("POST", secret_path.as_str(), 200, 1),
        ("POST", introspect, 200, 1),
        ("POST", revoke, 200, 1),
    ] {
        let found = traced(method, path, status);
        assert_eq!(found.len(), count, "{method} {path} {status} in {text}");
    }
    assert_eq!(traced("GET", path, 401)[0]["code"], "900902");
    let signature = t.rsplit('.').next().unwrap();
    for (what, secret) in [
        ("client secret", c.secret.as_str()),
        ("rotated secret", new_secret.as_str()),
        ("wrong secret", "not-the-secret-123"),
        ("access token", t.as_str()),
        ("token signature", signature),
        ("client key", c.cert.key_pem.lines().nth(1).unwrap()),
    ] {
        assert!(!text.contains(secret), "{what} found in the trace");
    }
}

/// The export streams from its scan in chunks (far more bytes than one
/// chunk here): every record arrives once, newest first, and the same as
/// the (buffered) listing says; a filter matching nothing is an empty 200.
#[tokio::test]
async fn a_large_export_streams_every_record_in_order() {
    let s = TestServer::start().await;
    let admin = s.pki.admin();
    let mut conn = s.connect(s.admin, Some(&admin)).await;
    for _ in 0..700 {
        let r = conn
            .send(Method::GET, "/admin/v1/partners", &[], None)
            .await;
        assert_eq!(r.status, 200);
    }
    let export = conn
        .send(Method::GET, "/admin/v1/trace/export", &[], None)
        .await;
    assert_eq!(export.status, 200);
    assert_eq!(export.headers["content-type"], "application/x-ndjson");
    // Streamed: the length was not known when the headers left.
    assert!(export.headers.get("content-length").is_none());
    assert_eq!(export.headers["transfer-encoding"], "chunked");
    assert!(
        export.raw.len() > 4 * 64 * 1024,
        "{} bytes",
        export.raw.len()
    );
    let records: Vec<Value> = String::from_utf8(export.raw.to_vec())
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let seqs: Vec<u64> = records.iter().map(|r| r["seq"].as_u64().unwrap()).collect();
    assert_eq!(seqs, (1..=700).rev().collect::<Vec<u64>>());
    let listed = conn
        .send(
            Method::GET,
            "/admin/v1/trace?limit=1000&before=701",
            &[],
            None,
        )
        .await;
    assert_eq!(listed.body, Value::Array(records));
    let none = conn
        .send(
            Method::GET,
            "/admin/v1/trace/export?client_id=nobody",
            &[],
            None,
        )
        .await;
    assert_eq!((none.status.as_u16(), none.raw.len()), (200, 0));
}

#[tokio::test]
async fn metrics_are_valid_prometheus_text() {
    let s = TestServer::start().await;
    let c = s.client(Sandbox).await;
    let t = s.token(Sandbox, &c.cert, &c.id).await;
    s.data_call_with_token(
        Sandbox,
        &c.cert,
        &t,
        "/opale/v1/entreprises/732829320/declarations?annee=2024",
    )
    .await;
    s.data_call_with_token(
        Sandbox,
        &c.cert,
        &t,
        "/opale/v1/entreprises/732829320/declarations?annee=2019",
    )
    .await;
    let r = s.admin_call(Method::GET, "/metrics", None).await;
    assert_eq!(r.status, 200);
    assert!(
        r.headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain")
    );
    let text = String::from_utf8(r.raw.to_vec()).unwrap();
    let mut samples = std::collections::HashMap::new();
    for line in text.lines() {
        if line.starts_with('#') || line.is_empty() {
            assert!(
                line.is_empty()
                    || line.starts_with("# HELP ")
                    || line.starts_with("# TYPE ")
                    || line == "# EOF",
                "{line}"
            );
            continue;
        }
        let (name, value) = line
            .rsplit_once(' ')
            .unwrap_or_else(|| panic!("bad sample {line}"));
        let v: f64 = value
            .parse()
            .unwrap_or_else(|_| panic!("bad value in {line}"));
        samples.insert(name.to_owned(), v);
    }
    let get = |prefix: &str, needle: &str| {
        samples
            .iter()
            .find(|(k, _)| k.starts_with(prefix) && k.contains(needle))
            .map(|(_, v)| *v)
    };
    assert_eq!(
        get(
            "opale_requests_total{",
            "decision=\"admitted\",control=\"\",status=\"200\""
        ),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        get("opale_requests_total{", "control=\"rights\""),
        Some(1.0)
    );
    assert!(get("opale_request_duration_seconds_count", "sandbox").unwrap() >= 2.0);
    assert!(get("opale_trace_records_written", "").unwrap() >= 2.0);
    let expiry = get("opale_certificate_expiry_seconds", &c.cert.thumbprint).unwrap();
    assert!(
        expiry > 29.0 * 86400.0 && expiry < 31.0 * 86400.0,
        "{expiry}"
    );
}
