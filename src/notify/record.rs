//! One expiry notice as stored and listed, and the store of them: every
//! notice lives under its own key (`notify/notice/…`) in the gateway's
//! store, committed durably before anything relies on it, and is kept in
//! memory for the dashboard and the admin API. With PostgreSQL the nodes
//! share them: a change another node committed under `notify/` makes the
//! reloader call [`Notices::reload`] (the `notify` area, docs/cluster.md).

use crate::domain::{ClientId, Environment, PartnerId};
use crate::store::{Fetched, Read, Step, Store, StoreError, Write};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use time::OffsetDateTime;

/// Key prefix of the notices in the store.
pub const PREFIX: &str = "notify/notice/";

/// Scans of the store a reload makes while this node keeps changing its
/// notices, before it applies the last one anyway.
const RELOAD_SCANS: u32 = 3;

/// What a notice is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ObjectKind {
    /// A registered client certificate (its `not_after`).
    Certificate,
    /// An application and the grants it carries (its `valid_until`).
    Application,
}

impl ObjectKind {
    /// `certificate` or `application`.
    pub fn as_str(self) -> &'static str {
        match self {
            ObjectKind::Certificate => "certificate",
            ObjectKind::Application => "application",
        }
    }
}

/// Where a notice stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Delivery {
    /// The SMTP relay accepted the e-mail (final: never sent again).
    Sent,
    /// An e-mail is due but the last attempt failed: retried next pass.
    Pending,
    /// No `[notify] smtp_url`: shown on the dashboard only (e-mailed on a
    /// later pass if a relay is configured before the next threshold).
    DashboardOnly,
    /// The partner has no contact with an e-mail address: dashboard only
    /// until one is added.
    NoRecipient,
}

/// One notice: an object, one threshold, and what became of it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Notice {
    /// Certificate or application.
    pub kind: ObjectKind,
    /// The certificate's thumbprint or the application's client id.
    pub object_id: String,
    /// The certificate's subject DN or the application's name.
    pub label: String,
    /// The partner notified.
    pub partner_id: PartnerId,
    /// The application concerned (the certificate's application).
    pub client_id: ClientId,
    /// The application's environment.
    pub environment: Environment,
    /// The threshold crossed: 90, 30 or 7 days before expiry.
    pub threshold_days: u32,
    /// When the object expires (RFC 3339): a certificate's `not_after`,
    /// the end of an application's `valid_until` day (UTC).
    #[serde(with = "time::serde::rfc3339")]
    pub expires_at: OffsetDateTime,
    /// Sent, pending, dashboard only or no recipient.
    pub delivery: Delivery,
    /// When the notice was first recorded (RFC 3339).
    #[serde(with = "time::serde::rfc3339")]
    pub recorded_at: OffsetDateTime,
    /// When the SMTP relay accepted it (RFC 3339).
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub sent_at: Option<OffsetDateTime>,
    /// The address it was (or is to be) sent to.
    #[serde(default)]
    pub recipient: Option<String>,
    /// Sending attempts so far.
    #[serde(default)]
    pub attempts: u32,
    /// Why the last attempt failed.
    #[serde(default)]
    pub last_error: Option<String>,
    /// The node (`cluster.node_id`) that last claimed the notice to send
    /// it; once `sent`, the node that sent it.
    #[serde(default)]
    pub claimed_by: Option<String>,
    /// Until when that claim holds (RFC 3339): while it does, no other
    /// node sends the notice; past it, a notice still not sent may be
    /// claimed again. `None` once the claim was released (a failed send)
    /// or never taken.
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub claim_expires_at: Option<OffsetDateTime>,
}

impl Notice {
    /// Its store key: one per object, expiry date and threshold (an
    /// application whose `valid_until` moves gets fresh notices).
    pub fn key(&self) -> String {
        format!(
            "{PREFIX}{}/{}/{}/{:03}",
            self.kind.as_str(),
            self.object_id,
            self.expires_at.date(),
            self.threshold_days
        )
    }
}

