//! The trail of a cluster node (docs/contract.md §7 and §10): the node appends to
//! its local trail exactly as a single node does (segments, group commit,
//! fdatasync, signed checkpoints), and a shipper copies every durable
//! record, in order, into PostgreSQL — one hash chain per node, the same
//! seq, time, body and chain value as the local frames, with a checkpoint
//! signed by the node (origin `opale-apim/trail/<node_id>`) committed in
//! the transaction of the records it covers. Listing, statistics, export,
//! `verify` and checkpoints then read PostgreSQL and cover every node.
//!
//! A response with `before_response` durability waits for its record to be
//! durable locally (the promise of docs/contract.md §7). By default
//! (`cluster.trail_wait = "disk"`) that is all: the shipper wakes at most
//! every [`SHIP_INTERVAL`] and commits everything made durable meanwhile
//! in one transaction, so every node lists the record within that interval
//! plus one commit. With `trail_wait = "postgres"` the response also waits
//! for the record's commit in PostgreSQL, for at most [`SHIP_WAIT`];
//! PostgreSQL away, hung or merely slower than that (docs/contract.md §10:
//! no data call waits more than 250 ms because PostgreSQL stopped
//! answering), shipping is *late*: responses stop waiting for it at all
//! until the shipper has caught up with the local trail. Either way a
//! SIGKILL loses nothing answered: what was answered is in PostgreSQL, or
//! on the node's disk and shipped at its next start.
//!
//! Each node signs with its own key (`data_dir/keys/audit-signing.pem`),
//! registered in `trail_nodes` at first start; a node whose key differs
//! from the registered one is refused (two nodes with one `node_id`).

mod ship;
pub mod sql;
mod verify;

pub use verify::NodeReport;

use crate::config::TrailWait;
use crate::store::postgres::{no_answer, wait_on};
use crate::store::{Cause, Health, PgStore, StoreError};
use crate::trail::{NoteSigner, Trail, TrailError};
use deadpool_postgres::Pool;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{SyncSender, TrySendError};
use std::time::Duration;
use tokio::runtime::Handle;
use tokio::sync::watch;

/// Longest a response waits for its record's commit in PostgreSQL once it
/// is durable locally. Past it shipping is late and responses stop
/// waiting until the shipper has caught up: a hung PostgreSQL costs the
/// calls in flight at that moment this much, and later calls nothing.
pub const SHIP_WAIT: Duration = Duration::from_millis(100);

/// With `trail_wait = "disk"`, the shortest time between two shipments'
/// starts: records made durable meanwhile go in one transaction.
pub const SHIP_INTERVAL: Duration = Duration::from_millis(20);

/// How long closing the node waits for the shipper to ship every durable
/// record.
pub const SHIP_AT_CLOSE: Duration = Duration::from_secs(2);

/// The origin (and key name) of a node's checkpoints.
pub fn origin(node: &str) -> String {
    format!("{}/{node}", super::ORIGIN)
}

/// What can go wrong with the cluster trail. Cloned to every waiter of a
/// shipment, hence the shared [`Cause`]s.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ClusterError {
    /// PostgreSQL did not answer (connection, pool, timeout).
    #[error("{message}")]
    Unavailable {
        /// What could not be reached.
        message: String,
        /// The connection or pool error; `None` when no answer came in time.
        #[source]
        source: Option<Cause>,
    },
    /// PostgreSQL refused a statement, or its copy of the chain is not
    /// where this node left it.
    #[error("{message}")]
    Backend {
        /// What failed.
        message: String,
        /// PostgreSQL's error; `None` for a chain found elsewhere.
        #[source]
        source: Option<Cause>,
    },
    /// This node may not write its chain (key or history mismatch). The
    /// text is the finding itself (which node, which records); no error
    /// value underlies it.
    #[error("{0}")]
    Refused(String),
    /// The shipper thread could not be started.
    #[error("cannot start the trail shipper: {0}")]
    Thread(#[source] Arc<std::io::Error>),
    /// The local trail failed.
    #[error(transparent)]
    Trail(#[from] TrailError),
}

impl From<StoreError> for ClusterError {
    /// The store's mapping of PostgreSQL errors (unreachable or refused),
    /// the store's error kept as the source.
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Unavailable { message, source }
            | StoreError::Unknown { message, source } => {
                ClusterError::Unavailable { message, source }
            }
            StoreError::Backend { message, source } => ClusterError::Backend { message, source },
            StoreError::Locked { dir, source } => ClusterError::Backend {
                message: dir,
                source: Some(Cause::new(source)),
            },
        }
    }
}

