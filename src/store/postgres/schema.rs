//! Versioned migrations (`migrations/NNNN_name.sql`, embedded in the
//! binary), applied at start in one transaction holding an advisory lock:
//! two nodes starting at once apply them once, one after the other.

use super::super::StoreError;
use super::ops::{pg, pool};
use deadpool_postgres::Pool;

/// The advisory lock of migrations ("opale" + 0).
const MIGRATION_LOCK: i64 = 0x6f70_616c_6500;

/// Every migration, in order: (version, SQL).
const MIGRATIONS: &[(i32, &str)] = &[
    (1, include_str!("../../../migrations/0001_kv.sql")),
    (2, include_str!("../../../migrations/0002_trail.sql")),
    (
        3,
        include_str!("../../../migrations/0003_area_revisions.sql"),
    ),
    (
        4,
        include_str!("../../../migrations/0004_trail_records_unreferenced.sql"),
    ),
];

/// Applies the migrations this database has not seen yet.
pub(super) async fn migrate(p: &Pool) -> Result<(), StoreError> {
    let mut client = p.get().await.map_err(pool)?;
    let tx = client.transaction().await.map_err(pg)?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
        .await
        .map_err(pg)?;
    tx.batch_execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations (
             version    integer PRIMARY KEY,
             applied_at timestamptz NOT NULL DEFAULT now())",
    )
    .await
    .map_err(pg)?;
    let applied: Vec<i32> = tx
        .query("SELECT version FROM schema_migrations", &[])
        .await
        .map_err(pg)?
        .iter()
        .map(|r| r.try_get(0).map_err(pg))
        .collect::<Result<_, _>>()?;
    for (version, sql) in MIGRATIONS {
        if applied.contains(version) {
            continue;
        }
        tx.batch_execute(sql).await.map_err(pg)?;
        tx.execute(
            "INSERT INTO schema_migrations (version) VALUES ($1)",
            &[version],
        )
        .await
        .map_err(pg)?;
        tracing::info!(version, "store schema migrated");
    }
    tx.commit().await.map_err(pg)
}
