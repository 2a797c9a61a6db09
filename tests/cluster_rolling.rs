//! A rolling restart under load (docs/cluster.md "Rolling restart", issue
//! 18): two `serve` processes on one PostgreSQL behind a real HAProxy (TCP,
//! PROXY v2, health check on `/opale/v1/etatSante`), a load generator
//! calling a data route through HAProxy, and each node in turn sent
//! SIGTERM, started again and rejoined. No request fails: a draining node
//! answers its health check 503 while it still serves, closes each
//! connection after its response, and stops only once the balancer has
//! taken it out. Every answered call is in the cluster's trail.
// A test crate: its helpers may unwrap like its #[test] functions.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::Request;
use hyper::client::conn::http1::SendRequest;
use opale_apim::domain::Environment::Sandbox;
use serde_json::{Value, json};
use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use support::cluster::{NodeProcess, first_node};
use support::haproxy::Haproxy;
use support::postgres::Postgres;
use support::{Client, TestServer, correlation_id, http1_over_tls};
use tokio::net::TcpStream;

const PATH: &str = "/opale/v1/entreprises/732829320/declarations?annee=2024";
/// `cluster.drain_secs` of the nodes: longer than HAProxy takes to mark a
/// node down (`inter 200 fall 2`).
const DRAIN_SECS: i64 = 2;
/// How long HAProxy takes to bring a node back (`inter 200 rise 2`), with
/// slack for a loaded machine.
const REJOIN: Duration = Duration::from_millis(1500);
/// Concurrent callers of the load generator.
const CALLERS: usize = 6;

/// A node behind HAProxy: PROXY v2 from loopback on its sandbox listener,
/// and a drain on SIGTERM.
fn behind_haproxy(table: &mut toml::Table) {
    let mut set = |section: &str, key: &str, value: toml::Value| {
        let section = table
            .entry(section)
            .or_insert_with(|| toml::Table::new().into());
        section.as_table_mut().unwrap().insert(key.into(), value);
    };
    set(
        "sandbox",
        "proxy_protocol_from",
        toml::Value::Array(vec!["127.0.0.1/32".into()]),
    );
    set("cluster", "drain_secs", DRAIN_SECS.into());
}

/// HAProxy relaying to `nodes` with PROXY v2, checking each on
/// `/opale/v1/etatSante` over TLS (with the PROXY header too) every 200 ms;
/// a connection that cannot reach a node is retried on the other (`option
/// redispatch`), as docs/cluster.md recommends.
async fn haproxy(dir: &Path, nodes: &[(&str, SocketAddr)]) -> (Haproxy, SocketAddr) {
    let servers: String = nodes
        .iter()
        .map(|(name, addr)| format!("  server {name} {addr}\n"))
        .collect();
    let backend = format!(
        "  balance roundrobin\n  retries 3\n  option redispatch\n  option httpchk\n  \
         http-check send meth GET uri /opale/v1/etatSante ver HTTP/1.1 hdr Host localhost\n  \
         http-check expect status 200\n  \
         default-server send-proxy-v2 check check-send-proxy check-ssl verify none \
         inter 200 fall 2 rise 2\n{servers}"
    );
    support::haproxy::start(dir, &backend).await
}

/// What the load generator saw.
#[derive(Debug, Default)]
struct Seen {
    /// Correlation ids of the calls answered 200.
    answered: Vec<String>,
    /// Calls that failed: a status other than 200, or a transport error on
    /// a request that was sent.
    failed: Vec<String>,
    /// Connections opened (the first, and each after a close).
    connections: usize,
}

