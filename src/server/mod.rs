//! Accept loops: TLS handshake, per-connection facts, one hyper connection
//! (HTTP/1.1 or h2) per socket, graceful shutdown. The server takes
//! already-bound listeners so tests can bind `127.0.0.1:0`.

mod admission;
mod balance;
mod body;
mod connection;
mod drain;
mod proxy;
mod watchdog;

pub use body::{BodyError, RequestBody, media_type};
pub use connection::Edges;
pub use drain::{Drain, drain_for};

use crate::admin::Admin;
use crate::audit::Auditor;
use crate::config::{Config, ProxyProtocolFrom};
use crate::domain::{Environment, Plane};
use crate::gateway::Gateway;
use crate::metrics::Metrics;
use crate::reload::{Live, Reloader};
use balance::Balance;
use connection::accept_loop;
use hyper_util::server::graceful::GracefulShutdown;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tracing::warn;

/// What the three listeners run on (built by `crate::app::App::planes`):
/// the TLS state and limits, the admission tables, the accounting of
/// callers without a certificate, and the two planes requests go to.
pub struct Server {
    /// TLS state and `[limits]` in force.
    pub(crate) live: Arc<Live>,
    /// Connection admission on the three listeners.
    pub(crate) edges: Arc<Edges>,
    /// Edge events and refusals before a plane.
    pub(crate) metrics: Arc<Metrics>,
    /// Refusals before a plane, and callers without a certificate.
    pub(crate) audit: Arc<Auditor>,
    /// `proxy_protocol_from` of the sandbox, production and admin listeners.
    pub(crate) proxies: [ProxyProtocolFrom; 3],
    /// The environment listeners' plane.
    pub(crate) gateway: Arc<Gateway>,
    /// The admin listener's plane.
    pub(crate) admin: Arc<Admin>,
    /// Draining before a stop (shared with the gateway's health route).
    pub(crate) drain: Arc<Drain>,
}

impl Server {
    /// Draining before a stop: started by [`drain_for`].
    pub fn drain(&self) -> &Drain {
        &self.drain
    }

    /// The balancers `plane`'s listener takes a PROXY header from.
    pub(crate) fn proxies(&self, plane: Plane) -> &ProxyProtocolFrom {
        match plane {
            Plane::Env(Environment::Sandbox) => &self.proxies[0],
            Plane::Env(Environment::Production) => &self.proxies[1],
            Plane::Admin => &self.proxies[2],
        }
    }
}

/// What the background tasks run on.
pub struct Tasks {
    /// Expiry notices.
    pub(crate) notifier: crate::notify::Notifier,
    /// The CRL watcher.
    pub(crate) reloader: Arc<Reloader>,
    /// Retention purges and summaries of unidentified refusals.
    pub(crate) audit: Arc<Auditor>,
    /// `[audit] retention_days`.
    pub(crate) retention_days: u32,
    /// `cluster.node_id` (actor of the summaries).
    pub(crate) node_id: String,
    /// The status ticker and probes (§11).
    pub(crate) status: crate::status::task::Watch,
}

/// The three bound listeners.
pub struct Listeners {
    /// Sandbox environment.
    pub sandbox: TcpListener,
    /// Production environment.
    pub production: TcpListener,
    /// Admin plane.
    pub admin: TcpListener,
}

impl Listeners {
    /// Binds the configured addresses.
    pub async fn bind(config: &Config) -> std::io::Result<Listeners> {
        let bind = |addr: SocketAddr| async move {
            TcpListener::bind(addr)
                .await
                .map_err(|e| std::io::Error::new(e.kind(), format!("cannot listen on {addr}: {e}")))
        };
        Ok(Listeners {
            sandbox: bind(config.sandbox.listen).await?,
            production: bind(config.production.listen).await?,
            admin: bind(config.admin.listen).await?,
        })
    }
}

