//! The admin API's request bodies and query strings, one definition for both
//! sides: the server (`api.rs` and its handlers) deserializes them, the
//! command line (`cli.rs`) builds them and serializes them. A field renamed
//! or added here changes both at once, so the two cannot drift apart.
//!
//! The registry's bodies (partners, applications, grants, contacts) are
//! defined beside the operations that validate them (`registry::ops`) and
//! re-exported here; the command line's own grammars (`SCOPE:YEARS`,
//! `ROLE:NAME:EMAIL[:PHONE]`) turn text into these values, the years
//! through the registry's single year parser ([`YearSpec::parse_list`]).

pub use crate::availability::Maintenance;
pub use crate::registry::ops::{
    ApplicationPatch, NewApplication, NewContact, NewGrant, NewPartner, PartnerPatch, RotatedSecret,
};

use crate::registry::{Application, CertificateRecord, Partner};

use crate::registry::YearSpec;
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// What the command line encodes in a query value or a path segment:
/// everything but RFC 3986's unreserved characters (so `+`, `&`, `=`, `/`,
/// `%`, spaces and non-ASCII arrive as sent).
const COMPONENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// A command-line argument that does not follow its grammar.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SyntaxError {
    /// `--grant` is not `SCOPE:YEARS`.
    #[error("--grant {0:?}: expected SCOPE:2022,2023 or SCOPE:2020-2023 or SCOPE:N-3..N-1")]
    Grant(String),
    /// `--contact` is not `ROLE:NAME:EMAIL[:PHONE]`.
    #[error("--contact {0:?}: expected ROLE:NAME:EMAIL[:PHONE]")]
    Contact(String),
}

/// `GET /admin/v1/partners/{id}`: the partner and its applications,
/// oldest first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PartnerView {
    /// The partner.
    #[serde(flatten)]
    pub partner: Partner,
    /// Its applications.
    pub applications: Vec<Application>,
}

/// `GET /admin/v1/applications/{client_id}`: the application and its
/// certificates.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ApplicationView {
    /// The application.
    #[serde(flatten)]
    pub application: Application,
    /// Its certificates, active and revoked.
    pub certificates: Vec<CertificateRecord>,
}

/// `POST /admin/v1/applications` → 201: the application and its client
/// secret, shown this once.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CreatedApplicationView {
    /// The stored application.
    #[serde(flatten)]
    pub application: Application,
    /// The client secret in clear (never stored).
    pub client_secret: String,
}

/// `POST /admin/v1/applications/{client_id}/certificates` → 201: the
/// record and the certificate, PEM.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredCertificate {
    /// The stored record.
    #[serde(flatten)]
    pub record: CertificateRecord,
    /// The certificate, PEM (what `cert issue --out` writes).
    pub certificate: String,
}

/// `POST /admin/v1/applications/{client_id}/certificates`: exactly one of
/// `csr` (to be signed) or `certificate` (to be registered).
#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CertificateRequest {
    /// A PKCS #10 request, PEM.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub csr: Option<String>,
    /// A certificate (optionally followed by intermediates), PEM.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub certificate: Option<String>,
}

/// `POST /admin/v1/admins`
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdminRequest {
    /// The admin's client certificate, PEM, issued by the root CA.
    pub certificate: String,
}

/// The body of `POST /admin/v1/keys/rotate` (optional): which
/// environment's key the answering node replaces; both when absent.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyRotation {
    /// `sandbox` or `production`; absent: both.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub environment: Option<crate::domain::Environment>,
}

/// `POST /admin/v1/trace/purge`
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PurgeRequest {
    /// Delete records strictly older than this RFC 3339 UTC time.
    pub before: String,
}

/// The body of `POST /admin/v1/trace/verify` (optional): a checkpoint
/// saved earlier, which the trail must still extend.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VerifyRequest {
    /// A signed checkpoint (C2SP signed-note text) from
    /// `GET /admin/v1/trace/checkpoint`.
    #[serde(default)]
    pub checkpoint: Option<String>,
}

/// The query of `GET /admin/v1/trace`, `/trace/export` and `/stats`: each
/// parameter as sent (the server validates them into an audit filter).
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct TraceQuery {
    /// Application.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    /// Partner.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub partner_id: Option<String>,
    /// Older name of `partner_id`, read when that one is absent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub partner: Option<String>,
    /// `admitted` / `denied`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub decision: Option<String>,
    /// Failing control.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub control: Option<String>,
    /// Error code.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    /// Correlation id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub correlation_id: Option<String>,
    /// `sandbox` / `production` / `admin`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub environment: Option<String>,
    /// From this time (RFC 3339, inclusive).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    /// Until this time (RFC 3339, exclusive).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub to: Option<String>,
    /// Only records with a smaller record number (next page).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub before: Option<String>,
    /// Page size of `GET /admin/v1/trace` (1..=1000, default 100).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub limit: Option<String>,
}

impl TraceQuery {
    /// Reads a query string (percent-decoded; the first of repeated
    /// parameters wins; unknown parameters are ignored).
    pub fn parse(query: &str) -> Self {
        from_query(query)
    }

