//! One expiry notice as stored and listed, and the store of them: every
//! notice lives under its own key (`notify/notice/…`) in the gateway's
//! store, committed durably before anything relies on it, and is kept in
//! memory for the dashboard and the admin API.

use crate::domain::{ClientId, Environment, PartnerId};
use crate::store::{Store, StoreError, Write};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};
use time::OffsetDateTime;

/// Key prefix of the notices in the store.
pub const PREFIX: &str = "notify/notice/";

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
}

impl Notices {
    /// Loads the notices from `store`. A record that does not decode is
    /// skipped with a warning (it is re-created if still due).
    pub fn open(store: Arc<dyn Store>) -> Result<Self, StoreError> {
        let mut by_key = BTreeMap::new();
        for (k, v) in store.scan_prefix(PREFIX.as_bytes())? {
            let key = String::from_utf8_lossy(&k).into_owned();
            match serde_json::from_slice::<Notice>(&v) {
                Ok(n) => {
                    by_key.insert(key, n);
                }
                Err(e) => tracing::warn!(key, error = %e, "undecodable notice skipped"),
            }
        }
        Ok(Notices {
            store,
            by_key: Mutex::new(by_key),
        })
    }

    fn map(&self) -> MutexGuard<'_, BTreeMap<String, Notice>> {
        self.by_key.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The notice stored under `key`.
    pub fn get(&self, key: &str) -> Option<Notice> {
        self.map().get(key).cloned()
    }

    /// Writes `notice` durably (blocking: the store flushes), then
    /// publishes it.
    pub fn put(&self, notice: Notice) -> Result<(), StoreError> {
        let key = notice.key();
        let value = serde_json::to_vec(&notice).map_err(StoreError::backend)?;
        self.store
            .commit(vec![Write::Put(key.clone().into_bytes(), value)])?;
        self.map().insert(key, notice);
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
}

#[cfg(test)]
mod tests {
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
        }
    }

    #[test]
    fn notices_survive_a_reopen_and_filter_by_partner() {
        let dir = tempfile::tempdir().unwrap();
        {
            let store = Arc::new(SledStore::open(dir.path()).unwrap());
            let notices = Notices::open(store).unwrap();
            notices.put(sample(30)).unwrap();
            notices.put(sample(7)).unwrap();
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
        let notices = Notices::open(Arc::new(reopened.unwrap())).unwrap();
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
