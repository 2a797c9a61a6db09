//! The trail's integrity check, shared by `open` (start-up) and `verify`:
//! the purge checkpoint gives the start point, the walk (`scan`) checks
//! every frame and the chain from there, and the result is compared with
//! the trail's own persisted checkpoint and any checkpoint held elsewhere.
//! "ok" is never said over fewer records than a checkpoint vouched for.

use super::frame::Hash;
use super::note::{Checkpoint, NoteVerifier};
use super::scan::{self, Fault, Scan};
use super::{CHECKPOINT_FILE, PURGE_FILE, TrailError};
use serde::Serialize;
use std::path::Path;

/// The outcome of `verify` (the body of `POST /admin/v1/trace/verify`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VerifyReport {
    /// Whether the trail is whole and extends every checkpoint checked.
    pub ok: bool,
    /// Records verified (after the purge point), up to the first fault.
    pub records: u64,
    /// The first record altered, missing or out of place.
    pub first_bad: Option<u64>,
    /// What is wrong, naming the record or the missing range.
    pub reason: Option<String>,
    /// The latest signed checkpoint (signed-note text).
    pub checkpoint: String,
    /// The purge checkpoint verification started from, if any.
    pub purge_checkpoint: Option<String>,
}

/// Everything one check learnt.
pub struct Check {
    /// The walk.
    pub scan: Scan,
    /// Where the walk started: (count, chain value).
    pub start: (u64, Hash),
    /// The valid purge checkpoint, if any.
    pub purge: Option<Checkpoint>,
    /// The trail's own persisted checkpoint, when present and valid.
    pub own: Option<Checkpoint>,
    /// The first fault of all (walk, checkpoints).
    pub fault: Option<Fault>,
}

/// Reads and checks a signed note file; `Ok(None)` when absent.
pub fn read_note(path: &Path, verifier: &NoteVerifier) -> Result<Option<Checkpoint>, String> {
    match std::fs::read_to_string(path) {
        // The writer pads the checkpoint to one sector with NULs.
        Ok(text) => verifier
            .open(text.trim_end_matches('\0'))
            .map(Some)
            .map_err(|e| e.to_string()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e.to_string()),
    }
}

fn fault(first_bad: Option<u64>, reason: String) -> Option<Fault> {
    Some(Fault { first_bad, reason })
}

/// Checks the trail in `dir` up to record `stop_after`, against its own
/// checkpoint and the `extra` ones (already signature-checked).
pub fn check(
    dir: &Path,
    verifier: &NoteVerifier,
    stop_after: u64,
    extra: &[&Checkpoint],
) -> Result<Check, TrailError> {
    let mut faults = Vec::new();
    let purge = read_note(&dir.join(PURGE_FILE), verifier)
        .and_then(|p| match p {
            Some(cp) if cp.purge_before.is_none() => Err("not a purge checkpoint".into()),
            other => Ok(other),
        })
        .unwrap_or_else(|e| {
            faults.push(fault(None, format!("purge checkpoint refused: {e}")));
            None
        });
    let own = read_note(&dir.join(CHECKPOINT_FILE), verifier).unwrap_or_else(|e| {
        faults.push(fault(None, format!("trail checkpoint refused: {e}")));
        None
    });
    let start = purge
        .as_ref()
        .map_or_else(scan::genesis, |p| (p.count, p.head));
    let files = scan::list_segments(dir)?;
    let fresh = files.is_empty() && own.is_none() && purge.is_none() && faults.is_empty();
    if own.is_none() && faults.is_empty() && !fresh {
        faults.push(fault(None, "trail checkpoint file missing".into()));
    }
    let want: Vec<u64> = own
        .iter()
        .chain(extra.iter().copied())
        .map(|c| c.count)
        .collect();
    let scan = scan::walk(&files, start, stop_after, &want)?;
    let mut check = Check {
        fault: None,
        scan,
        start,
        purge,
        own,
    };
    check.fault = faults.into_iter().flatten().next();
    Ok(check)
}

impl Check {
    /// The first fault: missing/refused checkpoints, then the walk, then
    /// the comparison with each checkpoint in turn.
    pub fn first_fault(&self, extra: &[&Checkpoint]) -> Option<Fault> {
        if let Some(f) = self.fault.clone().or_else(|| self.scan.fault.clone()) {
            return Some(f);
        }
        let own = self.own.iter();
        own.chain(extra.iter().copied())
            .find_map(|cp| self.extends(cp))
    }

    /// Why the walked trail does not extend `cp`, if it does not.
    pub fn extends(&self, cp: &Checkpoint) -> Option<Fault> {
        let (purged, purged_head) = self.start;
        if cp.count < purged {
            let why = format!(
                "checkpoint at record {} predates the purge point {purged}: cannot be checked",
                cp.count
            );
            return fault(None, why);
        }
        if cp.count == purged {
            return (cp.head != purged_head).then(|| Fault {
                first_bad: Some(purged),
                reason: format!("chain at record {purged} differs from the checkpoint"),
            });
        }
        if cp.count > self.scan.good {
            let why = format!(
                "trail holds records up to {} but a checkpoint vouches for {}: records {}..{} missing",
                self.scan.good,
                cp.count,
                self.scan.good + 1,
                cp.count
            );
            return fault(Some(self.scan.good + 1), why);
        }
        let at = self.scan.probes.iter().find(|(n, _)| *n == cp.count);
        match at {
            Some((_, head)) if *head == cp.head => None,
            _ => fault(
                Some(cp.count),
                format!(
                    "chain at record {} differs from the checkpoint: history rewritten",
                    cp.count
                ),
            ),
        }
    }

    /// The report for this check.
    pub fn report(
        &self,
        extra: &[&Checkpoint],
        latest: &str,
        flagged: Option<&Fault>,
    ) -> VerifyReport {
        let fault = self.first_fault(extra).or_else(|| flagged.cloned());
        VerifyReport {
            ok: fault.is_none(),
            records: self.scan.good - self.start.0,
            first_bad: fault.as_ref().and_then(|f| f.first_bad),
            reason: fault.map(|f| f.reason),
            checkpoint: latest.to_owned(),
            purge_checkpoint: self.purge.as_ref().map(|p| p.text.clone()),
        }
    }
}

/// Verifies a trail directory offline (the CLI's `admin trace verify`):
/// the whole walk, against its checkpoint and optionally `external` (a
/// refused external checkpoint makes the report not ok, naming why).
pub fn verify_dir(
    dir: &Path,
    verifier: &NoteVerifier,
    external: Option<&str>,
) -> Result<VerifyReport, TrailError> {
    let ext = external.map(|t| verifier.open(t));
    let extra: Vec<&Checkpoint> = ext.iter().flat_map(|r| r.as_ref().ok()).collect();
    let check = check(dir, verifier, u64::MAX, &extra)?;
    let latest = check.own.as_ref().map(|c| c.text.clone());
    let mut report = check.report(&extra, &latest.unwrap_or_default(), None);
    if let (true, Some(Err(e))) = (report.ok, ext) {
        report.ok = false;
        report.reason = Some(e.to_string());
    }
    Ok(report)
}
