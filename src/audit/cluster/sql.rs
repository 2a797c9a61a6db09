//! The SQL of the cluster trail (tables of `migrations/0002_trail.sql`),
//! run on the PostgreSQL runtime of the store.

use super::ClusterError;
use crate::store::postgres::{pg_error, pool_get};
use deadpool_postgres::Pool;

/// One record as stored: its chain position and value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    /// Cluster-wide listing position (`id`).
    pub id: i64,
    /// The node whose chain holds it.
    pub node: String,
    /// Position in that chain.
    pub seq: i64,
    /// Unix ms.
    pub time_ms: i64,
    /// The record body (the audit event, JSON).
    pub body: Vec<u8>,
    /// Chain value after it.
    pub hash: Vec<u8>,
}

/// What one node's chain holds in PostgreSQL.
#[derive(Debug, Clone, Default)]
pub struct Chain {
    /// Public key registered for the node.
    pub public_key: Vec<u8>,
    /// Latest checkpoint note.
    pub checkpoint: Option<String>,
    /// Purge checkpoint note.
    pub purge: Option<String>,
}

/// A PostgreSQL error, mapped as the store maps it.
fn pg(e: tokio_postgres::Error) -> ClusterError {
    pg_error(e).into()
}

async fn client(pool: &Pool) -> Result<deadpool_postgres::Object, ClusterError> {
    Ok(pool_get(pool).await?)
}

/// Registers `node` with `public_key` and its empty chain's checkpoint
/// `genesis` (so that a chain's checkpoint row never goes missing
/// unnoticed), or returns the key already registered for it.
pub async fn register(
    pool: &Pool,
    node: &str,
    public_key: &[u8],
    genesis: &str,
) -> Result<Vec<u8>, ClusterError> {
    let mut c = client(pool).await?;
    let tx = c.transaction().await.map_err(pg)?;
    let new = tx
        .execute(
            "INSERT INTO trail_nodes (node, public_key) VALUES ($1, $2) ON CONFLICT (node) DO NOTHING",
            &[&node, &public_key],
        )
        .await
        .map_err(pg)?;
    if new == 1 {
        tx.execute(
            "INSERT INTO trail_checkpoints (node, count, note) VALUES ($1, 0, $2)",
            &[&node, &genesis],
        )
        .await
        .map_err(pg)?;
    }
    let row = tx
        .query_one(
            "SELECT public_key FROM trail_nodes WHERE node = $1",
            &[&node],
        )
        .await
        .map_err(pg)?;
    tx.commit().await.map_err(pg)?;
    row.try_get(0).map_err(pg)
}

/// Where `node`'s chain in PostgreSQL ends: its last record (seq, chain
/// value), else its purge point (count, no value), else (0, none).
pub async fn last(pool: &Pool, node: &str) -> Result<(u64, Vec<u8>), ClusterError> {
    let c = client(pool).await?;
    let row = c
        .query_opt(
            "SELECT seq, hash FROM trail_records WHERE node = $1 ORDER BY seq DESC LIMIT 1",
            &[&node],
        )
        .await
        .map_err(pg)?;
    if let Some(r) = row {
        return Ok((as_u64(r.try_get(0).map_err(pg)?), r.try_get(1).map_err(pg)?));
    }
    let purge = c
        .query_opt("SELECT count FROM trail_purges WHERE node = $1", &[&node])
        .await
        .map_err(pg)?;
    match purge {
        Some(r) => Ok((as_u64(r.try_get(0).map_err(pg)?), Vec::new())),
        None => Ok((0, Vec::new())),
    }
}

/// The records to ship in one transaction with the checkpoint covering them.
#[derive(Default)]
pub struct Batch {
    /// Seqs, contiguous.
    pub seqs: Vec<i64>,
    /// Times.
    pub times: Vec<i64>,
    /// Bodies.
    pub bodies: Vec<Vec<u8>>,
    /// Chain values.
    pub hashes: Vec<Vec<u8>>,
    /// The signed checkpoint for the last record.
    pub note: String,
}

impl Batch {
    /// Adds the next record, with the chain value after it.
    pub fn push(&mut self, seq: u64, time_ms: i64, body: Vec<u8>, hash: &[u8]) {
        self.seqs.push(as_i64(seq));
        self.times.push(time_ms);
        self.bodies.push(body);
        self.hashes.push(hash.to_vec());
    }
}

/// Appends a batch to `node`'s chain with the checkpoint covering it —
/// one statement, so one round trip and one implicit transaction — only if
/// the chain in PostgreSQL ends where the batch starts: record `prev` with
/// chain value `prev_hash`, or the start (0) or the purge point — and only
/// for a registered node (checked here once per batch: `trail_records` has
/// no foreign key, whose check ran once per record, see
/// `migrations/0004_trail_records_unreferenced.sql`). Otherwise nothing is
/// written and the error says so (the shipper then re-reads where the copy
/// ends: a row deleted or a database restored from an older backup is
/// re-shipped from the local trail).
const SHIP: &str = "\
    WITH ok AS ( \
        SELECT 1 FROM trail_nodes WHERE node = $1 AND ($6::bigint = 0 \
            OR EXISTS (SELECT 1 FROM trail_records WHERE node = $1 AND seq = $6 AND hash = $7) \
            OR EXISTS (SELECT 1 FROM trail_purges WHERE node = $1 AND count = $6)) \
    ), ins AS ( \
        INSERT INTO trail_records (node, seq, time_ms, body, hash) \
        SELECT $1, s, t, b, h \
        FROM ok, UNNEST($2::bigint[], $3::bigint[], $4::bytea[], $5::bytea[]) AS u(s, t, b, h) \
        ORDER BY s \
        RETURNING seq \
    ), cp AS ( \
        INSERT INTO trail_checkpoints (node, count, note) SELECT $1, $8, $9 FROM ok \
        ON CONFLICT (node) DO UPDATE SET count = EXCLUDED.count, note = EXCLUDED.note \
        RETURNING 1 \
    ) \
    SELECT count(*) FROM ins";