/// Callers calling `PATH` through `front` as fast as they are answered,
/// each on a keep-alive connection; a connection the server closed (it
/// said `Connection: close`) is replaced by a new one, as any client does.
struct Load {
    stop: Arc<AtomicBool>,
    seen: Arc<Mutex<Seen>>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Load {
    fn start(front: SocketAddr, node: &TestServer, c: &Client, token: &str) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let seen = Arc::new(Mutex::new(Seen::default()));
        let config = support::client_config(&node.pki.files.ca_pem(), Some(&c.cert));
        let bearer = format!("Bearer {token}");
        let tasks = (0..CALLERS)
            .map(|_| {
                let (stop, seen) = (stop.clone(), seen.clone());
                let (config, bearer) = (config.clone(), bearer.clone());
                tokio::spawn(async move {
                    let mut sender: Option<SendRequest<Full<Bytes>>> = None;
                    while !stop.load(Ordering::Relaxed) {
                        let ready = match sender.as_mut() {
                            Some(s) => s.ready().await.is_ok(),
                            None => false,
                        };
                        if !ready {
                            seen.lock().unwrap().connections += 1;
                            let opened = async {
                                let tcp = TcpStream::connect(front).await?;
                                http1_over_tls(tcp, config.clone()).await
                            };
                            match opened.await {
                                Ok(s) => sender = Some(s),
                                Err(e) => {
                                    seen.lock().unwrap().failed.push(format!("connect: {e}"));
                                    tokio::time::sleep(Duration::from_millis(20)).await;
                                    continue;
                                }
                            }
                        }
                        let Some(s) = sender.as_mut() else { continue };
                        let cid = correlation_id();
                        let req = Request::get(PATH)
                            .header("host", "localhost")
                            .header("authorization", &bearer)
                            .header("x-correlation-id", &cid)
                            .body(Full::new(Bytes::new()))
                            .unwrap();
                        let outcome = match s.send_request(req).await {
                            Ok(resp) => {
                                let status = resp.status().as_u16();
                                match resp.into_body().collect().await {
                                    Ok(_) if status == 200 => Ok(()),
                                    Ok(body) => Err(format!(
                                        "{status}: {}",
                                        String::from_utf8_lossy(&body.to_bytes())
                                    )),
                                    Err(e) => Err(format!("{status}, body cut: {e}")),
                                }
                            }
                            Err(e) => Err(format!("sent, no answer: {e}")),
                        };
                        let mut seen = seen.lock().unwrap();
                        match outcome {
                            Ok(()) => seen.answered.push(cid),
                            Err(e) => {
                                seen.failed.push(e);
                                sender = None;
                            }
                        }
                    }
                })
            })
            .collect();
        Load { stop, seen, tasks }
    }

    fn answered(&self) -> usize {
        self.seen.lock().unwrap().answered.len()
    }

    async fn stop(self) -> Seen {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.tasks {
            t.await.unwrap();
        }
        std::mem::take(&mut *self.seen.lock().unwrap())
    }
}

