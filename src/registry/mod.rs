//! The registry: partners, applications, certificates, client-secret digests
//! and admin certificates; and, for the DataPass webhook, who suspended an
//! application and the last DataPass event applied to each request.
//!
//! Writes go through [`Registry::apply`]: one admin operation validates
//! against the current state, commits all its records in one atomic, flushed
//! store batch, then publishes a new immutable [`Snapshot`]. Readers (the hot
//! path) only ever load the current snapshot: no lock, no disk.

pub mod admission;
mod datapass;
mod model;
pub mod ops;
mod secret;
mod suspension;
mod years;

pub use datapass::{DatapassEvent, DatapassKey, DatapassMark};

pub use model::{
    AdminRecord, Application, CertOrigin, CertStatus, CertificateRecord, Contact, Grant, Partner,
};
pub use secret::{SecretDigest, generate_secret};
pub use suspension::SuspendedBy;
pub use years::{YearBound, YearSpec};

use crate::domain::{ClientId, PartnerId, Thumbprint};
use crate::store::{Fetched, Pairs, Read, Step, Store, StoreError, Write};
use arc_swap::ArcSwap;
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::collections::HashMap;
use std::sync::Arc;

/// Why a registry operation was refused. Field names are those of the admin
/// API's JSON bodies (`grants[0].scope`, `contacts.technique.email`, …).
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// Bad input: 400.
    #[error("{field}: {message}")]
    Invalid {
        /// The offending field.
        field: String,
        /// What is wrong with it.
        message: String,
    },
    /// Unknown id: 404.
    #[error("{field}: no {what} {id}")]
    NotFound {
        /// The field or path segment that named it.
        field: String,
        /// `partner`, `application`, `certificate`.
        what: &'static str,
        /// The id looked up.
        id: String,
    },
    /// Clashes with existing state: 409.
    #[error("{field}: {message}")]
    Conflict {
        /// The offending field.
        field: String,
        /// What it clashes with.
        message: String,
    },
    /// The store failed; nothing was published.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// No random id or secret could be drawn; nothing was published.
    #[error(transparent)]
    Random(#[from] crate::domain::RandomError),
    /// A stored record could not be decoded.
    #[error("corrupt registry record {key}: {message}")]
    Corrupt {
        /// The store key.
        key: String,
        /// The decoding error.
        message: String,
    },
}

impl RegistryError {
    /// A 400 naming `field`.
    pub fn invalid(field: impl Into<String>, message: impl std::fmt::Display) -> Self {
        RegistryError::Invalid {
            field: field.into(),
            message: message.to_string(),
        }
    }

    /// A 409 naming `field`.
    pub fn conflict(field: impl Into<String>, message: impl std::fmt::Display) -> Self {
        RegistryError::Conflict {
            field: field.into(),
            message: message.to_string(),
        }
    }

    /// A 404 naming `field`.
    pub fn not_found(field: impl Into<String>, what: &'static str, id: impl Into<String>) -> Self {
        RegistryError::NotFound {
            field: field.into(),
            what,
            id: id.into(),
        }
    }
}

/// An immutable view of the whole registry, read by the hot path.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    /// Partners by id.
    pub partners: HashMap<PartnerId, Partner>,
    /// Applications by client id.
    pub applications: HashMap<ClientId, Application>,
    /// Certificates by thumbprint (active and revoked).
    pub certificates: HashMap<Thumbprint, CertificateRecord>,
    /// Client-secret digests by client id.
    pub secrets: HashMap<ClientId, SecretDigest>,
    /// Admin certificates by thumbprint.
    pub admins: HashMap<Thumbprint, AdminRecord>,
    /// The last DataPass event applied, by request and environment.
    pub datapass: HashMap<DatapassKey, DatapassMark>,
}

impl Snapshot {
    /// The partner by id, or a 404 naming `field`.
    pub fn partner(&self, field: &str, id: &str) -> Result<&Partner, RegistryError> {
        self.partners
            .get(&PartnerId::new(id))
            .ok_or_else(|| RegistryError::not_found(field, "partner", id))
    }

    /// The application by client id, or a 404 naming `field`.
    pub fn application(&self, field: &str, id: &str) -> Result<&Application, RegistryError> {
        self.applications
            .get(&ClientId::new(id))
            .ok_or_else(|| RegistryError::not_found(field, "application", id))
    }

    /// The certificates of one application, newest first.
    pub fn certificates_of(&self, client_id: &ClientId) -> Vec<&CertificateRecord> {
        let mut certs: Vec<_> = self
            .certificates
            .values()
            .filter(|c| &c.client_id == client_id)
            .collect();
        certs.sort_by_key(|c| std::cmp::Reverse(c.registered_at));
        certs
    }
}

