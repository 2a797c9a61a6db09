//! Before step 1 — availability: an environment under maintenance or shut
//! by the kill switch answers 503 (code 910600) with `Retry-After`, before
//! any credential is looked at. The switch itself lives in
//! `crate::availability` (set by admins, persisted, read lock-free).

use super::{Context, Denial, Reason};

/// Refuses every call while the environment is under maintenance.
pub fn check(cx: &Context<'_>) -> Result<(), Denial> {
    let Some(m) = cx.availability.maintenance(cx.env) else {
        return Ok(());
    };
    let detail = m
        .message
        .clone()
        .unwrap_or_else(|| format!("the {} environment is under maintenance", cx.env));
    let mut denial = Denial::new(Reason::Unavailable, detail);
    denial.retry_after = Some(m.retry_after);
    Err(denial)
}
