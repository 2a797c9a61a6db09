//! Claim, then mark: how the nodes sharing one store send each notice once
//! (docs/contract.md §10, "one mail per notice for the whole cluster").
//!
//! Before sending, a node **claims** the notice: under the store's writer
//! lock (`Store::transact`: a cluster-wide advisory lock on PostgreSQL, a
//! process mutex on sled) it reads the stored record and, unless the
//! notice is already sent or another node's claim still holds, writes it
//! back with its `node_id` and a lease expiry (`[notify]
//! claim_lease_secs`). Only one node can win. After the relay accepted the
//! e-mail the winner **settles** it as `sent`; a failed send settles it as
//! `pending` and releases the claim, so the next pass of any node retries.
//! A node that dies between claim and mark leaves a claim that no one
//! renews: once its lease has passed, another node claims it and sends.
//! The send itself is bounded by the lease, so a node never sends after
//! its claim could have passed to another (clocks agreeing, as NTP keeps
//! them, to well within the lease).

use super::record::{Delivery, Notice, Notices};
use crate::store::StoreError;
use time::{Duration, OffsetDateTime};

/// What the store held when a node tried to claim a notice.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    /// This node holds the notice until its `claim_expires_at`: send it.
    Won(Box<Notice>),
    /// Already sent (by any node): nothing to do.
    Sent,
    /// Another node's claim still holds (it is sending): nothing to do.
    Held {
        /// The node holding it.
        by: String,
    },
}

impl Notices {
    /// Claims `fresh` (a notice due now) for `node` for `lease`, if no node
    /// sent it and no other node's claim holds at `now`. The claimed record
    /// keeps what the store had (attempts, first record time) with
    /// `fresh`'s recipient, delivery `pending`, and one more attempt.
    pub async fn claim(
        &self,
        fresh: &Notice,
        node: &str,
        now: OffsetDateTime,
        lease: Duration,
    ) -> Result<Claim, StoreError> {
        self.update(&fresh.key(), |stored| match stored {
            Some(s) if s.delivery == Delivery::Sent => (None, Claim::Sent),
            Some(s) if held_by_another(&s, node, now) => {
                let by = s.claimed_by.unwrap_or_default();
                (None, Claim::Held { by })
            }
            stored => {
                let mut n = stored.unwrap_or_else(|| fresh.clone());
                n.recipient.clone_from(&fresh.recipient);
                n.delivery = Delivery::Pending;
                n.attempts += 1;
                n.claimed_by = Some(node.to_owned());
                n.claim_expires_at = Some(now + lease);
                (Some(n.clone()), Claim::Won(Box::new(n)))
            }
        })
        .await
    }

    /// Writes what became of `notice` on `node` at `now`: a `sent` notice
    /// replaces anything but another `sent` one; any other outcome (a
    /// failed send, dashboard only) is written only if the stored notice is
    /// not sent and no other node's claim holds. Returns whether it was
    /// written.
    pub async fn settle(
        &self,
        notice: Notice,
        node: &str,
        now: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        let key = notice.key();
        self.update(&key, |stored| {
            let keep = stored.as_ref().is_some_and(|s| {
                s.delivery == Delivery::Sent
                    || (notice.delivery != Delivery::Sent && held_by_another(s, node, now))
            });
            if keep {
                (None, false)
            } else {
                (Some(notice), true)
            }
        })
        .await
    }
}

/// Whether a node other than `node` holds a claim on `stored` that has not
/// expired at `now`. A claim of `node` itself never blocks it: a node runs
/// one pass at a time, so its own live claim is one its previous process
/// left (a restart with the same `node_id`).
fn held_by_another(stored: &Notice, node: &str, now: OffsetDateTime) -> bool {
    let other = stored.claimed_by.as_deref().is_some_and(|by| by != node);
    other && stored.claim_expires_at.is_some_and(|until| until > now)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::notify::record::tests::sample;
    use crate::store::SledStore;
    use std::sync::Arc;

    fn pending() -> Notice {
        Notice {
            delivery: Delivery::Pending,
            sent_at: None,
            attempts: 0,
            claimed_by: None,
            ..sample(30)
        }
    }

    async fn notices() -> (tempfile::TempDir, Notices) {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(SledStore::open(dir.path()).unwrap());
        (dir, Notices::open(store).await.unwrap())
    }

    const LEASE: Duration = Duration::minutes(5);

    #[tokio::test]
    async fn one_claim_wins_until_its_lease_ends() {
        let (_dir, notices) = notices().await;
        let now = time::macros::datetime!(2026-12-31 10:00 UTC);
        let Claim::Won(won) = notices
            .claim(&pending(), "node-a", now, LEASE)
            .await
            .unwrap()
        else {
            panic!("the first claim wins");
        };
        assert_eq!(won.claimed_by.as_deref(), Some("node-a"));
        assert_eq!(won.claim_expires_at, Some(now + LEASE));
        assert_eq!(won.attempts, 1);
        assert_eq!(notices.get(&won.key()), Some(*won.clone()));
        let later = now + Duration::minutes(4);
        let by = "node-a".to_owned();
        assert_eq!(
            notices
                .claim(&pending(), "node-b", later, LEASE)
                .await
                .unwrap(),
            Claim::Held { by }
        );
        // The claimer died without sending: past the lease, another node
        // takes it over.
        let after = now + LEASE + Duration::SECOND;
        let Claim::Won(again) = notices
            .claim(&pending(), "node-b", after, LEASE)
            .await
            .unwrap()
        else {
            panic!("an expired claim is claimed again");
        };
        assert_eq!(
            (again.claimed_by.as_deref(), again.attempts),
            (Some("node-b"), 2)
        );
    }

    #[tokio::test]
    async fn a_sent_notice_is_final_and_a_failed_send_releases_the_claim() {
        let (_dir, notices) = notices().await;
        let now = time::macros::datetime!(2026-12-31 10:00 UTC);
        let Claim::Won(n) = notices
            .claim(&pending(), "node-a", now, LEASE)
            .await
            .unwrap()
        else {
            panic!("won");
        };
        let mut n = *n;
        // Another node's outcome other than `sent` does not undo a live claim.
        let dashboard = Notice {
            delivery: Delivery::DashboardOnly,
            ..pending()
        };
        assert!(!notices.settle(dashboard, "node-b", now).await.unwrap());
        // A failed send releases the claim: any node retries at once.
        n.claim_expires_at = None;
        assert!(notices.settle(n.clone(), "node-a", now).await.unwrap());
        assert!(matches!(
            notices
                .claim(&pending(), "node-b", now, LEASE)
                .await
                .unwrap(),
            Claim::Won(_)
        ));
        n.delivery = Delivery::Sent;
        n.sent_at = Some(now);
        assert!(notices.settle(n.clone(), "node-a", now).await.unwrap());
        assert_eq!(
            notices
                .claim(&pending(), "node-c", now + LEASE * 2, LEASE)
                .await
                .unwrap(),
            Claim::Sent
        );
        assert!(!notices.settle(n, "node-b", now).await.unwrap());
    }
}
