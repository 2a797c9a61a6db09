//! The PostgreSQL backend of the [`Store`] trait (docs/contract.md §10): every node
//! of a cluster reads and writes the same `kv` table, and hears the others'
//! commits through `LISTEN opale_changes`.
//!
//! # Sync trait, async client
//! `Store` is synchronous and is called from the gateway's worker threads
//! (each a current-thread tokio runtime) and from the blocking pool. Calling
//! `block_on` there panics (a runtime inside a runtime), and
//! `block_in_place` is refused on current-thread runtimes. So the client
//! lives on a runtime of its own, on a dedicated thread (`opale-pg`): a
//! store call spawns its future there and waits on a std channel for the
//! answer, bounded by [`CALL_TIMEOUT`]. Waiting blocks the calling thread
//! like sled's fsync did; the PostgreSQL work itself never waits on a
//! gateway thread, so nothing can deadlock. Connections come from a
//! deadpool pool (`pool_size`, at least 2: a registry write holds one for
//! its locked transaction while it reads through another).
//!
//! # Transport
//! No TLS to PostgreSQL in this part (`NoTls`): run it on the same host or
//! a trusted network.

mod fate;
mod listen;
mod ops;
mod schema;

pub(crate) use ops::{pg as pg_error, pool_get};

use super::{Change, Health, Pairs, Store, StoreError, Transaction, Write};
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};
use fate::Fate;
use std::future::Future;
use std::sync::mpsc::{Receiver, Sender, sync_channel};
use std::sync::{Arc, OnceLock};
use std::time::Duration;
use tokio::runtime::Handle;
use tokio_postgres::NoTls;

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
    reloads: OnceLock<Sender<Change>>,
    /// Dropping it stops the `opale-pg` runtime (and the listener).
    _stop: tokio::sync::oneshot::Sender<()>,
}

