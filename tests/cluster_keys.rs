//! Token signing keys of a cluster (docs/contract.md §10, docs/cluster.md
//! "Signing keys"): two nodes on one real PostgreSQL, sharing nothing but
//! the configuration and `certs_dir`, each with its own key per
//! environment. A token from either node opens data calls on both; a
//! revocation on one reaches the other within 1 s whichever issued the
//! token; a rotation on one node keeps every token working and every JWKS
//! lists the keys; a retired key stops verifying and leaves the JWKS. And
//! the same on one embedded node, through the command line.
// A test crate: its helpers may unwrap like its #[test] functions.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hyper::Method;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use opale_apim::domain::Environment::{self, Sandbox};
use serde_json::{Value, json};
use std::time::Duration;
use support::cluster::{eventually, first_node, known_on, peer_node, two_nodes};
use support::postgres::Postgres;
use support::{Client, Reply, TestServer};

const PATH: &str = "/opale/v1/entreprises/732829320/declarations?annee=2024";
const BIN: &str = env!("CARGO_BIN_EXE_opale-apim");
/// The bound on propagation these tests hold the cluster to.
const WITHIN: Duration = Duration::from_secs(1);

async fn data(s: &TestServer, c: &Client, token: &str) -> Reply {
    s.data_call_with_token(Sandbox, &c.cert, token, PATH).await
}

/// Whether `token` opens a data call on `s` within [`WITHIN`].
async fn opens(s: &TestServer, c: &Client, token: &str) -> bool {
    eventually(WITHIN, || async { data(s, c, token).await.status == 200 }).await
}

/// The `kid` of a token's header.
fn kid_of(token: &str) -> String {
    jsonwebtoken::decode_header(token).unwrap().kid.unwrap()
}

fn claims_of(token: &str) -> Value {
    let part = token.split('.').nth(1).unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part).unwrap()).unwrap()
}

/// The kids of `env`'s JWKS on `s`, checking each key is an RFC 8037 JWK.
async fn jwks_kids(s: &TestServer, env: Environment) -> Vec<String> {
    let mut conn = s.connect(s.env_addr(env), None).await;
    let r = conn
        .send(Method::GET, "/.well-known/jwks.json", &[], None)
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let keys = r.body["keys"].as_array().unwrap().clone();
    for k in &keys {
        assert_eq!(
            (k["kty"].as_str(), k["crv"].as_str()),
            (Some("OKP"), Some("Ed25519"))
        );
        assert_eq!(
            (k["alg"].as_str(), k["use"].as_str()),
            (Some("EdDSA"), Some("sig"))
        );
    }
    keys.iter()
        .map(|k| k["kid"].as_str().unwrap().to_owned())
        .collect()
}

/// Whether `env`'s JWKS on `s` lists every kid of `kids` within [`WITHIN`].
async fn jwks_lists(s: &TestServer, env: Environment, kids: &[&str]) -> bool {
    eventually(WITHIN, || async {
        let listed = jwks_kids(s, env).await;
        kids.iter().all(|k| listed.iter().any(|l| l == k))
    })
    .await
}

async fn revoke_token(s: &TestServer, token: &str) -> Reply {
    let admin = s.pki.admin();
    let mut conn = s.connect(s.admin, Some(&admin)).await;
    let body = format!("token={token}");
    let h = [("content-type", "application/x-www-form-urlencoded")];
    let url = "/admin/v1/tokens/revoke";
    conn.send_raw(Method::POST, url, &h, body.into_bytes(), false)
        .await
}

async fn rotate(s: &TestServer, body: Value) -> Vec<Value> {
    let r = s
        .admin_call(Method::POST, "/admin/v1/keys/rotate", Some(body))
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    r.body.as_array().unwrap().clone()
}

