//! One node of a cluster (docs/contract.md §10): its name, the shared store's health
//! (for `/metrics` and the staleness cut-off) and the reloader, a task
//! that reloads the node's keyspaces (`store/keyspace.rs`) whose areas
//! other nodes changed, as the store's listener reports them (within a
//! second of the commit), and those one of this node's writes touched when
//! it failed or its outcome was unknown (once PostgreSQL settled it). With
//! the embedded store there is no other node and no reloader.
//!
//! The reloader holds the keyspaces weakly: it never keeps the gateway's
//! state alive, and it ends when the store (and its listener) is dropped.
//! It is a task on the runtime that starts the node (the process's main
//! runtime, which outlives the serving workers), not a thread: a reload
//! awaits the store like any other caller, and no thread blocks on
//! PostgreSQL to run it.

use crate::store::{Change, Health, Keyspaces, Store};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc::UnboundedReceiver;

/// Attempts at one reload before waiting for the next change.
const RELOAD_ATTEMPTS: u32 = 5;

/// This node.
#[derive(Debug)]
pub struct Cluster {
    /// Names the node in notifications and logs (`cluster.node_id`).
    pub node_id: String,
    /// The shared store's health; `None` with the embedded store.
    pub health: Option<Arc<Health>>,
}

impl Cluster {
    /// Subscribes to `store`'s changes and starts the reloader of
    /// `keyspaces` on the current runtime, if the store has other writers.
    pub fn start(node_id: &str, store: &dyn Store, keyspaces: Arc<Keyspaces>) -> Cluster {
        let health = store.health();
        if let Some(health) = &health {
            let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
            let counter = health.clone();
            tokio::spawn(async move { reload_loop(rx, &keyspaces, &counter).await });
            store.subscribe(tx);
        }
        Cluster {
            node_id: node_id.to_owned(),
            health,
        }
    }
}

/// Applies changes until the store's listener goes away or every keyspace
/// is gone (shutting down); a burst of notifications is coalesced into
/// one reload per keyspace.
async fn reload_loop(
    mut changes: UnboundedReceiver<Change>,
    keyspaces: &Keyspaces,
    health: &Health,
) {
    while let Some(mut change) = changes.recv().await {
        while let Ok(more) = changes.try_recv() {
            change = change.merge(more);
        }
        for (area, space) in keyspaces.touched(&change) {
            if reload_with_retry(area, &*space).await {
                health.reloads.inc();
            }
        }
        if keyspaces.all_gone() {
            return;
        }
    }
}

/// Whether the keyspace was reloaded within [`RELOAD_ATTEMPTS`].
async fn reload_with_retry(area: &str, space: &dyn crate::store::Keyspace) -> bool {
    for attempt in 1..=RELOAD_ATTEMPTS {
        match space.reload().await {
            Ok(()) => return true,
            Err(e) => {
                tracing::warn!(area, attempt, error = %e, "reload failed");
                tokio::time::sleep(Duration::from_millis(200) * attempt).await;
            }
        }
    }
    false
}
