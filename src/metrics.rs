//! `GET /metrics` on the admin listener: Prometheus text format
//! (prometheus-client). Request counters and latency come from each trace
//! record; trace-writer, quota and certificate-expiry figures are read at
//! scrape time.

use crate::audit::{TraceEvent, TrailStats};
use crate::chain::Control;
use crate::domain::Plane;
use crate::registry::{CertStatus, Snapshot};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use std::sync::atomic::{AtomicU64, Ordering};

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

/// Labels of a connection closed at the edge.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct EdgeLabels {
    /// sandbox, production, admin.
    pub listener: &'static str,
    /// max_connections, max_connections_per_ip, handshake, header_read, idle.
    pub reason: &'static str,
}

/// Labels of a certificate.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CertLabels {
    /// The application.
    pub client_id: String,
    /// The certificate.
    pub thumbprint: String,
}

/// Labels of a security event (`crate::abuse`).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct SecurityLabels {
    /// denial_burst, new_address, quota_streak, off_hours_surge.
    pub kind: &'static str,
}

type FloatGauge = Gauge<f64, AtomicU64>;

/// Every series the gateway exports.
pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    latency: Family<EnvLabels, Histogram>,
    quota_rejections: Family<EnvLabels, Counter>,
    trace_queue: Gauge,
    trace_written: Gauge,
    trace_flushes: Gauge,
    trace_flush_seconds: FloatGauge,
    cert_expiry: Family<CertLabels, FloatGauge>,
    edge_closed: Family<EdgeLabels, Counter>,
    trail_intact: Gauge,
    quota_backend_errors: Counter,
    security_events: Family<SecurityLabels, Counter>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Registers every series.
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("opale");
        let requests = Family::<RequestLabels, Counter>::default();
        let latency = Family::<EnvLabels, Histogram>::new_with_constructor(|| {
            Histogram::new(exponential_buckets(0.000_05, 2.0, 16))
        });
        let quota_rejections = Family::<EnvLabels, Counter>::default();
        let (trace_queue, trace_written, trace_flushes) = Default::default();
        let trace_flush_seconds = FloatGauge::default();
        let cert_expiry = Family::<CertLabels, FloatGauge>::default();
        let edge_closed = Family::<EdgeLabels, Counter>::default();
        let trail_intact = Gauge::default();
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
            "trail_intact",
            "1 when the trail extended its own last checkpoint at start-up, else 0",
            trail_intact.clone(),
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
        registry.register(
            "trace_queue_depth",
            "Trace records waiting for the writer",
            Gauge::clone(&trace_queue),
        );
        registry.register(
            "trace_records_written",
            "Trace records made durable",
            Gauge::clone(&trace_written),
        );
        registry.register(
            "trace_flushes",
            "Trace batches flushed",
            Gauge::clone(&trace_flushes),
        );
        registry.register(
            "trace_flush_seconds",
            "Total time spent flushing trace batches",
            trace_flush_seconds.clone(),
        );
        registry.register(
            "certificate_expiry_seconds",
            "Seconds until each active certificate expires",
            cert_expiry.clone(),
        );
        Metrics {
            registry,
            requests,
            latency,
            quota_rejections,
            trace_queue,
            trace_written,
            trace_flushes,
            trace_flush_seconds,
            cert_expiry,
            edge_closed,
            trail_intact,
            quota_backend_errors,
            security_events,
        }
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

    /// The text exposition, with scrape-time figures (trail writer and
    /// integrity, certificate expiry) refreshed from `trail` and `snapshot`.
    pub fn render(&self, trail: (&TrailStats, bool), snapshot: &Snapshot) -> String {
        let (stats, intact) = trail;
        let load = |a: &AtomicU64| a.load(Ordering::Relaxed);
        let written = load(&stats.written);
        self.trace_queue
            .set(load(&stats.queued).saturating_sub(written) as i64);
        self.trace_written.set(written as i64);
        self.trace_flushes.set(load(&stats.batches) as i64);
        self.trace_flush_seconds
            .set(load(&stats.sync_ns) as f64 / 1e9);
        self.trail_intact.set(i64::from(intact));
        self.cert_expiry.clear();
        let now = time::OffsetDateTime::now_utc();
        for cert in snapshot.certificates.values() {
            if cert.status == CertStatus::Active {
                let labels = CertLabels {
                    client_id: cert.client_id.to_string(),
                    thumbprint: cert.thumbprint.to_string(),
                };
                self.cert_expiry
                    .get_or_create(&labels)
                    .set((cert.not_after - now).as_seconds_f64());
            }
        }
        let mut out = String::new();
        if prometheus_client::encoding::text::encode(&mut out, &self.registry).is_err() {
            out.clear();
        }
        out
    }
}
