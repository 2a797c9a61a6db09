//! Claims transmitted by partners (`POST …/creances`): stored durably (one
//! atomic, flushed batch with the idempotency record) before the 201, and
//! read back into the sandbox's `GET …/creances` of the transmitting
//! partner's applications only. The sandbox's transmissions are also held
//! in memory, by (SIREN, year), so that a read never waits on the disk or
//! on PostgreSQL (docs/contract.md §10: no serving thread blocks on the
//! store); production's are stored only (never read back).

use crate::domain::{Environment, Siren};
use crate::store::{Fetched, Read, Step, Store, StoreError, Write};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// One transmitted claim, as validated.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Creance {
    /// The partner's reference (1–64 of `A-Z a-z 0-9 - _ /`).
    pub reference: String,
    /// Amount in euros, `"1234.56"` (two decimals, > 0).
    pub montant: String,
    /// Due date, `YYYY-MM-DD`.
    pub date_echeance: String,
    /// Tax concerned: IS, TVA, CFE, CVAE, IR, TS, AUTRE.
    pub impot: String,
    /// Free text (≤ 256 characters).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub libelle: Option<String>,
}

/// A stored transmission.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StoredTransmission {
    /// Assigned id (UUID).
    pub id: String,
    /// The transmitting application.
    pub client_id: String,
    /// The company.
    pub siren: String,
    /// Fiscal year.
    pub annee: i32,
    /// Reception time (RFC 3339).
    pub recue_le: String,
    /// The claims.
    pub creances: Vec<Creance>,
}

#[derive(Debug, Serialize, Deserialize)]
struct IdempotencyRecord {
    body_sha256: String,
    response: String,
}

/// What happened to a transmission.
#[derive(Debug, PartialEq, Eq)]
pub enum Recorded {
    /// Stored now; the response body to send (201).
    New(String),
    /// Same key and body as before: the original response (201).
    Replay(String),
    /// Same key, another body (409).
    Conflict,
}

/// The sandbox's transmissions by (SIREN, year), in the order stored.
type Copy = HashMap<(Siren, i32), Vec<StoredTransmission>>;

/// The transmissions store.
pub struct Transmissions {
    store: Arc<dyn Store>,
    /// What the sandbox's reads merge, as the store holds it.
    sandbox: Mutex<Copy>,
    /// Serialises this node's writers (held across the store's awaits).
    writer: tokio::sync::Mutex<()>,
}

fn tx_prefix(env: Environment, siren: &Siren, year: i32) -> String {
    format!("tx/{env}/{siren}/{year}/")
}

impl Transmissions {
    /// Loads the sandbox's transmissions.
    pub async fn open(store: Arc<dyn Store>) -> Result<Self, StoreError> {
        Ok(Transmissions {
            sandbox: Mutex::new(sandbox_copy(&*store).await?),
            store,
            writer: tokio::sync::Mutex::new(()),
        })
    }

    /// Reads the sandbox's transmissions again: another node transmitted
    /// (docs/contract.md §10).
    pub async fn reload(&self) -> Result<(), StoreError> {
        let copy = sandbox_copy(&*self.store).await?;
        *self.copy() = copy;
        Ok(())
    }