impl PgStore {
    /// Connects to `url` (a `postgres://` URL), with at most `pool_size`
    /// connections, and applies the pending migrations. `node_id` names
    /// this node in the notifications it sends.
    pub fn open(url: &str, pool_size: usize, node_id: &str) -> Result<Self, StoreError> {
        let mut pg: tokio_postgres::Config = url
            .parse()
            .map_err(|e| StoreError::backend_in("store.url", e))?;
        pg.connect_timeout(CONNECT_TIMEOUT)
            .application_name(format!("opale-apim {node_id}"));
        let manager = Manager::from_config(
            pg.clone(),
            NoTls,
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
        let (handle, stop) = start_runtime()?;
        let store = PgStore {
            handle,
            pool,
            pg,
            node_id: node_id.to_owned(),
            health: Arc::new(Health::default()),
            reloads: OnceLock::new(),
            _stop: stop,
        };
        store.call(|pool| async move { schema::migrate(&pool).await })?;
        Ok(store)
    }

    /// The pool (shared with the cluster trail).
    pub fn pool(&self) -> Pool {
        self.pool.clone()
    }

    /// The `opale-pg` runtime every PostgreSQL call runs on.
    pub fn runtime(&self) -> Handle {
        self.handle.clone()
    }

    /// Runs `task` on the PostgreSQL runtime and waits for its answer;
    /// counts failures and successful round-trips in [`Health`].
    fn call<T, F>(&self, task: impl FnOnce(Pool) -> F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: Future<Output = Result<T, StoreError>> + Send + 'static,
    {
        let result =
            wait_on(&self.handle, task(self.pool.clone())).unwrap_or_else(|| Err(no_answer()));
        self.observe(&result);
        result
    }

    /// Spawns a write's `task` on the PostgreSQL runtime; its answer comes
    /// out of the receiver (wait on it with [`Fate::wait`]). A COMMIT that
    /// PostgreSQL answers after the caller gave up (`fate`) asks the
    /// reloader for every area: the outcome is settled now, and this node
    /// acts on no notification of its own. (Every area, since a
    /// transaction's writes are only known to its caller; this is rare.)
    fn spawn_write<T, F>(&self, fate: &Fate, task: F) -> Receiver<Result<T, StoreError>>
    where
        T: Send + 'static,
        F: Future<Output = Result<T, StoreError>> + Send + 'static,
    {
        let (answer, answered) = sync_channel(1);
        let (fate, reloads) = (fate.clone(), self.reloads.get().cloned());
        self.handle.spawn(async move {
            let result = task.await;
            if fate.answered_too_late()
                && let Some(reloads) = reloads
            {
                let _ = reloads.send(Change::Everything);
            }
            let _ = answer.send(result);
        });
        answered
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
}

/// Runs `fut` on the PostgreSQL runtime `handle` and waits for its output
/// (from a thread outside that runtime); `None` after [`CALL_TIMEOUT`].
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

/// Starts the `opale-pg` thread and its current-thread runtime; the
/// runtime stops when the returned sender is dropped.
fn start_runtime() -> Result<(Handle, tokio::sync::oneshot::Sender<()>), StoreError> {
    let (handle_tx, handle_rx) = sync_channel(1);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    std::thread::Builder::new()
        .name("opale-pg".into())
        .spawn(move || {
            let rt = match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(rt) => rt,
                Err(e) => {
                    let _ = handle_tx.send(Err(e));
                    return;
                }
            };
            let _ = handle_tx.send(Ok(rt.handle().clone()));
            rt.block_on(async {
                let _ = stopped.await;
            });
            rt.shutdown_background();
        })
        .map_err(|e| StoreError::backend_in("cannot start the PostgreSQL thread", e))?;
    match handle_rx.recv() {
        Ok(Ok(handle)) => Ok((handle, stop)),
        Ok(Err(e)) => Err(StoreError::backend(e)),
        Err(_) => Err(StoreError::broken("the PostgreSQL thread died")),
    }
}

impl Store for PgStore {
    fn scan_prefix(&self, prefix: &[u8]) -> Result<Pairs, StoreError> {
        let start = prefix.to_vec();
        let end = super::prefix_end(prefix);
        self.call(|pool| async move { ops::range(&pool, start, end, false, None).await })
    }

    fn range(
        &self,
        start: &[u8],
        end: &[u8],
        reverse: bool,
        limit: usize,
    ) -> Result<Pairs, StoreError> {
        let (start, end) = (start.to_vec(), Some(end.to_vec()));
        let limit = Some(i64::try_from(limit).unwrap_or(i64::MAX));
        self.call(|pool| async move { ops::range(&pool, start, end, reverse, limit).await })
    }

    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        let key = key.to_vec();
        self.call(|pool| async move { ops::get(&pool, key).await })
    }

    fn commit(&self, writes: Vec<Write>) -> Result<(), StoreError> {
        let touched = Change::of_writes(&writes);
        let fate = Fate::default();
        let (pool, node, task_fate) = (self.pool.clone(), self.node_id.clone(), fate.clone());
        let answered = self.spawn_write(&fate, async move {
            ops::commit(&pool, &node, writes, &task_fate).await
        });
        self.after_write(fate.wait(&answered), touched)
    }

    fn revision(&self, area: &str) -> Result<u64, StoreError> {
        let area = area.to_owned();
        self.call(|pool| async move { ops::revision(&pool, &area).await })
    }

    fn transact(&self, area: &str, f: Transaction<'_>) -> Result<Option<u64>, StoreError> {
        let area = area.to_owned();
        let (locked_tx, locked_rx) = sync_channel(1);
        let (writes_tx, writes_rx) = tokio::sync::oneshot::channel();
        let fate = Fate::default();
        let (pool, node, task_fate) = (self.pool.clone(), self.node_id.clone(), fate.clone());
        let answered = self.spawn_write(&fate, async move {
            let held = ops::Held {
                area: &area,
                node: &node,
                fate: &task_fate,
            };
            ops::transact(&pool, held, locked_tx, writes_rx).await
        });
        // No answer here: the task rolls back when `writes_tx` is dropped.
        let locked = locked_rx
            .recv_timeout(CALL_TIMEOUT)
            .unwrap_or_else(|_| Err(no_answer()));
        self.observe(&locked);
        let writes = f(locked?);
        let touched = Change::of_writes(writes.as_deref().unwrap_or_default());
        let _ = writes_tx.send(writes);
        self.after_write(fate.wait(&answered), touched)
    }

    fn subscribe(&self, changes: Sender<Change>) {
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
