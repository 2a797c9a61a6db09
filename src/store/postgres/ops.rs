//! The SQL of each store call, awaited in the caller's task. Reads take a
//! pooled connection each; writes go through one [`Open`] transaction,
//! which `transact` opens holding the area's cluster write lock
//! (`pg_advisory_xact_lock`) and which bumps the revision of every area
//! written; every write announces the areas it touches with `pg_notify`
//! (delivered at commit).

use super::super::{Cause, Fetched, Found, Pairs, Read, StoreError, Write, areas_of};
use deadpool_postgres::{ClientWrapper, Object, Pool, PoolError};
use tokio::runtime::Handle;

/// The first key of the advisory locks of `transact`, cluster-wide
/// ("opal"); the second is the area's `hashtext`.
const WRITE_LOCK: i32 = 0x6f70_616c;
/// The channel of change notifications.
pub(super) const CHANNEL: &str = "opale_changes";

const UPSERT: &str = "INSERT INTO kv (key, value) VALUES ($1, $2) \
                      ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value";
const DELETE: &str = "DELETE FROM kv WHERE key = $1";
const NOTIFY: &str = "SELECT pg_notify('opale_changes', $1::text || ' ' || $2::text)";
const REVISION: &str = "SELECT coalesce((SELECT revision FROM area_revision WHERE area = $1), 0)";
const BUMP: &str = "INSERT INTO area_revision (area, revision) SELECT unnest($1::text[]), 1 \
                    ON CONFLICT (area) DO UPDATE SET revision = area_revision.revision + 1";

/// A PostgreSQL error as a store error: a refused statement is a backend
/// error, anything else (connection lost, refused, closed) unavailability.
pub(crate) fn pg(e: tokio_postgres::Error) -> StoreError {
    match e.as_db_error() {
        Some(db) => StoreError::Backend {
            message: format!("PostgreSQL: {}", db.message()),
            source: Some(Cause::new(e)),
        },
        None => StoreError::unreachable("PostgreSQL", e),
    }
}

pub(super) fn pool(e: PoolError) -> StoreError {
    match e {
        PoolError::Backend(e) => pg(e),
        other => StoreError::unreachable("PostgreSQL pool", other),
    }
}

/// A connection from the pool.
pub(crate) async fn pool_get(pool: &Pool) -> Result<Object, StoreError> {
    pool.get().await.map_err(self::pool)
}

/// A pooled connection lent to one read. Dropped before [`Lent::done`]
/// (the caller's timeout expired mid-query, or its task was dropped): the
/// connection leaves the pool and is closed instead of going back busy, so
/// that the next call does not queue behind a statement nobody waits for.
pub(super) struct Lent(Option<Object>);

impl Lent {
    /// A connection from `pool`.
    pub async fn get(pool: &Pool) -> Result<Lent, StoreError> {
        Ok(Lent(Some(pool_get(pool).await?)))
    }

    /// The connection.
    pub fn client(&self) -> Result<&ClientWrapper, StoreError> {
        self.0
            .as_deref()
            .ok_or_else(|| StoreError::broken("connection already returned"))
    }

    /// The read answered: the connection goes back to the pool.
    pub fn done(mut self) {
        drop(self.0.take());
    }
}

impl Drop for Lent {
    fn drop(&mut self) {
        if let Some(busy) = self.0.take() {
            let _ = Object::take(busy);
        }
    }
}

/// Pairs with `start <= key (< end)`, in order, at most `limit`.
pub(super) async fn range(
    client: &ClientWrapper,
    start: &[u8],
    end: Option<&[u8]>,
    reverse: bool,
    limit: Option<i64>,
) -> Result<Pairs, StoreError> {
    let order = if reverse { "DESC" } else { "ASC" };
    let limit = limit.unwrap_or(i64::MAX);
    let rows = match end {
        Some(end) => {
            let sql = format!(
                "SELECT key, value FROM kv WHERE key >= $1 AND key < $2 ORDER BY key {order} LIMIT $3"
            );
            client.query(&sql, &[&start, &end, &limit]).await
        }
        None => {
            let sql = format!("SELECT key, value FROM kv WHERE key >= $1 ORDER BY key {order} LIMIT $2");
            client.query(&sql, &[&start, &limit]).await
        }
    }
    .map_err(pg)?;
    rows.iter()
        .map(|r| Ok((r.try_get(0).map_err(pg)?, r.try_get(1).map_err(pg)?)))
        .collect()
}

/// Every pair whose key starts with `prefix`.
pub(super) async fn scan(client: &ClientWrapper, prefix: &[u8]) -> Result<Pairs, StoreError> {
    let end = super::super::prefix_end(prefix);
    range(client, prefix, end.as_deref(), false, None).await
}

/// The value at `key`.
pub(super) async fn get(client: &ClientWrapper, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
    let row = client
        .query_opt("SELECT value FROM kv WHERE key = $1", &[&key])
        .await
        .map_err(pg)?;
    row.map(|r| r.try_get(0).map_err(pg)).transpose()
}

