//! `verify` over every node's chain in PostgreSQL: each chain is walked
//! from its purge checkpoint (or the start), every record's chain value
//! recomputed from its seq, time and body and compared with the stored one,
//! seqs must follow each other, and the chain must extend the node's own
//! latest checkpoint and every checkpoint of that node given by the
//! caller. Never "ok" over fewer records than a checkpoint vouched for.

use super::sql::{self, Chain};
use super::{ClusterError, ClusterTrail, origin};
use crate::trail::{Checkpoint, GENESIS, Hash, NoteVerifier, chain_entry, origin_of, split_notes};
use serde::Serialize;

/// A fault: the first bad record (if one) and what is wrong.
type Fault = (Option<u64>, String);

/// Rows read per query of the walk.
const PAGE: i64 = 5000;

/// The outcome for one node's chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NodeReport {
    /// The node.
    pub node: String,
    /// Whether its chain is whole and extends every checkpoint checked.
    pub ok: bool,
    /// Records verified (after its purge point) before the first fault.
    pub records: u64,
    /// The first record altered, missing or out of place.
    pub first_bad: Option<u64>,
    /// What is wrong.
    pub reason: Option<String>,
    /// The last record found whole (its seq in the node's chain).
    #[serde(skip)]
    pub last: u64,
}

/// Everything verify learnt about the cluster's chains.
pub struct ClusterReport {
    /// One per node, by name.
    pub nodes: Vec<NodeReport>,
    /// Every node's latest checkpoint, one after the other.
    pub checkpoints: String,
    /// Every node's purge checkpoint, if any.
    pub purges: Option<String>,
    /// A fault of the supplied checkpoints themselves (unknown node, bad
    /// signature).
    pub refused: Option<String>,
}

impl ClusterTrail {
    /// Walks every node's chain (blocking) against its checkpoints and the
    /// ones in `external` (several notes may follow each other).
    pub fn verify(&self, external: Option<&str>) -> Result<ClusterReport, ClusterError> {
        // Read before the walk: what was shipped by then must be found.
        let shipped = self.progress().seq;
        let chains = self.call(|pool| async move { sql::chains(&pool).await })?;
        let mut refused = None;
        let mut given: Vec<(String, String)> = Vec::new();
        for note in external.map(split_notes).unwrap_or_default() {
            let node = origin_of(note).and_then(|o| o.strip_prefix(&origin("")));
            match node.filter(|n| chains.iter().any(|(c, _)| c == n)) {
                Some(n) => given.push((n.to_owned(), note.to_owned())),
                None => {
                    refused.get_or_insert(format!(
                        "checkpoint refused: origin {:?} is not a node of this cluster",
                        origin_of(note).unwrap_or("")
                    ));
                }
            }
        }
        if external.is_some_and(|t| !t.trim().is_empty()) && given.is_empty() {
            refused.get_or_insert_with(|| "checkpoint refused: no signed note found".into());
        }
        let mut nodes = Vec::new();
        for (node, chain) in &chains {
            let mine: Vec<&str> = given
                .iter()
                .filter(|(n, _)| n == node)
                .map(|(_, t)| t.as_str())
                .collect();
            nodes.push(self.verify_chain(node, chain, &mine)?);
        }
        if let Some(n) = nodes.iter_mut().find(|n| n.node == self.node) {
            self.own_chain(n, shipped);
        }
        let purges: Vec<&str> = chains
            .iter()
            .filter_map(|(_, c)| c.purge.as_deref())
            .collect();
        Ok(ClusterReport {
            nodes,
            checkpoints: chains
                .iter()
                .filter_map(|(_, c)| c.checkpoint.as_deref())
                .collect(),
            purges: (!purges.is_empty()).then(|| purges.concat()),
            refused,
        })
    }

