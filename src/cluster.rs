//! One node of a cluster (docs/contract.md §10): its name, the shared store's health
//! (for `/metrics` and the staleness cut-off) and the reloader, a thread
//! that reloads the node's keyspaces (`store/keyspace.rs`) whose areas
//! other nodes changed, as the store's listener reports them (within a
//! second of the commit), and those one of this node's writes touched when
//! it failed or its outcome was unknown (once PostgreSQL settled it). With
//! the embedded store there is no other node and no reloader.
//!
//! The reloader holds the keyspaces weakly: it never keeps the gateway's
//! state alive, and it ends when the store (and its listener) is dropped.

use crate::store::{Change, Health, Keyspaces, Store};
use std::sync::Arc;
use std::sync::mpsc::Receiver;
use std::time::Duration;

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
    /// `keyspaces`, if the store has other writers.
    pub fn start(node_id: &str, store: &dyn Store, keyspaces: Arc<Keyspaces>) -> Cluster {
        let health = store.health();
        if let Some(health) = &health {
            let (tx, rx) = std::sync::mpsc::channel();
            let counter = health.clone();
            let started = std::thread::Builder::new()
                .name("opale-reload".into())
                .spawn(move || reload_loop(&rx, &keyspaces, &counter));
            match started {
                Ok(_) => store.subscribe(tx),
                Err(e) => tracing::error!(error = %e, "cannot start the reloader thread"),
            }
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
fn reload_loop(changes: &Receiver<Change>, keyspaces: &Keyspaces, health: &Health) {
    while let Ok(mut change) = changes.recv() {
        while let Ok(more) = changes.try_recv() {
            change = change.merge(more);
        }
        for (area, space) in keyspaces.touched(&change) {
            if reload_with_retry(area, &*space) {
                health.reloads.inc();
            }
        }
        if keyspaces.all_gone() {
            return;
        }
    }
}

/// Whether the keyspace was reloaded within [`RELOAD_ATTEMPTS`].
fn reload_with_retry(area: &str, space: &dyn crate::store::Keyspace) -> bool {
    for attempt in 1..=RELOAD_ATTEMPTS {
        match space.reload() {
            Ok(()) => return true,
            Err(e) => {
                tracing::warn!(area, attempt, error = %e, "reload failed");
                std::thread::sleep(Duration::from_millis(200) * attempt);
            }
        }
    }
    false
}
