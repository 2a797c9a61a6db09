//! Denial bursts counted across the nodes of a cluster (docs/contract.md
//! §10, docs/abuse.md "Across nodes"): two gateway nodes on one real
//! PostgreSQL and one real Redis (the quota's), where 12 denials on node A
//! and 12 on node B within a minute cross a threshold of 20 once — one
//! burst event, listed on both nodes — though neither node saw 20. And
//! with Redis away a node falls back to counting its own denials.
// A test crate: its helpers may unwrap like its #[test] functions.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use hyper::{Method, StatusCode};
use opale_apim::config::{Config, QuotaSettings};
use opale_apim::domain::Environment::Sandbox;
use serde_json::Value;
use std::path::Path;
use std::time::Duration;
use support::cluster::{PROPAGATION, eventually, first_node, known_on, peer_node};
use support::postgres::Postgres;
use support::redis_server::RedisServer;
use support::{Client, TestServer};

const PATH: &str = "/opale/v1/entreprises/732829320/declarations?annee=2024";

/// `[quota]` on the Redis at `url`.
fn on_redis(url: &str) -> QuotaSettings {
    let text = format!("[quota]\nbackend = \"redis\"\nurl = \"{url}\"\ntimeout_ms = 2000\n");
    Config::parse(&text, Path::new("t.toml")).unwrap().quota
}

/// A node on the Redis at `url`, a burst being 20 denials within 60 s.
fn node(url: &str) -> impl Fn(&mut Config) + Send + Sync + 'static {
    let quota = on_redis(url);
    move |c| {
        c.quota = quota.clone();
        c.abuse.denial_burst = 20;
        c.abuse.denial_window_secs = 60;
    }
}

async fn open_events(s: &TestServer) -> Vec<Value> {
    let r = s
        .admin_call(Method::GET, "/admin/v1/security-events", None)
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    r.body.as_array().unwrap().clone()
}

/// `n` calls of `c` on `s` with a token that is not one: `n` denials.
async fn deny(s: &TestServer, c: &Client, n: usize) {
    for _ in 0..n {
        let r = s
            .data_call_with_token(Sandbox, &c.cert, "not-a-token", PATH)
            .await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{:?}", r.body);
    }
}

#[tokio::test]
async fn twelve_denials_on_each_of_two_nodes_raise_one_burst() {
    let redis = RedisServer::start();
    let pg = Postgres::start().await;
    let dir_b = tempfile::tempdir().unwrap();
    let a = first_node(&pg, node(&redis.url())).await;
    let b = peer_node(&a, &pg.url(), "node-b", dir_b.path(), node(&redis.url())).await;
    let c = a.client(Sandbox).await;
    assert!(
        known_on(&b, &c).await,
        "node B does not know the application"
    );

    deny(&a, &c, 12).await;
    deny(&b, &c, 12).await;
    // The 20th denial (B's 8th) crossed the threshold: one event, on B.
    let on_b = open_events(&b).await;
    assert_eq!(on_b.len(), 1, "{on_b:?}");
    assert_eq!(on_b[0]["kind"], "denial_burst");
    assert_eq!(on_b[0]["client_id"], c.id.as_str());
    let listed = eventually(PROPAGATION, || async { open_events(&a).await == on_b }).await;
    assert!(listed, "node A: {:?}", open_events(&a).await);
    // Nothing more: the denials after the 20th fall in the quiet window.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(open_events(&a).await, on_b);
    assert_eq!(open_events(&b).await, on_b);
}

#[tokio::test]
async fn with_redis_away_a_node_counts_its_own_denials() {
    let mut redis = RedisServer::start();
    let url = redis.url();
    redis.stop();
    let s = TestServer::start_with(node(&url)).await;
    let c = s.client(Sandbox).await;
    deny(&s, &c, 19).await;
    assert!(open_events(&s).await.is_empty());
    deny(&s, &c, 1).await;
    let events = open_events(&s).await;
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0]["kind"], "denial_burst");
}
