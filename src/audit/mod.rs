//! The audit trail (docs/contract.md §7): one record per request on every listener
//! and per admin action, appended to the trail log (`crate::trail`:
//! segment files, CRC'd frames, a hash chain, group commit with one
//! fdatasync per batch, a signed checkpoint after each) so that a response
//! leaves only once its record is durable (by default); verified against
//! the trail's own checkpoints or one held elsewhere; queried newest
//! first; purged past retention behind a signed purge checkpoint.

mod action;
mod address;
pub mod cluster;
mod code;
pub mod http;
pub mod query;
mod record;
mod stamp;
pub mod unidentified;
#[cfg(test)]
mod written_before;

pub use crate::trail::{OpenReport, PurgeOutcome, TrailStats, VerifyReport};
pub use action::{ActionKind, Actor, AdminAction, SystemAction};
pub use address::Address;
pub use code::Code;
pub use record::{Decision, Summary, TraceEvent, TraceRecord};
pub use stamp::{millis, parse_time, timestamp};

use crate::trail::{NoteSigner, Trail, TrailConfig, TrailError};
use cluster::{ClusterError, ClusterTrail, NodeReport};
use serde::{Deserialize, Serialize};
use std::path::Path;
use std::sync::Arc;
use time::OffsetDateTime;
use unidentified::Unidentified;

/// Origin line of the trail's checkpoints (C2SP signed note).
pub const ORIGIN: &str = "opale-apim/trail";

