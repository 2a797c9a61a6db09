//! The keyring: every token signing key registered in the store, as this
//! node verifies with them, and this node's own private keys, one of which
//! signs per environment.
//!
//! The hot path reads one [`ArcSwap`] (the signer, a verifier by kid); a
//! reload (another node registered or rotated, area `keys`) or a rotation
//! builds a new [`Published`] and swaps it whole. Nothing here is called
//! while another task needs it for long: reloads and rotations await the
//! store holding tokio mutexes (`own`, `rotation`) only other reloads and
//! rotations take, and a rotation creates and removes key files on the
//! blocking pool.
//!
//! A rotation is two commits. The first registers the new key; once it is
//! published the node signs with it. The second records the previous key's
//! retirement, computed only then: every token the previous key signed was
//! minted before, so it expires before the key retires (both times come
//! from this node's clock, so other nodes' clock skew does not matter).
//! If the second commit fails, the previous key simply lives on until the
//! next rotation or start, which records its retirement then.

use super::record::{KeyRecord, PREFIX, PublicKey};
use super::{SigningKey, key_file, own_keys, remove};
use crate::domain::Environment;
use crate::oauth::OAuthError;
use crate::store::{Store, StoreError, Write};
use arc_swap::ArcSwap;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use time::OffsetDateTime;
use tokio::sync::Mutex;

/// Seconds added to a retirement beyond the longest token lifetime: room
/// for this node's wall clock stepping back a little between a mint and
/// the rotation that follows it.
const RETIRE_MARGIN_SECS: i64 = 2;

/// The signing keys of the cluster as this node sees them.
pub struct Keyring {
    node: String,
    dir: PathBuf,
    lifetime_secs: i64,
    store: Arc<dyn Store>,
    published: ArcSwap<Published>,
    /// This node's private keys per environment (sandbox, production),
    /// oldest first. Locked by reloads for their whole scan, so that a
    /// later scan is always published later.
    own: Mutex<[Vec<Arc<SigningKey>>; 2]>,
    /// Serialises rotations (held for a whole rotation; reloads go on).
    rotation: Mutex<()>,
}

/// What the hot path reads: the registered keys by kid and the signer of
/// each environment.
struct Published {
    keys: HashMap<String, Arc<PublicKey>>,
    signers: [Arc<SigningKey>; 2],
}

impl Keyring {
    /// Loads this node's keys from `dir` (creating the first one of each
    /// environment), registers the current ones, records the retirement of
    /// those a rotation left behind, forgets the keys whose retirement has
    /// passed, and loads every registered key. `node` is `cluster.node_id`,
    /// `lifetime_secs` the longest token lifetime.
    pub async fn open(
        store: Arc<dyn Store>,
        dir: &Path,
        node: &str,
        lifetime_secs: i64,
        now: OffsetDateTime,
    ) -> Result<Keyring, OAuthError> {
        let registered = scan(&*store).await?;
        let mut writes = forgotten(&registered, now.unix_timestamp());
        let [sandbox, production] =
            Environment::ALL.map(|env| own_current(dir, env, node, &registered, now));
        let (sandbox, production) = (sandbox?, production?);
        let registers = [&sandbox.register, &production.register];
        writes.extend(registers.into_iter().flatten().filter_map(KeyRecord::put));
        let signers = [sandbox.current, production.current];
        let own = [sandbox.keys, production.keys];
        let ring = Keyring {
            node: node.to_owned(),
            dir: dir.to_path_buf(),
            lifetime_secs,
            published: ArcSwap::from_pointee(Published {
                keys: HashMap::new(),
                signers,
            }),
            own: Mutex::new(own),
            store,
            rotation: Mutex::new(()),
        };
        if !writes.is_empty() {
            ring.store.commit(writes).await?;
        }
        ring.reload().await?;
        ring.settle(&Environment::ALL).await;
        Ok(ring)
    }