/// The correlation ids of `client_id`'s records in the cluster's trail,
/// with the node that answered each.
async fn traced(node: &TestServer, client_id: &str) -> HashMap<String, String> {
    let path = format!("/admin/v1/trace/export?client_id={client_id}");
    let r = node.admin_call(hyper::Method::GET, &path, None).await;
    assert_eq!(r.status, 200, "{:?}", r.raw);
    String::from_utf8_lossy(&r.raw)
        .lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .filter_map(|record| {
            let cid = record["correlation_id"].as_str()?.to_owned();
            Some((cid, record["node"].as_str().unwrap_or_default().to_owned()))
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_rolling_restart_behind_haproxy_fails_no_request_and_traces_every_answer() {
    let pg = Postgres::start().await;
    // Node A provisions and reads the trail; B and C serve behind HAProxy.
    let a = first_node(&pg, |_| {}).await;
    let grants = json!([{"scope": "declarations", "years": [2024]}]);
    let c = a.client_with(Sandbox, grants, 1_000_000).await;
    let token = a.token(Sandbox, &c.cert, &c.id).await;
    let dirs = [tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap()];
    let mut nodes = [("node-b", &dirs[0]), ("node-c", &dirs[1])].map(|(name, dir)| {
        NodeProcess::spawn_with(&a, &pg.url(), name, dir.path(), behind_haproxy)
    });
    let backends = [("node-b", nodes[0].sandbox), ("node-c", nodes[1].sandbox)];
    let hadir = tempfile::tempdir().unwrap();
    let (_haproxy, front) = haproxy(hadir.path(), &backends).await;
    tokio::time::sleep(REJOIN).await;

    let load = Load::start(front, &a, &c, &token);
    tokio::time::sleep(Duration::from_secs(2)).await;
    let before = load.answered();
    assert!(
        before > 20,
        "the load runs before the restarts: {before} answers"
    );
    for node in nodes.iter_mut() {
        let took = node.terminate(Duration::from_secs(20));
        assert!(
            took >= Duration::from_secs(DRAIN_SECS as u64),
            "the node drained before stopping: stopped after {took:?}"
        );
        node.start_again();
        tokio::time::sleep(REJOIN + Duration::from_secs(1)).await;
    }
    let seen = load.stop().await;

    assert!(
        seen.failed.is_empty(),
        "{} of {} calls failed during the rolling restart: {:?}",
        seen.failed.len(),
        seen.failed.len() + seen.answered.len(),
        &seen.failed[..seen.failed.len().min(10)]
    );
    assert!(
        seen.connections > CALLERS,
        "draining nodes closed connections, which the callers replaced ({} opened)",
        seen.connections
    );
    // Both nodes rejoined: fresh connections through HAProxy reach each.
    let config = support::client_config(&a.pki.files.ca_pem(), Some(&c.cert));
    let mut fresh = Vec::new();
    for _ in 0..6 {
        let tcp = TcpStream::connect(front).await.unwrap();
        let mut sender = http1_over_tls(tcp, config.clone()).await.unwrap();
        let cid = correlation_id();
        let req = Request::get(PATH)
            .header("host", "localhost")
            .header("authorization", format!("Bearer {token}"))
            .header("x-correlation-id", &cid)
            .body(Full::new(Bytes::new()))
            .unwrap();
        let resp = sender.send_request(req).await.unwrap();
        assert_eq!(resp.status(), 200);
        fresh.push(cid);
    }
    // Every answered call is in the trail (shipped from B's and C's local
    // logs into PostgreSQL, read on A), and the fresh calls went to both.
    let answered: HashSet<String> = seen.answered.iter().cloned().collect();
    let deadline = Instant::now() + Duration::from_secs(20);
    let (missing, served_by) = loop {
        let traced = traced(&a, &c.id).await;
        let missing = answered
            .iter()
            .chain(&fresh)
            .filter(|cid| !traced.contains_key(*cid))
            .count();
        if missing == 0 || Instant::now() > deadline {
            let nodes: HashSet<String> = fresh
                .iter()
                .filter_map(|f| traced.get(f).cloned())
                .collect();
            break (missing, nodes);
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    assert_eq!(
        missing,
        0,
        "answered calls missing from the trail (of {})",
        answered.len() + fresh.len()
    );
    assert_eq!(
        served_by,
        HashSet::from(["node-b".to_owned(), "node-c".to_owned()]),
        "fresh connections after the restarts reach both nodes"
    );
}

/// `curl` to the health route of `port` over `protocol` (`--http2` or
/// `--http1.1`), on a new connection: the status, or 0 when the request
/// failed.
fn curl_health(ca: &Path, port: u16, protocol: &str) -> u16 {
    let out = std::process::Command::new("curl")
        .args([
            "-s",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            protocol,
            "--cacert",
        ])
        .arg(ca)
        .arg(format!("https://localhost:{port}/opale/v1/etatSante"))
        .output()
        .expect("curl is installed (scripts/test.sh installs it)");
    String::from_utf8_lossy(&out.stdout).parse().unwrap_or(0)
}

/// A draining node answers new connections, HTTP/2 included, with its 503
/// health until it stops: a GOAWAY sent before a connection's first
/// request would make that request fail (seen with curl's HTTP/2).
#[test]
fn a_draining_node_answers_new_connections_before_it_stops() {
    let dir = tempfile::tempdir().unwrap();
    let port = || {
        std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port()
    };
    let (sandbox, production, admin) = (port(), port(), port());
    let d = dir.path().display();
    std::fs::write(
        dir.path().join("opale.toml"),
        format!(
            "data_dir = \"{d}/data\"\ncerts_dir = \"{d}/certs\"\n\
             [sandbox]\nlisten = \"127.0.0.1:{sandbox}\"\n\
             [production]\nlisten = \"127.0.0.1:{production}\"\n\
             [admin]\nlisten = \"127.0.0.1:{admin}\"\n[cluster]\ndrain_secs = 4\n"
        ),
    )
    .unwrap();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_opale-apim"))
        .args(["serve", "--config"])
        .arg(dir.path().join("opale.toml"))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(("127.0.0.1", admin)).is_err() {
        assert!(child.try_wait().unwrap().is_none(), "serve exited");
        assert!(Instant::now() < deadline, "serve did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
    let ca = dir.path().join("certs/ca.pem");
    assert_eq!(curl_health(&ca, sandbox, "--http2"), 200);
    let sent = Instant::now();
    let pid = child.id().to_string();
    assert!(
        std::process::Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    std::thread::sleep(Duration::from_millis(300));
    for protocol in ["--http2", "--http1.1", "--http2"] {
        assert_eq!(
            curl_health(&ca, sandbox, protocol),
            503,
            "{protocol} while draining"
        );
    }
    assert!(
        sent.elapsed() < Duration::from_secs(4),
        "checked within the drain"
    );
    let status = child.wait().unwrap();
    assert!(status.success(), "{status}");
    assert!(
        sent.elapsed() >= Duration::from_secs(4),
        "stopped after the drain"
    );
}
