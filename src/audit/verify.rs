//! Walking the chain: every record's `seq` follows the previous one, its
//! `prev` is the SHA-256 of the previous record's stored bytes, and the
//! last record matches the signed head. Starts after the signed checkpoint
//! when a prefix was purged.

use super::anchor::{Anchor, AuditKey};
use super::record::{self, GENESIS, TraceRecord};
use super::{AuditError, retention, writer};
use crate::store::Store;
use serde::Serialize;

const CHUNK: usize = 10_000;

/// The outcome of a verification.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VerifyReport {
    /// Whether the whole chain holds.
    pub ok: bool,
    /// Records checked.
    pub records: u64,
    /// The first record found altered, missing or out of place.
    pub first_bad: Option<u64>,
    /// What was wrong there.
    pub reason: Option<String>,
    /// Last purged record, when a prefix was purged.
    pub checkpoint: Option<u64>,
}

fn anchor(store: &dyn Store, key: &[u8]) -> Result<Option<Anchor>, AuditError> {
    store
        .get(key)?
        .map(|b| serde_json::from_slice(&b).map_err(|e| AuditError::Corrupt(e.to_string())))
        .transpose()
}

/// Verifies the chain in `store`.
pub fn verify(store: &dyn Store, key: &AuditKey) -> Result<VerifyReport, AuditError> {
    let mut report = VerifyReport {
        ok: true,
        records: 0,
        first_bad: None,
        reason: None,
        checkpoint: None,
    };
    let bad = |mut r: VerifyReport, seq: u64, why: String| {
        r.ok = false;
        r.first_bad = Some(seq);
        r.reason = Some(why);
        Ok(r)
    };
    let (mut expect_seq, mut expect_prev) = (1, GENESIS.to_owned());
    if let Some(cp) = anchor(store, retention::CHECKPOINT)? {
        if !key.verify(&cp) {
            return bad(
                report,
                cp.seq,
                "the purge checkpoint's signature is invalid".into(),
            );
        }
        report.checkpoint = Some(cp.seq);
        (expect_seq, expect_prev) = (cp.seq + 1, cp.hash);
    }
    let mut start = record::key(expect_seq);
    loop {
        let chunk = store.range(&start, record::KEY_END, false, CHUNK)?;
        let Some((last_key, _)) = chunk.last() else {
            break;
        };
        start = last_key.clone();
        start.push(0);
        for (_, bytes) in &chunk {
            let Ok(rec) = serde_json::from_slice::<TraceRecord>(bytes) else {
                return bad(report, expect_seq, "record does not decode".into());
            };
            if rec.seq != expect_seq {
                let why = format!(
                    "expected record {expect_seq}, found {} (deleted or moved)",
                    rec.seq
                );
                return bad(report, expect_seq, why);
            }
            if rec.prev != expect_prev {
                let prev = expect_seq.saturating_sub(1);
                return bad(
                    report,
                    prev,
                    format!(
                        "record {prev} was altered or replaced (record {expect_seq} links to another hash)"
                    ),
                );
            }
            expect_prev = record::digest(bytes);
            expect_seq += 1;
            report.records += 1;
        }
        if chunk.len() < CHUNK {
            break;
        }
    }
    let last = expect_seq - 1;
    match anchor(store, writer::HEAD)? {
        None if report.records == 0 => Ok(report),
        None => bad(report, last, "the signed head is missing".into()),
        Some(head) if !key.verify(&head) => {
            bad(report, head.seq, "the head's signature is invalid".into())
        }
        Some(head) if head.seq != last => {
            let first = last.min(head.seq) + 1;
            bad(
                report,
                first,
                format!(
                    "the head names record {} but the chain ends at {last}",
                    head.seq
                ),
            )
        }
        Some(head) if head.hash != expect_prev => bad(
            report,
            last,
            format!("record {last} was altered (it no longer matches the signed head)"),
        ),
        Some(_) => Ok(report),
    }
}
