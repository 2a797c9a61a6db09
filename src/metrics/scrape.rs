//! Series read at scrape time: prometheus-client [`Collector`]s registered
//! in the one registry of [`super::Metrics`], so `/metrics` is encoded in
//! one pass. Each figure is read from its owner while the body is encoded
//! (the trail writer's counters and start-up check, the cluster trail's
//! shipping lag, the shared store's health, each active certificate's
//! remaining life); nothing is copied into a gauge between scrapes, so two
//! concurrent scrapes cannot see each other's half-updated series.
//!
//! Names, types and help texts are those of docs/audit.md, docs/cluster.md
//! and docs/openapi-admin.yaml (`GET /metrics`); the registry adds the
//! `opale_` prefix and, for counters, the `_total` sample suffix.

use crate::audit::cluster::ShippingView;
use crate::registry::{CertStatus, Registry};
use crate::store::Health;
use crate::trail::Trail;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{
    DescriptorEncoder, EncodeCounterValue, EncodeGaugeValue, EncodeLabelSet, EncodeMetric,
};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// Where the scrape-time figures are read.
pub struct Sources {
    /// The audit trail: writer counters, start-up check, last seq.
    pub trail: Arc<Trail>,
    /// How far this node's trail is committed in PostgreSQL (cluster only).
    pub shipped: Option<ShippingView>,
    /// The shared store's health (cluster only).
    pub store: Option<Arc<Health>>,
    /// Partners, applications, certificates.
    pub registry: Arc<Registry>,
}

impl Sources {
    /// One collector per owner; the cluster ones only in a cluster.
    pub(super) fn into_collectors(self) -> Vec<Box<dyn Collector>> {
        let mut out: Vec<Box<dyn Collector>> = vec![
            Box::new(TrailSeries {
                trail: self.trail,
                shipped: self.shipped,
            }),
            Box::new(CertificateSeries(self.registry)),
        ];
        if let Some(health) = self.store {
            out.push(Box::new(StoreSeries(health)));
        }
        out
    }
}

/// Labels of a certificate.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CertLabels {
    /// The application.
    pub client_id: String,
    /// The certificate.
    pub thumbprint: String,
}

/// `opale_trace_*` (writer counters since start), `opale_trail_intact`
/// and, in a cluster, `opale_trail_unshipped`, `opale_trail_shipping_up`
/// and `opale_trail_shipping_late`.
struct TrailSeries {
    trail: Arc<Trail>,
    shipped: Option<ShippingView>,
}

impl fmt::Debug for TrailSeries {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TrailSeries").finish_non_exhaustive()
    }
}

impl Collector for TrailSeries {
    fn encode(&self, mut encoder: DescriptorEncoder) -> fmt::Result {
        let stats = self.trail.stats();
        let load = |a: &AtomicU64| a.load(Ordering::Relaxed);
        let written = load(&stats.written);
        let e = &mut encoder;
        let queued = load(&stats.queued).saturating_sub(written);
        gauge(
            e,
            "trace_queue_depth",
            "Trace records waiting for the writer.",
            queued,
        )?;
        gauge(
            e,
            "trace_records_written",
            "Trace records made durable.",
            written,
        )?;
        gauge(
            e,
            "trace_flushes",
            "Trace batches flushed.",
            load(&stats.batches),
        )?;
        let flush_seconds = load(&stats.sync_ns) as f64 / 1e9;
        let help = "Total time spent flushing trace batches.";
        gauge(e, "trace_flush_seconds", help, flush_seconds)?;
        let help = "1 when the trail extended its own last checkpoint at start-up, else 0.";
        gauge(e, "trail_intact", help, u64::from(self.trail.intact()))?;
        let Some(view) = &self.shipped else {
            return Ok(());
        };
        let shipped = view.progress();
        let unshipped = self.trail.last_seq().saturating_sub(shipped.seq);
        let help = "Records of this node's trail not yet committed in PostgreSQL.";
        gauge(e, "trail_unshipped", help, unshipped)?;
        let help = "Whether the last shipment of trail records to PostgreSQL succeeded.";
        gauge(e, "trail_shipping_up", help, u64::from(shipped.up))?;
        let help = "Whether responses have stopped waiting for their record's commit \
                    in PostgreSQL until shipping catches up.";
        gauge(e, "trail_shipping_late", help, u64::from(view.is_late()))
    }
}