    fn copy(&self) -> std::sync::MutexGuard<'_, Copy> {
        self.sandbox.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Stores `tx` (answering `response`) unless `idempotency_key` was
    /// already used by `client_id`: then replays or refuses. Durable when
    /// it returns `New`.
    pub async fn record(
        &self,
        env: Environment,
        idempotency_key: Option<&str>,
        body: &[u8],
        tx: &StoredTransmission,
        response: String,
    ) -> Result<Recorded, StoreError> {
        let _guard = self.writer.lock().await;
        let body_sha256 = hex::encode(Sha256::digest(body));
        let idem_key = idempotency_key.map(|k| {
            format!(
                "idem/{env}/{}/{}",
                tx.client_id,
                hex::encode(Sha256::digest(k.as_bytes()))
            )
        });
        let siren = Siren::parse(&tx.siren).map_err(StoreError::backend)?;
        let mut writes = vec![Write::Put(
            format!("{}{}", tx_prefix(env, &siren, tx.annee), tx.id).into_bytes(),
            to_json(tx)?,
        )];
        match idem_key {
            None => self.store.commit(writes).await?,
            Some(key) => {
                let rec = IdempotencyRecord {
                    body_sha256,
                    response: response.clone(),
                };
                writes.push(Write::Put(key.clone().into_bytes(), to_json(&rec)?));
                if let Some(earlier) = self.claim(&key, &rec.body_sha256, writes).await? {
                    return Ok(earlier);
                }
            }
        }
        if env == Environment::Sandbox {
            self.copy()
                .entry((siren, tx.annee))
                .or_default()
                .push(tx.clone());
        }
        Ok(Recorded::New(response))
    }

    /// Commits `writes` unless the idempotency record `key` exists: then
    /// returns its replay (same body digest) or a conflict. Check and write
    /// run under the store's write lock — cluster-wide on PostgreSQL — so
    /// two nodes given the same key at once store one transmission.
    async fn claim(
        &self,
        key: &str,
        body_sha256: &str,
        writes: Vec<Write>,
    ) -> Result<Option<Recorded>, StoreError> {
        let mut earlier = Ok(None);
        let mut writes = Some(writes);
        let mut transaction = |_, fetched: &Fetched| {
            if fetched.is_empty() {
                return Step::Read(vec![Read::Get(key.as_bytes().to_vec())]);
            }
            let Some(prev) = fetched.value(0) else {
                return writes.take().map_or(Step::Nothing, Step::Commit);
            };
            earlier = serde_json::from_slice::<IdempotencyRecord>(prev)
                .map(|prev| {
                    Some(if prev.body_sha256 == body_sha256 {
                        Recorded::Replay(prev.response)
                    } else {
                        Recorded::Conflict
                    })
                })
                .map_err(|e| StoreError::backend_in("idempotency record", e));
            Step::Nothing
        };
        self.store
            .transact(IDEMPOTENCY_AREA, &mut transaction)
            .await?;
        earlier
    }

    /// Adds `"transmises": [...]` to a sandbox `creances` document when
    /// claims the reader may see were transmitted for it; returns the bytes
    /// unchanged otherwise. `visible` says whether the application that
    /// transmitted (its client id) belongs to the reader's partner (docs/contract.md
    /// §8): another partner's claims, and even whether there are any, stay
    /// hidden.
    pub fn merge_into(
        &self,
        (env, siren, year): (Environment, &Siren, i32),
        visible: impl Fn(&str) -> bool,
        bytes: Vec<u8>,
    ) -> Vec<u8> {
        if env != Environment::Sandbox {
            return bytes;
        }
        let mut txs: Vec<StoredTransmission> = match self.copy().get(&(*siren, year)) {
            Some(stored) => stored
                .iter()
                .filter(|tx| visible(&tx.client_id))
                .cloned()
                .collect(),
            None => return bytes,
        };
        if txs.is_empty() {
            return bytes;
        }
        txs.sort_by(|a, b| a.recue_le.cmp(&b.recue_le).then_with(|| a.id.cmp(&b.id)));
        with_transmitted(&bytes, &txs).unwrap_or(bytes)
    }
}

/// Every sandbox transmission in `store`, by (SIREN, year). A record that
/// does not decode is skipped and logged (it was written by this code, so
/// that is a bug or a damaged store, not a reason to refuse to start).
async fn sandbox_copy(store: &dyn Store) -> Result<Copy, StoreError> {
    let prefix = format!("tx/{}/", Environment::Sandbox);
    let mut copy = Copy::new();
    for (k, v) in store.scan_prefix(prefix.as_bytes()).await? {
        match serde_json::from_slice::<StoredTransmission>(&v) {
            Ok(tx) => match Siren::parse(&tx.siren) {
                Ok(siren) => copy.entry((siren, tx.annee)).or_default().push(tx),
                Err(e) => {
                    tracing::error!(key = %String::from_utf8_lossy(&k), error = %e, "stored transmission skipped")
                }
            },
            Err(e) => {
                tracing::error!(key = %String::from_utf8_lossy(&k), error = %e, "stored transmission skipped")
            }
        }
    }
    Ok(copy)
}