/// A token signed with the key in `pem` (named `kid`) for `c`, issued
/// now, with the claims of `like` otherwise.
fn forge(pem: &str, kid: &str, like: &str) -> String {
    let pair = rcgen::KeyPair::from_pem(pem).unwrap();
    let mut claims = claims_of(like);
    let now = opale_apim::oauth::unix_now();
    let lifetime = claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap();
    claims["iat"] = json!(now);
    claims["exp"] = json!(now + lifetime);
    claims["jti"] = json!(format!("forged-{now}-{}", rand_suffix()));
    let mut h = Header::new(Algorithm::EdDSA);
    h.typ = Some("at+jwt".into());
    h.kid = Some(kid.to_owned());
    let key = EncodingKey::from_ed_der(&pair.serialize_der());
    jsonwebtoken::encode(&h, &claims, &key).unwrap()
}

fn rand_suffix() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos()
}

#[tokio::test]
async fn a_token_from_either_node_works_on_both_and_a_revocation_reaches_both() {
    let pg = Postgres::start().await;
    let dir_b = tempfile::tempdir().unwrap();
    let (a, b) = two_nodes(&pg, dir_b.path()).await;
    let c = a.client(Sandbox).await;
    assert!(known_on(&b, &c).await, "B did not learn the application");

    let from_a = a.token(Sandbox, &c.cert, &c.id).await;
    let from_b = b.token(Sandbox, &c.cert, &c.id).await;
    assert_ne!(kid_of(&from_a), kid_of(&from_b), "each node its own key");
    let b_key = std::fs::read_to_string(dir_b.path().join("keys/sandbox-token-signing.pem"));
    assert_ne!(
        b_key.unwrap(),
        a.signing_key_pem(Sandbox),
        "B made its own key"
    );
    for (node, token) in [(&a, &from_a), (&a, &from_b), (&b, &from_a), (&b, &from_b)] {
        assert!(opens(node, &c, token).await, "a token refused by a node");
    }
    for env in Environment::ALL {
        let (on_a, on_b) = (jwks_kids(&a, env).await, jwks_kids(&b, env).await);
        assert_eq!(on_a.len(), 2, "{env}: one key per node: {on_a:?}");
        let mut sorted = (on_a.clone(), on_b.clone());
        sorted.0.sort();
        sorted.1.sort();
        assert_eq!(
            sorted.0, sorted.1,
            "{env}: both nodes publish the same keys"
        );
    }

    // Revoked on the node that did not issue it, and on the one that did:
    // refused on the other within 1 s.
    for (revoker, other, token) in [(&a, &b, &from_b), (&b, &a, &from_a)] {
        assert_eq!(revoke_token(revoker, token).await.status, 200);
        let refused = eventually(WITHIN, || async {
            data(other, &c, token).await.code() == "900901"
        })
        .await;
        assert!(refused, "a revoked token still accepted after 1 s");
        assert_eq!(data(revoker, &c, token).await.code(), "900901");
    }
}

