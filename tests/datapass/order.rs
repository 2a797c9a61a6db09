//! Events apply in `fired_at` order per request (the last one applied is
//! kept in the registry, on sled and on PostgreSQL, across restarts), and
//! an `approve` lifts only the suspension DataPass's own `revoke` made.

use super::support::TestServer;
use super::support::cluster::{PROPAGATION, eventually, first_node, peer_node};
use super::support::postgres::Postgres;
use super::*;
use std::time::Duration;

/// Unix seconds `offset` seconds from now.
fn now(offset: i64) -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp() + offset
}

/// A superseded delivery: 200, `applied: false`, nothing named.
fn superseded(r: &Reply) {
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(r.body["applied"], false, "{:?}", r.body);
    assert!(r.body.get("token_id").is_none(), "{:?}", r.body);
    let reason = r.body["reason"].as_str().unwrap();
    assert!(reason.contains("not later than"), "{reason}");
}

async fn status(s: &TestServer, client_id: &str) -> (Value, Value) {
    let app = application(s, client_id).await;
    (app["status"].clone(), app["suspended_by"].clone())
}

async fn patch_status(s: &TestServer, client_id: &str, status: &str) {
    let path = format!("/admin/v1/applications/{client_id}");
    let r = s
        .admin_call(Method::PATCH, &path, Some(json!({ "status": status })))
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
}

/// Issue 17: a replayed `approve` set the application active again after
/// DataPass had revoked it.
#[tokio::test]
async fn a_replayed_approve_does_not_undo_a_revoke() {
    let s = server().await;
    let approve = body(APPROVE, Sandbox, None);
    let client_id = token_id(&deliver(&s, &approve, None).await);
    let revoke = body(REVOKE, Sandbox, Some(APPROVED_AT + 100));
    token_id(&deliver(&s, &revoke, None).await);
    let apps = list(&s, "/admin/v1/applications").await;

    superseded(&deliver(&s, &approve, None).await);
    assert_eq!(
        list(&s, "/admin/v1/applications").await,
        apps,
        "nothing written"
    );
    let suspended = (json!("suspended"), json!("datapass"));
    assert_eq!(status(&s, &client_id).await, suspended);
    // Another event of the same second cannot be ordered: superseded too.
    let same_second = body(APPROVE, Sandbox, Some(APPROVED_AT + 100));
    superseded(&deliver(&s, &same_second, None).await);
    assert_eq!(status(&s, &client_id).await, suspended);

    let trace = list(&s, &format!("/admin/v1/trace?client_id={client_id}")).await;
    let detail = trace[0]["detail"].as_str().unwrap();
    assert!(detail.contains("superseded"), "{detail}");
    assert_eq!(trace[0]["admin"]["after"], json!({}));
}

/// DataPass's normal flow: revoked, then approved again later; a replay
/// of the old revoke cuts nothing off afterwards.
#[tokio::test]
async fn a_later_approve_lifts_datapass_own_suspension() {
    let s = server().await;
    let client_id = token_id(&deliver(&s, &body(APPROVE, Sandbox, Some(now(-120))), None).await);
    let (cert, old_token) = callable(&s, &client_id).await;
    let revoke = body(REVOKE, Sandbox, Some(now(-60)));
    token_id(&deliver(&s, &revoke, None).await);
    let again = deliver(&s, &body(APPROVE, Sandbox, Some(now(0))), None).await;
    assert_eq!(token_id(&again), client_id, "the same application");
    assert_eq!(status(&s, &client_id).await, (json!("active"), Value::Null));

    let data = data_path();
    let r = s
        .data_call_with_token(Sandbox, &cert, &old_token, &data)
        .await;
    assert_eq!(
        r.code(),
        "900901",
        "tokens issued before the revoke stay revoked"
    );
    // The revocation covers its whole second: ask for a token after it.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let token = s.token(Sandbox, &cert, &client_id).await;
    let r = s.data_call_with_token(Sandbox, &cert, &token, &data).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    superseded(&deliver(&s, &revoke, None).await);
    let r = s.data_call_with_token(Sandbox, &cert, &token, &data).await;
    assert_eq!(
        r.status, 200,
        "a superseded revoke revokes no token: {:?}",
        r.body
    );
    assert_eq!(status(&s, &client_id).await, (json!("active"), Value::Null));
}

