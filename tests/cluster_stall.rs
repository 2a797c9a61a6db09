//! A stalled PostgreSQL slows only what needs it (docs/contract.md §10,
//! issue 18): a session holds an exclusive lock on every table the store
//! and the trail use, so that each statement of the node's pool waits,
//! while sandbox reads (declarations, and creances with claims this
//! partner transmitted) and production reads (through the upstream) go on.
//! None waits more than 250 ms (the contract's bound for a PostgreSQL that
//! stopped answering: only the calls in flight when it stalls wait, for
//! the trail's shipping, 100 ms at most), and their median stays within
//! 2 ms of the same calls with PostgreSQL answering, measured in
//! alternating rounds in one run; an admin write meanwhile waits on the
//! lock (the stall is real), and completes once the lock is released.
//!
//! The p99 goal (within 2 ms of the unstalled run) is a speed target:
//! `scripts/bench-stall.sh` runs this test on a quiet machine with
//! `STALL_P99_BOUND_MS=2`, which adds that assertion (on a loaded 2-core
//! machine the p99 of either run is scheduling noise of 10 ms and more).
// A test crate: its helpers may unwrap like its #[test] functions.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use bytes::Bytes;
use http_body_util::Full;
use hyper::service::service_fn;
use hyper::{Method, Response};
use hyper_util::rt::{TokioExecutor, TokioIo};
use opale_apim::config::UpstreamUrl;
use opale_apim::domain::Environment::{Production, Sandbox};
use serde_json::json;
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use support::cluster::first_node;
use support::postgres::Postgres;
use support::{Client, Conn, TestServer, correlation_id};

const SIREN: &str = "732829320";
/// Calls per round and kind of call.
const CALLS: usize = 300;
/// Rounds of each state (unstalled, stalled), alternating.
const ROUNDS: usize = 3;
/// How much a stall may add to the median.
const BOUND: Duration = Duration::from_millis(2);
/// The longest any call may wait because PostgreSQL stopped answering.
const LONGEST: Duration = Duration::from_millis(250);

/// An upstream data provider on 127.0.0.1:0 answering every read 200.
async fn upstream() -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let answer = service_fn(|_req| async {
                let body = Full::new(Bytes::from_static(br#"{"source":"upstream"}"#));
                let mut resp = Response::new(body);
                resp.headers_mut()
                    .insert("content-type", "application/json".parse().unwrap());
                Ok::<_, std::convert::Infallible>(resp)
            });
            tokio::spawn(
                hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(tcp), answer)
                    .into_owned(),
            );
        }
    });
    addr
}

/// One kind of call: its client, token and path, on its own keep-alive
/// connection.
struct Caller {
    name: &'static str,
    conn: Conn,
    bearer: String,
    path: String,
    /// A piece of the body that proves the right data was served.
    expect: &'static str,
}

impl Caller {
    async fn new(
        node: &TestServer,
        env: opale_apim::domain::Environment,
        (c, token): (&Client, &str),
        (name, dataset, expect): (&'static str, &str, &'static str),
    ) -> Caller {
        Caller {
            name,
            conn: node.connect(node.env_addr(env), Some(&c.cert)).await,
            bearer: format!("Bearer {token}"),
            path: format!("/opale/v1/entreprises/{SIREN}/{dataset}?annee=2024"),
            expect,
        }
    }

    /// One call; its latency.
    async fn call(&mut self) -> Duration {
        let cid = correlation_id();
        let h = [
            ("x-correlation-id", cid.as_str()),
            ("authorization", self.bearer.as_str()),
        ];
        let started = Instant::now();
        let r = self.conn.send(Method::GET, &self.path, &h, None).await;
        let took = started.elapsed();
        assert_eq!(r.status, 200, "{}: {:?}", self.name, r.body);
        assert!(
            String::from_utf8_lossy(&r.raw).contains(self.expect),
            "{}: {}",
            self.name,
            String::from_utf8_lossy(&r.raw)
        );
        took
    }
}

/// The 99th percentile of `samples`.
fn p99(samples: &mut [Duration]) -> Duration {
    samples.sort();
    samples[(samples.len() * 99 / 100).min(samples.len() - 1)]
}

/// A session holding an exclusive lock on the store's and the trail's
/// tables until dropped (its transaction then rolls back).
struct Stall {
    client: tokio_postgres::Client,
}

impl Stall {
    async fn start(pg: &Postgres) -> Stall {
        let client = pg.session().await;
        client
            .batch_execute(
                "BEGIN; LOCK TABLE kv, store_revision, area_revision, trail_nodes, trail_records, \
                 trail_checkpoints, trail_purges IN ACCESS EXCLUSIVE MODE",
            )
            .await
            .unwrap();
        Stall { client }
    }