/// How far this node's chain is in PostgreSQL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shipped {
    /// The last record committed in PostgreSQL.
    pub seq: u64,
    /// Whether the last attempt succeeded (waiters stop waiting when not).
    pub up: bool,
}

/// Follows the shipping of a node's trail: how far it is and whether
/// responses stopped waiting for it (read at each `/metrics` scrape).
#[derive(Debug, Clone)]
pub struct ShippingView {
    progress: watch::Receiver<Shipped>,
    late: Arc<AtomicBool>,
}

impl ShippingView {
    /// How far the chain is in PostgreSQL.
    pub fn progress(&self) -> Shipped {
        *self.progress.borrow()
    }

    /// Whether responses have stopped waiting for their record's commit
    /// in PostgreSQL until shipping catches up.
    pub fn is_late(&self) -> bool {
        self.late.load(Ordering::Relaxed)
    }
}

/// The PostgreSQL side of this node's trail.
pub struct ClusterTrail {
    /// Keeps the PostgreSQL runtime alive and answers `health`.
    store: Arc<PgStore>,
    handle: Handle,
    pool: Pool,
    node: String,
    wait: TrailWait,
    /// The local trail (how far it is durable).
    trail: Arc<Trail>,
    signer: Arc<NoteSigner>,
    shipped: watch::Receiver<Shipped>,
    wake: SyncSender<()>,
    /// Set when a response gave up waiting for its commit ([`SHIP_WAIT`]);
    /// cleared by the shipper once it has shipped every durable record.
    late: Arc<AtomicBool>,
    /// Why this node's chain in PostgreSQL cannot be continued, if so.
    flagged: Option<String>,
}

