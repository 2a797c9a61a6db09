//! The seam every piece of shared state goes through. A kind of state a
//! node holds in memory (the registry, the token deny-list, the signing
//! keys, maintenance, transmitted claims, security events, notices, and
//! whatever comes next) is a [`Keyspace`]: it owns its key prefix (its
//! *area*, the first segment of its store keys), its typed in-memory copy
//! and how to read that copy back from the store. It joins the node's
//! [`Keyspaces`] once, where it is built; from then on the store announces
//! every write by the areas it touches (PostgreSQL NOTIFY), and the
//! cluster's reloader reloads the keyspaces of the areas other nodes
//! changed — or every keyspace after a reconnection. No list of areas
//! exists anywhere else: a new feature gets cluster behaviour by joining.
//!
//! Revisions are per area too ([`super::Store::revision`]): a transmission
//! or a notice claim no longer makes registry writers reload.

use std::sync::{Arc, Mutex, Weak};

/// What a failed reload reports (logged by the reloader, then retried).
pub type ReloadError = Box<dyn std::error::Error + Send + Sync>;

/// A kind of state held in memory and shared through the store.
#[async_trait::async_trait]
pub trait Keyspace: Send + Sync + 'static {
    /// The first segment of every key it writes (`reg`, `oauth`, …),
    /// unique among a node's keyspaces.
    fn area(&self) -> &'static str;

    /// Reads the area back from the store into memory: another node
    /// changed it, or one of this node's writes to it failed or had an
    /// unknown outcome and PostgreSQL has settled it since.
    async fn reload(&self) -> Result<(), ReloadError>;
}

/// The keyspaces of one node. Holds them weakly: the reloader never keeps
/// the gateway's state alive after shutdown.
#[derive(Default)]
pub struct Keyspaces {
    joined: Mutex<Vec<(&'static str, Weak<dyn Keyspace>)>>,
}

/// A second keyspace claimed an area another one holds: a wiring bug
/// (two kinds of state would overwrite each other's keys).
#[derive(Debug, thiserror::Error)]
#[error("two keyspaces claim the store area {0:?}")]
pub struct AreaTaken(pub &'static str);

impl Keyspaces {
    /// An empty set.
    pub fn new() -> Arc<Keyspaces> {
        Arc::new(Keyspaces::default())
    }

    /// `space` joins: its area is reloaded when it changes elsewhere.
    pub fn join<K: Keyspace>(&self, space: &Arc<K>) -> Result<(), AreaTaken> {
        let area = space.area();
        let mut joined = self.joined.lock().unwrap_or_else(|p| p.into_inner());
        joined.retain(|(_, held)| held.strong_count() > 0);
        if joined.iter().any(|(name, _)| *name == area) {
            return Err(AreaTaken(area));
        }
        let weak: Weak<dyn Keyspace> = Arc::downgrade(space) as Weak<dyn Keyspace>;
        joined.push((area, weak));
        Ok(())
    }

    /// The live keyspaces a change touches, in the order they joined
    /// (every one for [`Change::Everything`]); empty once all are gone.
    pub fn touched(&self, change: &Change) -> Vec<(&'static str, Arc<dyn Keyspace>)> {
        let joined = self.joined.lock().unwrap_or_else(|p| p.into_inner());
        joined
            .iter()
            .filter(|(area, _)| change.touches(area))
            .filter_map(|(area, space)| Some((*area, space.upgrade()?)))
            .collect()
    }

    /// Whether every keyspace that joined is gone (the node shut down).
    pub fn all_gone(&self) -> bool {
        let joined = self.joined.lock().unwrap_or_else(|p| p.into_inner());
        joined.iter().all(|(_, space)| space.strong_count() == 0)
    }

    /// The areas held, in the order they joined.
    pub fn areas(&self) -> Vec<&'static str> {
        let joined = self.joined.lock().unwrap_or_else(|p| p.into_inner());
        joined.iter().map(|(area, _)| *area).collect()
    }
}

/// The area of a store key: its first segment (`reg` for `reg/partner/…`).
pub fn area_of(key: &[u8]) -> &[u8] {
    key.split(|b| *b == b'/').next().unwrap_or_default()
}

/// The areas `writes` touch, each once, in the order first written.
pub fn areas_of(writes: &[super::Write]) -> Vec<String> {
    let mut areas: Vec<String> = Vec::new();
    for area in writes.iter().map(|w| area_of(w.key())) {
        if !areas.iter().any(|a| a.as_bytes() == area)
            && let Ok(area) = std::str::from_utf8(area)
        {
            areas.push(area.to_owned());
        }
    }
    areas
}

/// What to reload: the areas another node changed, those a write of this
/// node touched when it failed or its outcome is unknown, or everything
/// (after a reconnection, or a commit settled after its caller gave up).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// Every keyspace.
    Everything,
    /// The keyspaces of these areas.
    Areas(Vec<String>),
}