/// The current revision of `area`.
pub(super) async fn revision(client: &ClientWrapper, area: &str) -> Result<u64, StoreError> {
    let row = client.query_one(REVISION, &[&area]).await.map_err(pg)?;
    Ok(row.try_get::<_, i64>(0).map_err(pg)?.max(0) as u64)
}

/// One transaction on a pooled connection. Dropped before [`Open::take`]
/// (an error, or the caller's future dropped when its timeout expired):
/// rolled back by a task on the `opale-pg` runtime, which returns the
/// connection to the pool once PostgreSQL answered (a `Drop` cannot
/// await; the connection must not go back to the pool mid-transaction,
/// holding the area's lock).
pub(super) struct Open {
    client: Option<Object>,
    runtime: Handle,
}

impl Open {
    /// `BEGIN` on a connection from `pool`.
    /// Guarded from before `BEGIN` is sent: a caller that gives up while
    /// it is in flight (PostgreSQL hung) drops an `Open`, whose ROLLBACK
    /// follows the BEGIN, rather than a bare connection that would go back
    /// to the pool inside a transaction — where the next user's first
    /// failed statement would leave it aborted for every later one.
    pub async fn begin(pool: &Pool, runtime: &Handle) -> Result<Open, StoreError> {
        let open = Open {
            client: Some(pool_get(pool).await?),
            runtime: runtime.clone(),
        };
        open.client()?.batch_execute("BEGIN").await.map_err(pg)?;
        Ok(open)
    }

    fn client(&self) -> Result<&ClientWrapper, StoreError> {
        self.client
            .as_deref()
            .ok_or_else(|| StoreError::broken("transaction already ended"))
    }

    /// Takes `area`'s cluster write lock (waiting for another holder);
    /// the area's revision.
    pub async fn lock(&self, area: &str) -> Result<u64, StoreError> {
        let client = self.client()?;
        client
            .execute(
                "SELECT pg_advisory_xact_lock($1, hashtext($2))",
                &[&WRITE_LOCK, &area],
            )
            .await
            .map_err(pg)?;
        revision(client, area).await
    }

    /// The answers to `reads`, inside the transaction.
    pub async fn read(&self, reads: Vec<Read>) -> Result<Fetched, StoreError> {
        let client = self.client()?;
        let mut found = Vec::with_capacity(reads.len());
        for r in reads {
            found.push(match r {
                Read::Get(key) => Found::Value(get(client, &key).await?),
                Read::Prefix(prefix) => Found::Pairs(scan(client, &prefix).await?),
            });
        }
        Ok(Fetched(found))
    }

    /// Applies `writes` and queues their notification.
    pub async fn apply(&self, node: &str, writes: &[Write]) -> Result<(), StoreError> {
        let client = self.client()?;
        let upsert = client.prepare_cached(UPSERT).await.map_err(pg)?;
        let delete = client.prepare_cached(DELETE).await.map_err(pg)?;
        for w in writes {
            match w {
                Write::Put(k, v) => client.execute(&upsert, &[k, v]).await,
                Write::Delete(k) => client.execute(&delete, &[k]).await,
            }
            .map_err(pg)?;
        }
        notify(client, node, writes).await
    }

    /// Bumps the revision of every area `writes` touch.
    pub async fn bump(&self, writes: &[Write]) -> Result<(), StoreError> {
        let areas = areas_of(writes);
        self.client()?.execute(BUMP, &[&areas]).await.map_err(pg)?;
        Ok(())
    }

    /// `ROLLBACK`, awaited (nothing to write).
    pub async fn rollback(mut self) -> Result<(), StoreError> {
        if let Some(client) = self.client.take()
            && let Err(e) = client.batch_execute("ROLLBACK").await
        {
            // Not known to be out of the transaction: never reused.
            let _ = Object::take(client);
            return Err(pg(e));
        }
        Ok(())
    }

    /// The connection, for the COMMIT; the transaction is no longer rolled
    /// back on drop.
    pub fn take(mut self) -> Result<Object, StoreError> {
        self.client
            .take()
            .ok_or_else(|| StoreError::broken("transaction already ended"))
    }
}

impl Drop for Open {
    fn drop(&mut self) {
        if let Some(client) = self.client.take() {
            self.runtime.spawn(async move {
                if client.batch_execute("ROLLBACK").await.is_err() {
                    // Not known to be out of the transaction: never reused.
                    let _ = Object::take(client);
                }
            });
        }
    }
}

/// `NOTIFY opale_changes, '<node> <area,area>'`: the areas the writes
/// touch (the other nodes reload those they hold in memory).
async fn notify(client: &ClientWrapper, node: &str, writes: &[Write]) -> Result<(), StoreError> {
    let areas = areas_of(writes);
    if areas.is_empty() {
        return Ok(());
    }
    let areas = areas.join(",");
    client.execute(NOTIFY, &[&node, &areas]).await.map_err(pg)?;
    Ok(())
}