    /// Reads the registered keys again (another node registered, rotated
    /// or forgot one; docs/contract.md §10).
    pub async fn reload(&self) -> Result<(), OAuthError> {
        let own = self.own.lock().await;
        let signers = self.published.load().signers.clone();
        let keys = scan(&*self.store)
            .await?
            .into_values()
            .filter_map(PublicKey::of)
            .map(|k| (k.record.kid.clone(), Arc::new(k)))
            .collect();
        self.published.store(Arc::new(publish(keys, &own, signers)));
        Ok(())
    }

    /// The key this node signs `environment`'s tokens with.
    pub fn signer(&self, environment: Environment) -> Arc<SigningKey> {
        self.published.load().signers[slot(environment)].clone()
    }

    /// The registered key `kid` of `environment`, if it still verifies at
    /// `now` (Unix seconds).
    pub fn verifier(
        &self,
        environment: Environment,
        kid: &str,
        now: i64,
    ) -> Option<Arc<PublicKey>> {
        let published = self.published.load();
        let key = published.keys.get(kid)?;
        let usable = key.record.environment == environment && key.record.verifies_at(now);
        usable.then(|| key.clone())
    }

    /// `GET /.well-known/jwks.json` of `environment` (RFC 7517 §5): every
    /// registered key that still verifies at `now`, oldest first.
    pub fn jwks(&self, environment: Environment, now: i64) -> Value {
        let published = self.published.load();
        let mut keys: Vec<&PublicKey> = published
            .keys
            .values()
            .map(|k| &**k)
            .filter(|k| k.record.environment == environment && k.record.verifies_at(now))
            .collect();
        keys.sort_by(|a, b| order(&a.record, &b.record));
        json!({ "keys": keys.iter().map(|k| k.jwk()).collect::<Vec<_>>() })
    }

    /// Every registered key, by environment, node and age.
    pub fn list(&self) -> Vec<KeyRecord> {
        let published = self.published.load();
        let mut records: Vec<KeyRecord> =
            published.keys.values().map(|k| k.record.clone()).collect();
        records.sort_by(order);
        records
    }

    /// Makes this node sign `environments`' tokens with new keys at once,
    /// and retires the keys they replace once every token those signed has
    /// expired. Returns the new keys' records.
    pub async fn rotate(
        &self,
        environments: &[Environment],
        now: OffsetDateTime,
    ) -> Result<Vec<KeyRecord>, OAuthError> {
        let _rotating = self.rotation.lock().await;
        let mut fresh = Vec::new();
        for &env in environments {
            let next = self.own.lock().await[slot(env)]
                .last()
                .map_or(0, |k| k.seq + 1);
            let file = key_file(&self.dir, env, next);
            let key = tokio::task::spawn_blocking(move || SigningKey::load_or_create(&file))
                .await
                .map_err(|e| StoreError::backend_in("key creation interrupted", e))??;
            fresh.push((env, Arc::new(key)));
        }
        let records: Vec<KeyRecord> = fresh
            .iter()
            .map(|(env, key)| new_record(&self.node, *env, key, None, now))
            .collect();
        let mut writes: Vec<Write> = records.iter().filter_map(KeyRecord::put).collect();
        writes.extend(forgotten(&scan(&*self.store).await?, now.unix_timestamp()));
        match self.store.commit(writes).await {
            Ok(()) => {}
            // Maybe registered: kept, the reload once PostgreSQL settles
            // tells (the signer is the newest registered key).
            Err(e @ StoreError::Unknown { .. }) => {
                self.adopt(fresh).await;
                return Err(e.into());
            }
            Err(e) => {
                removed(fresh.into_iter().map(|(_, key)| key).collect()).await;
                return Err(e.into());
            }
        }
        self.adopt(fresh).await;
        self.reload().await?;
        self.settle(environments).await;
        Ok(records)
    }

    /// Adds keys just written to this node's own.
    async fn adopt(&self, fresh: Vec<(Environment, Arc<SigningKey>)>) {
        let mut own = self.own.lock().await;
        for (env, key) in fresh {
            own[slot(env)].push(key);
        }
    }

