//! Security events across two gateway nodes on one real PostgreSQL
//! (docs/contract.md §10): an event raised on node A is listed on node B
//! within 1 s, cleared on B, and gone from A within 1 s (the `abuse` area
//! propagated by LISTEN/NOTIFY, docs/cluster.md "Change propagation").
// A test crate: its helpers may unwrap like its #[test] functions.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use hyper::{Method, StatusCode};
use opale_apim::domain::Environment::Sandbox;
use serde_json::Value;
use std::time::Duration;
use support::TestServer;
use support::cluster::{eventually, first_node, peer_node};
use support::postgres::Postgres;

const PATH: &str = "/opale/v1/entreprises/732829320/declarations?annee=2024";

/// The bound of the brief: another node sees the change within 1 s.
const WITHIN: Duration = Duration::from_secs(1);

async fn open_events(s: &TestServer) -> Vec<Value> {
    let r = s
        .admin_call(Method::GET, "/admin/v1/security-events", None)
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    r.body.as_array().unwrap().clone()
}

#[tokio::test]
async fn an_event_raised_on_one_node_is_listed_and_cleared_on_the_other() {
    let pg = Postgres::start().await;
    let dir_b = tempfile::tempdir().unwrap();
    let a = first_node(&pg, |c| c.abuse.denial_burst = 3).await;
    let b = peer_node(&a, &pg.url(), "node-b", dir_b.path(), |c| {
        c.abuse.denial_burst = 3
    })
    .await;
    let c = a.client(Sandbox).await;
    // Three denials on A: a denial burst, open on A.
    for _ in 0..3 {
        let r = a
            .data_call_with_token(Sandbox, &c.cert, "not-a-token", PATH)
            .await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{:?}", r.body);
    }
    let on_a = open_events(&a).await;
    assert_eq!(on_a.len(), 1, "{on_a:?}");
    assert_eq!(on_a[0]["kind"], "denial_burst");

    let listed = eventually(WITHIN, || async { open_events(&b).await == on_a }).await;
    assert!(listed, "node B did not list A's event within 1 s");

    let id = on_a[0]["id"].as_str().unwrap();
    let clear = format!("/admin/v1/security-events/{id}/clear");
    let r = b.admin_call(Method::POST, &clear, None).await;
    assert_eq!((r.status.as_u16(), &r.body["id"]), (200, &on_a[0]["id"]));
    assert!(open_events(&b).await.is_empty());

    let gone = eventually(WITHIN, || async { open_events(&a).await.is_empty() }).await;
    assert!(gone, "the event cleared on B was still open on A after 1 s");
    let again = a.admin_call(Method::POST, &clear, None).await;
    assert_eq!(again.status.as_u16(), 404, "{:?}", again.body);
}
