//! A DataPass delivery as DataPass sends it (etalab/data_pass
//! `docs/webhooks.md`, `WebhookSerializer`): `{"event", "fired_at",
//! "model_type", "data": {authorization request}}`, or `{"test": true}`
//! when DataPass checks the endpoint. Parsed only once the signature holds;
//! only the fields listed in `docs/datapass.md` are read, the rest (and
//! unknown fields) are ignored. Errors name the JSON field. The environment
//! of an event comes from the signed `data.form_uid`, never from a header.

use crate::datapass::contacts::{self, RawPerson};
use crate::domain::{Environment, Scope, Siren};
use crate::registry::{Contact, DatapassEvent};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use std::collections::BTreeMap;

/// The DataPass forms of OPALE (`data.form_uid`) and their environments.
pub const FORMS: [(&str, Environment); 2] = [
    ("api-opale-sandbox", Environment::Sandbox),
    ("api-opale-production", Environment::Production),
];

/// A delivery whose content is not what DataPass sends: 400 naming `field`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct PayloadError {
    /// Dotted path of the field at fault (`data.organization.siret`).
    pub field: String,
    /// What is wrong.
    pub message: String,
}

impl PayloadError {
    pub(super) fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        PayloadError {
            field: field.into(),
            message: message.into(),
        }
    }
}

/// What a delivery asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Delivery {
    /// `{"test": true}`: DataPass checking the endpoint; nothing is done.
    Test,
    /// `approve`: create or extend the partner and its application.
    Approve(Event, Approval),
    /// `revoke`: suspend the application and revoke its tokens.
    Revoke(Event),
    /// Any other event (`create`, `submit`, …): acknowledged, nothing done.
    Ignored(String),
}

/// What every acted-on event carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// `approve` or `revoke`.
    pub kind: DatapassEvent,
    /// The environment of the signed `data.form_uid`.
    pub environment: Environment,
    /// `fired_at`: when DataPass fired it (Unix seconds).
    pub fired_at: i64,
    /// `model_type`, e.g. `authorization_request/api_opale` (for the trace).
    pub model_type: String,
    /// `data.id`: the authorization request, the key of its application.
    pub request_id: String,
}

/// The content of an approved authorization request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Approval {
    /// The first 9 digits of `data.organization.siret`.
    pub siren: Siren,
    /// `data.organization.name`, if given.
    pub organization: Option<String>,
    /// `data.data.scopes`, sorted, without duplicates.
    pub scopes: Vec<Scope>,
    /// `demandeur` (`data.applicant`) and each `contact_<role>_*` block of
    /// `data.data` (`contacts.rs`); `technique` falls back to the applicant.
    pub contacts: BTreeMap<String, Contact>,
}

#[derive(Deserialize)]
struct RawDelivery {
    #[serde(default)]
    test: bool,
    event: Option<String>,
    fired_at: Option<i64>,
    model_type: Option<String>,
    data: Option<Value>,
}

