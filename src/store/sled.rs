//! The embedded sled backend: one database directory, one tree, one
//! process (sled locks the directory). Its writer lock is a process mutex
//! and its revisions in-memory counters per area: nobody else can write.
//!
//! sled is blocking (a read may fault a page in, a commit ends with an
//! fsync): every call runs on tokio's blocking pool (`spawn_blocking`),
//! inside this backend, so that no caller's thread waits on the disk.

use super::{
    Fetched, Found, Pairs, READ_ROUNDS, Read, Step, Store, StoreError, Transaction, Write,
};
use std::collections::HashMap;
use std::path::Path;

/// sled's page cache: the registry, transmitted claims, deny-list and
/// idempotency keys are small, and reads come from in-memory snapshots.
pub const CACHE_BYTES: u64 = 8 * 1024 * 1024;

/// A sled database opened on a directory (one process per directory).
pub struct SledStore {
    /// Cheap to clone (sled's handle is reference-counted): each call
    /// moves a clone to the blocking pool.
    db: sled::Db,
    /// The writer lock of `transact` (one for every area: one process
    /// writes), holding each area's revision. Held across the blocking
    /// reads and commit a transaction awaits, hence tokio's mutex.
    revisions: tokio::sync::Mutex<HashMap<String, u64>>,
}

impl SledStore {
    /// Opens (or creates) the database in `dir`, its page cache bounded
    /// by [`CACHE_BYTES`] (sled's default is 1 GiB). Blocking (it reads
    /// the directory): called once at start-up, or by the CLI.
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
            revisions: tokio::sync::Mutex::new(HashMap::new()),
        })
    }

    /// Runs `work` on a clone of the database, on the blocking pool.
    async fn blocking<T: Send + 'static>(
        &self,
        work: impl FnOnce(sled::Db) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let db = self.db.clone();
        tokio::task::spawn_blocking(move || work(db))
            .await
            .map_err(|e| StoreError::backend_in("sled call interrupted", e))?
    }
}

fn backend(e: sled::Error) -> StoreError {
    StoreError::backend(e)
}

fn pair(kv: sled::Result<(sled::IVec, sled::IVec)>) -> Result<(Vec<u8>, Vec<u8>), StoreError> {
    kv.map(|(k, v)| (k.to_vec(), v.to_vec())).map_err(backend)
}

fn scan(db: &sled::Db, prefix: &[u8]) -> Result<Pairs, StoreError> {
    db.scan_prefix(prefix).map(pair).collect()
}

fn get(db: &sled::Db, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
    Ok(db.get(key).map_err(backend)?.map(|v| v.to_vec()))
}

/// Applies `writes` in one batch and flushes (sled acknowledges before
/// the disk has them).
fn commit(db: &sled::Db, writes: Vec<Write>) -> Result<(), StoreError> {
    let mut batch = sled::Batch::default();
    for w in writes {
        match w {
            Write::Put(k, v) => batch.insert(k, v),
            Write::Delete(k) => batch.remove(k),
        }
    }
    db.apply_batch(batch).map_err(backend)?;
    db.flush().map_err(backend)?;
    Ok(())
}

fn read(db: &sled::Db, reads: Vec<Read>) -> Result<Fetched, StoreError> {
    let found = reads.into_iter().map(|r| match r {
        Read::Get(key) => get(db, &key).map(Found::Value),
        Read::Prefix(prefix) => scan(db, &prefix).map(Found::Pairs),
    });
    Ok(Fetched(found.collect::<Result<_, _>>()?))
}

#[async_trait::async_trait]
impl Store for SledStore {
    async fn scan_prefix(&self, prefix: &[u8]) -> Result<Pairs, StoreError> {
        let prefix = prefix.to_vec();
        self.blocking(move |db| scan(&db, &prefix)).await
    }

    async fn range(
        &self,
        start: &[u8],
        end: &[u8],
        reverse: bool,
        limit: usize,
    ) -> Result<Pairs, StoreError> {
        let (start, end) = (start.to_vec(), end.to_vec());
        self.blocking(move |db| {
            let iter = db.range(start..end);
            if reverse {
                iter.rev().take(limit).map(pair).collect()
            } else {
                iter.take(limit).map(pair).collect()
            }
        })
        .await
    }