#[tokio::test]
async fn after_a_rotation_tokens_before_and_after_work_and_every_jwks_lists_the_keys() {
    let pg = Postgres::start().await;
    let dir_b = tempfile::tempdir().unwrap();
    let (a, b) = two_nodes(&pg, dir_b.path()).await;
    let c = a.client(Sandbox).await;
    assert!(known_on(&b, &c).await);
    let before = a.token(Sandbox, &c.cert, &c.id).await;
    let b_kid = kid_of(&b.token(Sandbox, &c.cert, &c.id).await);

    let fresh = rotate(&a, json!({})).await;
    assert_eq!(fresh.len(), 2, "both environments by default: {fresh:?}");
    assert!(
        fresh
            .iter()
            .all(|k| k["node"] == "node-a" && k["retired_at"].is_null())
    );
    let after = a.token(Sandbox, &c.cert, &c.id).await;
    let (old, new) = (kid_of(&before), kid_of(&after));
    assert_ne!(old, new, "A signs with its new key at once");
    assert!(fresh.iter().any(|k| k["kid"] == new.as_str()));

    for node in [&a, &b] {
        for token in [&before, &after] {
            assert!(
                opens(node, &c, token).await,
                "a token refused after the rotation"
            );
        }
        let kids = [old.as_str(), new.as_str(), b_kid.as_str()];
        assert!(
            jwks_lists(node, Sandbox, &kids).await,
            "{:?}",
            jwks_kids(node, Sandbox).await
        );
    }

    // B lists A's keys: the old one retiring, the new one signing.
    let listed = eventually(WITHIN, || async {
        let r = b.admin_call(Method::GET, "/admin/v1/keys", None).await;
        let keys = r.body.as_array().cloned().unwrap_or_default();
        let of = |kid: &str| keys.iter().find(|k| k["kid"] == kid).cloned();
        of(&old).is_some_and(|k| k["retired_at"].is_string() && k["node"] == "node-a")
            && of(&new).is_some_and(|k| k["retired_at"].is_null())
            && of(&b_kid).is_some_and(|k| k["node"] == "node-b")
    })
    .await;
    assert!(listed, "B's key list does not show A's rotation");

    // One environment only: the other keeps its key.
    let production = jwks_kids(&a, Environment::Production).await;
    let fresh = rotate(&a, json!({"environment": "sandbox"})).await;
    assert_eq!(fresh.len(), 1);
    assert_eq!(fresh[0]["environment"], "sandbox");
    assert_eq!(jwks_kids(&a, Environment::Production).await, production);
    let newest = a.token(Sandbox, &c.cert, &c.id).await;
    assert_eq!(kid_of(&newest), fresh[0]["kid"].as_str().unwrap());
    assert!(opens(&b, &c, &newest).await);
    assert!(
        opens(&b, &c, &before).await,
        "keys retiring verify until they retire"
    );
}

/// With a token lifetime of 3 s, A's first key retires about 5 s after A
/// rotates: a token signed with it then (forged with the copied private
/// key, since A no longer signs with it) is refused on both nodes, and
/// neither JWKS lists it. Until then it verifies.
#[tokio::test]
async fn a_retired_key_stops_verifying_on_every_node_and_leaves_the_jwks() {
    const LIFETIME: u32 = 3;
    let pg = Postgres::start().await;
    let dir_b = tempfile::tempdir().unwrap();
    let short = |c: &mut opale_apim::config::Config| c.oauth.token_lifetime_secs = LIFETIME;
    let a = first_node(&pg, short).await;
    let b = peer_node(&a, &pg.url(), "node-b", dir_b.path(), short).await;
    let c = a.client(Sandbox).await;
    assert!(known_on(&b, &c).await);
    let (old_pem, old) = (a.signing_key_pem(Sandbox), a.signing_kid(Sandbox));
    let like = a.token(Sandbox, &c.cert, &c.id).await;
    assert_eq!(kid_of(&like), old);

    let fresh = rotate(&a, json!({"environment": "sandbox"})).await;
    let new = fresh[0]["kid"].as_str().unwrap().to_owned();
    assert!(
        !a.dir().join("data/keys/sandbox-token-signing.pem").exists(),
        "A removed the private key it no longer signs with"
    );
    let keys = a.admin_call(Method::GET, "/admin/v1/keys", None).await.body;
    let record = keys
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["kid"] == old.as_str());
    let retired_at = record.unwrap()["retired_at"].as_str().unwrap().to_owned();
    let retired =
        time::OffsetDateTime::parse(&retired_at, &time::format_description::well_known::Rfc3339)
            .unwrap()
            .unix_timestamp();
    let now = opale_apim::oauth::unix_now();
    assert!(
        (now + i64::from(LIFETIME)..=now + i64::from(LIFETIME) + 3).contains(&retired),
        "retired at rotation + lifetime + margin: {retired} vs now {now}"
    );
    for node in [&a, &b] {
        assert!(
            opens(node, &c, &forge(&old_pem, &old, &like)).await,
            "retiring: still verifies"
        );
        assert!(jwks_lists(node, Sandbox, &[&old, &new]).await);
    }

    let wait = (retired - opale_apim::oauth::unix_now() + 1).max(0) as u64;
    tokio::time::sleep(Duration::from_secs(wait)).await;
    let fresh_token = a.token(Sandbox, &c.cert, &c.id).await;
    for node in [&a, &b] {
        let r = data(node, &c, &forge(&old_pem, &old, &like)).await;
        assert_eq!(
            (r.status.as_u16(), r.code().as_str()),
            (401, "900901"),
            "{:?}",
            r.body
        );
        let detail = r.body.to_string();
        assert!(detail.contains("signature is not valid"), "{detail}");
        assert!(
            !jwks_kids(node, Sandbox).await.contains(&old),
            "retired: not in the JWKS"
        );
        assert!(jwks_lists(node, Sandbox, &[&new]).await);
        assert_eq!(data(node, &c, &fresh_token).await.status, 200);
    }
}

