//! Retention: records older than a cutoff are deleted, oldest first, after
//! a signed checkpoint of the last deleted record is stored, so that what
//! remains still verifies from that checkpoint.

use super::AuditError;
use super::anchor::AuditKey;
use super::record::{self, TraceRecord};
use crate::store::{Store, Write};

/// Store key of the purge checkpoint.
pub const CHECKPOINT: &[u8] = b"audit/checkpoint";
const CHUNK: usize = 10_000;

/// Deletes every record whose time is before `cutoff` (RFC 3339, UTC).
/// Runs on the writer thread, so no append interleaves.
pub fn purge(store: &dyn Store, key: &AuditKey, cutoff: &str) -> Result<u64, AuditError> {
    // Find the last record older than the cutoff (records are in time order).
    let mut last: Option<(Vec<u8>, u64, String)> = None;
    let mut start = record::KEY_START.to_vec();
    'scan: loop {
        let chunk = store.range(&start, record::KEY_END, false, CHUNK)?;
        for (k, bytes) in &chunk {
            let rec: TraceRecord =
                serde_json::from_slice(bytes).map_err(|e| AuditError::Corrupt(e.to_string()))?;
            if rec.event.time.as_str() >= cutoff {
                break 'scan;
            }
            last = Some((k.clone(), rec.seq, record::digest(bytes)));
        }
        match chunk.last() {
            Some((k, _)) if chunk.len() == CHUNK => {
                start = k.clone();
                start.push(0);
            }
            _ => break,
        }
    }
    let Some((last_key, seq, hash)) = last else {
        return Ok(0);
    };
    let anchor = key.anchor(seq, &hash)?;
    let cp = serde_json::to_vec(&anchor).map_err(|e| AuditError::Corrupt(e.to_string()))?;
    // Checkpoint first: a crash mid-purge leaves old records that verify
    // simply skips.
    store.commit(vec![Write::Put(CHECKPOINT.to_vec(), cp)])?;
    let mut end = last_key;
    end.push(0);
    let mut deleted = 0;
    loop {
        let keys = store.range(record::KEY_START, &end, false, CHUNK)?;
        if keys.is_empty() {
            break;
        }
        deleted += keys.len() as u64;
        store.commit(keys.into_iter().map(|(k, _)| Write::Delete(k)).collect())?;
    }
    Ok(deleted)
}
