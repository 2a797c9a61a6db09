//! Step 6 — quota: counts only calls that passed steps 1–5.
//!
//! With a shared backend (Redis, docs/contract.md §10) the decision can fail; the
//! configured `quota.on_failure` then says whether the call is refused
//! (`closed`: 503 / 910605) or admitted without being counted (`open`).

use super::{Denial, Reason};
use crate::config::OnFailure;
use crate::domain::Environment;
use crate::quota::{Decision, Quotas};
use crate::registry::Application;

/// Runs step 6: admits and counts the call, or refuses it (429 over the
/// quota; 503 when the backend cannot decide and fails closed). Also
/// returns the decision for the RateLimit headers, when there is one.
pub async fn check(
    quotas: &Quotas,
    env: Environment,
    app: &Application,
) -> (Result<(), Denial>, Option<Decision>) {
    let decision = match quotas.take(env, &app.client_id, app.quota_per_minute).await {
        Ok(decision) => decision,
        Err(e) => return (unavailable(quotas.on_failure(), &e), None),
    };
    if decision.admitted {
        return (Ok(()), Some(decision));
    }
    let mut denial = Denial::new(
        Reason::OverQuota,
        format!(
            "quota of {} calls per minute reached; retry in {} s",
            decision.limit, decision.reset_secs
        ),
    );
    denial.retry_after = Some(decision.reset_secs);
    (Err(denial), Some(decision))
}

/// The verdict when the backend could not decide.
fn unavailable(policy: OnFailure, e: &crate::quota::QuotaError) -> Result<(), Denial> {
    match policy {
        OnFailure::Open => Ok(()),
        OnFailure::Closed => {
            tracing::debug!(error = %e, "quota undecided: refused (on_failure = closed)");
            let mut denial = Denial::new(
                Reason::StorageFailure,
                "the quota service is unavailable; retry shortly",
            );
            denial.retry_after = Some(1);
            Err(denial)
        }
    }
}