#[tokio::test]
async fn an_approve_never_lifts_an_admin_suspension() {
    let s = server().await;
    let approve = body(APPROVE, Sandbox, None);
    let client_id = token_id(&deliver(&s, &approve, None).await);
    patch_status(&s, &client_id, "suspended").await;
    let by_admin = (json!("suspended"), json!("admin"));
    assert_eq!(status(&s, &client_id).await, by_admin);

    // The same delivery again: answered as before, nothing done.
    assert_eq!(token_id(&deliver(&s, &approve, None).await), client_id);
    assert_eq!(status(&s, &client_id).await, by_admin);
    // A later approval applies (grants, validity) but does not resume.
    let later = body(APPROVE, Sandbox, Some(APPROVED_AT + 86_400 * 400));
    assert_eq!(token_id(&deliver(&s, &later, None).await), client_id);
    let app = application(&s, &client_id).await;
    assert_eq!(
        (&app["status"], &app["suspended_by"]),
        (&by_admin.0, &by_admin.1)
    );
    assert_eq!(app["valid_until"], "2025-12-31", "extended");
    // A revoke in between does not make it DataPass's suspension.
    let revoke = body(REVOKE, Sandbox, Some(APPROVED_AT + 86_400 * 500));
    token_id(&deliver(&s, &revoke, None).await);
    let latest = body(APPROVE, Sandbox, Some(APPROVED_AT + 86_400 * 600));
    token_id(&deliver(&s, &latest, None).await);
    assert_eq!(status(&s, &client_id).await, by_admin);
    // Only an admin resumes it.
    patch_status(&s, &client_id, "active").await;
    assert_eq!(status(&s, &client_id).await, (json!("active"), Value::Null));
}

#[tokio::test]
async fn an_approve_never_lifts_an_abuse_suspension() {
    let s = TestServer::start_with(|c| {
        with_secret(c);
        c.abuse.denial_burst = 3;
        c.abuse.auto_suspend = true;
        c.abuse.auto_suspend_kinds = vec![opale_apim::abuse::Kind::DenialBurst];
    })
    .await;
    let approve = body(APPROVE, Sandbox, Some(now(-60)));
    let client_id = token_id(&deliver(&s, &approve, None).await);
    let (cert, token) = callable(&s, &client_id).await;
    // Ten years ago is not granted (N-3..N-1): rights denials.
    let year = time::OffsetDateTime::now_utc().year() - 10;
    let not_granted = format!("/opale/v1/entreprises/732829320/declarations?annee={year}");
    for _ in 0..3 {
        let r = s
            .data_call_with_token(Sandbox, &cert, &token, &not_granted)
            .await;
        assert_eq!(r.status, 403, "{:?}", r.body);
    }
    let by_abuse = (json!("suspended"), json!("abuse"));
    assert_eq!(status(&s, &client_id).await, by_abuse);

    let later = body(APPROVE, Sandbox, Some(now(0)));
    assert_eq!(token_id(&deliver(&s, &later, None).await), client_id);
    assert_eq!(status(&s, &client_id).await, by_abuse);
    let r = s
        .data_call_with_token(Sandbox, &cert, &token, &data_path())
        .await;
    assert_eq!(r.code(), "910402", "still refused: {:?}", r.body);
}

/// A revoke that arrives before the approval it follows (DataPass
/// retried the approval later) wins: the late approval creates nothing.
#[tokio::test]
async fn an_older_approve_after_a_revoke_creates_nothing() {
    let s = server().await;
    let revoke = body(REVOKE, Sandbox, None);
    let r = deliver(&s, &revoke, None).await;
    assert_eq!(
        (r.status.as_u16(), &r.body),
        (200, &json!({"applied": true}))
    );
    superseded(&deliver(&s, &body(APPROVE, Sandbox, None), None).await);
    assert_eq!(list(&s, "/admin/v1/applications").await, json!([]));
    assert_eq!(list(&s, "/admin/v1/partners").await, json!([]));
}

#[tokio::test]
async fn the_last_event_applied_survives_a_restart() {
    let s = server().await;
    let approve = body(APPROVE, Sandbox, None);
    let client_id = token_id(&deliver(&s, &approve, None).await);
    token_id(&deliver(&s, &body(REVOKE, Sandbox, None), None).await);
    let s = s.restart().await;
    superseded(&deliver(&s, &approve, None).await);
    assert_eq!(status(&s, &client_id).await.0, "suspended");
}

/// On PostgreSQL the last event applied is shared by every node: a
/// revoke received by one node supersedes a replay received by another.
#[tokio::test]
async fn nodes_of_a_cluster_share_the_last_event_applied() {
    let pg = Postgres::start().await;
    let dir_b = tempfile::tempdir().unwrap();
    let a = first_node(&pg, with_secret).await;
    let b = peer_node(&a, &pg.url(), "node-b", dir_b.path(), with_secret).await;
    let approve = body(APPROVE, Sandbox, None);
    let client_id = token_id(&deliver(&a, &approve, None).await);
    token_id(&deliver(&b, &body(REVOKE, Sandbox, None), None).await);
    let seen = eventually(PROPAGATION, || async {
        status(&a, &client_id).await.0 == "suspended"
    })
    .await;
    assert!(seen, "node A sees node B's revoke");
    superseded(&deliver(&a, &approve, None).await);
    assert_eq!(status(&a, &client_id).await.0, "suspended");
}