/// One embedded (sled) node: `admin keys rotate` then `admin keys list`,
/// as an operator runs them.
#[tokio::test]
async fn one_node_rotates_and_lists_its_keys_through_the_cli() {
    let s = TestServer::start().await;
    let c = s.client(Sandbox).await;
    let before = s.token(Sandbox, &c.cert, &c.id).await;
    let cli = |args: &'static [&'static str]| {
        let certs = s.dir().join("certs");
        let url = format!("https://127.0.0.1:{}", s.admin.port());
        tokio::task::spawn_blocking(move || {
            let out = std::process::Command::new(BIN)
                .args(["admin", "--url", &url, "--cacert"])
                .arg(certs.join("ca.pem"))
                .arg("--cert")
                .arg(certs.join("admin.pem"))
                .arg("--key")
                .arg(certs.join("admin.key"))
                .args(args)
                .output()
                .unwrap();
            let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
            assert!(out.status.success(), "{args:?}: {stderr}");
            String::from_utf8(out.stdout).unwrap()
        })
    };
    let rotated = cli(&["keys", "rotate", "--env", "sandbox"]).await.unwrap();
    assert!(rotated.starts_with("sandbox now signs with "), "{rotated}");
    let after = s.token(Sandbox, &c.cert, &c.id).await;
    let new = kid_of(&after);
    assert!(rotated.contains(&new), "{rotated}");
    assert_eq!(data(&s, &c, &before).await.status, 200);
    assert_eq!(data(&s, &c, &after).await.status, 200);

    let text = cli(&["keys", "list"]).await.unwrap();
    let line = |kid: &str| {
        text.lines()
            .find(|l| l.contains(kid))
            .unwrap_or("")
            .to_owned()
    };
    assert_eq!(text.lines().count(), 3, "{text}");
    let old = line(&kid_of(&before));
    assert!(old.starts_with("sandbox  "), "{text}");
    assert!(
        !old.ends_with("  -"),
        "the old key has its retirement: {text}"
    );
    assert!(line(&new).ends_with("  -"), "the new key signs: {text}");
    let json = cli(&["--json", "keys", "list"]).await.unwrap();
    let keys: Vec<Value> = serde_json::from_str(&json).unwrap();
    assert_eq!(keys.len(), 3);
    assert!(keys.iter().all(|k| k["node"] == keys[0]["node"]));
    let bad = tokio::task::spawn_blocking({
        let certs = s.dir().join("certs");
        let url = format!("https://127.0.0.1:{}", s.admin.port());
        move || {
            std::process::Command::new(BIN)
                .args(["admin", "--url", &url, "--cacert"])
                .arg(certs.join("ca.pem"))
                .arg("--cert")
                .arg(certs.join("admin.pem"))
                .arg("--key")
                .arg(certs.join("admin.key"))
                .args(["keys", "rotate", "--env", "staging"])
                .output()
                .unwrap()
        }
    })
    .await
    .unwrap();
    assert!(!bad.status.success());
}
