//! The cluster trail when things go wrong (docs/contract.md §7, §10,
//! docs/cluster.md "The trail across nodes"): records answered while
//! PostgreSQL was away wait on the node's disk and reach PostgreSQL when it
//! is back; a node started on an older copy of its data directory, or with
//! another trail key under the same `node_id`, is refused with the reason;
//! a copy in PostgreSQL cut short is filled again from the node's disk;
//! one `Idempotency-Key` sent to two nodes at once stores one transmission.
// A test crate: its helpers may unwrap like its #[test] functions.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use hyper::Method;
use opale_apim::app::App;
use opale_apim::config::Config;
use opale_apim::domain::Environment::Sandbox;
use serde_json::{Value, json};
use std::path::Path;
use std::time::Duration;
use support::cluster::{eventually, first_node, known_on, on_postgres, peer_node};
use support::postgres::Postgres;
use support::{Client, Reply, TestServer};

const PATH: &str = "/opale/v1/entreprises/732829320/declarations?annee=2024";

async fn data(s: &TestServer, c: &Client, token: &str) -> Reply {
    s.data_call_with_token(Sandbox, &c.cert, token, PATH).await
}

async fn listed(s: &TestServer, correlation_id: &str) -> Option<Value> {
    let path = format!("/admin/v1/trace?correlation_id={correlation_id}");
    let r = s.admin_call(Method::GET, &path, None).await;
    (r.status == 200)
        .then(|| r.body[0].clone())
        .filter(|v| !v.is_null())
}

#[tokio::test]
async fn records_answered_while_postgres_was_away_reach_it_when_it_is_back() {
    let mut pg = Postgres::start().await;
    let a = first_node(&pg, |c| c.cluster.max_staleness_secs = 60).await;
    let c = a.client(Sandbox).await;
    let token = a.token(Sandbox, &c.cert, &c.id).await;
    assert_eq!(a.metric("opale_trail_shipping_up").await, 1.0);

    pg.stop();
    let mut answered = Vec::new();
    for _ in 0..3 {
        let r = data(&a, &c, &token).await;
        assert_eq!(r.status, 200, "served from the snapshot: {:?}", r.body);
        answered.push(r.headers["x-correlation-id"].to_str().unwrap().to_owned());
    }
    // Durable on the node's disk, not in PostgreSQL.
    assert_eq!(a.metric("opale_trail_shipping_up").await, 0.0);
    assert!(a.metric("opale_trail_unshipped").await >= 3.0);
    let r = a.admin_call(Method::GET, "/admin/v1/trace", None).await;
    assert_eq!(r.status, 503, "trace reads need PostgreSQL: {:?}", r.body);

    pg.launch().await;
    let shipped = eventually(Duration::from_secs(20), || async {
        let mut all = true;
        for cid in &answered {
            all &= listed(&a, cid).await.is_some();
        }
        all
    })
    .await;
    assert!(
        shipped,
        "records made while PostgreSQL was away never reached it"
    );
    let record = listed(&a, &answered[0]).await.unwrap();
    assert_eq!(
        (record["node"].as_str(), record["status"].as_u64()),
        (Some("node-a"), Some(200))
    );
    assert!(
        eventually(Duration::from_secs(5), || async {
            a.metric("opale_trail_unshipped").await == 0.0
        })
        .await
    );
    let v = a.verify_trail(None).await;
    assert_eq!(v["ok"], true, "{v}");
    assert_eq!(v["nodes"][0]["node"], "node-a");
}

/// PostgreSQL's copy of a node's chain cut short (restored from an older
/// backup, or its newest rows deleted) while the node's disk holds every
/// record: the next shipment finds its previous record missing, and the
/// shipper ships again from the local trail everything PostgreSQL lacks,
/// in order, without a gap, and the whole chain verifies.
#[tokio::test]
async fn records_postgres_lost_are_shipped_again_from_the_node() {
    let pg = Postgres::start().await;
    let a = first_node(&pg, |_| {}).await;
    let c = a.client(Sandbox).await;
    let token = a.token(Sandbox, &c.cert, &c.id).await;
    let mut answered = Vec::new();
    for _ in 0..5 {
        let r = data(&a, &c, &token).await;
        assert_eq!(r.status, 200, "{:?}", r.body);
        answered.push(r.headers["x-correlation-id"].to_str().unwrap().to_owned());
    }
    let all_listed = |cids: Vec<String>| {
        let a = &a;
        async move {
            for cid in &cids {
                if listed(a, cid).await.is_none() {
                    return false;
                }
            }
            true
        }
    };
    assert!(eventually(Duration::from_secs(10), || all_listed(answered.clone())).await);

    // Cut the copy after the third call's record (the listings above are
    // traced too: the newest rows are theirs).
    let third = listed(&a, &answered[2]).await.unwrap()["seq"]
        .as_i64()
        .unwrap();
    let db = pg.session().await;
    let deleted = db
        .execute(
            "DELETE FROM trail_records WHERE node = 'node-a' AND seq > $1",
            &[&third],
        )
        .await
        .unwrap();
    // At least the fourth and fifth calls' records (the shipper may
    // already be filling the gap: the listing's own record follows).
    assert!(deleted >= 2, "{deleted} rows deleted");

    for _ in 0..2 {
        let r = data(&a, &c, &token).await;
        assert_eq!(r.status, 200, "{:?}", r.body);
        answered.push(r.headers["x-correlation-id"].to_str().unwrap().to_owned());
    }
    assert!(
        eventually(Duration::from_secs(20), || all_listed(answered.clone())).await,
        "records PostgreSQL lost were not shipped again"
    );
    let row = db
        .query_one(
            "SELECT count(*), max(seq) FROM trail_records WHERE node = 'node-a'",
            &[],
        )
        .await
        .unwrap();
    let (count, max): (i64, i64) = (row.get(0), row.get(1));
    assert_eq!(count, max, "one row per record, no gap, none twice");
    let v = a.verify_trail(None).await;
    assert_eq!(v["ok"], true, "{v}");
}

