//! Expiry notices across three gateway nodes on one real PostgreSQL,
//! sharing one real SMTP receiver (docs/contract.md §10: one mail per
//! notice for the whole cluster; docs/notices.md "Several nodes"): each
//! node claims a notice in the store before sending it and marks it sent
//! after, so a certificate expiring in 20 days yields exactly one mail,
//! listed as sent on every node; and a claim left by a node that died
//! between claim and send is taken over by another node once its lease
//! has passed, still one mail — both for a claim row written as a dead
//! node would have left it, and for a real `serve` process killed with
//! SIGKILL while its SMTP conversation hangs.
// A test crate: its helpers may unwrap like its #[test] functions.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use hyper::Method;
use opale_apim::config::{Config, SmtpUrl};
use opale_apim::domain::Environment::Sandbox;
use opale_apim::notify::{Claim, Notices};
use opale_apim::registry::Registry;
use opale_apim::store::{PgStore, Store};
use serde_json::Value;
use std::sync::Arc;
use std::time::{Duration as StdDuration, Instant};
use support::TestServer;
use support::cluster::{NodeProcess, PROPAGATION, eventually, first_node, peer_node};
use support::pki::Identity;
use support::postgres::Postgres;
use support::smtp::{Sink, python};
use time::{Duration, OffsetDateTime};

/// A node mailing through the receiver on `port`, a pass every `every`
/// seconds.
fn relay(port: u16, every: u64) -> impl Fn(&mut Config) + Send + Sync + 'static {
    move |c| {
        c.notify.check_interval_secs = every;
        c.notify.smtp_url = Some(SmtpUrl::parse(&format!("smtp://127.0.0.1:{port}")).unwrap());
    }
}

/// Registers a certificate of `client_id` expiring `days` from now.
async fn cert_expiring(s: &TestServer, client_id: &str, days: i64) -> Identity {
    let now = OffsetDateTime::now_utc();
    let id = s.pki.partner_valid(
        Sandbox,
        &format!("notice-{days}d"),
        now - Duration::days(1),
        now + Duration::days(days),
    );
    assert_eq!(s.register(client_id, &id).await.status, 201);
    id
}

/// `GET /admin/v1/notices?partner_id=` on `s`.
async fn notices(s: &TestServer, partner: &str) -> Vec<Value> {
    let path = format!("/admin/v1/notices?partner_id={partner}");
    let r = s.admin_call(Method::GET, &path, None).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    r.body.as_array().unwrap().clone()
}

/// Whether `s` lists exactly one notice of `partner`, sent.
async fn lists_one_sent(s: &TestServer, partner: &str) -> bool {
    let list = notices(s, partner).await;
    list.len() == 1 && list[0]["delivery"] == "sent"
}

/// The notice-sent records of `partner` in the cluster's trail.
async fn sent_records(s: &TestServer, partner: &str) -> usize {
    let path = format!("/admin/v1/trace?partner_id={partner}");
    let r = s.admin_call(Method::GET, &path, None).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let records = r.body.as_array().unwrap();
    (records.iter())
        .filter(|e| e["action"]["kind"] == "notice_sent")
        .count()
}