/// One record written by an operation.
#[derive(Debug, Clone)]
pub enum Record {
    /// Insert or replace a partner.
    Partner(Partner),
    /// Insert or replace an application.
    Application(Application),
    /// Insert or replace a certificate.
    Certificate(CertificateRecord),
    /// Set an application's client-secret digest.
    Secret(ClientId, SecretDigest),
    /// Insert or replace an admin certificate.
    Admin(AdminRecord),
    /// Record the last DataPass event applied to a request.
    Datapass(DatapassMark),
}

const PARTNER: &str = "reg/partner/";
const APPLICATION: &str = "reg/app/";
const CERTIFICATE: &str = "reg/cert/";
const SECRET: &str = "reg/secret/";
const ADMIN: &str = "reg/admin/";
const DATAPASS: &str = "reg/datapass/";

impl Record {
    fn to_write(&self) -> Result<Write, RegistryError> {
        let (prefix, id, value) = match self {
            Record::Partner(p) => (PARTNER, p.id.as_str(), encode(p)?),
            Record::Application(a) => (APPLICATION, a.client_id.as_str(), encode(a)?),
            Record::Certificate(c) => (CERTIFICATE, c.thumbprint.as_str(), encode(c)?),
            Record::Secret(id, d) => (SECRET, id.as_str(), encode(d)?),
            Record::Admin(a) => (ADMIN, a.thumbprint.as_str(), encode(a)?),
            Record::Datapass(m) => {
                let key = format!("{DATAPASS}{}", m.key());
                return Ok(Write::Put(key.into_bytes(), encode(m)?));
            }
        };
        Ok(Write::Put(format!("{prefix}{id}").into_bytes(), value))
    }

    fn publish(self, snap: &mut Snapshot) {
        match self {
            Record::Partner(p) => {
                snap.partners.insert(p.id.clone(), p);
            }
            Record::Application(a) => {
                snap.applications.insert(a.client_id.clone(), a);
            }
            Record::Certificate(c) => {
                snap.certificates.insert(c.thumbprint.clone(), c);
            }
            Record::Secret(id, d) => {
                snap.secrets.insert(id, d);
            }
            Record::Admin(a) => {
                snap.admins.insert(a.thumbprint.clone(), a);
            }
            Record::Datapass(m) => {
                snap.datapass.insert(m.key(), m);
            }
        }
    }
}

fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>, RegistryError> {
    serde_json::to_vec(value).map_err(|e| RegistryError::Corrupt {
        key: "(new record)".into(),
        message: e.to_string(),
    })
}

/// The registry: the store it persists to and the snapshot it publishes.
pub struct Registry {
    store: Arc<dyn Store>,
    current: ArcSwap<Snapshot>,
    /// Serialises writers and reloads; holds the store revision the
    /// published snapshot reflects. Held across the store's awaits, hence
    /// tokio's mutex.
    writer: tokio::sync::Mutex<u64>,
}

/// What one operation prepared inside the store's write lock.
type Prepared<T> = (Vec<Record>, T, Arc<Snapshot>);

impl Registry {
    /// Loads every record from `store`.
    pub async fn open(store: Arc<dyn Store>) -> Result<Self, RegistryError> {
        let revision = store.revision(AREA).await?;
        let snap = snapshot_of(store.scan_prefix(PREFIX.as_bytes()).await?)?;
        Ok(Registry {
            store,
            current: ArcSwap::from_pointee(snap),
            writer: tokio::sync::Mutex::new(revision),
        })
    }

    /// The current snapshot (cheap: one atomic load).
    pub fn snapshot(&self) -> Arc<Snapshot> {
        self.current.load_full()
    }

    /// Rebuilds the snapshot from the store and publishes it: what a node
    /// does when another node changed the registry (docs/contract.md §10).
    pub async fn reload(&self) -> Result<(), RegistryError> {
        let mut loaded = self.writer.lock().await;
        let revision = self.store.revision(AREA).await?;
        let snap = snapshot_of(self.store.scan_prefix(PREFIX.as_bytes()).await?)?;
        self.current.store(Arc::new(snap));
        *loaded = revision;
        Ok(())
    }

