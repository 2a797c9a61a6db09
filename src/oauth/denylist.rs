//! The deny-list: revoked token ids (RFC 7009), kept in memory (moka, so
//! the token step never touches the disk) and persisted in the store, plus
//! every token bound to a certificate that was revoked in the registry
//! (RFC 8705 §6.3: revoking or rotating a certificate revokes its tokens).

use super::AccessClaims;
use crate::domain::Thumbprint;
use crate::registry::{CertStatus, Registry};
use crate::store::{Store, StoreError, Write};
use moka::sync::Cache;
use std::sync::Arc;
use std::time::Duration;

const PREFIX: &str = "oauth/revoked/";

/// Revoked token ids and the registry's certificate revocations.
pub struct DenyList {
    jtis: Cache<String, i64>,
    store: Arc<dyn Store>,
    registry: Arc<Registry>,
}

impl DenyList {
    /// Loads the persisted revocations that have not expired (and forgets
    /// the others). `max_lifetime_secs` bounds how long an entry matters.
    pub fn open(
        store: Arc<dyn Store>,
        registry: Arc<Registry>,
        max_lifetime_secs: i64,
        now: i64,
    ) -> Result<Self, StoreError> {
        let ttl = Duration::from_secs(max_lifetime_secs.max(1) as u64 + 120);
        let jtis = Cache::builder().time_to_live(ttl).build();
        let list = DenyList {
            jtis,
            store,
            registry,
        };
        let expired = list.load(now)?;
        if !expired.is_empty() {
            list.store.commit(expired)?;
        }
        Ok(list)
    }

    /// Adds the persisted revocations that have not expired; returns the
    /// deletions of those that have.
    fn load(&self, now: i64) -> Result<Vec<Write>, StoreError> {
        let mut expired = Vec::new();
        for (k, v) in self.store.scan_prefix(PREFIX.as_bytes())? {
            let exp = std::str::from_utf8(&v)
                .ok()
                .and_then(|s| s.parse::<i64>().ok());
            let jti = String::from_utf8_lossy(&k[PREFIX.len()..]).into_owned();
            match exp {
                Some(exp) if exp > now => self.jtis.insert(jti, exp),
                _ => expired.push(Write::Delete(k)),
            }
        }
        Ok(expired)
    }

    /// Picks up the revocations another node persisted (DESIGN §10).
    pub fn reload(&self, now: i64) -> Result<(), StoreError> {
        self.load(now).map(drop)
    }

    /// Revokes a token id until `exp`; durable when it returns.
    pub fn revoke(&self, jti: &str, exp: i64) -> Result<(), StoreError> {
        let key = format!("{PREFIX}{jti}").into_bytes();
        self.store
            .commit(vec![Write::Put(key, exp.to_string().into_bytes())])?;
        self.jtis.insert(jti.to_owned(), exp);
        Ok(())
    }

    /// Whether the token was revoked, or its certificate is revoked or no
    /// longer registered. (A certificate registered to another client is
    /// the identity step's refusal, 910401, not a revocation.)
    pub fn is_revoked(&self, claims: &AccessClaims) -> bool {
        if self.jtis.contains_key(&claims.jti) {
            return true;
        }
        let snapshot = self.registry.snapshot();
        match snapshot
            .certificates
            .get(&Thumbprint::new(claims.cnf.x5t_s256.as_str()))
        {
            Some(cert) => cert.status == CertStatus::Revoked,
            None => true,
        }
    }
}