#[tokio::test]
async fn three_nodes_mail_a_notice_once() {
    let sink = Sink::start(python(), 0);
    let pg = Postgres::start().await;
    let (dir_b, dir_c) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let a = first_node(&pg, relay(sink.port, 1)).await;
    let b = peer_node(&a, &pg.url(), "node-b", dir_b.path(), relay(sink.port, 1)).await;
    let c = peer_node(&a, &pg.url(), "node-c", dir_c.path(), relay(sink.port, 1)).await;
    let partner = a.partner().await;
    let (client_id, _) = a.application(&partner, Sandbox).await;
    let soon = cert_expiring(&a, &client_id, 20).await;

    let mail = sink.wait_for(1).await;
    assert!(mail[0]["body"].as_str().unwrap().contains(&soon.thumbprint));
    assert!(mail[0]["subject"].as_str().unwrap().contains("30 jours"));
    // Every node runs a pass each second: several more passes each.
    tokio::time::sleep(StdDuration::from_secs(4)).await;
    assert_eq!(sink.messages().len(), 1, "{:?}", sink.messages());

    for node in [&a, &b, &c] {
        let listed = eventually(PROPAGATION, || lists_one_sent(node, &partner)).await;
        assert!(listed, "{:?}", notices(node, &partner).await);
    }
    let on_a = notices(&a, &partner).await;
    assert_eq!(
        (notices(&b, &partner).await, notices(&c, &partner).await),
        (on_a.clone(), on_a.clone())
    );
    let sender = on_a[0]["claimed_by"].as_str().unwrap();
    assert!(["node-a", "node-b", "node-c"].contains(&sender), "{on_a:?}");
    assert_eq!(on_a[0]["attempts"], 1, "{on_a:?}");
    let traced = eventually(PROPAGATION, || async {
        sent_records(&c, &partner).await == 1
    })
    .await;
    assert!(traced, "one notice_sent record in the cluster's trail");
}

#[tokio::test]
async fn a_claim_left_by_a_dead_node_is_sent_by_another_after_its_lease() {
    let sink = Sink::start(python(), 0);
    let pg = Postgres::start().await;
    // Node A runs its one pass at start, before the certificate exists.
    let a = first_node(&pg, relay(sink.port, 3600)).await;
    let partner = a.partner().await;
    let (client_id, _) = a.application(&partner, Sandbox).await;
    let soon = cert_expiring(&a, &client_id, 20).await;

    // A node that claims the notice, as the notice pass does, and dies
    // before sending it: its claim stays in PostgreSQL with its lease.
    let lease = Duration::seconds(6);
    let url = pg.url();
    let (claim, lease_ends) = {
        let store: Arc<dyn Store> = Arc::new(PgStore::open(&url, 2, "node-gone").await.unwrap());
        let registry = Registry::open(store.clone()).await.unwrap();
        let now = OffsetDateTime::now_utc();
        let due = opale_apim::notify::due(&registry.snapshot(), now);
        assert_eq!(due.len(), 1, "{due:?}");
        let notices = Notices::open(store).await.unwrap();
        let claim = notices
            .claim(&due[0], "node-gone", now, lease)
            .await
            .unwrap();
        (
            claim,
            Instant::now() + StdDuration::try_from(lease).unwrap(),
        )
    };
    let Claim::Won(claimed) = claim else {
        panic!("the dead node's claim: {claim:?}")
    };
    assert_eq!(claimed.object_id, soon.thumbprint);

    let (dir_b, dir_c) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let b = peer_node(&a, &pg.url(), "node-b", dir_b.path(), relay(sink.port, 1)).await;
    let c = peer_node(&a, &pg.url(), "node-c", dir_c.path(), relay(sink.port, 1)).await;
    // While the lease holds, B and C leave the notice to its claimer.
    while Instant::now() + StdDuration::from_millis(500) < lease_ends {
        assert!(sink.messages().is_empty(), "sent during the lease");
        tokio::time::sleep(StdDuration::from_millis(100)).await;
    }
    let mail = sink.wait_for(1).await;
    assert!(Instant::now() >= lease_ends, "sent before the lease ended");
    assert!(mail[0]["body"].as_str().unwrap().contains(&soon.thumbprint));
    tokio::time::sleep(StdDuration::from_secs(3)).await;
    assert_eq!(sink.messages().len(), 1, "{:?}", sink.messages());

    // Listed as sent on every node, A included (it ran no pass since).
    for node in [&a, &b, &c] {
        let listed = eventually(PROPAGATION, || lists_one_sent(node, &partner)).await;
        assert!(listed, "{:?}", notices(node, &partner).await);
    }
    let on_a = notices(&a, &partner).await;
    let sender = on_a[0]["claimed_by"].as_str().unwrap();
    assert!(["node-b", "node-c"].contains(&sender), "{on_a:?}");
    assert_eq!(on_a[0]["attempts"], 2, "the dead node's attempt counts");
}

