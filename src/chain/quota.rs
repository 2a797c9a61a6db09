//! Step 6 — quota: counts only calls that passed steps 1–5.

use super::{Denial, Reason};
use crate::domain::Environment;
use crate::quota::{Decision, Quotas};
use crate::registry::Application;

/// Runs step 6: admits and counts the call, or refuses it with 429.
pub fn check(
    quotas: &Quotas,
    env: Environment,
    app: &Application,
) -> Result<Decision, (Denial, Decision)> {
    let decision = quotas.take(env, &app.client_id, app.quota_per_minute);
    if decision.admitted {
        return Ok(decision);
    }
    let mut denial = Denial::new(
        Reason::OverQuota,
        format!(
            "quota of {} calls per minute reached; retry in {} s",
            decision.limit, decision.reset_secs
        ),
    );
    denial.retry_after = Some(decision.reset_secs);
    Err((denial, decision))
}
