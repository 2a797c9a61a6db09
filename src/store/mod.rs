//! Storage behind one trait. The embedded default is sled (`sled.rs`); a
//! cluster backend can implement the same trait without touching callers.
//!
//! The contract every backend keeps: `commit` is atomic (all of the batch or
//! nothing) and durable when it returns `Ok` — sled acknowledges writes before
//! they reach the disk, so the sled backend flushes before returning.

mod sled;

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
}

/// One write of a batch: set `key` to `value`, or remove `key`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Write {
    /// Insert or replace.
    Put(Vec<u8>, Vec<u8>),
    /// Remove if present.
    Delete(Vec<u8>),
}

/// Key-value pairs, in key order.
pub type Pairs = Vec<(Vec<u8>, Vec<u8>)>;

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
}