/// Every notice recorded, persisted in the store.
pub struct Notices {
    store: Arc<dyn Store>,
    by_key: Mutex<BTreeMap<String, Notice>>,
    /// Bumped (under `by_key`'s lock) by every notice this node publishes,
    /// so that a reload does not overwrite one it did not see.
    local_changes: AtomicU64,
}

impl Notices {
    /// Loads the notices from `store`. A record that does not decode is
    /// skipped with a warning (it is re-created if still due).
    pub async fn open(store: Arc<dyn Store>) -> Result<Self, StoreError> {
        let by_key = load(store.as_ref()).await?;
        Ok(Notices {
            store,
            by_key: Mutex::new(by_key),
            local_changes: AtomicU64::new(0),
        })
    }

    fn map(&self) -> MutexGuard<'_, BTreeMap<String, Notice>> {
        self.by_key.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The notice stored under `key`.
    pub fn get(&self, key: &str) -> Option<Notice> {
        self.map().get(key).cloned()
    }

    /// Reads the notice stored under `key` holding the store's writer lock
    /// (cluster-wide on PostgreSQL, `Store::transact`), lets `decide`
    /// choose what to write from it, commits that before the lock is
    /// released, and publishes what the store holds afterwards. Returns
    /// `decide`'s verdict. A stored record that does not decode is handed
    /// over as absent (it is rewritten).
    pub(super) async fn update<T: Send>(
        &self,
        key: &str,
        decide: impl FnOnce(Option<Notice>) -> (Option<Notice>, T) + Send,
    ) -> Result<T, StoreError> {
        let mut decide = Some(decide);
        let mut outcome: Result<Option<(Option<Notice>, T)>, StoreError> = Ok(None);
        let mut transaction = |_, fetched: &Fetched| {
            if fetched.is_empty() {
                return Step::Read(vec![Read::Get(key.as_bytes().to_vec())]);
            }
            let Some(decide) = decide.take() else {
                return Step::Nothing;
            };
            let stored = fetched.value(0).and_then(|v| decode(key, v));
            let (write, verdict) = decide(stored.clone());
            let writes = match write.as_ref().map(encode).transpose() {
                Ok(value) => value.map(|v| vec![Write::Put(key.as_bytes().to_vec(), v)]),
                Err(e) => {
                    outcome = Err(e);
                    return Step::Nothing;
                }
            };
            outcome = Ok(Some((write.or(stored), verdict)));
            writes.map_or(Step::Nothing, Step::Commit)
        };
        self.store.transact(AREA, &mut transaction).await?;
        let (now_stored, verdict) = outcome?
            .ok_or_else(|| StoreError::broken("notice update: the transaction did not run"))?;
        if let Some(n) = now_stored {
            self.publish(key.to_owned(), n);
        }
        Ok(verdict)
    }

    /// Replaces the notices held in memory with the stored ones (another
    /// node changed them, docs/contract.md §10), from the reloader.
    pub async fn reload(&self) -> Result<(), StoreError> {
        for scan in 1..=RELOAD_SCANS {
            let before = self.local_changes.load(Ordering::Relaxed);
            let stored = load(self.store.as_ref()).await?;
            let mut map = self.map();
            // A notice published here between the scan and now would be
            // undone: scan again (it is in the store).
            if self.local_changes.load(Ordering::Relaxed) != before && scan < RELOAD_SCANS {
                continue;
            }
            *map = stored;
            break;
        }
        Ok(())
    }

    /// The notices (of one partner if given), soonest expiry first.
    pub fn list(&self, partner_id: Option<&str>) -> Vec<Notice> {
        let mut list: Vec<Notice> = self
            .map()
            .values()
            .filter(|n| partner_id.is_none_or(|p| n.partner_id.as_str() == p))
            .cloned()
            .collect();
        list.sort_by(|a, b| {
            (a.expires_at, a.threshold_days, &a.object_id).cmp(&(
                b.expires_at,
                b.threshold_days,
                &b.object_id,
            ))
        });
        list
    }