    async fn end(self) {
        self.client.batch_execute("ROLLBACK").await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_postgresql_leaves_data_calls_at_their_latency() {
    let pg = Postgres::start().await;
    let up = format!("http://{}", upstream().await);
    let node = first_node(&pg, move |c| {
        c.production.upstream = UpstreamUrl(up.parse().unwrap());
    })
    .await;
    let sandbox = node
        .client_with(
            Sandbox,
            json!([
                {"scope": "declarations", "years": [2024]},
                {"scope": "creances", "years": [2024]},
                {"scope": "creances_transmission", "years": [2024]}
            ]),
            1_000_000,
        )
        .await;
    let production = node
        .client_with(
            Production,
            json!([{"scope": "declarations", "years": [2024]}]),
            1_000_000,
        )
        .await;
    let ts = node.token(Sandbox, &sandbox.cert, &sandbox.id).await;
    let tp = node
        .token(Production, &production.cert, &production.id)
        .await;
    // A claim transmitted by this partner: its creances reads merge it.
    let mut conn = node.connect(node.sandbox, Some(&sandbox.cert)).await;
    let (cid, bearer) = (correlation_id(), format!("Bearer {ts}"));
    let sent = conn
        .send(
            Method::POST,
            &format!("/opale/v1/entreprises/{SIREN}/creances"),
            &[
                ("x-correlation-id", cid.as_str()),
                ("authorization", bearer.as_str()),
                ("idempotency-key", "stall-1"),
            ],
            Some(&json!({"annee": 2024, "creances": [
                {"reference": "CR-STALL-1", "montant": "10.00", "date_echeance": "2024-09-30", "impot": "TVA"}
            ]})),
        )
        .await;
    assert_eq!(sent.status, 201, "{:?}", sent.body);

    let mut callers = [
        Caller::new(
            &node,
            Sandbox,
            (&sandbox, &ts),
            ("sandbox declarations", "declarations", "\"annee\""),
        )
        .await,
        Caller::new(
            &node,
            Sandbox,
            (&sandbox, &ts),
            ("sandbox creances", "creances", "CR-STALL-1"),
        )
        .await,
        Caller::new(
            &node,
            Production,
            (&production, &tp),
            ("production declarations", "declarations", "upstream"),
        )
        .await,
    ];
    for caller in callers.iter_mut() {
        for _ in 0..30 {
            caller.call().await;
        }
    }
    let mut free = vec![Vec::new(); callers.len()];
    let mut stalled = vec![Vec::new(); callers.len()];
    for _ in 0..ROUNDS {
        for (i, caller) in callers.iter_mut().enumerate() {
            for _ in 0..CALLS {
                free[i].push(caller.call().await);
            }
        }
        let stall = Stall::start(&pg).await;
        // The stall is real: an admin write waits on the lock.
        let partner = node.partner();
        let write = tokio::time::timeout(Duration::from_millis(500), partner).await;
        assert!(write.is_err(), "an admin write went through the held lock");
        for (i, caller) in callers.iter_mut().enumerate() {
            for _ in 0..CALLS {
                stalled[i].push(caller.call().await);
            }
        }
        stall.end().await;
    }
    let p99s: Vec<(Duration, Duration)> = (0..callers.len())
        .map(|i| (p99(&mut free[i]), p99(&mut stalled[i])))
        .collect();
    let report: Vec<String> = callers
        .iter()
        .enumerate()
        .map(|(i, caller)| {
            let half = free[i].len() / 2;
            format!(
                "{}: p50 {:?} / p99 {:?} free, p50 {:?} / p99 {:?} / max {:?} stalled",
                caller.name,
                free[i][half],
                p99s[i].0,
                stalled[i][half],
                p99s[i].1,
                stalled[i].last().unwrap()
            )
        })
        .collect();
    eprintln!("{report:#?}");
    let p99_bound = std::env::var("STALL_P99_BOUND_MS")
        .ok()
        .map(|ms| Duration::from_millis(ms.parse().expect("STALL_P99_BOUND_MS in ms")));
    for (i, caller) in callers.iter().enumerate() {
        let half = free[i].len() / 2;
        let (f, s) = (free[i][half], stalled[i][half]);
        assert!(
            s <= f + BOUND,
            "{}: median {s:?} with PostgreSQL stalled vs {f:?} without (bound +{BOUND:?}); {report:#?}",
            caller.name
        );
        let longest = *stalled[i].last().unwrap();
        assert!(
            longest <= LONGEST,
            "{}: a call waited {longest:?} with PostgreSQL stalled; {report:#?}",
            caller.name
        );
        if let Some(bound) = p99_bound {
            let (f, s) = p99s[i];
            assert!(
                s <= f + bound,
                "{}: p99 {s:?} with PostgreSQL stalled vs {f:?} without (bound +{bound:?}); {report:#?}",
                caller.name
            );
        }
    }
    // Released: admin writes go through again.
    let written = tokio::time::timeout(Duration::from_secs(15), node.partner()).await;
    assert!(written.is_ok(), "an admin write after the stall");
}
