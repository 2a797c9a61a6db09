//! `POST /opale/v1/entreprises/{siren}/creances` (scope
//! `creances_transmission`): once the caller is authenticated the body is
//! read and validated (400 naming the field), the chain's rights and quota
//! steps judge the body's `annee`, and the claims are stored durably before
//! the 201; `Idempotency-Key` makes retries safe (same key and body → the
//! same answer; same key, other body → 409).

use crate::chain::{Denial, Reason};
use crate::data::transmitted::{Creance, Recorded, StoredTransmission, Transmissions};
use crate::domain::{ClientId, Environment, Siren, random_uuid};
use crate::respond::{self, Body};
use crate::server::{BodyError, RequestBody};
use bytes::Bytes;
use hyper::{HeaderMap, Response, StatusCode};
use serde::Deserialize;
use serde_json::json;
use std::sync::Arc;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// Largest transmission body (bytes).
pub const MAX_BODY: usize = 256 * 1024;
/// Most claims in one transmission.
pub const MAX_CLAIMS: usize = 1000;
/// The header that makes a transmission's retries safe.
const IDEMPOTENCY_KEY: &str = "idempotency-key";
const TAXES: [&str; 7] = ["IS", "TVA", "CFE", "CVAE", "IR", "TS", "AUTRE"];

/// A transmission body, validated.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Transmission {
    /// The fiscal year the claims belong to (judged by the rights step).
    pub annee: i32,
    creances: Vec<Creance>,
}

/// Reads the body (at most [`MAX_BODY`] bytes) and validates it; 400
/// (910003) naming the field otherwise. Called only once the caller is
/// authenticated: unauthenticated callers learn nothing about validation.
pub async fn read(body: RequestBody) -> Result<(Transmission, Bytes), Denial> {
    let bytes = body.read(MAX_BODY).await.map_err(|e| match e {
        BodyError::TimedOut(_) => Denial::new(Reason::BodyTimeout, e.to_string()),
        _ => Denial::new(Reason::BodyInvalid, format!("body: {e}")),
    })?;
    Ok((parse(&bytes)?, bytes))
}

/// Stores an admitted transmission durably, then answers 201; the same
/// `Idempotency-Key` and body replay the first answer, another body is a
/// conflict (409). A storage failure is 910605, like every storage failure.
pub async fn store(
    transmissions: &Arc<Transmissions>,
    env: Environment,
    (siren, client_id): (&Siren, &ClientId),
    headers: &HeaderMap,
    (tx, bytes): (Transmission, Bytes),
    now: OffsetDateTime,
) -> Result<Response<Body>, Denial> {
    let key = idempotency_key(headers)?;
    let storage_failed = || {
        Denial::new(
            Reason::StorageFailure,
            "the transmission could not be stored",
        )
    };
    let id = random_uuid().map_err(|e| {
        tracing::error!(error = %e, "no transmission id");
        storage_failed()
    })?;
    let stored = StoredTransmission {
        id: id.to_string(),
        client_id: client_id.to_string(),
        siren: siren.to_string(),
        annee: tx.annee,
        recue_le: now.format(&Rfc3339).unwrap_or_default(),
        creances: tx.creances,
    };
    let response = json!({
        "id": stored.id, "siren": stored.siren, "annee": stored.annee,
        "nombre_creances": stored.creances.len(), "recue_le": stored.recue_le,
    })
    .to_string();
    let outcome = transmissions
        .record(env, key.as_deref(), &bytes, &stored, response)
        .await
        .map_err(|e| {
            tracing::error!(error = %e, "storing a transmission failed");
            storage_failed()
        })?;
    match outcome {
        Recorded::New(body) | Recorded::Replay(body) => Ok(respond::bytes(
            StatusCode::CREATED,
            "application/json",
            body,
        )),
        Recorded::Conflict => Err(Denial::new(
            Reason::IdempotencyConflict,
            "this Idempotency-Key was used with another body",
        )),
    }
}

