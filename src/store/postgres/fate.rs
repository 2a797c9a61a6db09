//! A write's COMMIT, and what its caller and the task sending it agree on,
//! so that an outcome that is not known is reported as unknown, never as
//! "nothing was changed" (docs/architecture.md style rule 16).
//!
//! A write runs in its caller's task, bounded by [`CALL_TIMEOUT`] from its
//! start. Until COMMIT is sent, giving up drops the transaction, which is
//! rolled back ([`super::ops::Open`]): nothing changed, and the caller may
//! say so ([`StoreError::Unavailable`]). The COMMIT itself is sent by a
//! task on the `opale-pg` runtime, so that PostgreSQL's answer is heard
//! even when the caller stopped waiting (its timeout, or its runtime shut
//! down): the caller then reports [`StoreError::Unknown`], and the task,
//! once PostgreSQL answers, asks the node to reload its state (the node's
//! own notification is not one it acts on, and its reload right after the
//! failure ran while the COMMIT was still pending). The two sides decide
//! with one compare-and-swap each, so exactly one of "answered in time"
//! and "unknown, reload when settled" happens.

use super::CALL_TIMEOUT;
use crate::store::{Cause, Change, StoreError};
use deadpool_postgres::Object;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering::SeqCst};
use std::time::Duration;
use tokio::runtime::Handle;
use tokio::sync::mpsc::UnboundedSender;
use tokio::time::Instant;

/// COMMIT sent, the caller still waiting.
const COMMITTING: u8 = 0;
/// COMMIT sent, the caller gave up: it reported the outcome as unknown.
const UNCERTAIN: u8 = 1;
/// COMMIT answered while the caller was waiting.
const ANSWERED: u8 = 2;

/// How long the caller still waits for an answer the task has just settled.
const HANDOVER: Duration = Duration::from_secs(1);

/// The state of one write's COMMIT, shared by its caller and its task.
#[derive(Debug, Clone, Default)]
struct Fate(Arc<AtomicU8>);

impl Fate {
    /// The task, once PostgreSQL answered COMMIT: `true` when the caller
    /// had given up meanwhile, so that the node must reload what was
    /// decided.
    fn answered_too_late(&self) -> bool {
        self.0
            .compare_exchange(COMMITTING, ANSWERED, SeqCst, SeqCst)
            .is_err()
            && self.0.load(SeqCst) == UNCERTAIN
    }

    /// The caller, at its deadline: `true` when the outcome is now unknown
    /// (the task will ask for a reload), `false` when the task has just
    /// been answered (its result is on its way).
    fn give_up(&self) -> bool {
        self.0
            .compare_exchange(COMMITTING, UNCERTAIN, SeqCst, SeqCst)
            .is_ok()
    }
}

/// Sends COMMIT on `client` from a task on `runtime` and waits for the
/// answer until `deadline`. Past it: [`StoreError::Unknown`], and the
/// task asks `reloads` for every area once PostgreSQL answers (every
/// area, since a transaction's writes are only known to its caller; this
/// is rare).
pub(super) async fn commit(
    client: Object,
    runtime: &Handle,
    reloads: Option<UnboundedSender<Change>>,
    deadline: Instant,
) -> Result<(), StoreError> {
    let fate = Fate::default();
    let task_fate = fate.clone();
    let mut answer = runtime.spawn(async move {
        let result = client.batch_execute("COMMIT").await.map_err(commit_error);
        if task_fate.answered_too_late()
            && let Some(reloads) = reloads
        {
            let _ = reloads.send(Change::Everything);
        }
        result
    });
    let joined = match tokio::time::timeout_at(deadline, &mut answer).await {
        Ok(joined) => joined,
        Err(_) if fate.give_up() => return Err(unconfirmed()),
        // Answered a moment ago: its result is on its way.
        Err(_) => match tokio::time::timeout(HANDOVER, answer).await {
            Ok(joined) => joined,
            Err(_) => return Err(unconfirmed()),
        },
    };
    joined.unwrap_or_else(|e| {
        // The runtime stopped (the store is being dropped) or the task
        // panicked: the COMMIT may have been sent.
        Err(StoreError::Unknown {
            message: "the COMMIT task ended without an answer".into(),
            source: Some(Cause::new(e)),
        })
    })
}

/// The error of a write whose COMMIT got no answer in time.
fn unconfirmed() -> StoreError {
    StoreError::Unknown {
        message: format!(
            "no answer to COMMIT from PostgreSQL within {} s",
            CALL_TIMEOUT.as_secs()
        ),
        source: None,
    }
}

/// A failed COMMIT as a store error: PostgreSQL answering it with an
/// ERROR rolled the transaction back (nothing changed); a connection lost
/// or closed while it ran (no answer, or a FATAL one) leaves the outcome
/// unknown.
fn commit_error(e: tokio_postgres::Error) -> StoreError {
    use tokio_postgres::error::Severity;
    let rolled_back = e
        .as_db_error()
        .is_some_and(|db| db.parsed_severity() == Some(Severity::Error));
    if rolled_back {
        return StoreError::backend_in("PostgreSQL refused the COMMIT (rolled back)", e);
    }
    StoreError::Unknown {
        message: format!("PostgreSQL: {e}"),
        source: Some(Cause::new(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_caller_gone_during_commit_means_reload_when_answered() {
        let fate = Fate::default();
        assert!(fate.give_up());
        assert!(fate.answered_too_late());
    }

    #[test]
    fn an_answer_in_time_needs_no_reload() {
        let fate = Fate::default();
        assert!(!fate.answered_too_late());
        assert!(!fate.give_up(), "answered: the caller takes the answer");
    }

    #[test]
    fn the_unconfirmed_commit_is_unknown() {
        assert!(matches!(unconfirmed(), StoreError::Unknown { .. }));
    }
}
