//! Evidence growth from callers without a certificate is bounded
//! (docs/contract.md §8): one client without a certificate sends refused
//! requests as fast as it can for 60 s from 127.0.0.2 while a partner on
//! 127.0.0.1 keeps calling. The trail grows by less than 1 MB, the
//! flooding address is answered 429 (910007) past
//! `unauthenticated_per_minute`, every one of its refusals is accounted for
//! exactly once — traced one by one or counted in a summary record of its
//! minute — the trail (summaries included) verifies, and every partner call
//! is answered 200 (its p99 is printed).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::Request;
use hyper::client::conn::http1::SendRequest;
use hyper::{Method, StatusCode};
use opale_apim::domain::Environment::Sandbox;
use serde_json::Value;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use support::{TestServer, client_config, correlation_id, http1_over_tls};
use tokio::net::TcpSocket;

const FLOOD: Duration = Duration::from_secs(60);
const ATTACKER: &str = "127.0.0.2";

/// An HTTP/1.1 connection without a client certificate from the
/// attacker's address.
async fn unauthenticated(ca: &Path, to: SocketAddr) -> SendRequest<Full<Bytes>> {
    let socket = TcpSocket::new_v4().unwrap();
    socket
        .bind(format!("{ATTACKER}:0").parse().unwrap())
        .unwrap();
    let tcp = socket.connect(to).await.unwrap();
    http1_over_tls(tcp, client_config(ca, None)).await.unwrap()
}

/// Refused requests as fast as one connection allows until `until`,
/// alternating a data call without a certificate (910100) and a token
/// request with a wrong secret (invalid_client); the statuses received.
async fn flood(ca: PathBuf, to: SocketAddr, until: Instant) -> BTreeMap<u16, u64> {
    let mut seen = BTreeMap::new();
    let mut sender = unauthenticated(&ca, to).await;
    let cid = correlation_id();
    let mut i = 0u64;
    while Instant::now() < until {
        i += 1;
        let req = if i.is_multiple_of(2) {
            Request::get("/opale/v1/entreprises/732829320/declarations?annee=2024")
                .header("x-correlation-id", cid.as_str())
                .body(Full::new(Bytes::new()))
        } else {
            Request::post("/token")
                .header("content-type", "application/x-www-form-urlencoded")
                .body(Full::new(Bytes::from_static(
                    b"grant_type=client_credentials&client_id=nobody&client_secret=wrong",
                )))
        };
        let req = req.unwrap();
        if sender.ready().await.is_err() {
            sender = unauthenticated(&ca, to).await;
            continue;
        }
        let Ok(resp) = sender.send_request(req).await else {
            sender = unauthenticated(&ca, to).await;
            continue;
        };
        *seen.entry(resp.status().as_u16()).or_default() += 1;
        let _ = resp.into_body().collect().await;
    }
    seen
}

fn dir_bytes(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().metadata().unwrap().len())
        .sum()
}

async fn export(s: &TestServer) -> Vec<Value> {
    let r = s
        .admin_call(Method::GET, "/admin/v1/trace/export", None)
        .await;
    assert_eq!(r.status, StatusCode::OK);
    String::from_utf8_lossy(&r.raw)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn p99(mut latencies: Vec<Duration>) -> Duration {
    latencies.sort();
    latencies[(latencies.len() * 99 / 100).min(latencies.len() - 1)]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_without_a_certificate_is_summarised_limited_and_harms_no_partner() {
    let s = TestServer::start().await;
    let client = s.client(Sandbox).await;
    let token = s.token(Sandbox, &client.cert, &client.id).await;
    let trail = s.dir().join("data/trail");
    let before = dir_bytes(&trail);

    let until = Instant::now() + FLOOD;
    let floods: Vec<_> = (0..4)
        .map(|_| tokio::spawn(flood(s.pki.files.ca_pem(), s.sandbox, until)))
        .collect();
    let attack = async {
        let mut total = BTreeMap::new();
        for f in floods {
            for (status, n) in f.await.unwrap() {
                *total.entry(status).or_insert(0u64) += n;
            }
        }
        total
    };
    let partner = async {
        let mut latencies = Vec::new();
        let path = "/opale/v1/entreprises/732829320/declarations?annee=2024";
        while Instant::now() < until {
            let started = Instant::now();
            let r = s
                .data_call_with_token(Sandbox, &client.cert, &token, path)
                .await;
            latencies.push(started.elapsed());
            assert!(
                r.status == 200 || r.status == 429,
                "partner call: {} {:?}",
                r.status,
                r.body
            );
            if r.status == 429 {
                assert_eq!(r.code(), "900804", "only its own quota may stop it");
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        latencies
    };
    let (statuses, latencies) = tokio::join!(attack, partner);
    let sent: u64 = statuses.values().sum();
    println!("flood: {sent} requests in {FLOOD:?}, statuses {statuses:?}");
    println!(
        "partner: {} calls, p99 {:?} during the flood",
        latencies.len(),
        p99(latencies)
    );
    assert!(sent > 2_000, "the flood was a flood: {sent}");
    assert!(statuses.get(&429).copied().unwrap_or(0) > 0, "{statuses:?}");

    // Stopping writes the summaries of the minutes still open.
    let s = s.restart().await;
    let grown = dir_bytes(&trail).saturating_sub(before);
    println!("trail grew by {grown} bytes");
    assert!(grown < 1_000_000, "trail grew by {grown} bytes");

    let records = export(&s).await;
    let from_attacker: Vec<&Value> = records.iter().filter(|r| r["ip"] == ATTACKER).collect();
    let summaries: Vec<&Value> = from_attacker
        .iter()
        .copied()
        .filter(|r| !r["summary"].is_null())
        .collect();
    let one_by_one = from_attacker.len() - summaries.len();
    let summarised: u64 = summaries
        .iter()
        .map(|r| r["summary"]["summarised"].as_u64().unwrap())
        .sum();
    println!(
        "attacker: {one_by_one} records one by one, {} summaries of {summarised} refusals",
        summaries.len()
    );
    assert!(!summaries.is_empty());
    assert_eq!(
        one_by_one as u64 + summarised,
        sent,
        "every refusal traced once or summarised once"
    );
    for summary in &summaries {
        assert_eq!(summary["decision"], "denied");
        let codes = summary["summary"]["codes"].as_object().unwrap();
        assert!(
            codes.contains_key("910007"),
            "429s are summarised: {codes:?}"
        );
    }
    assert!(
        records
            .iter()
            .filter(|r| r["ip"] != ATTACKER && !r["summary"].is_null())
            .all(|r| r["decision"] == "denied"),
        "nothing admitted is summarised"
    );
    let report = s.verify_trail(None).await;
    assert_eq!(report["ok"], true, "{report}");
}