/// A sandbox `creances` document with the transmitted claims added. The
/// generated list stays a [`RawValue`] (its bytes untouched) and the keys
/// keep the generator's order: `siren`, `annee`, `creances`, `transmises`.
#[derive(Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct CreancesDocument<'a> {
    siren: &'a str,
    annee: i32,
    #[serde(borrow)]
    creances: &'a RawValue,
    #[serde(default)]
    transmises: Vec<StoredTransmission>,
}

/// `document` (the generated `creances` body) with `transmises` set to
/// `txs`; `None` if it is not such a document (it is then served as is).
fn with_transmitted(document: &[u8], txs: &[StoredTransmission]) -> Option<Vec<u8>> {
    let mut parsed: CreancesDocument<'_> = serde_json::from_slice(document)
        .map_err(|e| tracing::error!(error = %e, "unexpected sandbox creances document"))
        .ok()?;
    parsed.transmises = txs.to_vec();
    serde_json::to_vec(&parsed).ok()
}

fn to_json<T: Serialize>(value: &T) -> Result<Vec<u8>, StoreError> {
    serde_json::to_vec(value).map_err(StoreError::backend)
}

/// The area of idempotency records (`idem/…`): a claim holds its lock.
const IDEMPOTENCY_AREA: &str = "idem";

/// The store area of the sandbox's transmitted claims: the first segment of its keys.
pub const AREA: &str = "tx";

#[async_trait::async_trait]
impl crate::store::Keyspace for Transmissions {
    fn area(&self) -> &'static str {
        AREA
    }

    async fn reload(&self) -> Result<(), crate::store::keyspace::ReloadError> {
        Transmissions::reload(self).await.map_err(Into::into)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::sandbox::{SandboxAnswer, generate};
    use crate::domain::Dataset;

    fn claim(id: &str, libelle: Option<&str>) -> StoredTransmission {
        StoredTransmission {
            id: id.into(),
            client_id: "c1".into(),
            siren: "732829320".into(),
            annee: 2024,
            recue_le: "2024-05-02T10:00:00Z".into(),
            creances: vec![Creance {
                reference: "CR-2024-001".into(),
                montant: "1234.56".into(),
                date_echeance: "2024-06-30".into(),
                impot: "TVA".into(),
                libelle: libelle.map(str::to_owned),
            }],
        }
    }

    /// Regression: the serde merge must give the bytes the former splice
    /// gave (`,"transmises":[…]` before the generated document's last `}`).
    #[test]
    fn merged_document_is_the_generated_bytes_plus_transmises() {
        let siren = Siren::parse("732829320").unwrap();
        let SandboxAnswer::Data(doc) = generate(&siren, Dataset::Creances, 2024) else {
            panic!("the sandbox generates creances for 2024");
        };
        let txs = [claim("a", None), claim("b", Some("« é \" \\ »"))];
        let mut expected = doc[..doc.len() - 1].to_vec();
        expected.extend_from_slice(b",\"transmises\":");
        expected.extend_from_slice(&serde_json::to_vec(&txs).unwrap());
        expected.push(b'}');
        assert_eq!(with_transmitted(&doc, &txs).unwrap(), expected);
    }

    #[test]
    fn a_document_of_another_shape_is_left_alone() {
        assert!(with_transmitted(br#"{"siren":"1","annee":2024}"#, &[]).is_none());
        assert!(with_transmitted(b"not json", &[]).is_none());
    }
}