#[derive(Deserialize)]
struct RawRequest {
    id: RawId,
    form_uid: String,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum RawId {
    Number(u64),
    Text(String),
}

#[derive(Deserialize)]
struct RawApproval {
    organization: RawOrganization,
    #[serde(default)]
    applicant: Option<RawPerson>,
    data: RawForm,
}

#[derive(Deserialize)]
struct RawOrganization {
    siret: String,
    #[serde(default)]
    name: Option<String>,
}

#[derive(Deserialize)]
struct RawForm {
    #[serde(default)]
    scopes: Vec<String>,
    #[serde(flatten)]
    fields: BTreeMap<String, Value>,
}

/// Reads a delivery (its signature already checked).
pub fn parse(body: &[u8]) -> Result<Delivery, PayloadError> {
    let raw: RawDelivery = typed(
        serde_json::from_slice(body)
            .map_err(|e| PayloadError::new("body", format!("not a JSON document: {e}")))?,
        "",
    )?;
    if raw.test {
        return Ok(Delivery::Test);
    }
    let name = raw
        .event
        .ok_or_else(|| PayloadError::new("event", "missing"))?;
    let kind = match name.as_str() {
        "approve" => DatapassEvent::Approve,
        "revoke" => DatapassEvent::Revoke,
        _ => return Ok(Delivery::Ignored(name)),
    };
    let data = raw
        .data
        .ok_or_else(|| PayloadError::new("data", "missing"))?;
    let request: RawRequest = typed(data.clone(), "data.")?;
    let event = Event {
        kind,
        environment: environment(&request.form_uid)?,
        fired_at: raw
            .fired_at
            .ok_or_else(|| PayloadError::new("fired_at", "missing"))?,
        model_type: raw.model_type.unwrap_or_default(),
        request_id: request_id(request.id)?,
    };
    if kind == DatapassEvent::Revoke {
        return Ok(Delivery::Revoke(event));
    }
    let approval = approval(typed(data, "data.")?)?;
    Ok(Delivery::Approve(event, approval))
}

/// `value` into `T`, errors naming the field under `prefix`.
fn typed<T: DeserializeOwned>(value: Value, prefix: &str) -> Result<T, PayloadError> {
    serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        let message = e.into_inner().to_string();
        let missing = message
            .strip_prefix("missing field `")
            .and_then(|rest| rest.split('`').next());
        let field = match (path.as_str(), missing) {
            (".", Some(name)) => format!("{prefix}{name}"),
            (".", None) if prefix.is_empty() => "body".to_owned(),
            (".", None) => prefix.trim_end_matches('.').to_owned(),
            (p, Some(name)) => format!("{prefix}{p}.{name}"),
            (p, None) => format!("{prefix}{p}"),
        };
        PayloadError::new(field, message)
    })
}

/// `data.form_uid`: one of [`FORMS`].
fn environment(form_uid: &str) -> Result<Environment, PayloadError> {
    FORMS
        .iter()
        .find(|(uid, _)| *uid == form_uid)
        .map(|(_, env)| *env)
        .ok_or_else(|| {
            let known: Vec<&str> = FORMS.iter().map(|(uid, _)| *uid).collect();
            let got: String = form_uid.chars().take(64).collect();
            PayloadError::new(
                "data.form_uid",
                format!("{got:?} is not an OPALE form ({})", known.join(", ")),
            )
        })
}

/// `data.id`: a number, or 1 to 64 of `[A-Za-z0-9_-]`.
fn request_id(id: RawId) -> Result<String, PayloadError> {
    let id = match id {
        RawId::Number(n) => n.to_string(),
        RawId::Text(s) => s,
    };
    let ok = (1..=64).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if !ok {
        return Err(PayloadError::new("data.id", "1 to 64 of A-Z a-z 0-9 - _"));
    }
    Ok(id)
}

fn approval(raw: RawApproval) -> Result<Approval, PayloadError> {
    let field = "data.organization.siret";
    let siret = raw.organization.siret.as_str();
    if siret.len() != 14 || !siret.bytes().all(|b| b.is_ascii_digit()) {
        return Err(PayloadError::new(field, "a SIRET has exactly 14 digits"));
    }
    let siren = Siren::parse(&siret[..9])
        .map_err(|e| PayloadError::new(field, format!("its SIREN {}: {e}", &siret[..9])))?;
    let organization = raw
        .organization
        .name
        .map(|n| n.trim().to_owned())
        .filter(|n| !n.is_empty());
    let contacts = contacts::read(&raw.data.fields, raw.applicant.as_ref())?;
    Ok(Approval {
        siren,
        organization,
        scopes: scopes(&raw.data.scopes)?,
        contacts,
    })
}