    /// Records the retirement of this node's keys of `environments` that
    /// no longer sign (retired once every token they signed has expired),
    /// then removes their files. A failure is logged and left for the next
    /// rotation or start: the key verifies meanwhile, nothing else.
    async fn settle(&self, environments: &[Environment]) {
        let at = crate::oauth::unix_now() + self.lifetime_secs + RETIRE_MARGIN_SECS;
        let Ok(retired_at) = OffsetDateTime::from_unix_timestamp(at) else {
            return;
        };
        let published = self.published.load_full();
        let replaced: Vec<Arc<SigningKey>> = {
            let own = self.own.lock().await;
            environments
                .iter()
                .flat_map(|env| {
                    let signer = &published.signers[slot(*env)];
                    own[slot(*env)].iter().filter(|k| k.kid != signer.kid)
                })
                .cloned()
                .collect()
        };
        let writes: Vec<Write> = replaced
            .iter()
            .filter_map(|k| published.keys.get(&k.kid))
            .filter(|k| k.record.node == self.node && k.record.retired_at.is_none())
            .filter_map(|k| {
                let mut record = k.record.clone();
                record.retired_at = Some(retired_at);
                record.put()
            })
            .collect();
        if !writes.is_empty() {
            let recorded = match self.store.commit(writes).await {
                Ok(()) => self.reload().await,
                Err(e) => Err(e.into()),
            };
            if let Err(e) = recorded {
                tracing::warn!(error = %e, "the retirement of replaced signing keys was not recorded; retried at the next rotation or start");
                return;
            }
        }
        self.own.lock().await.iter_mut().for_each(|keys| {
            keys.retain(|k| !replaced.iter().any(|r| r.kid == k.kid));
        });
        removed(replaced).await;
    }
}

/// Removes the files of `keys`, on the blocking pool.
async fn removed(keys: Vec<Arc<SigningKey>>) {
    let removing = tokio::task::spawn_blocking(move || keys.iter().for_each(|k| remove(k)));
    if let Err(e) = removing.await {
        tracing::warn!(error = %e, "replaced signing key files were not removed");
    }
}

/// The registered keys by kid (records that do not parse are logged and
/// skipped: one bad record must not stop verification).
async fn scan(store: &dyn Store) -> Result<HashMap<String, KeyRecord>, StoreError> {
    let mut records = HashMap::new();
    for (key, value) in store.scan_prefix(PREFIX.as_bytes()).await? {
        match serde_json::from_slice::<KeyRecord>(&value) {
            Ok(r) => {
                records.insert(r.kid.clone(), r);
            }
            Err(e) => {
                let key = String::from_utf8_lossy(&key);
                tracing::warn!(key = %key, error = %e, "unreadable signing key record ignored");
            }
        }
    }
    Ok(records)
}

/// The deletions of the records whose retirement has passed.
fn forgotten(registered: &HashMap<String, KeyRecord>, now: i64) -> Vec<Write> {
    registered
        .values()
        .filter(|r| !r.verifies_at(now))
        .map(|r| Write::Delete(r.key()))
        .collect()
}

/// The record of this node's `key`, active (keeping the creation time of
/// an earlier record).
fn new_record(
    node: &str,
    environment: Environment,
    key: &SigningKey,
    earlier: Option<&KeyRecord>,
    now: OffsetDateTime,
) -> KeyRecord {
    KeyRecord {
        node: node.to_owned(),
        environment,
        kid: key.kid.clone(),
        x: key.x(),
        created: earlier.map_or(now, |r| r.created),
        retired_at: None,
    }
}

