//! Two gateway nodes on one real PostgreSQL (docs/contract.md §10): what one node
//! writes, the other applies within 2 s (LISTEN/NOTIFY); conflicting
//! registry writes are serialised cluster-wide; PostgreSQL away means 503
//! on admin writes while data calls go on from the snapshot (then 910605
//! past `max_staleness_secs`), and the nodes reconnect by themselves;
//! `store export` from sled + `store import` into PostgreSQL carries an
//! application over without re-provisioning.
// A test crate: its helpers may unwrap like its #[test] functions.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use hyper::Method;
use opale_apim::domain::Environment::Sandbox;
use serde_json::json;
use std::path::{Path, PathBuf};
use std::time::Duration;
use support::cluster::{PROPAGATION, eventually, first_node, peer_node, two_nodes};
use support::postgres::Postgres;
use support::{Client, Reply, TestServer};

const PATH: &str = "/opale/v1/entreprises/732829320/declarations?annee=2024";
const BIN: &str = env!("CARGO_BIN_EXE_opale-apim");

async fn data(s: &TestServer, c: &Client, token: &str) -> Reply {
    s.data_call_with_token(Sandbox, &c.cert, token, PATH).await
}

#[tokio::test]
async fn a_client_provisioned_on_one_node_works_on_the_other() {
    let pg = Postgres::start().await;
    let dir_b = tempfile::tempdir().unwrap();
    let (a, b) = two_nodes(&pg, dir_b.path()).await;
    let c = a.client(Sandbox).await;
    let usable = eventually(PROPAGATION, || async {
        let r = b
            .token_request(
                Sandbox,
                Some(&c.cert),
                None,
                &format!("grant_type=client_credentials&client_id={}", c.id),
            )
            .await;
        r.status == 200
    })
    .await;
    assert!(
        usable,
        "node B did not learn the new application within 2 s"
    );
    let token = b.token(Sandbox, &c.cert, &c.id).await;
    let r = data(&b, &c, &token).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    // The secret (stored as a digest) works on B too.
    let r = b
        .token_request(
            Sandbox,
            Some(&c.cert),
            Some((&c.id, &c.secret)),
            "grant_type=client_credentials",
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    // A token issued by A is accepted by B (shared signing keys).
    let from_a = a.token(Sandbox, &c.cert, &c.id).await;
    assert_eq!(data(&b, &c, &from_a).await.status, 200);
}

#[tokio::test]
async fn suspension_and_revocations_on_one_node_reach_the_other() {
    let pg = Postgres::start().await;
    let dir_b = tempfile::tempdir().unwrap();
    let (a, b) = two_nodes(&pg, dir_b.path()).await;

    // Token revocation on A: refused on B.
    let c = a.client(Sandbox).await;
    assert!(
        eventually(PROPAGATION, || async {
            b.token_request(
                Sandbox,
                Some(&c.cert),
                None,
                &format!("grant_type=client_credentials&client_id={}", c.id),
            )
            .await
            .status
                == 200
        })
        .await
    );
    let reloads = b.metric("opale_store_reloads_total").await;
    let token = b.token(Sandbox, &c.cert, &c.id).await;
    assert_eq!(data(&b, &c, &token).await.status, 200);
    let revoked = revoke_token(&a, &token).await;
    assert_eq!(revoked.status, 200);
    let refused = eventually(PROPAGATION, || async {
        data(&b, &c, &token).await.code() == "900901"
    })
    .await;
    assert!(refused, "token revoked on A still accepted by B after 2 s");

    // Partner suspension on A: refused on B.
    let token = b.token(Sandbox, &c.cert, &c.id).await;
    assert_eq!(data(&b, &c, &token).await.status, 200);
    let r = a
        .admin_call(
            Method::PATCH,
            &format!("/admin/v1/partners/{}", c.partner),
            Some(json!({"status": "suspended"})),
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let refused = eventually(PROPAGATION, || async {
        data(&b, &c, &token).await.code() == "910402"
    })
    .await;
    assert!(refused, "suspension on A not applied by B within 2 s");

    // Certificate revocation on A: refused on B.
    let d = a.client(Sandbox).await;
    assert!(
        eventually(PROPAGATION, || async {
            b.token_request(
                Sandbox,
                Some(&d.cert),
                None,
                &format!("grant_type=client_credentials&client_id={}", d.id),
            )
            .await
            .status
                == 200
        })
        .await
    );
    let token = b.token(Sandbox, &d.cert, &d.id).await;
    assert_eq!(data(&b, &d, &token).await.status, 200);
    let del = format!(
        "/admin/v1/applications/{}/certificates/{}",
        d.id, d.cert.thumbprint
    );
    assert_eq!(a.admin_call(Method::DELETE, &del, None).await.status, 204);
    let refused = eventually(PROPAGATION, || async {
        data(&b, &d, &token).await.status != 200
    })
    .await;
    assert!(
        refused,
        "certificate revoked on A still accepted by B after 2 s"
    );
    let r = b.data_call(Sandbox, Some(&d.cert), PATH).await;
    assert_eq!(r.code(), "910102", "{:?}", r.body);
    // Deny-list, registry (suspension, new client, revocation): counted.
    assert!(b.metric("opale_store_reloads_total").await >= reloads + 3.0);
}

async fn revoke_token(s: &TestServer, token: &str) -> Reply {
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
async fn the_same_siren_created_on_both_nodes_at_once_is_accepted_once() {
    let pg = Postgres::start().await;
    let dir_b = tempfile::tempdir().unwrap();
    let (a, b) = two_nodes(&pg, dir_b.path()).await;
    for _ in 0..5 {
        let body = json!({"siren": support::fresh_siren(), "name": "Concurrent SA",
            "contacts": {"technique": {"nom": "Jeanne Dupont", "email": "jd@example.fr"}}});
        let (ra, rb) = tokio::join!(
            a.admin_call(Method::POST, "/admin/v1/partners", Some(body.clone())),
            b.admin_call(Method::POST, "/admin/v1/partners", Some(body.clone())),
        );
        let mut statuses = [ra.status.as_u16(), rb.status.as_u16()];
        statuses.sort();
        assert_eq!(statuses, [201, 409], "{:?} / {:?}", ra.body, rb.body);
    }
}

#[tokio::test]
async fn postgres_away_admin_503_data_served_then_cut_off_and_reconnected() {
    let mut pg = Postgres::start().await;
    // The window must hold PostgreSQL's stop, an admin call and a TLS data
    // call: 10 s leaves a loaded 2-core machine its margin (3 s did not).
    const STALENESS: u64 = 10;
    let a = first_node(&pg, |c| c.cluster.max_staleness_secs = STALENESS).await;
    // A quota high enough for the polling below (the default 50/min is not).
    let grants = json!([{"scope": "declarations", "years": [2024]}]);
    let c = a.client_with(Sandbox, grants, 10_000).await;
    let token = a.token(Sandbox, &c.cert, &c.id).await;
    assert_eq!(data(&a, &c, &token).await.status, 200);

    pg.stop();
    let r = a
        .admin_call(
            Method::POST,
            "/admin/v1/partners",
            Some(json!({"siren": support::fresh_siren(), "name": "Down SA",
        "contacts": {"technique": {"nom": "Jeanne Dupont", "email": "jd@example.fr"}}})),
        )
        .await;
    assert_eq!(r.status, 503, "{:?}", r.body);
    let r = data(&a, &c, &token).await;
    assert_eq!(r.status, 200, "served from the snapshot: {:?}", r.body);
    // Past max_staleness_secs without PostgreSQL: 910605.
    let cut = eventually(Duration::from_secs(STALENESS + 10), || async {
        data(&a, &c, &token).await.code() == "910605"
    })
    .await;
    assert!(
        cut,
        "still serving after max_staleness_secs without PostgreSQL"
    );
    assert!(a.metric("opale_store_errors_total").await >= 1.0);

    pg.launch().await;
    let back = eventually(Duration::from_secs(15), || async {
        let body = json!({"siren": support::fresh_siren(), "name": "Back SA",
            "contacts": {"technique": {"nom": "Jeanne Dupont", "email": "jd@example.fr"}}});
        a.admin_call(Method::POST, "/admin/v1/partners", Some(body))
            .await
            .status
            == 201
    })
    .await;
    assert!(
        back,
        "admin writes did not work again after PostgreSQL came back"
    );
    assert!(
        eventually(Duration::from_secs(5), || async {
            data(&a, &c, &token).await.status == 200
        })
        .await
    );
}

fn store_cli(args: &[&str], config: &Path, stdin: Option<&[u8]>) -> std::process::Output {
    use std::io::Write;
    let mut child = std::process::Command::new(BIN)
        .args(args)
        .arg("--config")
        .arg(config)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = child.stdin.take().unwrap();
    input.write_all(stdin.unwrap_or_default()).unwrap();
    drop(input);
    child.wait_with_output().unwrap()
}

fn write_config(path: &Path, data_dir: &Path, store: &str) -> PathBuf {
    let text = format!("data_dir = {:?}\n{store}", data_dir.display().to_string());
    std::fs::write(path, text).unwrap();
    path.to_path_buf()
}

#[tokio::test]
async fn export_from_sled_import_into_postgres_keeps_the_application() {
    let pg = Postgres::start().await;
    let sled = TestServer::start().await;
    let c = sled.client(Sandbox).await;
    let work = tempfile::tempdir().unwrap();
    let sled_cfg = write_config(&work.path().join("sled.toml"), &sled.dir().join("data"), "");
    // While `serve` holds the sled directory, export refuses clearly.
    let held = store_cli(&["store", "export"], &sled_cfg, None);
    assert!(!held.status.success());
    let err = String::from_utf8_lossy(&held.stderr);
    assert!(
        err.contains("in use by another opale-apim process"),
        "{err}"
    );

    let mut dump = Vec::new();
    let sled = sled
        .restart_with(|_| {
            let out = store_cli(&["store", "export"], &sled_cfg, None);
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            dump = out.stdout;
        })
        .await;
    let text = String::from_utf8(dump.clone()).unwrap();
    assert!(
        text.lines()
            .all(|l| serde_json::from_str::<serde_json::Value>(l).is_ok())
    );
    assert!(text.contains(&format!("\"key\":\"reg/secret/{}\"", c.id)));
    assert!(
        !text.contains(&c.secret),
        "the clear secret must not be in the dump"
    );

    let pg_store = format!("[store]\nbackend = \"postgres\"\nurl = \"{}\"\n", pg.url());
    let pg_cfg = write_config(
        &work.path().join("pg.toml"),
        &work.path().join("pgdata"),
        &pg_store,
    );
    let out = store_cli(&["store", "import"], &pg_cfg, Some(&dump));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let again = store_cli(&["store", "import"], &pg_cfg, Some(&dump));
    assert!(
        !again.status.success(),
        "import into a non-empty store must be refused"
    );
    assert!(String::from_utf8_lossy(&again.stderr).contains("not empty"));

    let dir_p = tempfile::tempdir().unwrap();
    let node = peer_node(&sled, &pg.url(), "node-p", dir_p.path(), |_| {}).await;
    let r = node
        .token_request(
            Sandbox,
            Some(&c.cert),
            Some((&c.id, &c.secret)),
            "grant_type=client_credentials",
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let token = r.body["access_token"].as_str().unwrap().to_owned();
    assert_eq!(data(&node, &c, &token).await.status, 200);
}

/// The revision of `area` in PostgreSQL (0 before its first transaction).
async fn stored_revision(pg: &Postgres, area: &str) -> i64 {
    pg.session()
        .await
        .query_opt(
            "SELECT revision FROM area_revision WHERE area = $1",
            &[&area],
        )
        .await
        .unwrap()
        .map_or(0, |row| row.get(0))
}

/// A transmission with an `Idempotency-Key` takes the idempotency area's
/// write lock and writes no registry record: the registry's revision
/// stays (the next registry write on any node does not reload its
/// snapshot for it), while the revisions of the areas it wrote move.
#[tokio::test]
async fn each_area_has_its_own_revision() {
    let pg = Postgres::start().await;
    let node = first_node(&pg, |_| {}).await;
    let grants = json!([
        {"scope": "creances", "years": [2024]},
        {"scope": "creances_transmission", "years": [2024]}
    ]);
    let before = stored_revision(&pg, "reg").await;
    let c = node.client_with(Sandbox, grants, 50).await;
    let provisioned = stored_revision(&pg, "reg").await;
    let (tx_before, idem_before) = (
        stored_revision(&pg, "tx").await,
        stored_revision(&pg, "idem").await,
    );
    assert!(provisioned > before, "registry writes bump the revision");
    let token = node.token(Sandbox, &c.cert, &c.id).await;
    let mut conn = node.connect(node.sandbox, Some(&c.cert)).await;
    let (cid, bearer) = (support::correlation_id(), format!("Bearer {token}"));
    let sent = conn
        .send(
            Method::POST,
            "/opale/v1/entreprises/732829320/creances",
            &[
                ("x-correlation-id", cid.as_str()),
                ("authorization", bearer.as_str()),
                ("idempotency-key", "rev-1"),
            ],
            Some(&json!({"annee": 2024, "creances": [
                {"reference": "CR-REV-1", "montant": "10.00", "date_echeance": "2024-09-30", "impot": "TVA"}
            ]})),
        )
        .await;
    assert_eq!(sent.status, 201, "{:?}", sent.body);
    assert_eq!(
        stored_revision(&pg, "reg").await,
        provisioned,
        "a transmission leaves the registry's revision alone"
    );
    assert_eq!(stored_revision(&pg, "tx").await, tx_before + 1);
    assert_eq!(stored_revision(&pg, "idem").await, idem_before + 1);
}
