//! `GET /metrics` on the admin listener: Prometheus text format
//! (prometheus-client), every series in one registry encoded in one pass.
//! Request counters and latency come from each trace record; edge, quota
//! backend and security-event counters are incremented where they happen;
//! trail, cluster and certificate-expiry figures are read at scrape time
//! by the collectors of [`scrape`].

pub mod scrape;

pub use scrape::{CertLabels, Sources};

use crate::audit::TraceEvent;
use crate::chain::Control;
use crate::domain::Plane;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

/// Labels of a request (static strings: nothing allocated per request).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    /// sandbox, production, admin.
    pub environment: &'static str,
    /// Dataset of a data call, else "".
    pub dataset: &'static str,
    /// admitted / denied.
    pub decision: &'static str,
    /// Failing control, else "".
    pub control: &'static str,
    /// HTTP status.
    pub status: u16,
}

/// Labels of a per-environment series.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct EnvLabels {
    /// sandbox, production, admin.
    pub environment: &'static str,
}

/// Labels of a worker thread's series.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct WorkerLabels {
    /// Its index, 0 to workers − 1.
    pub worker: u32,
}

/// Labels of a connection closed at the edge.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct EdgeLabels {
    /// sandbox, production, admin.
    pub listener: &'static str,
    /// max_connections, max_connections_per_ip, handshake, proxy_protocol,
    /// header_read, idle, send, close_grace.
    pub reason: &'static str,
}

/// Labels of a security event (`crate::abuse`).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct SecurityLabels {
    /// denial_burst, new_address, quota_streak, off_hours_surge.
    pub kind: &'static str,
}

/// Every series the gateway exports.
pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    latency: Family<EnvLabels, Histogram>,
    quota_rejections: Family<EnvLabels, Counter>,
    edge_closed: Family<EdgeLabels, Counter>,
    quota_backend_errors: Counter,
    security_events: Family<SecurityLabels, Counter>,
    worker_connections: Family<WorkerLabels, Gauge>,
}

impl Metrics {
    /// Registers every series; the scrape-time ones read `sources`.
    pub fn new(sources: Sources) -> Self {
        let mut registry = Registry::with_prefix("opale");
        let requests = Family::<RequestLabels, Counter>::default();
        let latency = Family::<EnvLabels, Histogram>::new_with_constructor(|| {
            Histogram::new(exponential_buckets(0.000_05, 2.0, 16))
        });
        let quota_rejections = Family::<EnvLabels, Counter>::default();
        let edge_closed = Family::<EdgeLabels, Counter>::default();
        let quota_backend_errors = Counter::default();
        registry.register(
            "quota_backend_errors",
            "Quota decisions the shared backend (Redis) could not make: \
             unreachable or slower than quota.timeout_ms",
            quota_backend_errors.clone(),
        );
        let security_events = Family::<SecurityLabels, Counter>::default();
        registry.register(
            "security_events",
            "Security events raised by the abnormal-usage detector, by kind",
            security_events.clone(),
        );
        registry.register(
            "connections_closed_at_edge",
            "Connections refused at accept (caps), closed on a timeout \
             (handshake, header_read, idle) or for their PROXY header \
             (proxy_protocol), by listener and reason",
            edge_closed.clone(),
        );
        registry.register(
            "requests",
            "Requests by environment, dataset, decision, failing control, status",
            requests.clone(),
        );
        registry.register(
            "request_duration_seconds",
            "Time spent in the gateway per request",
            latency.clone(),
        );
        registry.register(
            "quota_rejections",
            "Calls refused by the quota (429)",
            quota_rejections.clone(),
        );
        let worker_connections = Family::<WorkerLabels, Gauge>::default();
        registry.register(
            "worker_connections",
            "Connections open on each worker thread, all listeners together",
            worker_connections.clone(),
        );
        for collector in sources.into_collectors() {
            registry.register_collector(collector);
        }
        Metrics {
            registry,
            requests,
            latency,
            quota_rejections,
            edge_closed,
            quota_backend_errors,
            security_events,
            worker_connections,
        }
    }

    /// The gauge of connections open on `worker`
    /// (`opale_worker_connections{worker}`), which the worker keeps.
    pub fn worker_connections(&self, worker: u32) -> Gauge {
        self.worker_connections
            .get_or_create(&WorkerLabels { worker })
            .clone()
    }

    /// The counter of quota backend failures, for the quota backend to
    /// increment (`opale_quota_backend_errors_total`).
    pub fn quota_backend_errors(&self) -> Counter {
        self.quota_backend_errors.clone()
    }

    /// Counts one request from its trace record.
    pub fn observe(&self, t: &TraceEvent) {
        let environment = t.plane.as_str();
        let labels = RequestLabels {
            environment,
            dataset: t.dataset.map(|d| d.as_str()).unwrap_or(""),
            decision: t.decision.as_str(),
            control: t.control.map(Control::as_str).unwrap_or(""),
            status: t.status,
        };
        self.requests.get_or_create(&labels).inc();
        let env = EnvLabels { environment };
        self.latency
            .get_or_create(&env)
            .observe(t.latency_us as f64 / 1e6);
        if t.control == Some(Control::Quota) {
            self.quota_rejections.get_or_create(&env).inc();
        }
    }

    /// Counts one security event of `kind` (a static name).
    pub fn security_event(&self, kind: &'static str) {
        self.security_events
            .get_or_create(&SecurityLabels { kind })
            .inc();
    }

    /// Counts a connection refused or timed out at the edge.
    pub fn connection_closed(&self, plane: Plane, reason: &'static str) {
        let labels = EdgeLabels {
            listener: plane.as_str(),
            reason,
        };
        self.edge_closed.get_or_create(&labels).inc();
    }

    /// The text exposition (ends with `# EOF`); scrape-time figures are
    /// read while it is encoded.
    pub fn render(&self) -> String {
        let mut out = String::new();
        if prometheus_client::encoding::text::encode(&mut out, &self.registry).is_err() {
            out.clear();
        }
        out
    }
}