    /// Makes `notice` (as stored under `key`) the one listed.
    fn publish(&self, key: String, notice: Notice) {
        let mut map = self.map();
        map.insert(key, notice);
        self.local_changes.fetch_add(1, Ordering::Relaxed);
    }
}

/// Every stored notice that decodes, by key.
async fn load(store: &dyn Store) -> Result<BTreeMap<String, Notice>, StoreError> {
    let mut by_key = BTreeMap::new();
    for (k, v) in store.scan_prefix(PREFIX.as_bytes()).await? {
        let key = String::from_utf8_lossy(&k).into_owned();
        if let Some(n) = decode(&key, &v) {
            by_key.insert(key, n);
        }
    }
    Ok(by_key)
}

/// The notice stored as `value`, or `None` (with a warning) when it does
/// not decode.
fn decode(key: &str, value: &[u8]) -> Option<Notice> {
    serde_json::from_slice::<Notice>(value)
        .inspect_err(|e| tracing::warn!(key, error = %e, "undecodable notice skipped"))
        .ok()
}

fn encode(notice: &Notice) -> Result<Vec<u8>, StoreError> {
    serde_json::to_vec(notice).map_err(|e| StoreError::backend_in("notice", e))
}

/// The store area of expiry notices, their claims and sent marks: the first segment of its keys.
pub const AREA: &str = "notify";

#[async_trait::async_trait]
impl crate::store::Keyspace for Notices {
    fn area(&self) -> &'static str {
        AREA
    }

    async fn reload(&self) -> Result<(), crate::store::keyspace::ReloadError> {
        Notices::reload(self).await.map_err(Into::into)
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use crate::store::SledStore;

    pub(crate) fn sample(threshold: u32) -> Notice {
        Notice {
            kind: ObjectKind::Certificate,
            object_id: "thumb".into(),
            label: "CN=app".into(),
            partner_id: PartnerId::new("p1"),
            client_id: ClientId::new("c1"),
            environment: Environment::Sandbox,
            threshold_days: threshold,
            expires_at: time::macros::datetime!(2027-01-20 10:00 UTC),
            delivery: Delivery::Sent,
            recorded_at: time::macros::datetime!(2026-12-31 10:00 UTC),
            sent_at: Some(time::macros::datetime!(2026-12-31 10:00 UTC)),
            recipient: Some("jd@example.fr".into()),
            attempts: 1,
            last_error: None,
            claimed_by: Some("node-a".into()),
            claim_expires_at: None,
        }
    }

    #[tokio::test]
    async fn notices_survive_a_reopen_and_filter_by_partner() {
        let dir = tempfile::tempdir().unwrap();
        {
            let store = Arc::new(SledStore::open(dir.path()).unwrap());
            let notices = Notices::open(store).await.unwrap();
            let now = time::macros::datetime!(2026-12-31 10:00 UTC);
            assert!(notices.settle(sample(30), "node-a", now).await.unwrap());
            assert!(notices.settle(sample(7), "node-a", now).await.unwrap());
        }
        // sled's flusher thread lets go of the directory lock a moment
        // after the last handle is dropped.
        let reopened = (0..100).find_map(|_| {
            let s = SledStore::open(dir.path()).ok();
            if s.is_none() {
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            s
        });
        let notices = Notices::open(Arc::new(reopened.unwrap())).await.unwrap();
        let all = notices.list(None);
        assert_eq!(all.len(), 2);
        assert_eq!(all[0].threshold_days, 7);
        assert_eq!(
            all[1].key(),
            "notify/notice/certificate/thumb/2027-01-20/030"
        );
        assert_eq!(notices.get(&all[1].key()), Some(sample(30)));
        assert!(notices.list(Some("p2")).is_empty());
        assert_eq!(notices.list(Some("p1")).len(), 2);
    }
}
