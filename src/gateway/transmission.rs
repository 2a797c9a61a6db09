//! `POST /opale/v1/entreprises/{siren}/creances` (scope
//! `creances_transmission`): the body is validated (400 naming the field),
//! the chain runs for the body's `annee`, the claims are stored durably
//! before the 201, and `Idempotency-Key` makes retries safe (same key and
//! body → the same answer; same key, other body → 409).

use super::Failure;
use crate::app::App;
use crate::audit::TraceEvent;
use crate::chain::{self, Call, Denial, Reason};
use crate::data::transmitted::{Creance, Recorded, StoredTransmission};
use crate::domain::{Environment, Scope, Siren, random_uuid};
use crate::respond::{self, Body};
use crate::tls::ConnInfo;
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use serde::Deserialize;
use serde_json::json;
use std::sync::Arc;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// Largest transmission body (bytes).
pub const MAX_BODY: usize = 256 * 1024;
/// Most claims in one transmission.
pub const MAX_CLAIMS: usize = 1000;
const TAXES: [&str; 7] = ["IS", "TVA", "CFE", "CVAE", "IR", "TS", "AUTRE"];

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Transmission {
    annee: i32,
    creances: Vec<Creance>,
}

/// Validates, runs the chain, stores, answers 201.
pub async fn post(
    app: &Arc<App>,
    conn: &ConnInfo,
    env: Environment,
    req: Request<Incoming>,
    siren: Siren,
    correlation: &str,
    trace: &mut TraceEvent,
) -> Result<Response<Body>, Failure> {
    let cid = Some(correlation);
    let (parts, body) = req.into_parts();
    let now = OffsetDateTime::now_utc();
    let mut call = Call {
        conn,
        env,
        headers: &parts.headers,
        query: parts.uri.query(),
        scope: Scope::CreancesTransmission,
        year: 0,
    };
    // Steps 1–4 before the body is even read: unauthenticated callers learn
    // nothing about validation.
    let snapshot = app.registry.snapshot();
    let who = chain::authenticate(app, &snapshot, &call, now)
        .map_err(|r| Failure::refused(r, correlation))?;
    let bytes = Limited::new(body, MAX_BODY).collect().await.map_err(|_| {
        let d = Denial::new(
            Reason::BodyInvalid,
            format!("body: larger than {MAX_BODY} bytes"),
        );
        Failure::new(d, cid)
    })?;
    let bytes = bytes.to_bytes();
    let application = who.application;
    let tx = parse(&bytes)
        .map_err(|d| Failure::refused(chain::refused(app, env, application, d), correlation))?;
    call.year = tx.annee;
    trace.year = Some(tx.annee);
    let admitted =
        chain::authorize(app, who, &call, now).map_err(|r| Failure::refused(r, correlation))?;
    let key = parts
        .headers
        .get("idempotency-key")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let id = random_uuid().map_err(|e| {
        tracing::error!(error = %e, "no transmission id");
        Failure::admitted(
            Denial::new(
                Reason::UpstreamFailure,
                "the transmission could not be stored",
            ),
            correlation,
            admitted.quota,
        )
    })?;
    let stored = StoredTransmission {
        id: id.to_string(),
        client_id: admitted.application.client_id.to_string(),
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
    let quota = admitted.quota;
    let fail = |denial| Failure::admitted(denial, correlation, quota);
    let app2 = app.clone();
    let outcome = tokio::task::spawn_blocking(move || {
        app2.transmissions
            .record(env, key.as_deref(), &bytes, &stored, response)
    })
    .await
    .map_err(|_| fail(Denial::new(Reason::UpstreamFailure, "storage interrupted")))?
    .map_err(|e| {
        tracing::error!(error = %e, "storing a transmission failed");
        fail(Denial::new(
            Reason::UpstreamFailure,
            "the transmission could not be stored",
        ))
    })?;
    let mut resp = match outcome {
        Recorded::New(body) | Recorded::Replay(body) => {
            respond::bytes(StatusCode::CREATED, "application/json", body)
        }
        Recorded::Conflict => {
            return Err(fail(Denial::new(
                Reason::IdempotencyConflict,
                "this Idempotency-Key was used with another body",
            )));
        }
    };
    chain::rate_limit_headers(resp.headers_mut(), &quota);
    Ok(resp)
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