    async fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        let key = key.to_vec();
        self.blocking(move |db| get(&db, &key)).await
    }

    async fn commit(&self, writes: Vec<Write>) -> Result<(), StoreError> {
        self.blocking(move |db| commit(&db, writes)).await
    }

    async fn revision(&self, area: &str) -> Result<u64, StoreError> {
        let revisions = self.revisions.lock().await;
        Ok(revisions.get(area).copied().unwrap_or(0))
    }

    async fn transact(&self, area: &str, f: Transaction<'_>) -> Result<Option<u64>, StoreError> {
        let mut revisions = self.revisions.lock().await;
        let revision = revisions.get(area).copied().unwrap_or(0);
        let mut fetched = Fetched::default();
        let mut rounds = 0;
        let writes = loop {
            match f(revision, &fetched) {
                Step::Nothing => return Ok(None),
                Step::Commit(writes) => break writes,
                Step::Read(_) if rounds == READ_ROUNDS => {
                    return Err(StoreError::broken("a transaction kept asking for reads"));
                }
                Step::Read(reads) => {
                    rounds += 1;
                    fetched = self.blocking(move |db| read(&db, reads)).await?;
                }
            }
        };
        let touched = super::areas_of(&writes);
        self.blocking(move |db| commit(&db, writes)).await?;
        for written in touched {
            *revisions.entry(written).or_insert(0) += 1;
        }
        Ok(Some(revisions.get(area).copied().unwrap_or(0)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn batch_is_visible_after_reopen() {
        let dir = tempfile::tempdir().unwrap();
        {
            let s = SledStore::open(dir.path()).unwrap();
            s.commit(vec![
                Write::Put(b"p/1".to_vec(), b"one".to_vec()),
                Write::Put(b"p/2".to_vec(), b"two".to_vec()),
                Write::Put(b"q/1".to_vec(), b"other".to_vec()),
            ])
            .await
            .unwrap();
            s.commit(vec![Write::Delete(b"p/2".to_vec())])
                .await
                .unwrap();
        }
        let s = SledStore::open(dir.path()).unwrap();
        let got = s.scan_prefix(b"p/").await.unwrap();
        assert_eq!(got, vec![(b"p/1".to_vec(), b"one".to_vec())]);
        assert_eq!(s.get(b"q/1").await.unwrap(), Some(b"other".to_vec()));
    }

    #[tokio::test]
    async fn transact_commits_and_bumps_or_aborts() {
        let dir = tempfile::tempdir().unwrap();
        let s = SledStore::open(dir.path()).unwrap();
        let put = |key: &[u8], rev: u64| {
            Step::Commit(vec![Write::Put(key.to_vec(), rev.to_string().into_bytes())])
        };
        let reg = |rev| put(b"reg/k", rev);
        let mut first = |rev, _: &Fetched| reg(rev);
        assert_eq!(s.transact("reg", &mut first).await.unwrap(), Some(1));
        let mut nothing = |_, _: &Fetched| Step::Nothing;
        assert_eq!(s.transact("reg", &mut nothing).await.unwrap(), None);
        assert_eq!(s.revision("reg").await.unwrap(), 1);
        assert_eq!(s.transact("reg", &mut first).await.unwrap(), Some(2));
        assert_eq!(s.get(b"reg/k").await.unwrap(), Some(b"1".to_vec()));
        // Another area's transaction has its own revision and leaves the
        // registry's alone.
        let mut idem = |rev, _: &Fetched| put(b"idem/x", rev);
        assert_eq!(s.transact("idem", &mut idem).await.unwrap(), Some(1));
        assert_eq!(s.get(b"idem/x").await.unwrap(), Some(b"0".to_vec()));
        assert_eq!(s.revision("reg").await.unwrap(), 2);
        assert_eq!(s.revision("idem").await.unwrap(), 1);
        assert_eq!(s.revision("tx").await.unwrap(), 0);
    }

    #[tokio::test]
    async fn a_transaction_reads_under_the_lock_then_writes() {
        let dir = tempfile::tempdir().unwrap();
        let s = SledStore::open(dir.path()).unwrap();
        s.commit(vec![Write::Put(b"n/a".to_vec(), b"1".to_vec())])
            .await
            .unwrap();
        let mut calls = 0;
        let mut f = |_, fetched: &Fetched| {
            calls += 1;
            if fetched.is_empty() {
                return Step::Read(vec![
                    Read::Get(b"n/a".to_vec()),
                    Read::Prefix(b"n/".to_vec()),
                ]);
            }
            assert_eq!(fetched.value(0), Some(&b"1"[..]));
            assert_eq!(fetched.pairs(1).len(), 1);
            Step::Commit(vec![Write::Put(b"n/b".to_vec(), b"2".to_vec())])
        };
        assert_eq!(s.transact("n", &mut f).await.unwrap(), Some(1));
        assert_eq!(calls, 2);
        let mut endless = |_, _: &Fetched| Step::Read(vec![Read::Get(b"n/a".to_vec())]);
        assert!(s.transact("n", &mut endless).await.is_err());
    }
}
