//! PostgreSQL away from the first second (docs/contract.md §10, issue 18):
//! two nodes on one PostgreSQL, a probe calling a data route on each node
//! every 100 ms. PostgreSQL stopped (connections refused) or frozen
//! (SIGSTOP: connections open, nothing answers): every probe answers 200
//! within 250 ms until `max_staleness_secs`, then 503 910605, still at
//! once; `/token` is refused past the cut-off like data calls; admin writes
//! answer 503; PostgreSQL back, everything resumes without a restart.
//!
//! The 250 ms bound is the contract's, measured per probe from the request
//! to the end of the response on a connection kept open (no handshake in
//! it). It holds in a debug build on a loaded 2-core machine; scripts/test.sh
//! runs it in release anyway.
// A test crate: its helpers may unwrap like its #[test] functions.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use hyper::Method;
use opale_apim::config::Config;
use opale_apim::domain::Environment::Sandbox;
use serde_json::json;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use support::cluster::{eventually, first_node, known_on, peer_node};
use support::postgres::Postgres;
use support::{Client, Conn, TestServer, correlation_id};
use tokio::task::JoinHandle;

const PATH: &str = "/opale/v1/entreprises/732829320/declarations?annee=2024";
/// `cluster.max_staleness_secs` of both nodes.
const STALENESS: Duration = Duration::from_secs(4);
/// The longest a data call may take because PostgreSQL stopped answering.
const BOUND: Duration = Duration::from_millis(250);
/// Time between two probes of one node.
const EVERY: Duration = Duration::from_millis(100);
/// Slack around the cut-off: the last contact with PostgreSQL may come a
/// moment before the outage starts (1 s heartbeat) or after (a stopping
/// server still answers for a moment).
const SLACK: Duration = Duration::from_millis(1500);

/// How PostgreSQL goes away.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outage {
    /// Stopped: connections closed, new ones refused.
    Stopped,
    /// Frozen with SIGSTOP: nothing answers, nothing is refused.
    Frozen,
}

/// One probe as the caller saw it.
#[derive(Debug, Clone)]
struct Probe {
    node: &'static str,
    sent: Instant,
    latency: Duration,
    /// The status, or the transport error.
    answer: Result<(u16, String), String>,
}

impl Probe {
    fn is(&self, status: u16, code: &str) -> bool {
        matches!(&self.answer, Ok((s, c)) if *s == status && c == code)
    }

    /// Still waiting at check time: judged by its latency so far only (a
    /// probe sent a moment before the check has no answer yet).
    fn is_waiting(&self) -> bool {
        matches!(&self.answer, Err(e) if e == "waiting")
    }
}