impl Change {
    /// The areas `writes` touch.
    pub fn of_writes(writes: &[super::Write]) -> Change {
        Change::Areas(areas_of(writes))
    }

    /// Whether nothing is to be reloaded.
    pub fn is_empty(&self) -> bool {
        matches!(self, Change::Areas(areas) if areas.is_empty())
    }

    /// Whether `area` is to be reloaded.
    pub fn touches(&self, area: &str) -> bool {
        match self {
            Change::Everything => true,
            Change::Areas(areas) => areas.iter().any(|a| a == area),
        }
    }

    /// This change and `other` together.
    pub fn merge(self, other: Change) -> Change {
        match (self, other) {
            (Change::Areas(mut mine), Change::Areas(theirs)) => {
                for area in theirs {
                    if !mine.contains(&area) {
                        mine.push(area);
                    }
                }
                Change::Areas(mine)
            }
            _ => Change::Everything,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Write;
    use std::sync::atomic::{AtomicU32, Ordering};

    struct Counted(&'static str, AtomicU32);

    #[async_trait::async_trait]
    impl Keyspace for Counted {
        fn area(&self) -> &'static str {
            self.0
        }
        async fn reload(&self) -> Result<(), ReloadError> {
            self.1.fetch_add(1, Ordering::Relaxed);
            Ok(())
        }
    }

    fn put(key: &str) -> Write {
        Write::Put(key.as_bytes().to_vec(), Vec::new())
    }

    #[test]
    fn writes_name_each_area_they_touch_once() {
        let writes = [put("tx/a/1"), put("idem/a/k"), put("tx/a/2"), put("reg")];
        let change = Change::of_writes(&writes);
        assert_eq!(
            change,
            Change::Areas(vec!["tx".into(), "idem".into(), "reg".into()])
        );
        assert!(change.touches("idem") && !change.touches("oauth"));
        assert!(Change::of_writes(&[]).is_empty());
        assert!(!Change::Everything.is_empty());
    }

    #[test]
    fn a_change_reaches_the_keyspaces_of_its_areas_only() {
        let spaces = Keyspaces::new();
        let reg = Arc::new(Counted("reg", AtomicU32::new(0)));
        let tx = Arc::new(Counted("tx", AtomicU32::new(0)));
        spaces.join(&reg).unwrap();
        spaces.join(&tx).unwrap();
        let touched = spaces.touched(&Change::Areas(vec!["tx".into(), "idem".into()]));
        assert_eq!(touched.iter().map(|(a, _)| *a).collect::<Vec<_>>(), ["tx"]);
        assert_eq!(spaces.touched(&Change::Everything).len(), 2);
        assert_eq!(spaces.areas(), ["reg", "tx"]);
        let merged = Change::Areas(vec!["reg".into()]).merge(Change::Areas(vec!["tx".into()]));
        assert_eq!(spaces.touched(&merged).len(), 2);
    }

    #[test]
    fn an_area_is_held_by_one_keyspace_and_dropped_ones_leave() {
        let spaces = Keyspaces::new();
        let first = Arc::new(Counted("env", AtomicU32::new(0)));
        spaces.join(&first).unwrap();
        let second = Arc::new(Counted("env", AtomicU32::new(0)));
        assert!(matches!(spaces.join(&second), Err(AreaTaken("env"))));
        drop(first);
        assert!(spaces.all_gone());
        assert!(spaces.touched(&Change::Everything).is_empty());
        spaces.join(&second).unwrap();
        assert!(!spaces.all_gone());
    }
}
