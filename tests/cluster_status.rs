//! Maintenances across two gateway nodes on one real PostgreSQL
//! (docs/contract.md §11: "closes … and reopens … by itself, on every
//! node"): a maintenance scheduled through node A closes the environment
//! on node B at its start and reopens it at its end, with no call to B;
//! B lists it, and both nodes count its minutes as unavailability.
// A test crate: its helpers may unwrap like its #[test] functions.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use hyper::Method;
use opale_apim::domain::Environment::Sandbox;
use serde_json::json;
use support::cluster::{PROPAGATION, eventually, two_nodes};
use support::postgres::Postgres;
use support::{Reply, TestServer};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

const PATH: &str = "/opale/v1/entreprises/732829320/declarations?annee=2024";

async fn summary(s: &TestServer) -> Reply {
    let mut c = s.connect(s.sandbox, None).await;
    c.send(Method::GET, "/status/api/v2/summary.json", &[], None)
        .await
}

async fn until(t: OffsetDateTime) {
    let left = t - OffsetDateTime::now_utc();
    if left.is_positive() {
        tokio::time::sleep(left.try_into().unwrap()).await;
    }
}

#[tokio::test]
async fn a_maintenance_scheduled_on_one_node_closes_and_reopens_the_other() {
    let pg = Postgres::start().await;
    let data_b = tempfile::tempdir().unwrap();
    let (a, b) = two_nodes(&pg, data_b.path()).await;
    let client = a.client(Sandbox).await;
    let token = a.token(Sandbox, &client.cert, &client.id).await;
    let on_b = || b.data_call_with_token(Sandbox, &client.cert, &token, PATH);
    assert!(
        eventually(PROPAGATION, || async { on_b().await.status == 200 }).await,
        "B serves the client"
    );
    let start = OffsetDateTime::now_utc() + time::Duration::seconds(4);
    let end = start + time::Duration::seconds(5);
    let body = json!({"components": ["sandbox"], "scheduled_for": start.format(&Rfc3339).unwrap(),
        "scheduled_until": end.format(&Rfc3339).unwrap(), "message": "Bascule de base", "emergency": true});
    let r = a
        .admin_call(Method::POST, "/admin/v1/maintenances", Some(body))
        .await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    let id = r.body["id"].as_str().unwrap().to_owned();
    // B learns of it by itself within a second or two, before it begins.
    let listed =
        || async { summary(&b).await.body["scheduled_maintenances"][0]["id"] == id.as_str() };
    assert!(
        eventually(PROPAGATION, listed).await,
        "B lists the maintenance"
    );
    assert_eq!(on_b().await.status, 200, "not begun");
    until(start + time::Duration::milliseconds(700)).await;
    let r = on_b().await;
    assert_eq!(
        (r.status.as_u16(), r.code().as_str()),
        (503, "910600"),
        "{:?}",
        r.body
    );
    assert_eq!(
        summary(&b).await.body["components"][0]["status"],
        "under_maintenance"
    );
    until(end + time::Duration::milliseconds(300)).await;
    assert_eq!(on_b().await.status, 200, "B reopened by itself");
    for node in [&a, &b] {
        let mut c = node.connect(node.sandbox, None).await;
        let h = c
            .send(Method::GET, "/status/history.json?days=1", &[], None)
            .await;
        let today = &h.body["components"][0]["days"][0];
        assert!(today["down_minutes"].as_u64().unwrap() >= 1, "{today:?}");
    }
}
