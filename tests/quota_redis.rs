//! The Redis quota backend (docs/contract.md §10) against a real `redis-server`
//! started by each test on a free port (no persistence, killed on drop):
//! the script's sliding-log semantics, exactness across two gateway nodes
//! sharing nothing but Redis, and both failure policies while Redis is
//! away and after it comes back.
// A test crate: its helpers may unwrap like its #[test] functions.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use hyper::Method;
use opale_apim::config::{Config, QuotaSettings};
use opale_apim::domain::ClientId;
use opale_apim::domain::Environment::{Production, Sandbox};
use opale_apim::quota::Quotas;
use prometheus_client::metrics::counter::Counter;
use redis::aio::MultiplexedConnection;
use serde_json::json;
use std::net::TcpListener;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};
use support::redis_server::RedisServer;
use support::{Client, Reply, TestServer, correlation_id};

const PATH: &str = "/opale/v1/entreprises/732829320/declarations?annee=2024";

/// `[quota]` with the Redis backend at `url` (a generous bound: the test
/// machine is shared; a stopped Redis refuses at once anyway).
fn settings(url: &str, on_failure: &str) -> QuotaSettings {
    let text = format!(
        "[quota]\nbackend = \"redis\"\nurl = \"{url}\"\non_failure = \"{on_failure}\"\ntimeout_ms = 2000\n"
    );
    Config::parse(&text, Path::new("t.toml")).unwrap().quota
}

fn quotas(url: &str) -> Quotas {
    Quotas::from_settings(&settings(url, "closed"), Counter::default()).unwrap()
}

async fn llen(con: &mut MultiplexedConnection, key: &str) -> i64 {
    redis::cmd("LLEN").arg(key).query_async(con).await.unwrap()
}

/// Redis's clock (`TIME`), in microseconds: the script's clock, so the
/// test measures how much of a window passed instead of assuming a bound.
async fn redis_now(con: &mut MultiplexedConnection) -> i64 {
    let (secs, micros): (i64, i64) = redis::cmd("TIME").query_async(con).await.unwrap();
    secs * 1_000_000 + micros
}

/// Whole seconds (rounded up) of Redis's clock since `since`.
async fn secs_since(con: &mut MultiplexedConnection, since: i64) -> u64 {
    let elapsed = redis_now(con).await - since;
    (elapsed.max(0) as u64).div_ceil(1_000_000)
}

/// The `r=` of a RateLimit header.
fn remaining(r: &Reply) -> u32 {
    let v = r.headers["ratelimit"].to_str().unwrap();
    let r = v.split(';').find_map(|p| p.strip_prefix("r=")).unwrap();
    r.parse().unwrap()
}

async fn call(s: &TestServer, c: &Client, token: &str) -> Reply {
    let mut conn = s.connect(s.sandbox, Some(&c.cert)).await;
    let (cid, bearer) = (correlation_id(), format!("Bearer {token}"));
    let h = [
        ("x-correlation-id", cid.as_str()),
        ("authorization", bearer.as_str()),
    ];
    conn.send(Method::GET, PATH, &h, None).await
}

/// A gateway on `redis` with one application of quota `quota`.
async fn gateway(url: &str, on_failure: &'static str, quota: u32) -> (TestServer, Client, String) {
    let q = settings(url, on_failure);
    let s = TestServer::start_with(move |c| c.quota = q.clone()).await;
    let grants = json!([{"scope": "declarations", "years": [2024]}]);
    let c = s.client_with(Sandbox, grants, quota).await;
    let t = s.token(Sandbox, &c.cert, &c.id).await;
    (s, c, t)
}

