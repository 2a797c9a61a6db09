//! An admin write whose COMMIT outlives the store's call timeout (issue 18,
//! docs/contract.md §10): the answer says the outcome is unknown, never
//! "nothing was changed", and once PostgreSQL settles the commit the node
//! that wrote it converges with the others within 1 s.
//!
//! The COMMIT is held back the way a synchronous replica that stops
//! answering holds it: `synchronous_standby_names` names a standby that
//! never connects, so every COMMIT waits (invisible to other sessions,
//! the cluster write lock still held) until the setting is reset.
// A test crate: its helpers may unwrap like its #[test] functions.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use hyper::Method;
use opale_apim::domain::Environment::Sandbox;
use serde_json::json;
use std::time::{Duration, Instant};
use support::cluster::{eventually, known_on, two_nodes};
use support::postgres::Postgres;
use support::{Client, Reply, TestServer};

const PATH: &str = "/opale/v1/entreprises/732829320/declarations?annee=2024";
/// How soon after PostgreSQL settles the commit both nodes must agree.
const CONVERGENCE: Duration = Duration::from_secs(1);

async fn data(s: &TestServer, c: &Client, token: &str) -> Reply {
    s.data_call_with_token(Sandbox, &c.cert, token, PATH).await
}

/// Makes every COMMIT wait for a standby that never comes; returns once a
/// commit of the test's own is seen waiting (the checkpointer applies the
/// setting a moment after `pg_reload_conf`). The waiting probes complete
/// when [`release_commits`] resets it.
async fn hold_commits(pg: &Postgres) {
    pg.execute("CREATE TABLE IF NOT EXISTS held_probe (n int)")
        .await;
    pg.execute("ALTER SYSTEM SET synchronous_standby_names = 'nonexistent'")
        .await;
    pg.execute("SELECT pg_reload_conf()").await;
    let held = eventually(Duration::from_secs(10), || async {
        let (client, conn) = tokio_postgres::connect(&pg.url(), tokio_postgres::NoTls)
            .await
            .unwrap();
        tokio::spawn(conn);
        // A commit that wrote WAL waits for the standby.
        let probe = tokio::spawn(async move {
            client
                .batch_execute("INSERT INTO held_probe VALUES (1)")
                .await
        });
        tokio::time::sleep(Duration::from_millis(300)).await;
        !probe.is_finished()
    })
    .await;
    assert!(held, "synchronous_standby_names did not hold a COMMIT back");
}

async fn release_commits(pg: &Postgres) {
    pg.execute("ALTER SYSTEM RESET synchronous_standby_names")
        .await;
    pg.execute("SELECT pg_reload_conf()").await;
}

#[tokio::test]
async fn a_commit_past_the_call_timeout_is_unknown_and_both_nodes_converge() {
    let pg = Postgres::start().await;
    let dir_b = tempfile::tempdir().unwrap();
    let (a, b) = two_nodes(&pg, dir_b.path()).await;
    let c = a.client(Sandbox).await;
    assert!(
        known_on(&b, &c).await,
        "node B did not learn the application"
    );
    let (token_a, token_b) = (
        a.token(Sandbox, &c.cert, &c.id).await,
        b.token(Sandbox, &c.cert, &c.id).await,
    );
    assert_eq!(data(&a, &c, &token_a).await.status, 200);
    assert_eq!(data(&b, &c, &token_b).await.status, 200);

    hold_commits(&pg).await;
    let started = Instant::now();
    let patched = a
        .admin_call(
            Method::PATCH,
            &format!("/admin/v1/applications/{}", c.id),
            Some(json!({"status": "suspended"})),
        )
        .await;
    let answered_after = started.elapsed();
    // Nothing is visible yet: node B still serves the application.
    let b_meanwhile = data(&b, &c, &token_b).await;

    release_commits(&pg).await;
    let settled = Instant::now();
    let codes = || async {
        (
            data(&a, &c, &token_a).await.code(),
            data(&b, &c, &token_b).await.code(),
        )
    };
    let converged = eventually(CONVERGENCE, || async {
        codes().await == ("910402".into(), "910402".into())
    })
    .await;
    let converged_after = settled.elapsed();
    let now = codes().await;

    let message = patched.body["error"]["message"].as_str().unwrap_or("");
    let said_unknown = patched.status == 503
        && message.contains("unknown")
        && !message.contains("nothing was changed");
    assert!(
        said_unknown && converged,
        "PATCH answered after {answered_after:?}: {} {:?}\n\
         node B while the COMMIT waited: {} {}\n\
         converged within {CONVERGENCE:?}: {converged} (checked for {converged_after:?}); \
         codes now (A, B): {now:?}",
        patched.status,
        patched.body,
        b_meanwhile.status,
        b_meanwhile.code(),
    );
    assert_eq!(b_meanwhile.status, 200, "{:?}", b_meanwhile.body);
}
