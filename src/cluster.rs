//! One node of a cluster (docs/contract.md §10): its name, the shared store's health
//! (for `/metrics` and the staleness cut-off) and the reloader, a thread
//! that applies the changes other nodes committed — registry snapshot,
//! token deny-list, token signing keys, availability, transmitted-claims index, open security
//! events and learnt addresses, expiry notices — as the store's
//! listener reports them (within a second of the commit), and what one of
//! this node's writes touched when it failed or its outcome was unknown
//! (once PostgreSQL settled it). With the
//! embedded store there is no other node and no reloader.
//!
//! The reloader holds only weak references: it never keeps the gateway's
//! state alive, and it ends when the store (and its listener) is dropped.

use crate::abuse::Abuse;
use crate::availability::Availability;
use crate::data::transmitted::Transmissions;
use crate::notify::Notices;
use crate::oauth::{DenyList, Keyring};
use crate::registry::Registry;
use crate::store::{Area, Change, Health, Store};
use std::sync::mpsc::Receiver;
use std::sync::{Arc, Weak};
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

/// The in-memory state a change may touch.
pub struct Targets {
    /// Partners, applications, certificates.
    pub registry: Weak<Registry>,
    /// Revoked token ids.
    pub denylist: Weak<DenyList>,
    /// Every node's registered token signing keys.
    pub keys: Weak<Keyring>,
    /// Maintenance per environment.
    pub availability: Weak<Availability>,
    /// Transmitted claims.
    pub transmissions: Weak<Transmissions>,
    /// Open security events and learnt addresses.
    pub abuse: Weak<Abuse>,
    /// Expiry notices (their claims and sent marks).
    pub notices: Weak<Notices>,
}

impl Cluster {
    /// Subscribes to `store`'s changes and starts the reloader, if the
    /// store has other writers.
    pub fn start(node_id: &str, store: &dyn Store, targets: Targets) -> Cluster {
        let health = store.health();
        if let Some(health) = &health {
            let (tx, rx) = std::sync::mpsc::channel();
            let counter = health.clone();
            let started = std::thread::Builder::new()
                .name("opale-reload".into())
                .spawn(move || reload_loop(&rx, &targets, &counter));
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

/// Applies changes until the store's listener goes away; a burst of
/// notifications is coalesced into one reload per area.
fn reload_loop(changes: &Receiver<Change>, targets: &Targets, health: &Health) {
    while let Ok(Change(mut areas)) = changes.recv() {
        while let Ok(Change(more)) = changes.try_recv() {
            areas.extend(more);
        }
        for area in Area::ALL.into_iter().filter(|a| areas.contains(a)) {
            match reload_with_retry(targets, area) {
                Some(true) => {
                    health.reloads.inc();
                }
                Some(false) => {}
                None => return,
            }
        }
    }
}

/// `Some(reloaded)`, or `None` when the state is gone (shutting down).
fn reload_with_retry(targets: &Targets, area: Area) -> Option<bool> {
    for attempt in 1..=RELOAD_ATTEMPTS {
        match reload(targets, area)? {
            Ok(()) => return Some(true),
            Err(e) => {
                tracing::warn!(area = area.name(), attempt, error = %e, "reload failed");
                std::thread::sleep(Duration::from_millis(200) * attempt);
            }
        }
    }
    Some(false)
}

fn reload(t: &Targets, area: Area) -> Option<Result<(), String>> {
    let text = |e: &dyn std::fmt::Display| e.to_string();
    Some(match area {
        Area::Registry => t.registry.upgrade()?.reload().map_err(|e| text(&e)),
        Area::DenyList => {
            let now = crate::oauth::unix_now();
            t.denylist.upgrade()?.reload(now).map_err(|e| text(&e))
        }
        Area::Keys => t.keys.upgrade()?.reload().map_err(|e| text(&e)),
        Area::Availability => t.availability.upgrade()?.reload().map_err(|e| text(&e)),
        Area::Transmissions => t.transmissions.upgrade()?.reload().map_err(|e| text(&e)),
        Area::Abuse => t.abuse.upgrade()?.reload().map_err(|e| text(&e)),
        Area::Notices => t.notices.upgrade()?.reload().map_err(|e| text(&e)),
    })
}