/// A configuration of node `node` on `pg` with `a`'s certificates.
fn node_config(a: &TestServer, pg: &Postgres, node: &str, data_dir: &Path) -> Config {
    let mut c = Config {
        data_dir: data_dir.to_path_buf(),
        certs_dir: a.dir().join("certs"),
        ..Config::default()
    };
    on_postgres(&mut c, &pg.url(), node);
    c
}

#[tokio::test]
async fn a_node_on_an_older_copy_of_its_data_dir_or_with_another_key_is_refused() {
    let pg = Postgres::start().await;
    let a = first_node(&pg, |_| {}).await;
    a.partner().await;
    let backup = tempfile::tempdir().unwrap();
    support::copy_tree(&a.dir().join("data"), backup.path());
    // Traffic after the copy: each admin call's record is in PostgreSQL
    // before its answer, so node-a's chain there outruns the copy.
    for _ in 0..3 {
        a.partner().await;
    }

    let older = node_config(&a, &pg, "node-a", backup.path());
    let err = App::build(older)
        .await
        .err()
        .expect("an older copy must be refused")
        .to_string();
    assert!(err.contains("not the node's latest"), "{err}");

    let fresh = tempfile::tempdir().unwrap();
    let other_key = node_config(&a, &pg, "node-a", fresh.path());
    let err = App::build(other_key)
        .await
        .err()
        .expect("another key must be refused")
        .to_string();
    assert!(err.contains("another trail key"), "{err}");

    // The same fresh directory under a new node id is a new node.
    let new_node = node_config(&a, &pg, "node-c", fresh.path());
    assert!(App::build(new_node).await.is_ok());
    assert_eq!(
        a.verify_trail(None).await["ok"],
        true,
        "node-a's chain is untouched"
    );
}

async fn post_claims(s: &TestServer, c: &Client, token: &str, key: &str, body: &Value) -> Reply {
    let mut conn = s.connect(s.env_addr(Sandbox), Some(&c.cert)).await;
    let (cid, bearer) = (support::correlation_id(), format!("Bearer {token}"));
    let h = [
        ("x-correlation-id", cid.as_str()),
        ("authorization", bearer.as_str()),
        ("idempotency-key", key),
    ];
    conn.send(
        Method::POST,
        "/opale/v1/entreprises/732829320/creances",
        &h,
        Some(body),
    )
    .await
}

#[tokio::test]
async fn one_idempotency_key_sent_to_two_nodes_at_once_stores_one_transmission() {
    let pg = Postgres::start().await;
    let data_b = tempfile::tempdir().unwrap();
    let a = first_node(&pg, |_| {}).await;
    let b = peer_node(&a, &pg.url(), "node-b", data_b.path(), |_| {}).await;
    let grants = json!([{"scope": "creances", "years": [2024]},
        {"scope": "creances_transmission", "years": [2024]}]);
    let c = a.client_with(Sandbox, grants, 1000).await;
    assert!(known_on(&b, &c).await, "node-b never learnt the client");
    let (ta, tb) = (
        a.token(Sandbox, &c.cert, &c.id).await,
        b.token(Sandbox, &c.cert, &c.id).await,
    );
    let body = json!({"annee": 2024, "creances": [
        {"reference": "CR-2024-001", "montant": "1520.40", "date_echeance": "2024-09-30", "impot": "TVA"}
    ]});
    for round in 0..5 {
        let key = format!("same-key-{round}");
        let (ra, rb) = tokio::join!(
            post_claims(&a, &c, &ta, &key, &body),
            post_claims(&b, &c, &tb, &key, &body)
        );
        assert_eq!(
            (ra.status.as_u16(), rb.status.as_u16()),
            (201, 201),
            "{:?} / {:?}",
            ra.body,
            rb.body
        );
        assert_eq!(
            ra.body["id"], rb.body["id"],
            "the second call replays the first"
        );
    }
    let path = "/opale/v1/entreprises/732829320/creances?annee=2024";
    let r = a.data_call_with_token(Sandbox, &c.cert, &ta, path).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let stored = r.body["transmises"].as_array().map_or(0, Vec::len);
    assert_eq!(
        stored, 5,
        "one transmission per key: {}",
        r.body["transmises"]
    );
}
