//! Events apply in `fired_at` order, per authorization request and
//! environment. The registry keeps the last event applied to each request
//! ([`DatapassMark`]); a new event is compared with it before anything is
//! written:
//!
//! - no mark yet, or a strictly later `fired_at`: the event applies;
//! - the very same delivery again (same body, hence same event and
//!   `fired_at`): it was applied already, nothing more is done, and it is
//!   answered as the first time (DataPass retries a delivery whose answer
//!   it did not get, and needs the `token_id` of an approval);
//! - an earlier `fired_at`, or the same `fired_at` with another body (two
//!   events in one second cannot be ordered): superseded, nothing is done.
//!
//! So a replayed `approve` cannot undo a later `revoke`, nor a replayed
//! `revoke` cut off the tokens of a later approval.

use crate::datapass::payload::Event;
use crate::registry::{Application, DatapassKey, DatapassMark, Snapshot};
use time::OffsetDateTime;

/// How an event stands against the last one applied to its request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Order {
    /// Nothing applied yet, or an older event: this one applies.
    Newer,
    /// This very delivery was applied already.
    Repeated,
    /// Not later than the last event applied, which it names.
    Superseded(DatapassMark),
}

/// What a delivery of `approve` or `revoke` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Applied by this delivery; the request's application, if it has one.
    Applied(Option<Application>),
    /// Applied by an earlier delivery of the same body: nothing more done.
    Repeated(Option<Application>),
    /// Older than the last event applied: nothing done.
    Superseded {
        /// The request's application, if it has one (for the trace).
        application: Option<Application>,
        /// The event that supersedes it.
        last: DatapassMark,
    },
}

impl Outcome {
    /// Whether the event is in effect (now or since an earlier delivery):
    /// `applied` in the answer.
    pub fn applied(&self) -> bool {
        !matches!(self, Outcome::Superseded { .. })
    }

    /// The request's application, if it has one.
    pub fn application(&self) -> Option<&Application> {
        match self {
            Outcome::Applied(a) | Outcome::Repeated(a) => a.as_ref(),
            Outcome::Superseded { application, .. } => application.as_ref(),
        }
    }
}

/// The request an event is about.
pub fn key(event: &Event) -> DatapassKey {
    DatapassKey {
        environment: event.environment,
        request_id: event.request_id.clone(),
    }
}

/// Where `event` (whose signed body hashes to `body_sha256`) stands in
/// `snap`.
pub fn order(snap: &Snapshot, event: &Event, body_sha256: &str) -> Order {
    match snap.datapass.get(&key(event)) {
        None => Order::Newer,
        Some(last) if last.body_sha256 == body_sha256 => Order::Repeated,
        Some(last) if event.fired_at > last.fired_at => Order::Newer,
        Some(last) => Order::Superseded(last.clone()),
    }
}

/// The mark recording that `event` was applied at `now`.
pub fn mark(event: &Event, body_sha256: &str, now: OffsetDateTime) -> DatapassMark {
    DatapassMark {
        environment: event.environment,
        request_id: event.request_id.clone(),
        event: event.kind,
        fired_at: event.fired_at,
        body_sha256: body_sha256.to_owned(),
        applied_at: now,
    }
}

/// One line for the answer and the trace: why `event` changed nothing.
pub fn superseded_reason(event: &Event, last: &DatapassMark) -> String {
    format!(
        "{} fired at {} is not later than the {} fired at {} already applied to DataPass request {} ({}): nothing changed",
        event.kind, event.fired_at, last.event, last.fired_at, event.request_id, event.environment
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Environment;
    use crate::registry::DatapassEvent;

    fn event(kind: DatapassEvent, fired_at: i64) -> Event {
        Event {
            kind,
            environment: Environment::Sandbox,
            fired_at,
            model_type: String::new(),
            request_id: "9001".into(),
        }
    }

    fn after(applied: &Event, body: &str) -> Snapshot {
        let mut snap = Snapshot::default();
        let m = mark(applied, body, OffsetDateTime::UNIX_EPOCH);
        snap.datapass.insert(m.key(), m);
        snap
    }

    #[test]
    fn events_apply_in_fired_at_order() {
        use DatapassEvent::{Approve, Revoke};
        let revoke = event(Revoke, 200);
        let snap = after(&revoke, "r");
        assert_eq!(order(&Snapshot::default(), &revoke, "r"), Order::Newer);
        assert_eq!(order(&snap, &revoke, "r"), Order::Repeated);
        assert_eq!(order(&snap, &event(Approve, 201), "a2"), Order::Newer);
        let Order::Superseded(last) = order(&snap, &event(Approve, 100), "a1") else {
            panic!("an older approve is superseded");
        };
        assert_eq!((last.event, last.fired_at), (Revoke, 200));
        // Same second, another body: cannot be ordered, changes nothing.
        assert!(matches!(
            order(&snap, &event(Approve, 200), "a"),
            Order::Superseded(_)
        ));
        // Another environment is another request.
        let mut prod = event(Approve, 100);
        prod.environment = Environment::Production;
        assert_eq!(order(&snap, &prod, "a1"), Order::Newer);
    }
}
