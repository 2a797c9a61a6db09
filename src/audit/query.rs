//! Reading the trail: filtered listings (newest first, paginated by
//! `before`) and aggregate statistics.

use super::Auditor;
use super::record::TraceRecord;
use super::{AuditError, Decision};
use crate::chain::Control;
use crate::domain::{ClientId, PartnerId, Plane};
use serde::Serialize;
use std::collections::BTreeMap;
use time::OffsetDateTime;

/// Most records a single query examines (a reader that must say when it
/// was cut short compares its count with it).
pub const MAX_SCAN: usize = 200_000;

/// Filters of `GET /admin/v1/trace` (all optional, combined with AND).
#[derive(Debug, Clone, Default)]
pub struct Filter {
    /// Application.
    pub client_id: Option<String>,
    /// Partner.
    pub partner_id: Option<String>,
    /// `admitted` / `denied`.
    pub decision: Option<String>,
    /// Failing control.
    pub control: Option<String>,
    /// Error code.
    pub code: Option<String>,
    /// Correlation id.
    pub correlation_id: Option<String>,
    /// `sandbox` / `production` / `admin`.
    pub plane: Option<String>,
    /// From this time (inclusive; cut to the millisecond like record
    /// times, [`super::parse_time`]).
    pub from: Option<OffsetDateTime>,
    /// Until this time (exclusive; cut like `from`).
    pub to: Option<OffsetDateTime>,
    /// Only records with a smaller seq (next page).
    pub before: Option<u64>,
}

impl Filter {
    /// Whether `r` passes (its `before` aside).
    pub fn matches(&self, r: &TraceRecord) -> bool {
        let e = &r.event;
        let eq = |want: &Option<String>, have: Option<&str>| {
            want.as_deref().is_none_or(|w| have == Some(w))
        };
        let code = e.code.as_ref().map(ToString::to_string);
        eq(&self.client_id, e.client_id.as_ref().map(ClientId::as_str))
            && eq(
                &self.partner_id,
                e.partner_id.as_ref().map(PartnerId::as_str),
            )
            && eq(&self.decision, Some(e.decision.as_str()))
            && eq(&self.control, e.control.map(Control::as_str))
            && eq(&self.code, code.as_deref())
            && eq(&self.correlation_id, e.correlation_id.as_deref())
            && eq(&self.plane, Some(e.plane.as_str()))
            && self.from.is_none_or(|f| e.at >= f)
            && self.to.is_none_or(|t| e.at < t)
    }
}

/// Matching records, newest first, at most `limit`.
pub fn list(
    audit: &Auditor,
    filter: &Filter,
    limit: usize,
) -> Result<Vec<TraceRecord>, AuditError> {
    let mut out = Vec::new();
    scan_newest(audit, filter.before, |r| {
        if filter.matches(&r) {
            out.push(r);
        }
        out.len() < limit
    })?;
    Ok(out)
}

/// Calls `visit` on the records matching `filter` (its `before` too),
/// newest first, until it returns false or [`MAX_SCAN`] records were read:
/// the export's source, one record at a time.
pub fn for_each_matching(
    audit: &Auditor,
    filter: &Filter,
    mut visit: impl FnMut(TraceRecord) -> bool,
) -> Result<(), AuditError> {
    scan_newest(audit, filter.before, |r| !filter.matches(&r) || visit(r))
}

/// Calls `visit` on records from the newest down (below `before`), until
/// it returns false or [`MAX_SCAN`] records were read.
pub fn scan_newest(
    audit: &Auditor,
    before: Option<u64>,
    mut visit: impl FnMut(TraceRecord) -> bool,
) -> Result<(), AuditError> {
    for (scanned, entry) in audit.newest(before).enumerate() {
        if scanned >= MAX_SCAN {
            break;
        }
        let entry = entry?;
        let event = serde_json::from_slice(&entry.body).map_err(|e| AuditError::Corrupt {
            seq: entry.seq,
            message: e.to_string(),
        })?;
        let record = TraceRecord {
            seq: entry.seq,
            node: entry.node,
            event,
        };
        if !visit(record) {
            break;
        }
    }
    Ok(())
}

/// Aggregates of `GET /admin/v1/stats`.
#[derive(Debug, Default, Serialize)]
pub struct Stats {
    /// Records examined.
    pub records: u64,
    /// Calls per day (`YYYY-MM-DD`).
    pub per_day: BTreeMap<String, u64>,
    /// Data calls per dataset.
    pub per_dataset: BTreeMap<String, u64>,
    /// Per decision.
    pub per_decision: BTreeMap<String, u64>,
    /// Denials per failing control.
    pub per_control: BTreeMap<String, u64>,
    /// Latency percentiles of admitted data calls, microseconds.
    pub latency_us: BTreeMap<String, u64>,
}

/// Statistics over the records matching `filter` (newest first, bounded).
pub fn stats(audit: &Auditor, filter: &Filter) -> Result<Stats, AuditError> {
    let mut s = Stats::default();
    let mut latencies = Vec::new();
    scan_newest(audit, filter.before, |r| {
        if !filter.matches(&r) {
            return true;
        }
        let e = r.event;
        s.records += 1;
        *s.per_day.entry(e.at.date().to_string()).or_default() += 1;
        if let Some(d) = e.dataset {
            *s.per_dataset.entry(d.as_str().to_owned()).or_default() += 1;
        }
        *s.per_decision
            .entry(e.decision.as_str().to_owned())
            .or_default() += 1;
        if let Some(c) = e.control {
            *s.per_control.entry(c.as_str().to_owned()).or_default() += 1;
        }
        if e.decision == Decision::Admitted && e.plane != Plane::Admin {
            latencies.push(e.latency_us);
        }
        true
    })?;
    latencies.sort_unstable();
    for (name, q) in [("p50", 0.50), ("p90", 0.90), ("p99", 0.99), ("max", 1.0)] {
        if !latencies.is_empty() {
            let i = ((latencies.len() as f64 - 1.0) * q).round() as usize;
            s.latency_us.insert(name.to_owned(), latencies[i]);
        }
    }
    Ok(s)
}