impl ClusterTrail {
    /// Registers this node's key, checks that its chain in PostgreSQL is a
    /// prefix of the local trail, and starts the shipper. Blocking.
    pub fn open(
        store: Arc<PgStore>,
        node: &str,
        wait: TrailWait,
        key: rcgen::KeyPair,
        trail: Arc<Trail>,
    ) -> Result<Self, ClusterError> {
        use crate::store::Store;
        let signer = Arc::new(NoteSigner::new(&origin(node), key)?);
        let (handle, pool) = (store.runtime(), store.pool());
        let mine = signer.verifier().public_key().to_vec();
        let genesis = signer.sign(0, &crate::trail::GENESIS, None)?.text;
        let registered = run(&handle, {
            let (pool, node, mine) = (pool.clone(), node.to_owned(), mine.clone());
            async move { sql::register(&pool, &node, &mine, &genesis).await }
        })?;
        if registered != mine {
            return Err(ClusterError::Refused(format!(
                "node {node:?} is registered in PostgreSQL with another trail key: two nodes share \
                 cluster.node_id, or data_dir/keys/audit-signing.pem was replaced"
            )));
        }
        let (pg_seq, pg_hash) = run(&handle, {
            let (pool, node) = (pool.clone(), node.to_owned());
            async move { sql::last(&pool, &node).await }
        })?;
        let local = trail.last_seq();
        if pg_seq > local {
            return Err(ClusterError::Refused(format!(
                "node {node:?} has records up to {pg_seq} in PostgreSQL but its local trail only up \
                 to {local}: this data_dir is not the node's latest (restored or replaced); give the \
                 node a new cluster.node_id or bring back its data_dir"
            )));
        }
        let (pg_seq, pg_hash) = match trail.purge_checkpoint() {
            // A node whose trail was purged before it joined: its chain in
            // PostgreSQL starts at the same purge point.
            Some(cp) if pg_seq == 0 && cp.count > 0 => {
                let cutoff = cp.purge_before.unwrap_or(0);
                let note = signer.sign(cp.count, &cp.head, Some(cutoff))?.text;
                run(&handle, {
                    let (pool, node) = (pool.clone(), node.to_owned());
                    async move { sql::purge(&pool, &node, cp.count, &note).await }
                })?;
                (cp.count, cp.head.to_vec())
            }
            _ => (pg_seq, pg_hash),
        };
        let (start, flagged) = ship::resume(&trail, pg_seq, &pg_hash);
        if let Some(why) = &flagged {
            tracing::error!(node, reason = %why, "the node's trail in PostgreSQL is not shipped to");
        }
        let (tx, rx) = watch::channel(Shipped {
            seq: pg_seq,
            up: flagged.is_none(),
        });
        let (wake, woken) = std::sync::mpsc::sync_channel(1);
        let late = Arc::new(AtomicBool::new(false));
        if let Some(hash) = start {
            trail.follow();
            let shipper = ship::Shipper {
                trail: trail.clone(),
                handle: handle.clone(),
                pool: pool.clone(),
                node: node.to_owned(),
                signer: signer.clone(),
                health: store.health(),
                shipped: tx,
                late: late.clone(),
                interval: match wait {
                    TrailWait::Disk => SHIP_INTERVAL,
                    TrailWait::Postgres => Duration::ZERO,
                },
                next: pg_seq + 1,
                hash,
            };
            shipper.spawn(woken)?;
        }
        Ok(ClusterTrail {
            store,
            handle,
            pool,
            node: node.to_owned(),
            wait,
            trail,
            signer,
            shipped: rx,
            wake,
            late,
            flagged,
        })
    }

    /// Record `seq` is durable locally: wakes the shipper and, with
    /// `trail_wait = "postgres"`, waits for its commit in PostgreSQL
    /// ([`Self::shipped`]).
    pub async fn durable(&self, seq: u64) {
        match self.wake.try_send(()) {
            Ok(()) | Err(TrySendError::Full(())) => {}
            Err(TrySendError::Disconnected(())) => return,
        }
        if self.wait == TrailWait::Postgres {
            self.shipped(seq).await;
        }
    }

    /// Waits until record `seq` (durable locally) is committed in
    /// PostgreSQL, or the last shipment failed, or [`SHIP_WAIT`] passed;
    /// returns at once while shipping is late. The record then waits on
    /// the local disk and is shipped later.
    async fn shipped(&self, seq: u64) {
        if self.late.load(Ordering::Relaxed) {
            return;
        }
        let mut rx = self.shipped.clone();
        let done = rx.wait_for(|s| s.seq >= seq || !s.up);
        if tokio::time::timeout(SHIP_WAIT, done).await.is_err()
            && !self.late.swap(true, Ordering::Relaxed)
        {
            tracing::warn!(
                node = %self.node, wait_ms = SHIP_WAIT.as_millis() as u64,
                "PostgreSQL did not commit a trail record in time; responses stop waiting for \
                 it until the shipper catches up (records wait on this node's disk)"
            );
        }
    }

    /// Wakes the shipper and waits, for at most `limit`, until every
    /// record durable locally is committed in PostgreSQL or a shipment
    /// failed. False if records remain unshipped (they are shipped at the
    /// node's next start).
    pub async fn ship_all(&self, limit: Duration) -> bool {
        let _ = self.wake.try_send(());
        let last = self.trail.last_seq();
        let mut rx = self.shipped.clone();
        let done = rx.wait_for(|s| s.seq >= last || !s.up);
        let shipped = matches!(tokio::time::timeout(limit, done).await, Ok(Ok(s)) if s.seq >= last);
        if !shipped {
            tracing::warn!(
                node = %self.node, shipped = self.progress().seq, durable = last,
                "trail records remain unshipped at close; shipped at the node's next start"
            );
        }
        shipped
    }

