//! The SQL of each store call, run on the `opale-pg` runtime. Writes take
//! one transaction each; `transact` takes the area's cluster write lock
//! (`pg_advisory_xact_lock`) and bumps the revision of every area written
//! in the same transaction, and every write announces the areas it
//! touches with `pg_notify` (delivered at commit).

use super::super::{Cause, Pairs, StoreError, Write, areas_of};
use super::fate::{Fate, commit_error};
use deadpool_postgres::{Pool, PoolError, Transaction};
use std::sync::mpsc::SyncSender;
use tokio::sync::oneshot;

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

/// Pairs with `start <= key (< end)`, in order, at most `limit`.
pub(super) async fn range(
    pool: &Pool,
    start: Vec<u8>,
    end: Option<Vec<u8>>,
    reverse: bool,
    limit: Option<i64>,
) -> Result<Pairs, StoreError> {
    let client = self::pool_get(pool).await?;
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

/// A connection from the pool.
pub(crate) async fn pool_get(pool: &Pool) -> Result<deadpool_postgres::Object, StoreError> {
    pool.get().await.map_err(self::pool)
}

/// The value at `key`.
pub(super) async fn get(pool: &Pool, key: Vec<u8>) -> Result<Option<Vec<u8>>, StoreError> {
    let client = pool_get(pool).await?;
    let row = client
        .query_opt("SELECT value FROM kv WHERE key = $1", &[&key])
        .await
        .map_err(pg)?;
    row.map(|r| r.try_get(0).map_err(pg)).transpose()
}

/// The current revision of `area`.
pub(super) async fn revision(pool: &Pool, area: &str) -> Result<u64, StoreError> {
    let client = pool_get(pool).await?;
    let row = client.query_one(REVISION, &[&area]).await.map_err(pg)?;
    Ok(row.try_get::<_, i64>(0).map_err(pg)?.max(0) as u64)
}

/// What a `transact` holds: the area locked, the node writing, and
/// whether its caller still waits for the COMMIT.
pub(super) struct Held<'a> {
    /// The area whose lock is taken and whose revision is reported.
    pub area: &'a str,
    /// This node (named in the notification).
    pub node: &'a str,
    /// The caller's wait.
    pub fate: &'a Fate,
}

/// One transaction applying `writes`; rolled back if the caller gave up
/// before COMMIT (`fate`).
pub(super) async fn commit(
    pool: &Pool,
    node: &str,
    writes: Vec<Write>,
    fate: &Fate,
) -> Result<(), StoreError> {
    let mut client = pool_get(pool).await?;
    let tx = client.transaction().await.map_err(pg)?;
    apply(&tx, &writes).await?;
    notify(&tx, node, &writes).await?;
    if !fate.may_commit() {
        return Err(super::no_answer());
    }
    tx.commit().await.map_err(commit_error)
}

/// Takes the area's write lock, reports its revision on `locked`, waits
/// for the caller's writes, applies them, bumps the revisions of the areas
/// written and commits. The caller gone (before COMMIT, `fate`) or
/// writing nothing: rolled back, `None`.
pub(super) async fn transact(
    pool: &Pool,
    held: Held<'_>,
    locked: SyncSender<Result<u64, StoreError>>,
    writes: oneshot::Receiver<Option<Vec<Write>>>,
) -> Result<Option<u64>, StoreError> {
    // On failure the caller reads the error from `locked` and stops there.
    let mut client = match pool_get(pool).await {
        Ok(client) => client,
        Err(e) => {
            let _ = locked.send(Err(e));
            return Ok(None);
        }
    };
    let (tx, rev) = match lock(&mut client, held.area).await {
        Ok(v) => v,
        Err(e) => {
            let _ = locked.send(Err(e));
            return Ok(None);
        }
    };
    let _ = locked.send(Ok(rev));
    let Ok(Some(writes)) = writes.await else {
        return Ok(None);
    };
    apply(&tx, &writes).await?;
    let areas = areas_of(&writes);
    tx.execute(BUMP, &[&areas]).await.map_err(pg)?;
    let next = if areas.iter().any(|a| a == held.area) {
        rev + 1
    } else {
        rev
    };
    notify(&tx, held.node, &writes).await?;
    if !held.fate.may_commit() {
        return Ok(None);
    }
    tx.commit().await.map_err(commit_error)?;
    Ok(Some(next))
}

/// Opens a transaction holding `area`'s cluster write lock; its revision.
async fn lock<'c>(
    client: &'c mut deadpool_postgres::Object,
    area: &str,
) -> Result<(Transaction<'c>, u64), StoreError> {
    let tx = client.transaction().await.map_err(pg)?;
    tx.execute(
        "SELECT pg_advisory_xact_lock($1, hashtext($2))",
        &[&WRITE_LOCK, &area],
    )
    .await
    .map_err(pg)?;
    let row = tx.query_one(REVISION, &[&area]).await.map_err(pg)?;
    let rev = row.try_get::<_, i64>(0).map_err(pg)?.max(0) as u64;
    Ok((tx, rev))
}

async fn apply(tx: &Transaction<'_>, writes: &[Write]) -> Result<(), StoreError> {
    let upsert = tx.prepare_cached(UPSERT).await.map_err(pg)?;
    let delete = tx.prepare_cached(DELETE).await.map_err(pg)?;
    for w in writes {
        match w {
            Write::Put(k, v) => tx.execute(&upsert, &[k, v]).await,
            Write::Delete(k) => tx.execute(&delete, &[k]).await,
        }
        .map_err(pg)?;
    }
    Ok(())
}

/// `NOTIFY opale_changes, '<node> <area,area>'`: the areas the writes
/// touch (the other nodes reload those they hold in memory).
async fn notify(tx: &Transaction<'_>, node: &str, writes: &[Write]) -> Result<(), StoreError> {
    let areas = areas_of(writes);
    if areas.is_empty() {
        return Ok(());
    }
    let areas = areas.join(",");
    tx.execute(NOTIFY, &[&node, &areas]).await.map_err(pg)?;
    Ok(())
}