/// `keys` with each environment's signer: this node's newest key that is
/// registered and not retired, else its newest key, else `signers`'.
fn publish(
    keys: HashMap<String, Arc<PublicKey>>,
    own: &[Vec<Arc<SigningKey>>; 2],
    signers: [Arc<SigningKey>; 2],
) -> Published {
    let active = |k: &&Arc<SigningKey>| {
        keys.get(&k.kid)
            .is_some_and(|p| p.record.retired_at.is_none())
    };
    let [sandbox, production] = signers;
    let choose = |mine: &Vec<Arc<SigningKey>>, before: Arc<SigningKey>| {
        let chosen = mine.iter().rev().find(active).or(mine.last());
        chosen.cloned().unwrap_or(before)
    };
    let signers = [choose(&own[0], sandbox), choose(&own[1], production)];
    Published { keys, signers }
}

/// This node's keys of one environment as found at start.
struct Opened {
    /// Oldest first.
    keys: Vec<Arc<SigningKey>>,
    /// The one it signs with.
    current: Arc<SigningKey>,
    /// Its record, when it must be (re)registered.
    register: Option<KeyRecord>,
}

/// This node's keys of `environment` in `dir`, oldest first, the current
/// one, and its record when it must be (re)registered. A node without a
/// key, or whose newest key is registered to another node (a copy, as
/// clusters were once set up), makes a key of its own.
fn own_current(
    dir: &Path,
    environment: Environment,
    node: &str,
    registered: &HashMap<String, KeyRecord>,
    now: OffsetDateTime,
) -> Result<Opened, OAuthError> {
    let mut keys: Vec<Arc<SigningKey>> = own_keys(dir, environment)?
        .into_iter()
        .map(Arc::new)
        .collect();
    let current = match keys.last().cloned() {
        Some(k) if registered.get(&k.kid).is_none_or(|r| r.node == node) => k,
        last => {
            let next = last.map_or(0, |k| k.seq + 1);
            let key = Arc::new(SigningKey::load_or_create(&key_file(
                dir,
                environment,
                next,
            ))?);
            keys.push(key.clone());
            key
        }
    };
    let record = registered.get(&current.kid);
    let active = record.is_some_and(|r| r.retired_at.is_none());
    let write = (!active).then(|| new_record(node, environment, &current, record, now));
    Ok(Opened {
        keys,
        current,
        register: write,
    })
}

fn order(a: &KeyRecord, b: &KeyRecord) -> std::cmp::Ordering {
    (a.environment.as_str(), &a.node, a.created, &a.kid).cmp(&(
        b.environment.as_str(),
        &b.node,
        b.created,
        &b.kid,
    ))
}

fn slot(environment: Environment) -> usize {
    match environment {
        Environment::Sandbox => 0,
        Environment::Production => 1,
    }
}

/// The store area of every node's registered token signing keys: the first segment of its keys.
pub const AREA: &str = "keys";