/// Serves all listeners until `shutdown` completes, lets open connections
/// finish (up to 10 s), then closes the audit trail. Thread-per-core:
/// `workers` threads, each with its own single-threaded runtime accepting
/// on the shared sockets (like nginx workers), so a request, its upstream
/// call and its response stay on one thread instead of hopping between
/// runtime threads. Production and the tests (listeners bound on
/// `127.0.0.1:0`) both serve through here.
pub async fn run_workers(
    (server, tasks): (Arc<Server>, Tasks),
    listeners: Listeners,
    workers: usize,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    let Tasks {
        notifier,
        reloader,
        audit,
        retention_days,
        node_id,
        status,
    } = tasks;
    let status_probe = tokio::spawn(crate::status::task::probe(status.clone()));
    let status_ticker = tokio::spawn(crate::status::task::run(status));
    let retention = tokio::spawn(retention_task(audit.clone(), retention_days));
    let crl_watch = tokio::spawn(crate::reload::watch_crls(reloader));
    let notices = tokio::spawn(crate::notify::run(notifier));
    let summaries = tokio::spawn(summaries_task(audit.clone(), node_id.clone()));
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let sockets = [
        listeners.sandbox.into_std()?,
        listeners.production.into_std()?,
        listeners.admin.into_std()?,
    ];
    let workers = workers.max(1);
    let gauges = (0..workers).map(|i| server.metrics.worker_connections(i as u32));
    let mut balances = Balance::per_worker(gauges.collect()).into_iter();
    let mut threads = Vec::new();
    for i in 0..workers {
        let [a, b, c] = [
            sockets[0].try_clone()?,
            sockets[1].try_clone()?,
            sockets[2].try_clone()?,
        ];
        let (server, mut stop) = (server.clone(), stop_rx.clone());
        let balance = balances.next();
        let thread = std::thread::Builder::new()
            .name(format!("opale-worker-{i}"))
            .spawn(move || -> std::io::Result<()> {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()?;
                rt.block_on(async move {
                    let listeners = Listeners {
                        sandbox: TcpListener::from_std(a)?,
                        production: TcpListener::from_std(b)?,
                        admin: TcpListener::from_std(c)?,
                    };
                    let stopped = async move {
                        let _ = stop.wait_for(|s| *s).await;
                    };
                    serve(server, listeners, balance, stopped).await;
                    Ok(())
                })
            })?;
        threads.push(thread);
    }
    drop(sockets);
    shutdown.await;
    let _ = stop_tx.send(true);
    let joined = tokio::task::spawn_blocking(move || {
        for t in threads {
            if let Ok(Err(e)) = t.join() {
                warn!(error = %e, "worker ended with an error");
            }
        }
    });
    let _ = joined.await;
    retention.abort();
    crl_watch.abort();
    status_probe.abort();
    let _ = status_probe.await;
    status_ticker.abort();
    let _ = status_ticker.await;
    notices.abort();
    let _ = notices.await;
    summaries.abort();
    let _ = summaries.await;
    write_summaries(&audit, &node_id, i64::MAX).await;
    audit.close().await;
    Ok(())
}

/// Accept loops of the three listeners until `shutdown`, then drain.
async fn serve(
    server: Arc<Server>,
    listeners: Listeners,
    balance: Option<Balance>,
    shutdown: impl Future<Output = ()>,
) {
    let graceful = GracefulShutdown::new();
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    {
        let loops = [
            (listeners.sandbox, Plane::Env(Environment::Sandbox)),
            (listeners.production, Plane::Env(Environment::Production)),
            (listeners.admin, Plane::Admin),
        ]
        .map(|bound| {
            let balance = balance.clone();
            accept_loop(server.clone(), bound, balance, &graceful, stop_rx.clone())
        });
        let [a, b, c] = loops;
        tokio::select! {
            _ = async { tokio::join!(a, b, c) } => {}
            _ = shutdown => {}
        }
    }
    let _ = stop_tx.send(true);
    if tokio::time::timeout(Duration::from_secs(10), graceful.shutdown())
        .await
        .is_err()
    {
        warn!("connections still open after 10 s; closing them");
    }
}

/// Appends, every second, the summary records of the minutes that ended
/// (refusals before identification past the per-source threshold).
async fn summaries_task(audit: Arc<Auditor>, node_id: String) {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    loop {
        tick.tick().await;
        write_summaries(&audit, &node_id, crate::audit::unidentified::this_minute()).await;
    }
}

/// Appends the summaries of the minutes before `minute`.
async fn write_summaries(audit: &Auditor, node: &str, minute: i64) {
    for record in audit.unidentified.finished(minute, node) {
        if let Err(e) = audit.record(&record).await {
            tracing::error!(error = %e, "summary of unidentified refusals not written");
        }
    }
}

/// Purges trace segments past `audit.retention_days`, at start and hourly
/// (whole segments, behind a signed purge checkpoint).
async fn retention_task(audit: Arc<Auditor>, days: u32) {
    let mut tick = tokio::time::interval(Duration::from_secs(3600));
    loop {
        tick.tick().await;
        let cutoff = time::OffsetDateTime::now_utc() - time::Duration::days(i64::from(days));
        let audit = audit.clone();
        match tokio::task::spawn_blocking(move || audit.purge_before(cutoff)).await {
            Ok(Ok(p)) if p.records == 0 => {}
            Ok(Ok(p)) => tracing::info!(
                records = p.records,
                segments = p.segments,
                "trace retention purge"
            ),
            Ok(Err(e)) => warn!(error = %e, "trace retention purge failed"),
            Err(e) => warn!(error = %e, "trace retention purge interrupted"),
        }
    }
}
