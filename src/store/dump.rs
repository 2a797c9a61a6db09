//! `store export` / `store import`: every record of a store as JSON lines,
//! to move a deployment between backends (sled → PostgreSQL) without
//! re-provisioning. A line is `{"key": "<utf-8 key>", "value": <record>}`;
//! the values are the stored JSON records, copied byte for byte (client
//! secrets are stored, hence exported, as SHA-256 digests only). A key that
//! is not UTF-8 is written as `key_base64`, a value that is not JSON as
//! `value_base64`.

use super::{Fetched, Step, Store, StoreError, Write};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use std::io::BufRead;

/// Why an export or import failed.
#[derive(Debug, thiserror::Error)]
pub enum DumpError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Reading the dump or writing it out failed.
    #[error("dump: {0}")]
    Io(#[from] std::io::Error),
    /// A line of the dump is not a record.
    #[error("dump line {line}: {message}")]
    Line {
        /// 1-based line number.
        line: usize,
        /// What is wrong.
        message: String,
    },
    /// Import refuses to merge into existing state.
    #[error("the target store is not empty: import only into an empty store")]
    NotEmpty,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Line<'a> {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    key: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    key_base64: Option<String>,
    #[serde(default, borrow, skip_serializing_if = "Option::is_none")]
    value: Option<&'a RawValue>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    value_base64: Option<String>,
}

/// Writes every record of `store` to `out`, one JSON line each, in key
/// order. Returns how many.
pub async fn export(store: &dyn Store, out: &mut dyn std::io::Write) -> Result<usize, DumpError> {
    let pairs = store.scan_prefix(b"").await?;
    for (k, v) in &pairs {
        let (key, key_base64) = match std::str::from_utf8(k) {
            Ok(s) => (Some(s.to_owned()), None),
            Err(_) => (None, Some(STANDARD.encode(k))),
        };
        let raw = serde_json::from_slice::<&RawValue>(v)
            .ok()
            .filter(|r| r.get().as_bytes() == v.as_slice());
        let line = Line {
            key,
            key_base64,
            value: raw,
            value_base64: raw.is_none().then(|| STANDARD.encode(v)),
        };
        serde_json::to_writer(&mut *out, &line).map_err(std::io::Error::from)?;
        out.write_all(b"\n")?;
    }
    out.flush()?;
    Ok(pairs.len())
}

/// Reads a dump and writes it into `store`, which must be empty, in one
/// atomic commit under the registry's writer lock that bumps the revision
/// of every area written (running nodes reload).
/// Returns how many records.
pub async fn import(store: &dyn Store, input: &mut dyn BufRead) -> Result<usize, DumpError> {
    if !store.range(b"", &[0xff; 8], false, 1).await?.is_empty() {
        return Err(DumpError::NotEmpty);
    }
    let mut writes = Vec::new();
    for (n, text) in input.lines().enumerate() {
        let text = text?;
        if text.trim().is_empty() {
            continue;
        }
        writes.push(parse(&text).map_err(|message| DumpError::Line {
            line: n + 1,
            message,
        })?);
    }
    let count = writes.len();
    let mut writes = Some(writes);
    let mut transaction = |_, _: &Fetched| writes.take().map_or(Step::Nothing, Step::Commit);
    store.transact("reg", &mut transaction).await?;
    Ok(count)
}

fn parse(text: &str) -> Result<Write, String> {
    let line: Line<'_> = serde_json::from_str(text).map_err(|e| e.to_string())?;
    let b64 = |s: &str| STANDARD.decode(s).map_err(|e| e.to_string());
    let key = match (line.key, line.key_base64) {
        (Some(k), None) => k.into_bytes(),
        (None, Some(k)) => b64(&k)?,
        _ => return Err("exactly one of key, key_base64".into()),
    };
    let value = match (line.value, line.value_base64) {
        (Some(v), None) => v.get().as_bytes().to_vec(),
        (None, Some(v)) => b64(&v)?,
        _ => return Err("exactly one of value, value_base64".into()),
    };
    Ok(Write::Put(key, value))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::SledStore;

    #[tokio::test]
    async fn export_then_import_copies_every_byte() {
        let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let from = SledStore::open(a.path()).unwrap();
        let records = vec![
            Write::Put(b"reg/partner/p1".to_vec(), br#"{"b":1,"a":"x"}"#.to_vec()),
            Write::Put(b"oauth/revoked/j".to_vec(), b"1700000000".to_vec()),
            Write::Put(b"bin/\xff".to_vec(), b"\x00not json".to_vec()),
        ];
        from.commit(records).await.unwrap();
        let mut dump = Vec::new();
        assert_eq!(export(&from, &mut dump).await.unwrap(), 3);
        let text = String::from_utf8(dump.clone()).unwrap();
        assert!(text.contains(r#"{"key":"reg/partner/p1","value":{"b":1,"a":"x"}}"#));
        let to = SledStore::open(b.path()).unwrap();
        assert_eq!(import(&to, &mut dump.as_slice()).await.unwrap(), 3);
        assert_eq!(
            to.scan_prefix(b"").await.unwrap(),
            from.scan_prefix(b"").await.unwrap()
        );
        assert_eq!(to.revision("reg").await.unwrap(), 1);
        assert_eq!(to.revision("oauth").await.unwrap(), 1);
        let again = import(&to, &mut dump.as_slice()).await;
        assert!(matches!(again, Err(DumpError::NotEmpty)));
    }

    #[tokio::test]
    async fn a_bad_line_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let to = SledStore::open(dir.path()).unwrap();
        let err = import(
            &to,
            &mut &b"{\"key\":\"a\",\"value\":1}\n{\"key\":\"b\"}\n"[..],
        )
        .await;
        assert!(matches!(err, Err(DumpError::Line { line: 2, .. })));
        assert!(to.scan_prefix(b"").await.unwrap().is_empty());
    }
}
