//! What a write's caller and the task running its transaction on `opale-pg`
//! agree on about its COMMIT, so that an outcome that is not known is
//! reported as unknown, never as "nothing was changed"
//! (docs/architecture.md style rule 16).
//!
//! The caller waits at most [`CALL_TIMEOUT`]. If it gives up before the
//! task sent COMMIT, the task rolls back instead of committing: nothing
//! changed, and the caller may say so ([`StoreError::Unavailable`]). If
//! COMMIT was already sent, the caller reports [`StoreError::Unknown`], and
//! the task, once PostgreSQL answers the COMMIT, asks the node to reload
//! its state: the node's own notification is not one it acts on, and its
//! reload right after the failure ran while the COMMIT was still pending.
//! The two sides decide with one compare-and-swap each, so exactly one of
//! "rolled back" and "unknown" happens.

use super::{CALL_TIMEOUT, no_answer};
use crate::store::{Cause, StoreError};
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering::SeqCst};
use std::sync::mpsc::Receiver;
use std::time::Duration;

/// The transaction runs; COMMIT not sent.
const WORKING: u8 = 0;
/// The caller gave up before COMMIT: the task rolls back.
const ABANDONED: u8 = 1;
/// COMMIT sent, the caller still waiting.
const COMMITTING: u8 = 2;
/// COMMIT sent, the caller gave up: it reported the outcome as unknown.
const UNCERTAIN: u8 = 3;
/// COMMIT answered while the caller was waiting.
const ANSWERED: u8 = 4;

/// How long the caller still waits for an answer the task has just settled.
const HANDOVER: Duration = Duration::from_secs(1);

/// The state of one write's COMMIT, shared by its caller and its task.
#[derive(Debug, Clone, Default)]
pub(super) struct Fate(Arc<AtomicU8>);

impl Fate {
    /// The task, about to send COMMIT: `false` when the caller has given up
    /// (roll back instead: the caller said nothing was changed).
    pub fn may_commit(&self) -> bool {
        self.0
            .compare_exchange(WORKING, COMMITTING, SeqCst, SeqCst)
            .is_ok()
    }

    /// The task, once PostgreSQL answered COMMIT: `true` when the caller
    /// had given up meanwhile, so that the node must reload what was
    /// decided.
    pub fn answered_too_late(&self) -> bool {
        self.0
            .compare_exchange(COMMITTING, ANSWERED, SeqCst, SeqCst)
            .is_err()
            && self.0.load(SeqCst) == UNCERTAIN
    }

    /// The caller: the task's answer, or after [`CALL_TIMEOUT`] the error
    /// saying whether anything may have changed.
    pub fn wait<T>(&self, answer: &Receiver<Result<T, StoreError>>) -> Result<T, StoreError> {
        if let Ok(result) = answer.recv_timeout(CALL_TIMEOUT) {
            return result;
        }
        if self
            .0
            .compare_exchange(WORKING, ABANDONED, SeqCst, SeqCst)
            .is_ok()
        {
            return Err(no_answer());
        }
        if self
            .0
            .compare_exchange(COMMITTING, UNCERTAIN, SeqCst, SeqCst)
            .is_ok()
        {
            return Err(unconfirmed());
        }
        // Answered a moment ago: its result is on its way.
        answer
            .recv_timeout(HANDOVER)
            .unwrap_or_else(|_| Err(unconfirmed()))
    }
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
pub(super) fn commit_error(e: tokio_postgres::Error) -> StoreError {
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
    fn the_caller_gone_before_commit_means_roll_back() {
        let fate = Fate::default();
        assert_eq!(
            fate.0.compare_exchange(WORKING, ABANDONED, SeqCst, SeqCst),
            Ok(WORKING)
        );
        assert!(!fate.may_commit());
        assert!(!fate.answered_too_late());
    }

    #[test]
    fn the_caller_gone_during_commit_means_reload_when_answered() {
        let fate = Fate::default();
        assert!(fate.may_commit());
        assert_eq!(
            fate.0
                .compare_exchange(COMMITTING, UNCERTAIN, SeqCst, SeqCst),
            Ok(COMMITTING)
        );
        assert!(fate.answered_too_late());
    }

    #[test]
    fn an_answer_in_time_needs_no_reload() {
        let fate = Fate::default();
        assert!(fate.may_commit());
        assert!(!fate.answered_too_late());
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        tx.send(Ok(7)).unwrap();
        assert_eq!(fate.wait(&rx).ok(), Some(7));
    }
}