#[tokio::test]
async fn script_keeps_an_exact_sliding_log() {
    let redis = RedisServer::start();
    let (q, app) = (quotas(&redis.url()), ClientId::new("app-1"));
    let key = "opale:quota:log:sandbox:app-1";
    let mut con = redis.conn().await;
    // The first call leaves the window 60 s after it was made: the reset
    // is 60 s less the whole seconds passed since (measured, not assumed:
    // a loaded machine may take seconds over these calls).
    let first = redis_now(&mut con).await;
    let mut last = first;
    for i in 0..3 {
        last = redis_now(&mut con).await;
        let d = q.take(Sandbox, &app, 3).await.unwrap();
        let passed = secs_since(&mut con, first).await;
        assert!(d.admitted);
        assert_eq!(d.remaining, 2 - i);
        assert!(
            (60u64.saturating_sub(passed)..=60).contains(&d.reset_secs),
            "{d:?} after {passed} s"
        );
    }
    let refused = q.take(Sandbox, &app, 3).await.unwrap();
    let passed = secs_since(&mut con, first).await;
    assert!(!refused.admitted);
    assert_eq!(refused.remaining, 0);
    assert!(
        (60u64.saturating_sub(passed)..=60).contains(&refused.reset_secs),
        "{refused:?}"
    );
    let peeked = q.peek(Sandbox, &app, 3).await.unwrap();
    assert_eq!((peeked.admitted, peeked.remaining), (false, 0));
    assert_eq!(
        llen(&mut con, key).await,
        3,
        "refused calls and peeks are not logged"
    );
    let ttl: i64 = redis::cmd("PTTL")
        .arg(key)
        .query_async(&mut con)
        .await
        .unwrap();
    // 60 s from the newest call, less the time passed since it was sent
    // (and 2 ms for rounding: ours to whole ms, Redis's to its ms clock).
    let since_newest = (redis_now(&mut con).await - last) / 1000 + 2;
    assert!(
        (60_000 - since_newest..=60_000).contains(&ttl),
        "expires with its newest call: {ttl} ms, {since_newest} ms after it"
    );
    // Other applications and environments are independent.
    assert!(q.take(Production, &app, 3).await.unwrap().admitted);
    assert!(
        q.take(Sandbox, &ClientId::new("app-2"), 3)
            .await
            .unwrap()
            .admitted
    );

    // Sliding, by Redis's clock: a call 61 s old is gone, one 50 s old
    // still counts and leaves the window 10 s after it was written, less
    // the whole seconds passed since (10 s of margin for a loaded machine,
    // where a 59.5 s old call had to be read again within 0.5 s).
    let now = redis_now(&mut con).await;
    let _: () = redis::cmd("DEL")
        .arg(key)
        .query_async(&mut con)
        .await
        .unwrap();
    let _: () = redis::cmd("RPUSH")
        .arg(key)
        .arg(now - 61_000_000)
        .arg(now - 50_000_000)
        .query_async(&mut con)
        .await
        .unwrap();
    let d = q.take(Sandbox, &app, 2).await.unwrap();
    let passed = secs_since(&mut con, now).await;
    assert!(d.admitted);
    assert_eq!(d.remaining, 0);
    assert!(
        (10u64.saturating_sub(passed)..=10).contains(&d.reset_secs),
        "{d:?} after {passed} s"
    );
    let d = q.take(Sandbox, &app, 2).await.unwrap();
    assert!(!d.admitted);
    assert_eq!(
        llen(&mut con, key).await,
        2,
        "the 61 s old call was dropped"
    );
}

/// A log whose expired prefix is longer than one read of the script (64
/// entries): every expired call is dropped, every recent one counts, and
/// the oldest recent one gives the reset.
#[tokio::test]
async fn a_long_expired_prefix_is_dropped_whole() {
    let redis = RedisServer::start();
    let (q, app) = (quotas(&redis.url()), ClientId::new("app-1"));
    let key = "opale:quota:log:production:app-1";
    let mut con = redis.conn().await;
    let now = redis_now(&mut con).await;
    let mut push = redis::cmd("RPUSH");
    push.arg(key);
    for i in 0..150 {
        push.arg(now - 70_000_000 + i * 1000);
    }
    for i in 0..3 {
        push.arg(now - 30_000_000 + i * 1000);
    }
    let _: () = push.query_async(&mut con).await.unwrap();
    let d = q.take(Production, &app, 4).await.unwrap();
    let passed = secs_since(&mut con, now).await;
    assert!(d.admitted, "{d:?}");
    assert_eq!(d.remaining, 0, "three recent calls and this one");
    assert!(
        (30u64.saturating_sub(passed)..=30).contains(&d.reset_secs),
        "{d:?} after {passed} s"
    );
    assert_eq!(llen(&mut con, key).await, 4, "150 expired calls dropped");
    assert!(!q.take(Production, &app, 4).await.unwrap().admitted);
    assert!(q.take(Production, &app, 5).await.unwrap().admitted);
    assert_eq!(llen(&mut con, key).await, 5);
}

