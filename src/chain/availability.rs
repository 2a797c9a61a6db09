//! Before step 1 — availability: an environment under maintenance or shut
//! by the kill switch or a scheduled maintenance (§11) answers 503 (code
//! 910600) with `Retry-After`, before
//! any credential is looked at. The switch itself lives in
//! `crate::availability` (set by admins, persisted, read lock-free). A
//! cluster node cut off from its store for longer than
//! `cluster.max_staleness_secs` answers 503 (910605) instead (docs/contract.md §10).

use super::{Context, Denial, Reason};

/// Refuses every call while the environment is under maintenance.
pub fn check(cx: &Context<'_>) -> Result<(), Denial> {
    if cx.availability.is_stale() {
        let detail = "the gateway lost contact with its store; try again later";
        return Err(Denial::new(Reason::StorageFailure, detail));
    }
    let Some(closed) = cx.availability.closed(cx.env, cx.now) else {
        return Ok(());
    };
    let detail = closed
        .message
        .unwrap_or_else(|| format!("the {} environment is under maintenance", cx.env));
    let mut denial = Denial::new(Reason::Unavailable, detail);
    denial.retry_after = Some(closed.retry_after);
    Err(denial)
}