/// A relay that accepts connections and never says a word: a node
/// sending through it hangs in the SMTP greeting (for 30 s). Returns its
/// port and how many connections it accepted so far.
fn black_hole() -> (u16, Arc<std::sync::atomic::AtomicUsize>) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let accepted = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let count = accepted.clone();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for stream in listener.incoming().flatten() {
            count.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            held.push(stream);
        }
    });
    (port, accepted)
}

#[tokio::test]
async fn a_node_killed_between_claim_and_send_leaves_the_notice_to_another() {
    let sink = Sink::start(python(), 0);
    let pg = Postgres::start().await;
    // Node A runs its one pass at start, before the certificate exists.
    let a = first_node(&pg, relay(sink.port, 3600)).await;
    let partner = a.partner().await;
    let (client_id, _) = a.application(&partner, Sandbox).await;
    let soon = cert_expiring(&a, &client_id, 20).await;

    // Node X, a real `serve` process whose relay never answers: its pass
    // at start claims the notice (6 s lease) and hangs sending it.
    let (hole, accepted) = black_hole();
    let dir_x = tempfile::tempdir().unwrap();
    let x = NodeProcess::spawn_with(&a, &pg.url(), "node-x", dir_x.path(), |t| {
        let notify = toml::Table::from_iter([
            (
                "smtp_url".to_owned(),
                toml::Value::String(format!("smtp://127.0.0.1:{hole}")),
            ),
            ("check_interval_secs".to_owned(), toml::Value::Integer(3600)),
            ("claim_lease_secs".to_owned(), toml::Value::Integer(6)),
        ]);
        t.insert("notify".into(), toml::Value::Table(notify));
    });
    let claimed_by_x = eventually(StdDuration::from_secs(15), || async {
        let list = notices(&a, &partner).await;
        list.len() == 1
            && list[0]["claimed_by"] == "node-x"
            && list[0]["delivery"] != "sent"
            && accepted.load(std::sync::atomic::Ordering::SeqCst) > 0
    })
    .await;
    assert!(
        claimed_by_x,
        "node X claims and starts sending: {:?}",
        notices(&a, &partner).await
    );
    let lease_ends = notices(&a, &partner).await[0]["claim_expires_at"]
        .as_str()
        .map(|t| OffsetDateTime::parse(t, &time::format_description::well_known::Rfc3339).unwrap())
        .expect("the claim's lease");
    x.kill9();

    let (dir_b, dir_c) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let b = peer_node(&a, &pg.url(), "node-b", dir_b.path(), relay(sink.port, 1)).await;
    let c = peer_node(&a, &pg.url(), "node-c", dir_c.path(), relay(sink.port, 1)).await;
    let mail = sink.wait_for(1).await;
    assert!(
        OffsetDateTime::now_utc() >= lease_ends,
        "sent before the dead node's lease ended ({lease_ends})"
    );
    assert!(mail[0]["body"].as_str().unwrap().contains(&soon.thumbprint));
    tokio::time::sleep(StdDuration::from_secs(3)).await;
    assert_eq!(sink.messages().len(), 1, "{:?}", sink.messages());
    for node in [&a, &b, &c] {
        let listed = eventually(PROPAGATION, || lists_one_sent(node, &partner)).await;
        assert!(listed, "{:?}", notices(node, &partner).await);
    }
    let on_a = notices(&a, &partner).await;
    let sender = on_a[0]["claimed_by"].as_str().unwrap();
    assert!(["node-b", "node-c"].contains(&sender), "{on_a:?}");
    assert_eq!(on_a[0]["attempts"], 2, "the killed node's attempt counts");
}
