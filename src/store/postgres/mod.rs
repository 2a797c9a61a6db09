//! The PostgreSQL backend of the [`Store`] trait (docs/contract.md §10): every node
//! of a cluster reads and writes the same `kv` table, and hears the others'
//! commits through `LISTEN opale_changes`.
//!
//! # Async trait, async client
//! A store call awaits tokio-postgres in its caller's task: a gateway
//! worker (a current-thread runtime) waiting for PostgreSQL goes on
//! serving everything else meanwhile, and a stalled PostgreSQL stalls only
//! the calls that need it (tests/cluster_stall.rs,
//! tests/cluster_async_store.rs). Every call is bounded by [`CALL_TIMEOUT`]
//! (`tokio::time::timeout`, including the wait for the cluster write
//! lock). Connections come from a deadpool pool (`pool_size`, at least 2).
//!
//! What must outlive the caller's task lives on the `opale-pg` runtime
//! (`runtime.rs`): the connections' sockets and tasks, the LISTEN session,
//! a COMMIT whose caller stopped waiting (`fate.rs`), the ROLLBACK of a
//! transaction dropped midway. [`wait_on`] remains for the cluster trail
//! (`audit::cluster`), which still calls from blocking threads.
//!
//! # Transport
//! No TLS to PostgreSQL in this part (`NoTls`): run it on the same host or
//! a trusted network.

mod fate;
mod listen;
mod ops;
mod runtime;
mod schema;

pub(crate) use ops::{pg as pg_error, pool_get};

use super::{
    Change, Fetched, Health, Pairs, READ_ROUNDS, Step, Store, StoreError, Transaction, Write,
};
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};
use ops::{Lent, Open};
use std::future::Future;
use std::sync::mpsc::sync_channel;
use std::sync::{Arc, OnceLock};
use std::time::Duration;
use tokio::runtime::Handle;
use tokio::sync::mpsc::UnboundedSender;
use tokio::time::Instant;

/// Longest wait for one store call (including the cluster write lock).
pub const CALL_TIMEOUT: Duration = Duration::from_secs(10);
/// Longest wait for a new connection to PostgreSQL.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);

/// A `Store` on PostgreSQL.
pub struct PgStore {
    handle: Handle,
    pool: Pool,
    pg: tokio_postgres::Config,
    node_id: String,
    health: Arc<Health>,
    /// The reloader (set by `subscribe`): told to reload what a write
    /// touched when the write failed or its outcome is unknown.
    reloads: OnceLock<UnboundedSender<Change>>,
    /// Dropping it stops the `opale-pg` runtime (and the listener).
    _stop: tokio::sync::oneshot::Sender<()>,
}

impl PgStore {
    /// Connects to `url` (a `postgres://` URL), with at most `pool_size`
    /// connections, and applies the pending migrations. `node_id` names
    /// this node in the notifications it sends.
    pub async fn open(url: &str, pool_size: usize, node_id: &str) -> Result<Self, StoreError> {
        let mut pg: tokio_postgres::Config = url
            .parse()
            .map_err(|e| StoreError::backend_in("store.url", e))?;
        pg.connect_timeout(CONNECT_TIMEOUT)
            .application_name(format!("opale-apim {node_id}"));
        let (handle, stop) = runtime::start()?;
        let manager = Manager::from_connect(
            pg.clone(),
            runtime::OnRuntime(handle.clone()),
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(pool_size.max(2))
            .runtime(Runtime::Tokio1)
            .wait_timeout(Some(CALL_TIMEOUT))
            .create_timeout(Some(CONNECT_TIMEOUT))
            .build()
            .map_err(StoreError::backend)?;
        let store = PgStore {
            handle,
            pool,
            pg,
            node_id: node_id.to_owned(),
            health: Arc::new(Health::default()),
            reloads: OnceLock::new(),
            _stop: stop,
        };
        store.call(schema::migrate(&store.pool)).await?;
        Ok(store)
    }

    /// The pool (shared with the cluster trail).
    pub fn pool(&self) -> Pool {
        self.pool.clone()
    }

    /// The `opale-pg` runtime (the cluster trail's blocking calls run
    /// their futures there).
    pub fn runtime(&self) -> Handle {
        self.handle.clone()
    }

    /// Awaits `call` for at most [`CALL_TIMEOUT`]; counts failures and
    /// successful round-trips in [`Health`].
    async fn call<T>(
        &self,
        call: impl Future<Output = Result<T, StoreError>>,
    ) -> Result<T, StoreError> {
        let result = tokio::time::timeout(CALL_TIMEOUT, call)
            .await
            .unwrap_or_else(|_| Err(no_answer()));
        self.observe(&result);
        result
    }

    /// After a write: counts it in [`Health`] and, when it failed or its
    /// outcome is unknown, asks the reloader for the areas it touched, so
    /// that this node's state converges with what PostgreSQL holds (the
    /// reloader retries; PostgreSQL away, the listener's reconnection
    /// reloads everything anyway).
    fn after_write<T>(
        &self,
        result: Result<T, StoreError>,
        touched: Change,
    ) -> Result<T, StoreError> {
        self.observe(&result);
        if result.is_err()
            && !touched.is_empty()
            && let Some(reloads) = self.reloads.get()
        {
            let _ = reloads.send(touched);
        }
        result
    }

    fn observe<T>(&self, result: &Result<T, StoreError>) {
        match result {
            Ok(_) => self.health.contact(),
            Err(e) => self.health.failure(e),
        }
    }

    /// The part of `transact` before COMMIT: the lock, `f`'s reads and
    /// its writes; `None` when `f` wrote nothing. Sets `touched` to the
    /// areas written as soon as they are known.
    async fn prepare(
        &self,
        area: &str,
        f: Transaction<'_>,
        touched: &mut Change,
    ) -> Result<Option<(Open, u64)>, StoreError> {
        let open = Open::begin(&self.pool, &self.handle).await?;
        let revision = open.lock(area).await?;
        let mut fetched = Fetched::default();
        let mut rounds = 0;
        let writes = loop {
            match f(revision, &fetched) {
                Step::Nothing => {
                    open.rollback().await?;
                    return Ok(None);
                }
                Step::Commit(writes) => break writes,
                Step::Read(_) if rounds == READ_ROUNDS => {
                    return Err(StoreError::broken("a transaction kept asking for reads"));
                }
                Step::Read(reads) => {
                    rounds += 1;
                    fetched = open.read(reads).await?;
                }
            }
        };
        *touched = Change::of_writes(&writes);
        open.apply(&self.node_id, &writes).await?;
        open.bump(&writes).await?;
        let written = super::areas_of(&writes);
        let next = revision + u64::from(written.iter().any(|a| a == area));
        Ok(Some((open, next)))
    }

    /// `open`'s COMMIT, answered by `deadline` (`fate.rs`).
    async fn finish(&self, open: Open, deadline: Instant) -> Result<(), StoreError> {
        let client = open.take()?;
        fate::commit(client, &self.handle, self.reloads.get().cloned(), deadline).await
    }
}

/// Runs `fut` on the PostgreSQL runtime `handle` and waits for its output,
/// blocking the calling thread (which must not be a runtime worker);
/// `None` after [`CALL_TIMEOUT`]. Only the cluster trail (`audit::cluster`)
/// still calls this way; the store itself is async.
pub(crate) fn wait_on<T: Send + 'static>(
    handle: &Handle,
    fut: impl Future<Output = T> + Send + 'static,
) -> Option<T> {
    let (tx, rx) = sync_channel(1);
    handle.spawn(async move {
        let _ = tx.send(fut.await);
    });
    rx.recv_timeout(CALL_TIMEOUT).ok()
}