    /// The query string (without `?`), every value percent-encoded.
    pub fn to_query(&self) -> String {
        to_query(self)
    }
}

/// The query of `GET /admin/v1/applications`.
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ApplicationQuery {
    /// Only this partner's applications.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub partner_id: Option<String>,
}

impl ApplicationQuery {
    /// Reads a query string (as [`TraceQuery::parse`]).
    pub fn parse(query: &str) -> Self {
        from_query(query)
    }

    /// The query string (without `?`), every value percent-encoded.
    pub fn to_query(&self) -> String {
        to_query(self)
    }
}

/// A query of optional string parameters, read by their serde names.
fn from_query<T: DeserializeOwned + Default>(query: &str) -> T {
    let mut map = Map::new();
    for (k, v) in url::form_urlencoded::parse(query.as_bytes()) {
        map.entry(k.into_owned())
            .or_insert_with(|| Value::String(v.into_owned()));
    }
    // Every field is an optional string and keys are unique: this cannot
    // fail, and an empty query is the honest fallback.
    serde_json::from_value(Value::Object(map)).unwrap_or_default()
}

/// The query string of a struct of optional string parameters.
fn to_query<T: Serialize>(value: &T) -> String {
    let Ok(Value::Object(map)) = serde_json::to_value(value) else {
        return String::new();
    };
    let pairs: Vec<(String, String)> = map
        .into_iter()
        .filter_map(|(k, v)| Some((k, v.as_str()?.to_owned())))
        .collect();
    query_string(&pairs)
}

/// `k=v&k2=v2`, each value percent-encoded (names are plain identifiers).
fn query_string<K: AsRef<str>, V: AsRef<str>>(pairs: &[(K, V)]) -> String {
    pairs
        .iter()
        .map(|(k, v)| format!("{}={}", k.as_ref(), encode(v.as_ref())))
        .collect::<Vec<_>>()
        .join("&")
}

/// A value percent-encoded for a query or a path segment.
pub fn encode(value: &str) -> String {
    utf8_percent_encode(value, COMPONENT).to_string()
}

/// `declarations:2022,2023`, `declarations:2020-2023`, `declarations:N-3..N-1`.
pub fn parse_grant(s: &str) -> Result<NewGrant, SyntaxError> {
    let bad = || SyntaxError::Grant(s.to_owned());
    let (scope, years) = s.split_once(':').ok_or_else(bad)?;
    Ok(NewGrant {
        scope: scope.to_owned(),
        years: YearSpec::parse_list(years).ok_or_else(bad)?,
    })
}

/// `technique:Jeanne Dupont:jd@example.fr[:0102030405]` → role and contact.
pub fn parse_contact(s: &str) -> Result<(String, NewContact), SyntaxError> {
    let contact = |nom: &str, email: &str, telephone: Option<&str>| NewContact {
        nom: nom.to_owned(),
        email: email.to_owned(),
        telephone: telephone.map(str::to_owned),
    };
    match s.splitn(4, ':').collect::<Vec<_>>().as_slice() {
        [role, nom, email] => Ok(((*role).to_owned(), contact(nom, email, None))),
        [role, nom, email, tel] => Ok(((*role).to_owned(), contact(nom, email, Some(tel)))),
        _ => Err(SyntaxError::Contact(s.to_owned())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn grant_syntax_goes_through_the_registry_year_parser() {
        let g = parse_grant("declarations:2020-2022,2024,N-3..N-1").unwrap();
        assert_eq!(
            serde_json::to_value(&g).unwrap(),
            json!({"scope": "declarations", "years": ["2020..2022", 2024, "N-3..N-1"]})
        );
        for bad in [
            "declarations",
            "declarations:2024-2020",
            "declarations:20x4",
        ] {
            assert_eq!(
                parse_grant(bad).unwrap_err(),
                SyntaxError::Grant(bad.into())
            );
        }
    }

    #[test]
    fn contact_syntax() {
        let (role, c) = parse_contact("technique:Jeanne Dupont:jd@example.fr:0102030405").unwrap();
        assert_eq!(role, "technique");
        assert_eq!(c.telephone.as_deref(), Some("0102030405"));
        assert!(parse_contact("technique:Jeanne").is_err());
    }

    #[test]
    fn special_characters_survive_the_query_round_trip() {
        let value = "a&b c+d=é/ü%20?#".to_owned();
        let q = TraceQuery {
            client_id: Some(value.clone()),
            decision: Some("denied".into()),
            limit: Some("5".into()),
            ..TraceQuery::default()
        };
        let text = q.to_query();
        assert!(text.is_ascii() && !text.contains(' ') && !text.contains('+'));
        assert_eq!(TraceQuery::parse(&text), q);
        // The server's reading of a raw query keeps the first value.
        let parsed = TraceQuery::parse("client_id=x&client_id=y&other=1&partner=p");
        assert_eq!(parsed.client_id.as_deref(), Some("x"));
        assert_eq!(parsed.partner.as_deref(), Some("p"));
    }
}