    /// What only this node knows of its own chain: that it cannot ship to
    /// it, or that it shipped more than PostgreSQL now holds (a rollback,
    /// even a self-consistent one, of rows and checkpoint together).
    fn own_chain(&self, n: &mut NodeReport, shipped: u64) {
        if let Some(why) = &self.flagged {
            n.ok = false;
            n.reason.get_or_insert_with(|| why.clone());
        }
        let held = n.last;
        if n.ok && held < shipped {
            n.ok = false;
            n.first_bad = Some(held + 1);
            n.reason = Some(format!(
                "records {}..{shipped} missing (this node shipped up to {shipped})",
                held + 1
            ));
        }
    }

    fn verify_chain(
        &self,
        node: &str,
        chain: &Chain,
        given: &[&str],
    ) -> Result<NodeReport, ClusterError> {
        let verifier = NoteVerifier::new(&origin(node), &chain.public_key)?;
        let mut faults = Vec::new();
        let open = |text: &str, what: &str, faults: &mut Vec<_>| match verifier.open(text) {
            Ok(cp) => Some(cp),
            Err(e) => {
                faults.push((None, format!("{what} refused: {e}")));
                None
            }
        };
        let start = match chain
            .purge
            .as_deref()
            .and_then(|t| open(t, "purge checkpoint", &mut faults))
        {
            Some(cp) if cp.purge_before.is_some() => (cp.count, cp.head),
            Some(_) => {
                faults.push((
                    None,
                    "purge checkpoint refused: not a purge checkpoint".into(),
                ));
                (0, GENESIS)
            }
            None => (0, GENESIS),
        };
        let mut targets: Vec<Checkpoint> = Vec::new();
        match chain.checkpoint.as_deref() {
            Some(t) => targets.extend(open(t, "node checkpoint", &mut faults)),
            None => faults.push((None, "no checkpoint in PostgreSQL".into())),
        }
        for t in given {
            targets.extend(open(t, "supplied checkpoint", &mut faults));
        }
        let (count, walk_fault) = self.walk(node, start, &targets)?;
        faults.extend(walk_fault);
        let fault = faults.into_iter().next();
        Ok(NodeReport {
            node: node.to_owned(),
            ok: fault.is_none(),
            records: count - start.0,
            last: count,
            first_bad: fault.as_ref().and_then(|f| f.0),
            reason: fault.map(|f| f.1),
        })
    }

    /// Walks `node`'s rows from `start`; the last good seq and the first fault.
    fn walk(
        &self,
        node: &str,
        start: (u64, Hash),
        targets: &[Checkpoint],
    ) -> Result<(u64, Option<Fault>), ClusterError> {
        let (mut at, mut hash) = start;
        loop {
            let n = node.to_owned();
            let rows =
                self.call(move |pool| async move { sql::walk(&pool, &n, at, PAGE).await })?;
            let full = rows.len() as i64 == PAGE;
            for r in rows {
                let seq = sql::as_u64(r.seq);
                if seq != at + 1 {
                    return Ok((
                        at,
                        Some((
                            Some(at + 1),
                            format!("records {}..{} missing", at + 1, seq - 1),
                        )),
                    ));
                }
                let h = chain_entry(&hash, seq, r.time_ms, &r.body);
                if r.hash[..] != h[..] {
                    return Ok((
                        at,
                        Some((
                            Some(seq),
                            format!("record {seq} altered: its chain value does not match"),
                        )),
                    ));
                }
                if let Some(cp) = targets.iter().find(|c| c.count == seq && c.head != h) {
                    let why = format!(
                        "record {seq} differs from the one checkpoint {} vouched for",
                        cp.count
                    );
                    return Ok((at, Some((Some(seq), why))));
                }
                (at, hash) = (seq, h);
            }
            if !full {
                break;
            }
        }
        let vouched = targets.iter().map(|c| c.count).max().unwrap_or(0);
        if vouched > at {
            let why = format!(
                "records {}..{vouched} missing (a checkpoint vouched for {vouched})",
                at + 1
            );
            return Ok((at, Some((Some(at + 1), why))));
        }
        Ok((at, None))
    }
}