/// The `Idempotency-Key`, if sent: a non-empty visible-ASCII value, 400
/// (910003) naming the header otherwise (an empty key would otherwise be
/// stored and shared by every retry without one).
fn idempotency_key(headers: &HeaderMap) -> Result<Option<String>, Denial> {
    let Some(value) = headers.get(IDEMPOTENCY_KEY) else {
        return Ok(None);
    };
    match value.to_str().map(str::trim) {
        Ok(key) if !key.is_empty() => Ok(Some(key.to_owned())),
        Ok(_) => Err(invalid("Idempotency-Key", "must not be empty")),
        Err(_) => Err(invalid("Idempotency-Key", "must be visible ASCII")),
    }
}

fn invalid(field: &str, message: impl std::fmt::Display) -> Denial {
    Denial::new(Reason::BodyInvalid, format!("{field}: {message}"))
}

fn parse(bytes: &[u8]) -> Result<Transmission, Denial> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let tx: Transmission = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        let field = if path == "." { "body".to_owned() } else { path };
        invalid(&field, e.into_inner())
    })?;
    if !(1990..=2100).contains(&tx.annee) {
        return Err(invalid("annee", "must be a year between 1990 and 2100"));
    }
    if tx.creances.is_empty() || tx.creances.len() > MAX_CLAIMS {
        return Err(invalid(
            "creances",
            format!("between 1 and {MAX_CLAIMS} claims"),
        ));
    }
    for (i, c) in tx.creances.iter().enumerate() {
        check_claim(c).map_err(|(f, m)| invalid(&format!("creances[{i}].{f}"), m))?;
    }
    Ok(tx)
}

fn check_claim(c: &Creance) -> Result<(), (&'static str, String)> {
    let ref_ok = (1..=64).contains(&c.reference.len())
        && c.reference
            .chars()
            .all(|ch| ch.is_ascii_alphanumeric() || "-_/".contains(ch));
    if !ref_ok {
        return Err(("reference", "1 to 64 of A-Z a-z 0-9 - _ /".into()));
    }
    if !valid_amount(&c.montant) {
        return Err((
            "montant",
            format!(
                "{:?} is not a positive amount such as \"1234.56\"",
                c.montant
            ),
        ));
    }
    let fmt = time::macros::format_description!("[year]-[month]-[day]");
    if time::Date::parse(&c.date_echeance, &fmt).is_err() {
        return Err((
            "date_echeance",
            format!("{:?} is not a YYYY-MM-DD date", c.date_echeance),
        ));
    }
    if !TAXES.contains(&c.impot.as_str()) {
        return Err(("impot", format!("must be one of {}", TAXES.join(", "))));
    }
    if c.libelle.as_ref().is_some_and(|l| l.chars().count() > 256) {
        return Err(("libelle", "at most 256 characters".into()));
    }
    Ok(())
}

/// `"1234.56"`: 1–12 digits, a dot, exactly 2 digits, greater than zero.
fn valid_amount(s: &str) -> bool {
    let Some((units, cents)) = s.split_once('.') else {
        return false;
    };
    let digits = |p: &str| p.bytes().all(|b| b.is_ascii_digit());
    (1..=12).contains(&units.len())
        && cents.len() == 2
        && digits(units)
        && digits(cents)
        && s.bytes().any(|b| (b'1'..=b'9').contains(&b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts() {
        assert!(valid_amount("0.01") && valid_amount("1234.56"));
        for bad in [
            "0.00",
            "12",
            "12.5",
            "-1.00",
            "1.234",
            "a.00",
            "1234567890123.00",
        ] {
            assert!(!valid_amount(bad), "{bad}");
        }
    }

    #[test]
    fn body_errors_name_the_field() {
        let e = parse(br#"{"annee":2024,"creances":[{"reference":"A","montant":"1.00","date_echeance":"2024-13-01","impot":"TVA"}]}"#).unwrap_err();
        assert!(
            e.detail.starts_with("creances[0].date_echeance"),
            "{}",
            e.detail
        );
        let e = parse(br#"{"annee":2024,"creances":[{"reference":"A","montant":1}]}"#).unwrap_err();
        assert!(e.detail.starts_with("creances[0].montant"), "{}", e.detail);
        let e = parse(br#"{"annee":"2024"}"#).unwrap_err();
        assert!(e.detail.starts_with("annee"), "{}", e.detail);
    }
}
