//! Storage behind one trait. The embedded default is sled (`sled.rs`, one
//! node); the cluster backend is PostgreSQL (`postgres/`, docs/contract.md §10). Every
//! caller holds an `Arc<dyn Store>` and never knows which one it has.
//!
//! The contract every backend keeps: `commit` is atomic (all of the batch or
//! nothing) and durable when it returns `Ok` — sled acknowledges writes before
//! they reach the disk, so the sled backend flushes before returning.
//! `transact` adds a writer lock per area (process-wide on sled,
//! cluster-wide on PostgreSQL) and a revision counter per area, so that a
//! registry write validates against the state it commits on even when
//! other nodes write too. What a node holds in memory is a
//! [`Keyspace`](keyspace::Keyspace) (`keyspace.rs`).

pub mod dump;
mod health;
pub mod keyspace;
pub mod postgres;
mod sled;

pub use self::health::Health;
pub use self::keyspace::{Change, Keyspace, Keyspaces, areas_of};
pub use self::postgres::PgStore;
pub use self::sled::SledStore;

use std::sync::Arc;

/// The underlying error of a store failure, whichever backend raised it
/// (sled, tokio-postgres, deadpool, serde_json, a thread that could not
/// start). Cheap to clone, so that errors which are cloned (the cluster
/// trail's, handed to every waiter) can keep it. It is not an error
/// itself but dereferences to one, so that `source()` answers the
/// backend's error (which `downcast_ref` then recognises), not a wrapper.
#[derive(Debug, Clone)]
pub struct Cause(Arc<dyn std::error::Error + Send + Sync>);

impl Cause {
    /// Keeps `error`.
    pub fn new(error: impl std::error::Error + Send + Sync + 'static) -> Self {
        Cause(Arc::new(error))
    }
}

impl std::ops::Deref for Cause {
    type Target = dyn std::error::Error + Send + Sync;

    fn deref(&self) -> &Self::Target {
        &*self.0
    }
}

/// A storage failure. The message never contains stored values. Where a
/// failure comes from an error value, that error is kept as the source
/// (its text also ends the message, which is what logs print).
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The backend reported an I/O or corruption error, or refused a
    /// statement.
    #[error("storage backend: {message}")]
    Backend {
        /// What failed.
        message: String,
        /// The backend's error; `None` for a broken invariant of ours.
        #[source]
        source: Option<Cause>,
    },
    /// The database is held by another process.
    #[error("the state directory {dir} is in use by another opale-apim process")]
    Locked {
        /// The state directory.
        dir: String,
        /// The lock failure sled reported.
        #[source]
        source: std::io::Error,
    },
    /// The backend cannot be reached (PostgreSQL down, no answer in time)
    /// before a write's COMMIT was sent: nothing was written; the caller
    /// may retry later (503).
    #[error("the store is unreachable: {message}")]
    Unavailable {
        /// What could not be reached.
        message: String,
        /// The connection or pool error; `None` for a call that got no
        /// answer in time.
        #[source]
        source: Option<Cause>,
    },
    /// A write's COMMIT was sent but its outcome is not known (no answer
    /// within the call timeout, or the connection broke while it ran): the
    /// writes may or may not be in the store. The caller says so and reads
    /// the state again rather than retrying blindly (503); the node reloads
    /// the state the write touched once PostgreSQL settles it
    /// (docs/architecture.md style rule 16).
    #[error("the store did not confirm the commit, its outcome is unknown: {message}")]
    Unknown {
        /// What was not confirmed.
        message: String,
        /// The connection error, if the connection broke; `None` for a
        /// COMMIT that got no answer in time.
        #[source]
        source: Option<Cause>,
    },
}

impl StoreError {
    /// A backend failure that is `error` (its text is the message).
    pub fn backend(error: impl std::error::Error + Send + Sync + 'static) -> Self {
        StoreError::Backend {
            message: error.to_string(),
            source: Some(Cause::new(error)),
        }
    }

    /// A backend failure while doing `what`: the message is `what: error`.
    pub fn backend_in(what: &str, error: impl std::error::Error + Send + Sync + 'static) -> Self {
        StoreError::Backend {
            message: format!("{what}: {error}"),
            source: Some(Cause::new(error)),
        }
    }

    /// A backend failure with no underlying error (an invariant of ours
    /// that does not hold, a setting that is missing).
    pub fn broken(message: impl Into<String>) -> Self {
        StoreError::Backend {
            message: message.into(),
            source: None,
        }
    }

    /// The backend could not be reached while doing `what` (`what: error`).
    pub fn unreachable(what: &str, error: impl std::error::Error + Send + Sync + 'static) -> Self {
        StoreError::Unavailable {
            message: format!("{what}: {error}"),
            source: Some(Cause::new(error)),
        }
    }
}

/// One write of a batch: set `key` to `value`, or remove `key`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Write {
    /// Insert or replace.
    Put(Vec<u8>, Vec<u8>),
    /// Remove if present.
    Delete(Vec<u8>),
}

impl Write {
    /// The key written or removed.
    pub fn key(&self) -> &[u8] {
        match self {
            Write::Put(k, _) | Write::Delete(k) => k,
        }
    }
}

/// Key-value pairs, in key order.
pub type Pairs = Vec<(Vec<u8>, Vec<u8>)>;

/// A read a [`Store::transact`] closure asks for, performed under the
/// area's writer lock (on PostgreSQL, inside the locked transaction).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Read {
    /// The value at this key.
    Get(Vec<u8>),
    /// Every pair whose key starts with this prefix, in key order.
    Prefix(Vec<u8>),
}