/// Ships `batch` after record `prev` (chain value `prev_hash`).
pub async fn ship(
    pool: &Pool,
    node: &str,
    batch: &Batch,
    (prev, prev_hash): (u64, &[u8]),
) -> Result<(), ClusterError> {
    let c = client(pool).await?;
    let stmt = c.prepare_cached(SHIP).await.map_err(pg)?;
    let count = batch.seqs.last().copied().unwrap_or(0);
    let row = c
        .query_one(
            &stmt,
            &[
                &node,
                &batch.seqs,
                &batch.times,
                &batch.bodies,
                &batch.hashes,
                &as_i64(prev),
                &prev_hash,
                &count,
                &batch.note,
            ],
        )
        .await
        .map_err(pg)?;
    let inserted: i64 = row.try_get(0).map_err(pg)?;
    if inserted as usize != batch.seqs.len() {
        return Err(ClusterError::Backend {
            message: format!(
                "PostgreSQL's copy of the chain of {node} no longer ends at record {prev}"
            ),
            source: None,
        });
    }
    Ok(())
}

/// Records the purge checkpoint of `node`'s chain and deletes the records
/// it covers, in one transaction.
pub async fn purge(pool: &Pool, node: &str, count: u64, note: &str) -> Result<u64, ClusterError> {
    let count = as_i64(count);
    let mut c = client(pool).await?;
    let tx = c.transaction().await.map_err(pg)?;
    tx.execute(
        "INSERT INTO trail_purges (node, count, note) VALUES ($1, $2, $3) \
         ON CONFLICT (node) DO UPDATE SET count = EXCLUDED.count, note = EXCLUDED.note \
         WHERE trail_purges.count < EXCLUDED.count",
        &[&node, &count, &note],
    )
    .await
    .map_err(pg)?;
    let deleted = tx
        .execute(
            "DELETE FROM trail_records WHERE node = $1 AND seq <= $2",
            &[&node, &count],
        )
        .await
        .map_err(pg)?;
    tx.commit().await.map_err(pg)?;
    Ok(deleted)
}

/// Every node's key and notes, by node name.
pub async fn chains(pool: &Pool) -> Result<Vec<(String, Chain)>, ClusterError> {
    let c = client(pool).await?;
    let rows = c
        .query(
            "SELECT n.node, n.public_key, c.note, p.note FROM trail_nodes n \
             LEFT JOIN trail_checkpoints c ON c.node = n.node \
             LEFT JOIN trail_purges p ON p.node = n.node ORDER BY n.node",
            &[],
        )
        .await
        .map_err(pg)?;
    rows.iter()
        .map(|r| {
            let chain = Chain {
                public_key: r.try_get(1).map_err(pg)?,
                checkpoint: r.try_get(2).map_err(pg)?,
                purge: r.try_get(3).map_err(pg)?,
            };
            Ok((r.try_get(0).map_err(pg)?, chain))
        })
        .collect()
}

/// Up to `limit` records of `node`'s chain after `after_seq`, in order.
pub async fn walk(
    pool: &Pool,
    node: &str,
    after_seq: u64,
    limit: i64,
) -> Result<Vec<Row>, ClusterError> {
    let c = client(pool).await?;
    let rows = c
        .query(
            "SELECT id, node, seq, time_ms, body, hash FROM trail_records \
             WHERE node = $1 AND seq > $2 ORDER BY seq LIMIT $3",
            &[&node, &as_i64(after_seq), &limit],
        )
        .await
        .map_err(pg)?;
    rows.iter().map(row).collect()
}

/// Up to `limit` records of every node with an id below `before`, newest first.
pub async fn newest(pool: &Pool, before: i64, limit: i64) -> Result<Vec<Row>, ClusterError> {
    let c = client(pool).await?;
    let rows = c
        .query(
            "SELECT id, node, seq, time_ms, body, hash FROM trail_records \
             WHERE id < $1 ORDER BY id DESC LIMIT $2",
            &[&before, &limit],
        )
        .await
        .map_err(pg)?;
    rows.iter().map(row).collect()
}

fn row(r: &tokio_postgres::Row) -> Result<Row, ClusterError> {
    Ok(Row {
        id: r.try_get(0).map_err(pg)?,
        node: r.try_get(1).map_err(pg)?,
        seq: r.try_get(2).map_err(pg)?,
        time_ms: r.try_get(3).map_err(pg)?,
        body: r.try_get(4).map_err(pg)?,
        hash: r.try_get(5).map_err(pg)?,
    })
}

/// A seq as stored (bigint).
pub fn as_i64(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// A stored seq (never negative when written by a node).
pub fn as_u64(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}