    /// Whether responses have stopped waiting for PostgreSQL (shipping
    /// late, see [`SHIP_WAIT`]).
    pub fn is_late(&self) -> bool {
        self.late.load(Ordering::Relaxed)
    }

    /// How far the chain is in PostgreSQL.
    pub fn progress(&self) -> Shipped {
        *self.shipped.borrow()
    }

    /// What `/metrics` reads of the shipping at each scrape.
    pub fn shipping_view(&self) -> ShippingView {
        ShippingView {
            progress: self.shipped.clone(),
            late: self.late.clone(),
        }
    }

    /// This node's name.
    pub fn node(&self) -> &str {
        &self.node
    }

    /// The store's health counters.
    pub fn health(&self) -> Option<Arc<Health>> {
        use crate::store::Store;
        self.store.health()
    }

    /// Runs one PostgreSQL call of the trail and waits for it (blocking).
    fn call<T, F>(&self, task: impl FnOnce(Pool) -> F) -> Result<T, ClusterError>
    where
        T: Send + 'static,
        F: Future<Output = Result<T, ClusterError>> + Send + 'static,
    {
        run(&self.handle, task(self.pool.clone()))
    }
}

/// Runs `fut` on the PostgreSQL runtime and waits for its answer.
fn run<T: Send + 'static>(
    handle: &Handle,
    fut: impl Future<Output = Result<T, ClusterError>> + Send + 'static,
) -> Result<T, ClusterError> {
    wait_on(handle, fut).unwrap_or_else(|| Err(no_answer().into()))
}

/// Newest-first records of every node (blocking: each page is one query).
pub struct Newest<'a> {
    trail: &'a ClusterTrail,
    before: i64,
    page: std::vec::IntoIter<sql::Row>,
    done: bool,
}

/// Rows per page of a listing.
const LIST_PAGE: i64 = 500;

impl Iterator for Newest<'_> {
    type Item = Result<sql::Row, ClusterError>;

    fn next(&mut self) -> Option<Self::Item> {
        if let Some(r) = self.page.next() {
            return Some(Ok(r));
        }
        if self.done {
            return None;
        }
        let before = self.before;
        match self
            .trail
            .call(move |pool| async move { sql::newest(&pool, before, LIST_PAGE).await })
        {
            Ok(rows) => {
                self.done = (rows.len() as i64) < LIST_PAGE;
                self.before = rows.last().map_or(0, |r| r.id);
                self.page = rows.into_iter();
                self.page.next().map(Ok)
            }
            Err(e) => {
                self.done = true;
                Some(Err(e))
            }
        }
    }
}

impl ClusterTrail {
    /// Records of every node, newest first, below listing position `before`.
    pub fn newest(&self, before: Option<u64>) -> Newest<'_> {
        Newest {
            trail: self,
            before: before.map_or(i64::MAX, sql::as_i64),
            page: Vec::new().into_iter(),
            done: false,
        }
    }

    /// Every node's latest checkpoint, one signed note after the other
    /// (blocking).
    pub fn checkpoints(&self) -> Result<String, ClusterError> {
        let chains = self.call(|pool| async move { sql::chains(&pool).await })?;
        Ok(chains
            .iter()
            .filter_map(|(_, c)| c.checkpoint.as_deref())
            .collect())
    }

    /// Applies the local purge point (count, head, cutoff) to this node's
    /// chain in PostgreSQL: a purge checkpoint signed by the node, and the
    /// records it covers deleted (blocking). Returns the rows deleted.
    pub fn purge(
        &self,
        count: u64,
        head: &crate::trail::Hash,
        cutoff_ms: i64,
    ) -> Result<u64, ClusterError> {
        let note = self.signer.sign(count, head, Some(cutoff_ms))?.text;
        let node = self.node.clone();
        self.call(move |pool| async move { sql::purge(&pool, &node, count, &note).await })
    }
}
