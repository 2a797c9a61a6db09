//! The deny-list: revoked token ids (RFC 7009), kept in memory (moka, so
//! the token step never touches the disk) and persisted in the store, plus
//! every token bound to a certificate that was revoked in the registry
//! (RFC 8705 §6.3: revoking or rotating a certificate revokes its tokens),
//! plus per-application cut-offs: every token of a client issued up to a
//! given second (DataPass `revoke`, docs/contract.md §9).

use super::AccessClaims;
use crate::registry::{CertStatus, Registry};
use crate::store::{Store, StoreError, Write};
use moka::sync::Cache;
use std::sync::Arc;
use std::time::Duration;

const PREFIX: &str = "oauth/revoked/";
const CLIENT_PREFIX: &str = "oauth/revoked-client/";

/// Revoked token ids and the registry's certificate revocations.
pub struct DenyList {
    jtis: Cache<String, i64>,
    /// client id → tokens issued at or before this second are revoked.
    clients: Cache<String, i64>,
    store: Arc<dyn Store>,
    registry: Arc<Registry>,
    /// How long an entry can matter (the longest token lifetime).
    max_lifetime_secs: i64,
}

impl DenyList {
    /// Loads the persisted revocations that have not expired (and forgets
    /// the others). `max_lifetime_secs` bounds how long an entry matters.
    pub async fn open(
        store: Arc<dyn Store>,
        registry: Arc<Registry>,
        max_lifetime_secs: i64,
        now: i64,
    ) -> Result<Self, StoreError> {
        let ttl = Duration::from_secs(max_lifetime_secs.max(1) as u64 + 120);
        let jtis = Cache::builder().time_to_live(ttl).build();
        let clients = Cache::builder().time_to_live(ttl).build();
        let list = DenyList {
            jtis,
            clients,
            store,
            registry,
            max_lifetime_secs,
        };
        let expired = list.load(now).await?;
        if !expired.is_empty() {
            list.store.commit(expired).await?;
        }
        Ok(list)
    }

    /// Adds the persisted revocations that still matter; returns the
    /// deletions of those that do not.
    async fn load(&self, now: i64) -> Result<Vec<Write>, StoreError> {
        let mut expired = load(&*self.store, PREFIX, &self.jtis, |exp| exp > now).await?;
        // A cut-off matters while a token issued before it may be unexpired.
        let lifetime = self.max_lifetime_secs;
        let live = |until: i64| until.saturating_add(lifetime) > now;
        expired.extend(load(&*self.store, CLIENT_PREFIX, &self.clients, live).await?);
        Ok(expired)
    }

    /// Picks up the revocations another node persisted (docs/contract.md §10).
    pub async fn reload(&self, now: i64) -> Result<(), StoreError> {
        self.load(now).await.map(drop)
    }

    /// Revokes every token of `client_id` issued at or before
    /// `issued_until` (Unix seconds); durable when it returns.
    pub async fn revoke_client(
        &self,
        client_id: &str,
        issued_until: i64,
    ) -> Result<(), StoreError> {
        let key = format!("{CLIENT_PREFIX}{client_id}").into_bytes();
        let value = issued_until.to_string().into_bytes();
        self.store.commit(vec![Write::Put(key, value)]).await?;
        self.clients.insert(client_id.to_owned(), issued_until);
        Ok(())
    }

    /// The cut-off of `client_id`, if its tokens were revoked by
    /// [`revoke_client`](Self::revoke_client).
    pub fn client_revoked_until(&self, client_id: &str) -> Option<i64> {
        self.clients.get(client_id)
    }

    /// Revokes a token id until `exp`; durable when it returns.
    pub async fn revoke(&self, jti: &str, exp: i64) -> Result<(), StoreError> {
        let key = format!("{PREFIX}{jti}").into_bytes();
        self.store
            .commit(vec![Write::Put(key, exp.to_string().into_bytes())])
            .await?;
        self.jtis.insert(jti.to_owned(), exp);
        Ok(())
    }

    /// Whether the token was revoked, or its certificate is revoked or no
    /// longer registered. (A certificate registered to another client is
    /// the identity step's refusal, 910401, not a revocation.)
    pub fn is_revoked(&self, claims: &AccessClaims) -> bool {
        if self.jtis.contains_key(&claims.jti)
            || self
                .clients
                .get(&claims.client_id)
                .is_some_and(|until| claims.iat <= until)
        {
            return true;
        }
        let snapshot = self.registry.snapshot();
        match snapshot.certificates.get(claims.cnf.x5t_s256.as_str()) {
            Some(cert) => cert.status == CertStatus::Revoked,
            None => true,
        }
    }
}

/// Loads the entries under `prefix` that `keep` accepts into `cache`;
/// returns the deletions of the others.
async fn load(
    store: &dyn Store,
    prefix: &str,
    cache: &Cache<String, i64>,
    keep: impl Fn(i64) -> bool + Send,
) -> Result<Vec<Write>, StoreError> {
    let mut expired = Vec::new();
    for (k, v) in store.scan_prefix(prefix.as_bytes()).await? {
        let value = std::str::from_utf8(&v)
            .ok()
            .and_then(|s| s.parse::<i64>().ok());
        let id = String::from_utf8_lossy(&k[prefix.len()..]).into_owned();
        match value {
            Some(value) if keep(value) => cache.insert(id, value),
            _ => expired.push(Write::Delete(k)),
        }
    }
    Ok(expired)
}

/// The store area of revoked token ids and clients: the first segment of its keys.
pub const AREA: &str = "oauth";

#[async_trait::async_trait]
impl crate::store::Keyspace for DenyList {
    fn area(&self) -> &'static str {
        AREA
    }

    async fn reload(&self) -> Result<(), crate::store::keyspace::ReloadError> {
        DenyList::reload(self, crate::oauth::unix_now())
            .await
            .map_err(Into::into)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::SledStore;

    #[tokio::test]
    async fn client_cut_off_survives_a_restart_until_its_tokens_expired() {
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn Store> = Arc::new(SledStore::open(dir.path()).unwrap());
        let registry = Arc::new(Registry::open(store.clone()).await.unwrap());
        let open = async |now| {
            DenyList::open(store.clone(), registry.clone(), 3600, now)
                .await
                .unwrap()
        };
        let list = open(1_000).await;
        assert_eq!(list.client_revoked_until("c1"), None);
        list.revoke_client("c1", 1_000).await.unwrap();
        assert_eq!(list.client_revoked_until("c1"), Some(1_000));
        drop(list);
        assert_eq!(open(4_599).await.client_revoked_until("c1"), Some(1_000));
        // Every token issued by 1 000 has expired by 4 600: forgotten.
        assert_eq!(open(4_600).await.client_revoked_until("c1"), None);
        assert_eq!(
            open(1_000).await.client_revoked_until("c1"),
            None,
            "deleted"
        );
    }
}