/// Audit failures. A request whose record cannot be written is answered
/// 503 (the trace never silently loses a record).
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    /// The trail log failed.
    #[error(transparent)]
    Trail(#[from] TrailError),
    /// The signing key (`data_dir/keys/audit-signing.pem`) cannot be
    /// read or created.
    #[error("audit key: {0}")]
    Key(#[source] crate::pki::PkiError),
    /// The trail in PostgreSQL (cluster).
    #[error(transparent)]
    Cluster(#[from] ClusterError),
    /// A stored record does not decode.
    #[error("corrupt trace record {seq}: {message}")]
    Corrupt {
        /// Its position.
        seq: u64,
        /// What is wrong.
        message: String,
    },
}

/// When a response may leave relative to its record.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Durability {
    /// The response waits until its record is on disk (default).
    #[default]
    BeforeResponse,
    /// The record is queued; the response does not wait for it (a crash
    /// loses what is still queued).
    Async,
}

/// Where a cluster node's trail is also kept (docs/contract.md §10).
pub struct ClusterSink {
    /// The PostgreSQL store.
    pub store: Arc<crate::store::PgStore>,
    /// `cluster.node_id`.
    pub node: String,
    /// `cluster.trail_wait`.
    pub wait: crate::config::TrailWait,
}

/// The body of `POST /admin/v1/trace/verify`: the trail's report and, in a
/// cluster, one per node's chain in PostgreSQL.
#[derive(Debug, Clone, Serialize)]
pub struct Verified {
    /// The trail's report (the whole cluster's, in a cluster).
    #[serde(flatten)]
    pub report: VerifyReport,
    /// Each node's chain (cluster only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nodes: Option<Vec<NodeReport>>,
}

/// One record as listed: its listing position, node (cluster only) and body.
pub struct Listed {
    /// Position in the listing (`before` pages by it): the seq of a single
    /// node's trail, a cluster-wide position in a cluster.
    pub seq: u64,
    /// The node whose chain holds it (cluster only).
    pub node: Option<String>,
    /// The encoded event.
    pub body: Vec<u8>,
}

/// The handle every listener appends through.
pub struct Auditor {
    trail: Arc<Trail>,
    durability: Durability,
    cluster: Option<ClusterTrail>,
    /// Refusals before identification, counted per source and minute
    /// (traced one by one up to a threshold, then summarised).
    pub unidentified: Unidentified,
}

impl Auditor {
    /// Opens the trail under `data_dir/trail` (checking that it extends its
    /// own last checkpoint; a failed check is logged at error level by the
    /// trail and kept in [`Auditor::intact`]) and starts its writer; in a
    /// cluster, also the shipper into PostgreSQL. Blocking.
    pub fn start(
        data_dir: &Path,
        key_path: &Path,
        durability: Durability,
        segment_bytes: u64,
        sink: Option<ClusterSink>,
    ) -> Result<Self, AuditError> {
        let key = || crate::pki::load_or_create_ed25519(key_path).map_err(AuditError::Key);
        let signer = NoteSigner::new(ORIGIN, key()?)?;
        let mut config = TrailConfig::new(data_dir);
        config.segment_bytes = segment_bytes;
        let trail = Arc::new(Trail::open(&config, signer)?);
        // A failed start-up check is logged (error level, first bad
        // record) by `Trail::open`, exposed by `intact()`.
        let cluster = match sink {
            Some(s) => Some(ClusterTrail::open(
                s.store,
                &s.node,
                s.wait,
                key()?,
                trail.clone(),
            )?),
            None => None,
        };
        let defaults = unidentified::Thresholds::of(&crate::config::LimitsSettings::default());
        Ok(Auditor {
            trail,
            durability,
            cluster,
            unidentified: Unidentified::new(defaults),
        })
    }

    /// Appends one event; with `before_response`, returns once it is
    /// durable (and, in a cluster with `trail_wait = "postgres"`, committed
    /// in PostgreSQL if that takes at most `cluster::SHIP_WAIT`,
    /// docs/cluster.md "The trail across nodes").
    pub async fn record(&self, event: &TraceEvent) -> Result<(), AuditError> {
        let time_ms = (OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000) as i64;
        let body = serde_json::to_vec(event).map_err(|e| AuditError::Corrupt {
            seq: 0,
            message: e.to_string(),
        })?;
        match self.durability {
            Durability::BeforeResponse => {
                let seq = self.trail.append(time_ms, body, true).await?;
                if let Some(c) = &self.cluster {
                    c.durable(seq).await;
                }
            }
            Durability::Async => self.trail.enqueue(time_ms, body).await?,
        }
        Ok(())
    }

    /// Finishes every queued append and stops the writer; in a cluster,
    /// then ships what is still unshipped (for at most `SHIP_AT_CLOSE`;
    /// what remains is shipped at the node's next start).
    pub async fn close(&self) {
        self.trail.close().await;
        if let Some(c) = &self.cluster {
            c.ship_all(cluster::SHIP_AT_CLOSE).await;
        }
    }

    /// Walks the whole trail (blocking) against its own checkpoints and,
    /// if given, a checkpoint held elsewhere; in a cluster, this node's
    /// local trail and every node's chain in PostgreSQL.
    pub fn verify(&self, checkpoint: Option<&str>) -> Result<Verified, AuditError> {
        let Some(cluster) = &self.cluster else {
            let report = self.trail.verify(checkpoint)?;
            return Ok(Verified {
                report,
                nodes: None,
            });
        };
        let local = self.trail.verify(None)?;
        let c = cluster.verify(checkpoint)?;
        let bad = c.nodes.iter().find(|n| !n.ok);
        let reason = match (&c.refused, bad, local.ok) {
            (Some(why), _, _) => Some(why.clone()),
            (None, Some(n), _) => Some(format!(
                "node {}: {}",
                n.node,
                n.reason.as_deref().unwrap_or("not intact")
            )),
            (None, None, false) => Some(format!(
                "local trail: {}",
                local.reason.as_deref().unwrap_or("not intact")
            )),
            (None, None, true) => None,
        };
        let report = VerifyReport {
            ok: reason.is_none(),
            records: c.nodes.iter().map(|n| n.records).sum(),
            first_bad: bad.and_then(|n| n.first_bad).or(if local.ok {
                None
            } else {
                local.first_bad
            }),
            reason,
            checkpoint: c.checkpoints,
            purge_checkpoint: c.purges,
        };
        Ok(Verified {
            report,
            nodes: Some(c.nodes),
        })
    }

    /// The latest signed checkpoint (C2SP signed-note text); in a cluster,
    /// every node's, one after the other (blocking then).
    pub fn checkpoint(&self) -> Result<String, AuditError> {
        match &self.cluster {
            Some(c) => Ok(c.checkpoints()?),
            None => Ok(self.trail.checkpoint()),
        }
    }

    /// Deletes the segments whose records are all older than `cutoff`,
    /// behind a signed purge checkpoint (blocking); in a cluster, also this
    /// node's records up to the same point in PostgreSQL. The caller
    /// enforces retention.
    pub fn purge_before(&self, cutoff: OffsetDateTime) -> Result<PurgeOutcome, AuditError> {
        let cutoff_ms = (cutoff.unix_timestamp_nanos() / 1_000_000) as i64;
        let outcome = self.trail.purge_before(cutoff_ms)?;
        if let (Some(c), Some(text)) = (&self.cluster, &outcome.checkpoint) {
            let cp = self.trail.verifier().open(text)?;
            c.purge(cp.count, &cp.head, cp.purge_before.unwrap_or(cutoff_ms))?;
        }
        Ok(outcome)
    }

    /// Records newest first below `before` (blocking): this node's trail,
    /// or every node's in a cluster.
    pub fn newest(
        &self,
        before: Option<u64>,
    ) -> Box<dyn Iterator<Item = Result<Listed, AuditError>> + '_> {
        match &self.cluster {
            Some(c) => Box::new(c.newest(before).map(|r| {
                r.map(|row| Listed {
                    seq: cluster::sql::as_u64(row.id),
                    node: Some(row.node),
                    body: row.body,
                })
                .map_err(AuditError::from)
            })),
            None => Box::new(self.trail.newest(before).map(|e| {
                e.map(|e| Listed {
                    seq: e.seq,
                    node: None,
                    body: e.body,
                })
                .map_err(AuditError::from)
            })),
        }
    }

    /// The sources of the trail's scrape-time series (`crate::metrics::scrape`):
    /// the trail itself and, in a cluster, how far it is shipped.
    pub fn metric_sources(&self) -> (Arc<Trail>, Option<cluster::ShippingView>) {
        let shipped = self.cluster.as_ref().map(ClusterTrail::shipping_view);
        (self.trail.clone(), shipped)
    }

    /// This node's chain in PostgreSQL (cluster only).
    pub fn cluster(&self) -> Option<&ClusterTrail> {
        self.cluster.as_ref()
    }
    /// Whether the start-up check passed (`opale_trail_intact`).
    pub fn intact(&self) -> bool {
        self.trail.intact()
    }

    /// What the start-up check found.
    pub fn open_report(&self) -> &OpenReport {
        self.trail.open_report()
    }

    /// The log itself (for queries).
    pub fn trail(&self) -> &Trail {
        &self.trail
    }

    /// Writer counters.
    pub fn stats(&self) -> &TrailStats {
        self.trail.stats()
    }
}