/// The error of a call that got no answer within [`CALL_TIMEOUT`].
pub(crate) fn no_answer() -> StoreError {
    StoreError::Unavailable {
        message: format!(
            "no answer from PostgreSQL within {} s",
            CALL_TIMEOUT.as_secs()
        ),
        source: None,
    }
}

#[async_trait::async_trait]
impl Store for PgStore {
    async fn scan_prefix(&self, prefix: &[u8]) -> Result<Pairs, StoreError> {
        self.call(async {
            let client = Lent::get(&self.pool).await?;
            let pairs = ops::scan(client.client()?, prefix).await;
            client.done();
            pairs
        })
        .await
    }

    async fn range(
        &self,
        start: &[u8],
        end: &[u8],
        reverse: bool,
        limit: usize,
    ) -> Result<Pairs, StoreError> {
        let limit = Some(i64::try_from(limit).unwrap_or(i64::MAX));
        self.call(async {
            let client = Lent::get(&self.pool).await?;
            let pairs = ops::range(client.client()?, start, Some(end), reverse, limit).await;
            client.done();
            pairs
        })
        .await
    }

    async fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        self.call(async {
            let client = Lent::get(&self.pool).await?;
            let value = ops::get(client.client()?, key).await;
            client.done();
            value
        })
        .await
    }

    async fn commit(&self, writes: Vec<Write>) -> Result<(), StoreError> {
        let touched = Change::of_writes(&writes);
        let deadline = Instant::now() + CALL_TIMEOUT;
        let prepared = async {
            let open = Open::begin(&self.pool, &self.handle).await?;
            open.apply(&self.node_id, &writes).await?;
            Ok(open)
        };
        let result = match tokio::time::timeout_at(deadline, prepared).await {
            Ok(Ok(open)) => self.finish(open, deadline).await,
            Ok(Err(e)) => Err(e),
            Err(_) => Err(no_answer()),
        };
        self.after_write(result, touched)
    }

    async fn revision(&self, area: &str) -> Result<u64, StoreError> {
        self.call(async {
            let client = Lent::get(&self.pool).await?;
            let revision = ops::revision(client.client()?, area).await;
            client.done();
            revision
        })
        .await
    }

    async fn transact(&self, area: &str, f: Transaction<'_>) -> Result<Option<u64>, StoreError> {
        let deadline = Instant::now() + CALL_TIMEOUT;
        let mut touched = Change::Areas(Vec::new());
        let prepared = tokio::time::timeout_at(deadline, self.prepare(area, f, &mut touched));
        let result = match prepared.await {
            Ok(Ok(Some((open, next)))) => self.finish(open, deadline).await.map(|()| Some(next)),
            Ok(Ok(None)) => Ok(None),
            Ok(Err(e)) => Err(e),
            Err(_) => Err(no_answer()),
        };
        self.after_write(result, touched)
    }

    fn subscribe(&self, changes: UnboundedSender<Change>) {
        let _ = self.reloads.set(changes.clone());
        let listener = listen::Listener {
            pg: self.pg.clone(),
            node_id: self.node_id.clone(),
            health: self.health.clone(),
            changes,
        };
        self.handle.spawn(listener.run());
    }

    fn health(&self) -> Option<Arc<Health>> {
        Some(self.health.clone())
    }
}
