//! What an admin operation changed: the registry entities that differ
//! between the snapshot before and after it, and the incidents and
//! maintenances (§11) that differ between the status board before and
//! after it, as `before`/`after` JSON for the trace. Client-secret digests
//! are never part of it.

use crate::registry::Snapshot;
use crate::status::{Board, Incident, Maintenance};
use serde::Serialize;
use serde_json::{Map, Value};
use std::collections::HashMap;
use std::hash::Hash;

/// `(before, after)`, each `{"partners":{id:…},"applications":…}` holding
/// only the changed entities (`null` before for a creation); `datapass`
/// holds the last DataPass event applied, keyed `<environment>/<id>`.
pub fn changes(old: &Snapshot, new: &Snapshot) -> (Value, Value) {
    let mut before = Map::new();
    let mut after = Map::new();
    diff(
        "partners",
        &old.partners,
        &new.partners,
        &mut before,
        &mut after,
    );
    diff(
        "applications",
        &old.applications,
        &new.applications,
        &mut before,
        &mut after,
    );
    diff(
        "certificates",
        &old.certificates,
        &new.certificates,
        &mut before,
        &mut after,
    );
    diff("admins", &old.admins, &new.admins, &mut before, &mut after);
    diff(
        "datapass",
        &old.datapass,
        &new.datapass,
        &mut before,
        &mut after,
    );
    (Value::Object(before), Value::Object(after))
}

/// Adds to `(before, after)` the incidents and maintenances that differ
/// between two status boards, keyed by id.
pub fn board_changes(old: &Board, new: &Board, (before, after): (&mut Value, &mut Value)) {
    let (Value::Object(before), Value::Object(after)) = (before, after) else {
        return;
    };
    let by_id = |list: &[Incident]| {
        list.iter()
            .map(|i| (i.id.clone(), i.clone()))
            .collect::<HashMap<_, _>>()
    };
    diff(
        "incidents",
        &by_id(&old.incidents),
        &by_id(&new.incidents),
        before,
        after,
    );
    let by_id = |list: &[Maintenance]| {
        list.iter()
            .map(|m| (m.id.clone(), m.clone()))
            .collect::<HashMap<_, _>>()
    };
    diff(
        "maintenances",
        &by_id(&old.maintenances),
        &by_id(&new.maintenances),
        before,
        after,
    );
}

fn diff<K, V>(
    kind: &str,
    old: &HashMap<K, V>,
    new: &HashMap<K, V>,
    before: &mut Map<String, Value>,
    after: &mut Map<String, Value>,
) where
    K: Eq + Hash + ToString,
    V: PartialEq + Serialize,
{
    for (k, v) in new {
        let previous = old.get(k);
        if previous == Some(v) {
            continue;
        }
        let id = k.to_string();
        insert(
            before,
            kind,
            &id,
            previous.map(to_value).unwrap_or(Value::Null),
        );
        insert(after, kind, &id, to_value(v));
    }
}

fn insert(m: &mut Map<String, Value>, kind: &str, id: &str, v: Value) {
    if let Value::Object(o) = m
        .entry(kind.to_owned())
        .or_insert_with(|| Value::Object(Map::new()))
    {
        o.insert(id.to_owned(), v);
    }
}

fn to_value<V: Serialize>(v: &V) -> Value {
    serde_json::to_value(v).unwrap_or(Value::Null)
}