#[tokio::test]
async fn a_silent_redis_is_a_bounded_failure() {
    // Accepts connections (the kernel's backlog) and never answers.
    let silent = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!(
        "redis://127.0.0.1:{}/0",
        silent.local_addr().unwrap().port()
    );
    let mut s = settings(&url, "closed");
    s.timeout_ms = 200;
    let errors = Counter::default();
    let q = Quotas::from_settings(&s, errors.clone()).unwrap();
    for _ in 0..2 {
        let started = Instant::now();
        assert!(q.take(Sandbox, &ClientId::new("x"), 5).await.is_err());
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "{:?}",
            started.elapsed()
        );
    }
    assert_eq!(errors.get(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_backends_share_one_exact_log() {
    let redis = RedisServer::start();
    let nodes = [
        Arc::new(quotas(&redis.url())),
        Arc::new(quotas(&redis.url())),
    ];
    let app = ClientId::new("shared");
    let tasks: Vec<_> = (0..60)
        .map(|i| {
            let (q, app) = (nodes[i % 2].clone(), app.clone());
            tokio::spawn(async move { q.take(Sandbox, &app, 25).await.unwrap() })
        })
        .collect();
    let mut left = Vec::new();
    for t in tasks {
        let d = t.await.unwrap();
        if d.admitted {
            left.push(d.remaining);
        }
    }
    left.sort_unstable();
    // Each admitted call saw its own count: 24, 23, … 0, once each.
    assert_eq!(left, (0..25).collect::<Vec<u32>>());
}

/// How many scripts Redis has run (EVALSHA and EVAL).
async fn scripts_run(con: &mut MultiplexedConnection) -> u64 {
    let info: String = redis::cmd("INFO")
        .arg("commandstats")
        .query_async(con)
        .await
        .unwrap();
    info.lines()
        .filter(|l| l.starts_with("cmdstat_evalsha:") || l.starts_with("cmdstat_eval:"))
        .filter_map(|l| {
            l.split("calls=")
                .nth(1)?
                .split(',')
                .next()?
                .parse::<u64>()
                .ok()
        })
        .sum()
}

// Concurrent calls of a node go to Redis together (one script decides
// several, in order): fewer scripts than calls, and each application's
// count still exact across two nodes — every admitted call saw its own
// count, once each, and no application got more than its limit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_calls_are_decided_in_batches_and_stay_exact() {
    let redis = RedisServer::start();
    let client = redis::Client::open(redis.url()).unwrap();
    let mut con = client.get_multiplexed_async_connection().await.unwrap();
    let nodes = [
        Arc::new(quotas(&redis.url())),
        Arc::new(quotas(&redis.url())),
    ];
    let apps = [("a", 40u32), ("b", 7), ("c", 1000)];
    let before = scripts_run(&mut con).await;
    let tasks: Vec<_> = (0..600)
        .map(|i| {
            let q = nodes[i % 2].clone();
            let (name, limit) = apps[i % 3];
            tokio::spawn(async move {
                let d = q.take(Sandbox, &ClientId::new(name), limit).await.unwrap();
                (name, d)
            })
        })
        .collect();
    let mut left: std::collections::HashMap<&str, Vec<u32>> = Default::default();
    for t in tasks {
        let (name, d) = t.await.unwrap();
        if d.admitted {
            left.entry(name).or_default().push(d.remaining);
        }
    }
    let scripts = scripts_run(&mut con).await - before;
    for (name, limit) in apps {
        let mut seen = left.remove(name).unwrap_or_default();
        seen.sort_unstable();
        let admitted = limit.min(200);
        let expected: Vec<u32> = (limit - admitted..limit).collect();
        assert_eq!(seen, expected, "application {name}, limit {limit}");
    }
    assert!(
        scripts < 600,
        "600 concurrent calls took {scripts} scripts: not batched"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quota_is_exact_across_two_gateway_nodes() {
    let redis = RedisServer::start();
    let (s, c, t) = gateway(&redis.url(), "closed", 30).await;
    let (a, b) = s.twin().await;
    let (nodes, c, t) = (Arc::new([a, b]), Arc::new(c), Arc::new(t));
    let tasks: Vec<_> = (0..10)
        .map(|i| {
            let (nodes, c, t) = (nodes.clone(), c.clone(), t.clone());
            tokio::spawn(async move {
                let mut out = Vec::new();
                for _ in 0..5 {
                    out.push(call(&nodes[i % 2], &c, &t).await);
                }
                out
            })
        })
        .collect();
    let (mut admitted, mut limited) = (Vec::new(), 0);
    for task in tasks {
        for r in task.await.unwrap() {
            assert_eq!(r.headers["ratelimit-policy"], "\"default\";q=30;w=60");
            match r.status.as_u16() {
                200 => admitted.push(remaining(&r)),
                429 => {
                    limited += 1;
                    assert_eq!(r.code(), "900804");
                    assert_eq!(remaining(&r), 0);
                    assert!(r.headers.contains_key("retry-after"));
                }
                other => panic!("unexpected {other}: {:?}", r.body),
            }
        }
    }
    admitted.sort_unstable();
    assert_eq!(admitted, (0..30).collect::<Vec<u32>>());
    assert_eq!(limited, 20);
}

#[tokio::test]
async fn redis_away_fails_closed_then_recovers() {
    let mut redis = RedisServer::start();
    let (s, c, t) = gateway(&redis.url(), "closed", 50).await;
    let r = call(&s, &c, &t).await;
    assert_eq!((r.status.as_u16(), remaining(&r)), (200, 49));
    redis.stop();
    for _ in 0..3 {
        let r = call(&s, &c, &t).await;
        assert_eq!(
            (r.status.as_u16(), r.code().as_str()),
            (503, "910605"),
            "{:?}",
            r.body
        );
        assert!(!r.headers.contains_key("ratelimit"));
    }
    let metrics = s.admin_call(Method::GET, "/metrics", None).await.raw;
    let text = String::from_utf8_lossy(&metrics);
    let errors: u64 = text
        .lines()
        .find_map(|l| l.strip_prefix("opale_quota_backend_errors_total "))
        .unwrap()
        .parse()
        .unwrap();
    assert!(errors >= 3, "{errors}");
    redis.restart();
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let r = call(&s, &c, &t).await;
        if r.status == 200 {
            // A fresh Redis: the log starts empty.
            assert_eq!(remaining(&r), 49);
            break;
        }
        assert_eq!(r.code(), "910605");
        assert!(Instant::now() < deadline, "not served again within 5 s");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn redis_away_fails_open_without_counting() {
    let mut redis = RedisServer::start();
    let (s, c, t) = gateway(&redis.url(), "open", 2).await;
    redis.stop();
    for _ in 0..4 {
        let r = call(&s, &c, &t).await;
        assert_eq!(r.status, 200, "{:?}", r.body);
        assert!(!r.headers.contains_key("ratelimit"), "nothing to show");
    }
    redis.restart();
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut first = call(&s, &c, &t).await;
    while !first.headers.contains_key("ratelimit") {
        assert!(Instant::now() < deadline, "Redis not used again within 5 s");
        tokio::time::sleep(Duration::from_millis(100)).await;
        first = call(&s, &c, &t).await;
    }
    // The calls made while Redis was away were not counted.
    assert_eq!((first.status.as_u16(), remaining(&first)), (200, 1));
    assert_eq!(call(&s, &c, &t).await.status, 200);
    assert_eq!(call(&s, &c, &t).await.status, 429);
}