#[async_trait::async_trait]
impl crate::store::Keyspace for Keyring {
    fn area(&self) -> &'static str {
        AREA
    }

    async fn reload(&self) -> Result<(), crate::store::keyspace::ReloadError> {
        Keyring::reload(self).await.map_err(Into::into)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::SledStore;
    use std::os::unix::fs::PermissionsExt;

    const LIFETIME: i64 = 600;
    const SANDBOX: Environment = Environment::Sandbox;

    async fn open(store: &Arc<dyn Store>, dir: &Path, node: &str) -> Keyring {
        let now = OffsetDateTime::now_utc();
        Keyring::open(store.clone(), dir, node, LIFETIME, now)
            .await
            .unwrap()
    }

    fn sled(dir: &Path) -> Arc<dyn Store> {
        Arc::new(SledStore::open(&dir.join("sled")).unwrap())
    }

    #[tokio::test]
    async fn a_node_keeps_its_kid_and_a_rotation_replaces_its_key_and_file() {
        let dir = tempfile::tempdir().unwrap();
        let (store, keys) = (sled(dir.path()), dir.path().join("keys"));
        let ring = open(&store, &keys, "node-a").await;
        let first = ring.signer(SANDBOX);
        let production = ring.signer(Environment::Production).kid.clone();
        drop(ring);
        let ring = open(&store, &keys, "node-a").await;
        assert_eq!(ring.signer(SANDBOX).kid, first.kid, "kept across a restart");

        let now = OffsetDateTime::now_utc();
        let fresh = ring.rotate(&[SANDBOX], now).await.unwrap();
        let second = ring.signer(SANDBOX);
        assert_eq!(fresh.len(), 1);
        assert_eq!(
            (fresh[0].kid.as_str(), second.seq),
            (second.kid.as_str(), 1)
        );
        assert_ne!(second.kid, first.kid);
        assert_eq!(ring.signer(Environment::Production).kid, production);
        assert!(!first.file.exists(), "the replaced private key is gone");
        let mode = std::fs::metadata(&second.file)
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);

        let listed = ring.list();
        let old = listed.iter().find(|r| r.kid == first.kid).unwrap();
        let retired = old.retired_at.unwrap().unix_timestamp();
        let expected = now.unix_timestamp() + LIFETIME + RETIRE_MARGIN_SECS;
        assert!(
            (expected..expected + 5).contains(&retired),
            "{retired} vs {expected}"
        );
        let t = now.unix_timestamp();
        assert!(ring.verifier(SANDBOX, &first.kid, t).is_some());
        assert!(ring.verifier(SANDBOX, &first.kid, retired).is_none());
        assert!(
            ring.verifier(Environment::Production, &second.kid, t)
                .is_none()
        );
        let kids = |at| {
            let jwks = ring.jwks(SANDBOX, at);
            let keys = jwks["keys"].as_array().unwrap().clone();
            keys.iter()
                .map(|k| k["kid"].as_str().unwrap().to_owned())
                .collect::<Vec<_>>()
        };
        assert_eq!(kids(t), [first.kid.clone(), second.kid.clone()]);
        assert_eq!(kids(retired), std::slice::from_ref(&second.kid));
        drop(ring);
        assert_eq!(
            open(&store, &keys, "node-a").await.signer(SANDBOX).kid,
            second.kid
        );
    }

    #[tokio::test]
    async fn a_copied_key_is_left_to_its_node_and_replaced_by_one_of_its_own() {
        let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let store = sled(a.path());
        let ring_a = open(&store, &a.path().join("keys"), "node-a").await;
        let copied = ring_a.signer(SANDBOX);
        std::fs::create_dir_all(b.path().join("keys")).unwrap();
        std::fs::copy(
            &copied.file,
            b.path().join("keys/sandbox-token-signing.pem"),
        )
        .unwrap();
        let ring_b = open(&store, &b.path().join("keys"), "node-b").await;
        let own = ring_b.signer(SANDBOX);
        assert_ne!(own.kid, copied.kid);
        assert!(!b.path().join("keys/sandbox-token-signing.pem").exists());
        ring_a.reload().await.unwrap();
        let records = ring_a.list();
        let of = |kid: &str| records.iter().find(|r| r.kid == kid).unwrap().clone();
        assert_eq!(
            (of(&copied.kid).node.as_str(), of(&copied.kid).retired_at),
            ("node-a", None)
        );
        assert_eq!(of(&own.kid).node, "node-b");
        assert_eq!(records.len(), 4, "two nodes, two environments");
    }

    #[tokio::test]
    async fn keys_whose_retirement_passed_are_forgotten_at_start() {
        let dir = tempfile::tempdir().unwrap();
        let (store, keys) = (sled(dir.path()), dir.path().join("keys"));
        let ring = open(&store, &keys, "node-a").await;
        let first = ring.signer(SANDBOX).kid.clone();
        ring.rotate(&Environment::ALL, OffsetDateTime::now_utc())
            .await
            .unwrap();
        assert_eq!(ring.list().len(), 4);
        drop(ring);
        let later = OffsetDateTime::now_utc() + time::Duration::seconds(LIFETIME + 10);
        let ring = Keyring::open(store.clone(), &keys, "node-a", LIFETIME, later)
            .await
            .unwrap();
        let kids: Vec<String> = ring.list().into_iter().map(|r| r.kid).collect();
        assert_eq!(kids.len(), 2);
        assert!(!kids.contains(&first));
    }
}