/// Each scope is an OPALE scope name (`comptes_bancaires`) or its dataset
/// name (`comptes-bancaires`); an unknown one refuses the whole approval.
fn scopes(names: &[String]) -> Result<Vec<Scope>, PayloadError> {
    if names.is_empty() {
        return Err(PayloadError::new("data.data.scopes", "no scope approved"));
    }
    let mut out = names
        .iter()
        .enumerate()
        .map(|(i, name)| {
            Scope::parse(&name.trim().replace('-', "_"))
                .map_err(|e| PayloadError::new(format!("data.data.scopes[{i}]"), e.to_string()))
        })
        .collect::<Result<Vec<_>, _>>()?;
    out.sort();
    out.dedup();
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const APPROVE: &str = include_str!("../../tests/fixtures/datapass/approve.json");
    const REVOKE: &str = include_str!("../../tests/fixtures/datapass/revoke.json");
    const TEST: &str = include_str!("../../tests/fixtures/datapass/test.json");

    fn approve_with(edit: impl FnOnce(&mut Value)) -> Result<Delivery, PayloadError> {
        let mut v: Value = serde_json::from_str(APPROVE).unwrap();
        edit(&mut v);
        parse(&serde_json::to_vec(&v).unwrap())
    }

    #[test]
    fn fixtures_read_as_datapass_sends_them() {
        assert_eq!(parse(TEST.as_bytes()), Ok(Delivery::Test));
        let Ok(Delivery::Approve(event, a)) = parse(APPROVE.as_bytes()) else {
            panic!("approve fixture");
        };
        assert_eq!(event.request_id, "9001");
        assert_eq!(event.kind, DatapassEvent::Approve);
        assert_eq!(event.environment, Environment::Production);
        assert_eq!(event.fired_at, 1_628_253_953);
        assert_eq!(a.siren.as_str(), "980430334");
        assert_eq!(a.organization.as_deref(), Some("UMAD CORP"));
        assert_eq!(a.scopes, vec![Scope::Declarations, Scope::ComptesBancaires]);
        assert_eq!(a.contacts["technique"].email, "tech@example.fr");
        assert_eq!(a.contacts["technique"].nom, "Tech Os");
        assert_eq!(a.contacts["demandeur"].email, "jean.dupont@example.fr");
        let Ok(Delivery::Revoke(event)) = parse(REVOKE.as_bytes()) else {
            panic!("revoke fixture");
        };
        assert_eq!(event.request_id, "9001");
    }

    #[test]
    fn other_events_are_ignored_and_faults_name_the_field() {
        let submit = approve_with(|v| v["event"] = "submit".into());
        assert_eq!(submit, Ok(Delivery::Ignored("submit".into())));
        let field = |r: Result<Delivery, PayloadError>| r.unwrap_err().field;
        let bad_siret =
            approve_with(|v| v["data"]["organization"]["siret"] = "12345678900011".into());
        assert_eq!(field(bad_siret), "data.organization.siret");
        let short = approve_with(|v| v["data"]["organization"]["siret"] = "130025265".into());
        assert_eq!(field(short), "data.organization.siret");
        let scope = approve_with(|v| v["data"]["data"]["scopes"][1] = "cnaf_identite".into());
        assert_eq!(field(scope), "data.data.scopes[1]");
        let none = approve_with(|v| v["data"]["data"]["scopes"] = serde_json::json!([]));
        assert_eq!(field(none), "data.data.scopes");
        let email = approve_with(|v| v["data"]["applicant"]["email"] = "nope".into());
        assert_eq!(field(email), "data.applicant.email");
        let no_id = approve_with(|v| {
            v["data"]
                .as_object_mut()
                .unwrap()
                .remove("id")
                .map(drop)
                .unwrap()
        });
        assert_eq!(field(no_id), "data.id");
        let no_time = approve_with(|v| {
            v.as_object_mut()
                .unwrap()
                .remove("fired_at")
                .map(drop)
                .unwrap()
        });
        assert_eq!(field(no_time), "fired_at");
        assert_eq!(field(parse(b"[1")), "body");
    }

    #[test]
    fn the_environment_is_the_signed_form_uid() {
        let env = |r: Result<Delivery, PayloadError>| match r {
            Ok(Delivery::Approve(event, _)) => event.environment,
            other => panic!("{other:?}"),
        };
        let sandbox = approve_with(|v| v["data"]["form_uid"] = "api-opale-sandbox".into());
        assert_eq!(env(sandbox), Environment::Sandbox);
        for bad in ["api-opale-staging", "API-OPALE-SANDBOX", ""] {
            let r = approve_with(|v| v["data"]["form_uid"] = bad.into());
            assert_eq!(r.unwrap_err().field, "data.form_uid", "{bad}");
        }
        let missing = approve_with(|v| {
            v["data"].as_object_mut().unwrap().remove("form_uid");
        });
        assert_eq!(missing.unwrap_err().field, "data.form_uid");
        // Events that change nothing do not need one.
        let submit = approve_with(|v| {
            v["event"] = "submit".into();
            v["data"]["form_uid"] = "another-form".into();
        });
        assert_eq!(submit, Ok(Delivery::Ignored("submit".into())));
    }
}