/// `opale_store_reloads_total`, `opale_store_errors_total`,
/// `opale_store_up` (docs/cluster.md).
#[derive(Debug)]
struct StoreSeries(Arc<Health>);

impl Collector for StoreSeries {
    fn encode(&self, mut encoder: DescriptorEncoder) -> fmt::Result {
        let h = &self.0;
        let e = &mut encoder;
        let help = "State reloads caused by other nodes' changes or this node's failed writes.";
        counter(e, "store_reloads", help, h.reloads.get())?;
        counter(
            e,
            "store_errors",
            "Failed calls to PostgreSQL.",
            h.errors.get(),
        )?;
        let help = "Whether the last call to PostgreSQL succeeded.";
        gauge(e, "store_up", help, u64::from(h.is_up()))
    }
}

/// `opale_certificate_expiry_seconds{client_id, thumbprint}`: seconds
/// until each active certificate expires (negative once expired); absent
/// while no certificate is active.
struct CertificateSeries(Arc<Registry>);

impl fmt::Debug for CertificateSeries {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CertificateSeries").finish_non_exhaustive()
    }
}

impl Collector for CertificateSeries {
    fn encode(&self, mut encoder: DescriptorEncoder) -> fmt::Result {
        let snapshot = self.0.snapshot();
        let now = time::OffsetDateTime::now_utc();
        let mut active = snapshot
            .certificates
            .values()
            .filter(|c| c.status == CertStatus::Active)
            .peekable();
        if active.peek().is_none() {
            return Ok(());
        }
        let mut family = encoder.encode_descriptor(
            "certificate_expiry_seconds",
            "Seconds until each active certificate expires.",
            None,
            MetricType::Gauge,
        )?;
        for cert in active {
            let labels = CertLabels {
                client_id: cert.client_id.to_string(),
                thumbprint: cert.thumbprint.to_string(),
            };
            let seconds = (cert.not_after - now).as_seconds_f64();
            family.encode_family(&labels)?.encode_gauge(&seconds)?;
        }
        Ok(())
    }
}

/// One unlabelled gauge.
fn gauge(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    value: impl EncodeGaugeValue,
) -> fmt::Result {
    let metric = ConstGauge::new(value);
    metric.encode(encoder.encode_descriptor(name, help, None, metric.metric_type())?)
}

/// One unlabelled counter (the sample gets the `_total` suffix).
fn counter(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    value: impl EncodeCounterValue,
) -> fmt::Result {
    let metric = ConstCounter::new(value);
    metric.encode(encoder.encode_descriptor(name, help, None, metric.metric_type())?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use prometheus_client::registry::Registry as Prometheus;

    fn text(collector: Box<dyn Collector>) -> String {
        let mut registry = Prometheus::with_prefix("opale");
        registry.register_collector(collector);
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &registry).unwrap();
        out
    }

    #[test]
    fn store_series_keep_their_documented_sample_names() {
        let health = Arc::new(Health::default());
        health.reloads.inc();
        health.failure(&"down");
        let out = text(Box::new(StoreSeries(health)));
        assert!(out.contains("\nopale_store_reloads_total 1\n"), "{out}");
        assert!(out.contains("\nopale_store_errors_total 1\n"), "{out}");
        assert!(out.contains("# TYPE opale_store_errors counter\n"), "{out}");
        assert!(out.contains("\nopale_store_up 0\n"), "{out}");
        assert!(out.contains("# TYPE opale_store_up gauge\n"), "{out}");
        assert!(out.ends_with("# EOF\n"), "{out}");
    }
}