    /// Runs one operation: `op` validates against the current snapshot and
    /// returns the records to write and its result. Validation and commit
    /// run under the store's write lock (cluster-wide on PostgreSQL); a
    /// snapshot older than the store's revision is reloaded first, inside
    /// the store's transaction (a [`Read`] of the area), so `op` always
    /// sees the state it commits on. The records are committed atomically
    /// and durably, then published; on any error nothing is published. A
    /// `StoreError::Unknown` (the COMMIT was sent, its outcome unknown) may
    /// have changed the store: the node reloads once PostgreSQL settles it
    /// (`store::postgres`).
    pub async fn apply<T: Send>(
        &self,
        op: impl FnOnce(&Snapshot) -> Result<(Vec<Record>, T), RegistryError> + Send,
    ) -> Result<T, RegistryError> {
        let mut loaded = self.writer.lock().await;
        let mut op = Some(op);
        let mut prepared: Option<Result<Prepared<T>, RegistryError>> = None;
        let committed = self
            .store
            .transact(AREA, &mut |revision, fetched| {
                let step = self.prepare(&mut loaded, revision, fetched, &mut op);
                let step = step.and_then(|p| {
                    let Some(p) = p else {
                        return Ok(None);
                    };
                    let writes = p.0.iter().map(Record::to_write).collect::<Result<_, _>>()?;
                    Ok(Some((p, writes)))
                });
                match step {
                    Ok(None) => Step::Read(vec![Read::Prefix(PREFIX.as_bytes().to_vec())]),
                    Ok(Some((p, writes))) => {
                        prepared = Some(Ok(p));
                        Step::Commit(writes)
                    }
                    Err(e) => {
                        prepared = Some(Err(e));
                        Step::Nothing
                    }
                }
            })
            .await?;
        let (records, out, current) = match prepared {
            Some(p) => p?,
            None => return Err(StoreError::broken("write lock not taken").into()),
        };
        let Some(revision) = committed else {
            return Err(StoreError::broken("the registry write was not committed").into());
        };
        let mut next = (*current).clone();
        for r in records {
            r.publish(&mut next);
        }
        self.current.store(Arc::new(next));
        *loaded = revision;
        Ok(out)
    }

    /// Inside the write lock: `None` (read the area first) when the
    /// snapshot loaded is behind `revision` and `fetched` holds nothing;
    /// otherwise publishes what `fetched` holds, if anything, then runs
    /// `op` on the current snapshot.
    fn prepare<T, F>(
        &self,
        loaded: &mut u64,
        revision: u64,
        fetched: &Fetched,
        op: &mut Option<F>,
    ) -> Result<Option<Prepared<T>>, RegistryError>
    where
        F: FnOnce(&Snapshot) -> Result<(Vec<Record>, T), RegistryError>,
    {
        if !fetched.is_empty() {
            let snap = snapshot_of(fetched.pairs(0).to_vec())?;
            self.current.store(Arc::new(snap));
            *loaded = revision;
        } else if *loaded != revision {
            return Ok(None);
        }
        let current = self.current.load_full();
        let op = op
            .take()
            .ok_or_else(|| StoreError::broken("registry operation run twice"))?;
        let (records, out) = op(&current)?;
        Ok(Some((records, out, current)))
    }
}

/// The registry records among `pairs` (the area's keys), as a snapshot.
fn snapshot_of(pairs: Pairs) -> Result<Snapshot, RegistryError> {
    let mut snap = Snapshot::default();
    for (k, v) in pairs {
        let key = String::from_utf8_lossy(&k).into_owned();
        let Some((prefix, id)) = [PARTNER, APPLICATION, CERTIFICATE, SECRET, ADMIN, DATAPASS]
            .into_iter()
            .find_map(|p| Some((p, key.strip_prefix(p)?.to_owned())))
        else {
            continue;
        };
        let corrupt = |e: serde_json::Error| RegistryError::Corrupt {
            key: key.clone(),
            message: e.to_string(),
        };
        match prefix {
            PARTNER => {
                snap.partners
                    .insert(PartnerId::new(id), decode(&v).map_err(corrupt)?);
            }
            APPLICATION => {
                snap.applications
                    .insert(ClientId::new(id), decode(&v).map_err(corrupt)?);
            }
            CERTIFICATE => {
                snap.certificates
                    .insert(Thumbprint::new(id), decode(&v).map_err(corrupt)?);
            }
            SECRET => {
                snap.secrets
                    .insert(ClientId::new(id), decode(&v).map_err(corrupt)?);
            }
            ADMIN => {
                snap.admins
                    .insert(Thumbprint::new(id), decode(&v).map_err(corrupt)?);
            }
            _ => {
                let m: DatapassMark = decode(&v).map_err(corrupt)?;
                snap.datapass.insert(m.key(), m);
            }
        }
    }
    Ok(snap)
}

fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, serde_json::Error> {
    serde_json::from_slice(bytes)
}

/// The prefix of every registry key.
const PREFIX: &str = "reg/";

/// The store area of partners, applications, certificates, secrets, admins, DataPass links: the first segment of its keys.
pub const AREA: &str = "reg";

#[async_trait::async_trait]
impl crate::store::Keyspace for Registry {
    fn area(&self) -> &'static str {
        AREA
    }

    async fn reload(&self) -> Result<(), crate::store::keyspace::ReloadError> {
        Registry::reload(self).await.map_err(Into::into)
    }
}