/// The answer to one [`Read`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Found {
    /// What [`Read::Get`] found.
    Value(Option<Vec<u8>>),
    /// What [`Read::Prefix`] found.
    Pairs(Pairs),
}

/// The answers to the reads a [`Store::transact`] closure asked for last,
/// in the order asked; empty on its first call.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Fetched(pub Vec<Found>);

impl Fetched {
    /// Whether nothing was read yet (the closure's first call).
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The value the `i`-th read ([`Read::Get`]) found.
    pub fn value(&self, i: usize) -> Option<&[u8]> {
        match self.0.get(i) {
            Some(Found::Value(v)) => v.as_deref(),
            _ => None,
        }
    }

    /// The pairs the `i`-th read ([`Read::Prefix`]) found.
    pub fn pairs(&self, i: usize) -> &[(Vec<u8>, Vec<u8>)] {
        match self.0.get(i) {
            Some(Found::Pairs(p)) => p,
            _ => &[],
        }
    }
}

/// What a [`Store::transact`] closure answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Read these, then call me again with the answers.
    Read(Vec<Read>),
    /// Commit these writes (atomically, durably) and release the lock.
    Commit(Vec<Write>),
    /// Write nothing: release the lock.
    Nothing,
}

/// How many times a [`Store::transact`] closure may ask for reads: a
/// closure that keeps asking is a bug, not a reason to hold a lock forever.
pub const READ_ROUNDS: usize = 8;

/// What a [`Store::transact`] closure is handed and returns: the area's
/// current revision and the answers to its last reads in, the next
/// [`Step`] out. It stays synchronous (no lock of the caller is held
/// across the store's awaits by it) and `Send` (the store's future holds
/// it across its awaits).
pub type Transaction<'a> = &'a mut (dyn FnMut(u64, &Fetched) -> Step + Send);

/// A key-value store with atomic, durable batches. Asynchronous: a call
/// waits for the disk (sled, on the blocking pool) or the network
/// (PostgreSQL) without holding the caller's thread, so that a serving
/// worker goes on serving what does not need the store meanwhile.
///
/// `async_trait` (boxed futures) rather than hand-written
/// `Pin<Box<dyn Future>>` returns: every caller holds an `Arc<dyn Store>`,
/// so the futures are boxed either way, and the macro writes the lifetimes
/// of methods borrowing several arguments.
#[async_trait::async_trait]
pub trait Store: Send + Sync + 'static {
    /// Every `(key, value)` whose key starts with `prefix`, in key order.
    async fn scan_prefix(&self, prefix: &[u8]) -> Result<Pairs, StoreError>;

    /// Pairs with `start <= key < end`, ascending or (`reverse`) descending,
    /// at most `limit`.
    async fn range(
        &self,
        start: &[u8],
        end: &[u8],
        reverse: bool,
        limit: usize,
    ) -> Result<Pairs, StoreError>;

    /// The value at `key`.
    async fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError>;

    /// Applies every write or none, and returns once they are on disk.
    async fn commit(&self, writes: Vec<Write>) -> Result<(), StoreError>;

    /// The revision of `area` (the first segment of its keys, e.g. `reg`):
    /// how many `transact` commits touching it the store has seen (on
    /// PostgreSQL, by every node). A reader that loaded the area at
    /// revision `r` is current as long as this is still `r`. Other areas'
    /// transactions (an idempotency check, a notice claim) leave it alone.
    async fn revision(&self, area: &str) -> Result<u64, StoreError>;

    /// Runs `f` holding `area`'s writer lock (cluster-wide on PostgreSQL),
    /// with `area`'s current revision. `f` answers a [`Step`]: reads (the
    /// store performs them under the lock and calls `f` again with the
    /// answers, at most [`READ_ROUNDS`] times), the writes to commit
    /// (atomically and durably, before the lock is released; the revision
    /// of every area they touch is bumped), or nothing. Returns `area`'s
    /// revision after, or `None` when nothing was written. Writes stay in
    /// `area`, or in areas no other writer locks.
    async fn transact(&self, area: &str, f: Transaction<'_>) -> Result<Option<u64>, StoreError>;

    /// Starts delivering the changes other nodes commit to `changes`
    /// (PostgreSQL LISTEN/NOTIFY). A single-node backend has none: the
    /// default drops the sender.
    fn subscribe(&self, changes: tokio::sync::mpsc::UnboundedSender<Change>) {
        drop(changes);
    }

    /// The backend's connection state and counters, if it has any.
    fn health(&self) -> Option<Arc<Health>> {
        None
    }
}

/// The smallest key greater than every key starting with `prefix`, or
/// `None` when there is none (empty prefix, or all `0xff`).
pub fn prefix_end(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return Some(end);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::{StoreError, prefix_end};
    use std::error::Error as _;

    #[test]
    fn prefix_end_is_the_next_key_after_the_prefix() {
        assert_eq!(prefix_end(b"reg/"), Some(b"reg0".to_vec()));
        assert_eq!(prefix_end(b"a\xff\xff"), Some(b"b".to_vec()));
        assert_eq!(prefix_end(b"\xff"), None);
        assert_eq!(prefix_end(b""), None);
    }

    #[test]
    fn a_backend_error_keeps_its_cause_and_its_text() {
        let cause = serde_json::from_str::<u8>("x").unwrap_err();
        let text = cause.to_string();
        let e = StoreError::backend_in("idempotency record", cause);
        assert_eq!(
            e.to_string(),
            format!("storage backend: idempotency record: {text}")
        );
        let source = e.source().expect("the cause is kept");
        assert!(source.downcast_ref::<serde_json::Error>().is_some());
        assert!(
            StoreError::broken("write lock not taken")
                .source()
                .is_none()
        );
    }
}
