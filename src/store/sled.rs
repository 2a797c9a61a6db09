//! The embedded sled backend: one database directory, one tree, one
//! process (sled locks the directory). Its writer lock is a process mutex
//! and its revisions in-memory counters per area: nobody else can write.

use super::{Pairs, Store, StoreError, Transaction, Write};
use std::collections::HashMap;
use std::path::Path;
use std::sync::Mutex;

/// sled's page cache: the registry, transmitted claims, deny-list and
/// idempotency keys are small, and reads come from in-memory snapshots.
pub const CACHE_BYTES: u64 = 8 * 1024 * 1024;

/// A sled database opened on a directory (one process per directory).
pub struct SledStore {
    db: sled::Db,
    /// The writer lock of `transact` (one for every area: one process
    /// writes), holding each area's revision.
    revisions: Mutex<HashMap<String, u64>>,
}

impl SledStore {
    /// Opens (or creates) the database in `dir`, its page cache bounded
    /// by [`CACHE_BYTES`] (sled's default is 1 GiB).
    pub fn open(dir: &Path) -> Result<Self, StoreError> {
        let config = sled::Config::new().path(dir).cache_capacity(CACHE_BYTES);
        let db = config.open().map_err(|e| match e {
            sled::Error::Io(io)
                if io.kind() == std::io::ErrorKind::WouldBlock
                    || io.to_string().contains("lock") =>
            {
                StoreError::Locked {
                    dir: dir.display().to_string(),
                    source: io,
                }
            }
            other => StoreError::backend(other),
        })?;
        Ok(SledStore {
            db,
            revisions: Mutex::new(HashMap::new()),
        })
    }
}

fn backend(e: sled::Error) -> StoreError {
    StoreError::backend(e)
}

impl Store for SledStore {
    fn scan_prefix(&self, prefix: &[u8]) -> Result<Pairs, StoreError> {
        self.db
            .scan_prefix(prefix)
            .map(|kv| kv.map(|(k, v)| (k.to_vec(), v.to_vec())).map_err(backend))
            .collect()
    }

    fn range(
        &self,
        start: &[u8],
        end: &[u8],
        reverse: bool,
        limit: usize,
    ) -> Result<Pairs, StoreError> {
        let iter = self.db.range(start..end);
        let pairs = |kv: sled::Result<(sled::IVec, sled::IVec)>| {
            kv.map(|(k, v)| (k.to_vec(), v.to_vec())).map_err(backend)
        };
        if reverse {
            iter.rev().take(limit).map(pairs).collect()
        } else {
            iter.take(limit).map(pairs).collect()
        }
    }

    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.db.get(key).map_err(backend)?.map(|v| v.to_vec()))
    }

    fn commit(&self, writes: Vec<Write>) -> Result<(), StoreError> {
        let mut batch = sled::Batch::default();
        for w in writes {
            match w {
                Write::Put(k, v) => batch.insert(k, v),
                Write::Delete(k) => batch.remove(k),
            }
        }
        self.db.apply_batch(batch).map_err(backend)?;
        self.db.flush().map_err(backend)?;
        Ok(())
    }

    fn revision(&self, area: &str) -> Result<u64, StoreError> {
        let revisions = self.revisions.lock().unwrap_or_else(|p| p.into_inner());
        Ok(revisions.get(area).copied().unwrap_or(0))
    }

    fn transact(&self, area: &str, f: Transaction<'_>) -> Result<Option<u64>, StoreError> {
        let mut revisions = self.revisions.lock().unwrap_or_else(|p| p.into_inner());
        let Some(writes) = f(revisions.get(area).copied().unwrap_or(0)) else {
            return Ok(None);
        };
        let touched = super::areas_of(&writes);
        self.commit(writes)?;
        for written in touched {
            *revisions.entry(written).or_insert(0) += 1;
        }
        Ok(Some(revisions.get(area).copied().unwrap_or(0)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batch_is_visible_after_reopen() {
        let dir = tempfile::tempdir().unwrap();
        {
            let s = SledStore::open(dir.path()).unwrap();
            s.commit(vec![
                Write::Put(b"p/1".to_vec(), b"one".to_vec()),
                Write::Put(b"p/2".to_vec(), b"two".to_vec()),
                Write::Put(b"q/1".to_vec(), b"other".to_vec()),
            ])
            .unwrap();
            s.commit(vec![Write::Delete(b"p/2".to_vec())]).unwrap();
        }
        let s = SledStore::open(dir.path()).unwrap();
        let got = s.scan_prefix(b"p/").unwrap();
        assert_eq!(got, vec![(b"p/1".to_vec(), b"one".to_vec())]);
        assert_eq!(s.get(b"q/1").unwrap(), Some(b"other".to_vec()));
    }

    #[test]
    fn transact_commits_and_bumps_or_aborts() {
        let dir = tempfile::tempdir().unwrap();
        let s = SledStore::open(dir.path()).unwrap();
        let put = |key: &[u8], rev: u64| {
            Some(vec![Write::Put(key.to_vec(), rev.to_string().into_bytes())])
        };
        let reg = |rev| put(b"reg/k", rev);
        assert_eq!(s.transact("reg", &mut |rev| reg(rev)).unwrap(), Some(1));
        assert_eq!(s.transact("reg", &mut |_| None).unwrap(), None);
        assert_eq!(s.revision("reg").unwrap(), 1);
        assert_eq!(s.transact("reg", &mut |rev| reg(rev)).unwrap(), Some(2));
        assert_eq!(s.get(b"reg/k").unwrap(), Some(b"1".to_vec()));
        // Another area's transaction has its own revision and leaves the
        // registry's alone.
        assert_eq!(
            s.transact("idem", &mut |rev| put(b"idem/x", rev)).unwrap(),
            Some(1)
        );
        assert_eq!(s.get(b"idem/x").unwrap(), Some(b"0".to_vec()));
        assert_eq!(s.revision("reg").unwrap(), 2);
        assert_eq!(s.revision("idem").unwrap(), 1);
        assert_eq!(s.revision("tx").unwrap(), 0);
    }
}