/// The probes of every node, running until stopped.
struct Probes {
    stop: Arc<AtomicBool>,
    log: Arc<Mutex<Vec<Probe>>>,
    /// The probe each node is waiting for, if any: when it was sent.
    waiting: Vec<(&'static str, Arc<Mutex<Option<Instant>>>)>,
    tasks: Vec<JoinHandle<()>>,
}

impl Probes {
    fn start(nodes: &[(&'static str, &TestServer)], c: &Client, token: &str) -> Probes {
        let (stop, log) = (Arc::new(AtomicBool::new(false)), Arc::default());
        let (mut tasks, mut waiting) = (Vec::new(), Vec::new());
        for (name, node) in nodes {
            let config = support::client_config(&node.pki.files.ca_pem(), Some(&c.cert));
            let run = ProbeRun {
                node: name,
                addr: node.sandbox,
                config,
                bearer: format!("Bearer {token}"),
                stop: Arc::clone(&stop),
                log: Arc::clone(&log),
                waiting: Arc::default(),
            };
            waiting.push((*name, Arc::clone(&run.waiting)));
            tasks.push(tokio::spawn(run.run()));
        }
        Probes {
            stop,
            log,
            waiting,
            tasks,
        }
    }

    /// The probes so far, and one per node still waiting for its answer
    /// (its latency so far, answer `Err("waiting")`).
    fn log_now(&self) -> Vec<Probe> {
        let mut log = self.log();
        for (node, waiting) in &self.waiting {
            if let Some(sent) = *waiting.lock().unwrap() {
                log.push(Probe {
                    node,
                    sent,
                    latency: sent.elapsed(),
                    answer: Err("waiting".into()),
                });
            }
        }
        log
    }

    /// The probes so far.
    fn log(&self) -> Vec<Probe> {
        self.log.lock().unwrap().clone()
    }

    /// The last probe of `node` was answered `status`/`code`.
    fn last_is(&self, node: &str, status: u16, code: &str) -> bool {
        let log = self.log.lock().unwrap();
        log.iter()
            .rev()
            .find(|p| p.node == node)
            .is_some_and(|p| p.is(status, code))
    }

    async fn stop(self) {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.tasks {
            t.await.unwrap();
        }
    }
}

/// One node's probe.
struct ProbeRun {
    node: &'static str,
    addr: SocketAddr,
    config: Arc<rustls::ClientConfig>,
    bearer: String,
    stop: Arc<AtomicBool>,
    log: Arc<Mutex<Vec<Probe>>>,
    waiting: Arc<Mutex<Option<Instant>>>,
}

impl ProbeRun {
    async fn run(self) {
        let mut conn = Conn::open(self.addr, self.config.clone()).await.ok();
        let mut tick = tokio::time::interval(EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        while !self.stop.load(Ordering::Relaxed) {
            tick.tick().await;
            let sent = Instant::now();
            *self.waiting.lock().unwrap() = Some(sent);
            let answer = self.call(&mut conn).await;
            let latency = sent.elapsed();
            *self.waiting.lock().unwrap() = None;
            self.log.lock().unwrap().push(Probe {
                node: self.node,
                sent,
                latency,
                answer,
            });
        }
    }

    /// One data call on the kept connection (opened again after an error).
    async fn call(&self, conn: &mut Option<Conn>) -> Result<(u16, String), String> {
        if conn.is_none() {
            let opened = Conn::open(self.addr, self.config.clone()).await;
            *conn = Some(opened.map_err(|e| format!("connect: {e}"))?);
        }
        let Some(open) = conn.as_mut() else {
            return Err("no connection".into());
        };
        let cid = correlation_id();
        let h = [
            ("x-correlation-id", cid.as_str()),
            ("authorization", self.bearer.as_str()),
        ];
        match open.try_reply(PATH, &h).await {
            Ok(r) => Ok((r.status.as_u16(), r.code())),
            Err(e) => {
                *conn = None;
                Err(e.to_string())
            }
        }
    }
}

/// `POST /token` (tls_client_auth) on `node`: the status and the body.
async fn token_on(node: &TestServer, c: &Client) -> (u16, serde_json::Value) {
    let form = format!("grant_type=client_credentials&client_id={}", c.id);
    let r = node
        .token_request(Sandbox, Some(&c.cert), None, &form)
        .await;
    (r.status.as_u16(), r.body)
}

/// An admin write: a new partner.
async fn write_partner(node: &TestServer) -> u16 {
    let body = json!({"siren": support::fresh_siren(), "name": "Outage SA",
        "contacts": {"technique": {"nom": "Jeanne Dupont", "email": "jd@example.fr"}}});
    node.admin_call(Method::POST, "/admin/v1/partners", Some(body))
        .await
        .status
        .as_u16()
}

/// The probes of the outage, checked against the contract; returns the
/// slowest probe's latency.
fn check_outage(log: &[Probe], begun: Instant) -> Duration {
    let during: Vec<&Probe> = log.iter().filter(|p| p.sent >= begun).collect();
    let slow: Vec<&&Probe> = during.iter().filter(|p| p.latency > BOUND).collect();
    assert!(
        slow.is_empty(),
        "{} of {} probes took more than {BOUND:?} during the outage: {slow:?}",
        slow.len(),
        during.len()
    );
    let answered: Vec<&Probe> = during.iter().copied().filter(|p| !p.is_waiting()).collect();
    let failed: Vec<&&Probe> = answered.iter().filter(|p| p.answer.is_err()).collect();
    assert!(failed.is_empty(), "probes without an answer: {failed:?}");
    let served_until = begun + STALENESS - SLACK;
    let refused_from = begun + STALENESS + SLACK;
    for p in &answered {
        if p.sent < served_until {
            assert!(p.is(200, ""), "before the cut-off: {p:?}");
        } else if p.sent >= refused_from {
            assert!(p.is(503, "910605"), "past the cut-off: {p:?}");
        } else {
            assert!(p.is(200, "") || p.is(503, "910605"), "{p:?}");
        }
    }
    for node in ["node-a", "node-b"] {
        let refused = during
            .iter()
            .filter(|p| p.node == node && p.sent >= refused_from)
            .count();
        assert!(refused >= 5, "{node}: {refused} probes past the cut-off");
    }
    let mut slowest: Vec<&&Probe> = during.iter().collect();
    slowest.sort_by_key(|p| std::cmp::Reverse(p.latency));
    for p in slowest.iter().take(5) {
        let at = p.sent.duration_since(begun);
        eprintln!("  {} at +{at:?}: {:?} {:?}", p.node, p.latency, p.answer);
    }
    slowest.first().map(|p| p.latency).unwrap_or_default()
}

async fn outage(kind: Outage) {
    let mut pg = Postgres::start().await;
    let staleness = |c: &mut Config| c.cluster.max_staleness_secs = STALENESS.as_secs();
    // A's responses wait for PostgreSQL (at most 100 ms, then not at all
    // while shipping is late), B's only for its disk (the default).
    let a = first_node(&pg, move |c| {
        staleness(c);
        c.cluster.trail_wait = opale_apim::config::TrailWait::Postgres;
    })
    .await;
    let dir_b = tempfile::tempdir().unwrap();
    let b = peer_node(&a, &pg.url(), "node-b", dir_b.path(), staleness).await;
    // A quota the probes never reach (10 calls/s on each node).
    let grants = json!([{"scope": "declarations", "years": [2024]}]);
    let c = a.client_with(Sandbox, grants, 100_000).await;
    assert!(known_on(&b, &c).await, "node B does not know the client");
    let token = a.token(Sandbox, &c.cert, &c.id).await;

    let probes = Probes::start(&[("node-a", &a), ("node-b", &b)], &c, &token);
    tokio::time::sleep(Duration::from_secs(1)).await;
    let before = probes.log();
    assert!(
        before.len() >= 10 && before.iter().all(|p| p.is(200, "")),
        "with PostgreSQL up: {before:?}"
    );

    let begun = Instant::now();
    match kind {
        Outage::Stopped => tokio::task::block_in_place(|| pg.stop()),
        Outage::Frozen => pg.freeze(),
    }
    // An admin write during the outage (frozen: it waits for the store's
    // call bound), while the probes run past the cut-off.
    let past_cut_off = tokio::time::sleep_until((begun + STALENESS + SLACK * 2).into());
    let (written, ()) = tokio::join!(write_partner(&a), past_cut_off);
    assert_eq!(written, 503, "an admin write with PostgreSQL {kind:?}");
    let slowest = check_outage(&probes.log_now(), begun);
    eprintln!("PostgreSQL {kind:?}: slowest probe {slowest:?} (bound {BOUND:?})");
    for node in [&a, &b] {
        let (status, body) = token_on(node, &c).await;
        assert_eq!(
            (status, body["error"].as_str()),
            (503, Some("temporarily_unavailable")),
            "/token past max_staleness_secs: {body}"
        );
    }

    match kind {
        Outage::Stopped => pg.launch().await,
        Outage::Frozen => pg.thaw(),
    }
    let served = eventually(Duration::from_secs(20), || async {
        probes.last_is("node-a", 200, "") && probes.last_is("node-b", 200, "")
    })
    .await;
    assert!(
        served,
        "data calls not served again: {:?}",
        probes.log().last()
    );
    for node in [&a, &b] {
        let (status, body) = token_on(node, &c).await;
        assert_eq!(status, 200, "/token with PostgreSQL back: {body}");
    }
    let back = eventually(Duration::from_secs(15), || async {
        write_partner(&b).await == 201
    })
    .await;
    assert!(back, "admin writes did not work again");
    probes.stop().await;
    for node in [&a, &b] {
        let shipped = eventually(Duration::from_secs(15), || async {
            node.metric("opale_trail_unshipped").await == 0.0
        })
        .await;
        if !shipped {
            for m in [
                "opale_trail_unshipped",
                "opale_trail_shipping_up",
                "opale_trail_shipping_late",
            ] {
                eprintln!("{m}: {}", node.metric(m).await);
            }
        }
        assert!(
            shipped,
            "the records of the outage did not reach PostgreSQL"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_stopped_data_calls_served_at_once_until_max_staleness_then_910605() {
    outage(Outage::Stopped).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_frozen_data_calls_served_at_once_until_max_staleness_then_910605() {
    outage(Outage::Frozen).await;
}
