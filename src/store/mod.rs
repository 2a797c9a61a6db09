//! Storage behind one trait. The embedded default is sled (`sled.rs`, one
//! node); the cluster backend is PostgreSQL (`postgres/`, docs/contract.md §10). Every
//! caller holds an `Arc<dyn Store>` and never knows which one it has.
//!
//! The contract every backend keeps: `commit` is atomic (all of the batch or
//! nothing) and durable when it returns `Ok` — sled acknowledges writes before
//! they reach the disk, so the sled backend flushes before returning.
//! `transact` adds a writer lock (process-wide on sled, cluster-wide on
//! PostgreSQL) and a revision counter, so that a registry write validates
//! against the state it commits on even when other nodes write too.

pub mod dump;
mod health;
pub mod postgres;
mod sled;

pub use self::health::{Area, Change, Health};
pub use self::postgres::PgStore;
pub use self::sled::SledStore;

/// A storage failure. The message never contains stored values.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The backend reported an I/O or corruption error.
    #[error("storage backend: {0}")]
    Backend(String),
    /// The database is held by another process.
    #[error("the state directory {0} is in use by another opale-apim process")]
    Locked(String),
    /// The backend cannot be reached (PostgreSQL down, no answer in time)
    /// before a write's COMMIT was sent: nothing was written; the caller
    /// may retry later (503).
    #[error("the store is unreachable: {0}")]
    Unavailable(String),
    /// A write's COMMIT was sent but its outcome is not known (no answer
    /// within the call timeout, or the connection broke while it ran): the
    /// writes may or may not be in the store. The caller says so and reads
    /// the state again rather than retrying blindly (503); the node reloads
    /// the state the write touched once PostgreSQL settles it
    /// (docs/architecture.md style rule 16).
    #[error("the store did not confirm the commit, its outcome is unknown: {0}")]
    Unknown(String),
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

/// What a [`Store::transact`] closure is handed and returns: the store's
/// current revision in, the writes to commit (or `None` to write nothing)
/// out.
pub type Transaction<'a> = &'a mut dyn FnMut(u64) -> Option<Vec<Write>>;

/// A key-value store with atomic, durable batches.
pub trait Store: Send + Sync + 'static {
    /// Every `(key, value)` whose key starts with `prefix`, in key order.
    fn scan_prefix(&self, prefix: &[u8]) -> Result<Pairs, StoreError>;

    /// Pairs with `start <= key < end`, ascending or (`reverse`) descending,
    /// at most `limit`.
    fn range(
        &self,
        start: &[u8],
        end: &[u8],
        reverse: bool,
        limit: usize,
    ) -> Result<Pairs, StoreError>;

    /// The value at `key`.
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError>;

    /// Applies every write or none, and returns once they are on disk.
    fn commit(&self, writes: Vec<Write>) -> Result<(), StoreError>;

    /// The revision: how many `transact` commits the store has seen (on
    /// PostgreSQL, by every node). A reader that loaded its state at
    /// revision `r` is current as long as this is still `r`.
    fn revision(&self) -> Result<u64, StoreError>;

    /// Runs `f` holding the writer lock (cluster-wide on PostgreSQL), with
    /// the current revision: `f` may read the store (to catch up), then
    /// returns the writes, committed atomically and durably before the lock
    /// is released, and the revision is bumped. Returns the new revision, or
    /// `None` when `f` returned `None` (nothing written). `f` runs once.
    fn transact(&self, f: Transaction<'_>) -> Result<Option<u64>, StoreError>;

    /// Starts delivering the changes other nodes commit to `changes`
    /// (PostgreSQL LISTEN/NOTIFY). A single-node backend has none: the
    /// default drops the sender.
    fn subscribe(&self, changes: std::sync::mpsc::Sender<Change>) {
        drop(changes);
    }

    /// The backend's connection state and counters, if it has any.
    fn health(&self) -> Option<std::sync::Arc<Health>> {
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
    use super::prefix_end;

    #[test]
    fn prefix_end_is_the_next_key_after_the_prefix() {
        assert_eq!(prefix_end(b"reg/"), Some(b"reg0".to_vec()));
        assert_eq!(prefix_end(b"a\xff\xff"), Some(b"b".to_vec()));
        assert_eq!(prefix_end(b"\xff"), None);
        assert_eq!(prefix_end(b""), None);
    }
}
