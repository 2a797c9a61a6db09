//! One trace record (docs/contract.md §7): what happened to one request,
//! or what the gateway did by itself. Its fields are typed; text appears
//! only at the serde edge, in exactly the form records have always been
//! written in (the trail's hash chain covers the stored bytes, see
//! `crate::trail`, so every record written before still reads back).

use super::action::{ActionKind, Actor, AdminAction, SystemAction};
use super::address::{self, Address};
use super::code::Code;
use super::stamp::{self, millis};
use crate::chain::{Control, Denial};
use crate::domain::{ClientId, Dataset, PartnerId, Plane, Siren, Thumbprint};
use crate::registry::Application;
use hyper::Method;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use time::OffsetDateTime;

/// Longest method kept (characters; a method is an ASCII token).
const MAX_METHOD: usize = 32;
/// Longest path kept (characters).
const MAX_PATH: usize = 512;
/// Longest detail kept (characters).
const MAX_DETAIL: usize = 512;

/// Whether a request was served.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Decision {
    /// Served (every control passed).
    #[default]
    Admitted,
    /// Refused by a control, or failed.
    Denied,
}

impl Decision {
    /// `admitted` or `denied`.
    pub fn as_str(self) -> &'static str {
        match self {
            Decision::Admitted => "admitted",
            Decision::Denied => "denied",
        }
    }
}

impl std::fmt::Display for Decision {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What happened to one request, or what the gateway did by itself. Never
/// a token, a secret, a key or data.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TraceEvent {
    /// When the request arrived (or the system action happened): UTC, cut
    /// to the millisecond ([`super::millis`]); written under `time` as
    /// `2026-11-23T20:17:15.929Z`.
    #[serde(rename = "time", with = "stamp::text")]
    pub at: OffsetDateTime,
    /// The listener: `sandbox`, `production` or `admin`.
    pub plane: Plane,
    /// The caller's X-Correlation-ID (or the one assigned).
    pub correlation_id: Option<String>,
    /// The application, once known (always a registered application's id).
    pub client_id: Option<ClientId>,
    /// Its partner.
    pub partner_id: Option<PartnerId>,
    /// Thumbprint of the presented client certificate.
    pub thumbprint: Option<Thumbprint>,
    /// Where the caller was: the socket peer (canonical: an IPv4-mapped
    /// address as IPv4), the source a summary counts, or `None` for a
    /// system action without a caller (written `""`).
    #[serde(with = "address::text")]
    pub ip: Option<Address>,
    /// HTTP method, at most 32 characters (absent from system actions, which
    /// are no HTTP exchange; records written before system actions were
    /// typed may name an invented one, `NOTIFY`, `EVENT`, `SIGHUP`, which
    /// read back as the extension methods they are spelt as).
    #[serde(default, skip_serializing_if = "Option::is_none", with = "method")]
    pub method: Option<Method>,
    /// Path without the query string, as the caller sent it (at most 512
    /// characters; absent from system actions). Kept as text: it is what
    /// was asked, valid or not, and only ever displayed.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub path: String,
    /// SIREN of a data call. Only ever set once the path's segment passed
    /// validation (a malformed one is refused by `910001`, the segment
    /// then only quoted in `detail`), so every record holds a valid one.
    pub siren: Option<Siren>,
    /// Dataset of a data call.
    pub dataset: Option<Dataset>,
    /// Fiscal year of a data call.
    pub year: Option<i32>,
    /// `admitted` or `denied`.
    pub decision: Decision,
    /// The failing control, if denied.
    pub control: Option<Control>,
    /// The error code, if denied.
    pub code: Option<Code>,
    /// HTTP status sent.
    pub status: u16,
    /// Time spent in the gateway, microseconds (excluding this record).
    pub latency_us: u64,
    /// Why it was denied (the denial's detail).
    pub detail: Option<String>,
    /// For admin calls and system actions: what changed.
    pub admin: Option<AdminAction>,
    /// Who acted, when it is not a partner's call: an admin, DataPass, the
    /// notifier, the abuse detector, a signal, the node. Absent from
    /// records written before it existed (their actor is in `admin`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actor: Option<Actor>,
    /// For a system action (no HTTP exchange): what was done to what.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action: Option<SystemAction>,
    /// For a summary of refusals before identification: what it counts
    /// (`audit/unidentified.rs`). Absent from every other record, so
    /// records written before it existed read and verify as they were.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub summary: Option<Summary>,
}

/// One source address's refusals before identification in one minute,
/// past the ones traced one by one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Summary {
    /// Start of the minute (written like the record's time).
    #[serde(with = "stamp::text")]
    pub minute: OffsetDateTime,
    /// Refusals counted in that minute, traced one by one or not.
    pub refused: u64,
    /// Of those, the ones only counted here.
    pub summarised: u64,
    /// The summarised refusals by code, keyed by the code's written form
    /// (text keys: their order is the written order of the map).
    pub codes: std::collections::BTreeMap<String, u64>,
    /// The summarised refusals by HTTP status.
    pub statuses: std::collections::BTreeMap<u16, u64>,
}

impl Default for TraceEvent {
    /// An empty admin-plane record at the Unix epoch (for tests and
    /// builders).
    fn default() -> Self {
        TraceEvent::empty(Plane::Admin, OffsetDateTime::UNIX_EPOCH)
    }
}

impl TraceEvent {
    /// A record for a request arriving on `plane` at `at` (no query
    /// string: it may carry anything, including a misplaced token).
    pub fn arriving(plane: Plane, at: OffsetDateTime, method: &Method, path: &str) -> Self {
        let mut event = TraceEvent::empty(plane, at);
        event.method = Some(bounded(method));
        event.path = path.chars().take(MAX_PATH).collect();
        event
    }

    /// The record of a system action by `actor` at `at`, on the admin
    /// plane: no method, no path, no status, no caller address. The one
    /// builder of a system action.
    pub fn system(at: OffsetDateTime, actor: Actor, kind: ActionKind, target: String) -> Self {
        let mut event = TraceEvent::empty(Plane::Admin, at);
        event.actor = Some(actor);
        event.action = Some(SystemAction { kind, target });
        event
    }

    /// Names who acted through the admin listener (an admin by its
    /// certificate, DataPass by its signature; `None` when nobody could be
    /// named) and what the call changed.
    pub fn acted(&mut self, actor: Option<Actor>, before: Value, after: Value) {
        self.actor = actor;
        self.admin = Some(AdminAction::change(before, after));
    }

    /// Who acted, also for records written before [`Actor`] existed.
    pub fn actor_name(&self) -> String {
        match (&self.actor, &self.admin) {
            (Some(actor), _) => actor.to_string(),
            (None, Some(a)) => a.actor_subject.clone(),
            (None, None) => String::new(),
        }
    }

    /// Marks the record as refused by `denial` (the earliest control).
    pub fn refuse(&mut self, denial: &Denial) {
        self.refuse_with(
            denial.reason.control(),
            Code::Catalogue(denial.reason),
            &denial.detail,
        );
    }

    /// Marks the record as refused by `control` with `code`.
    pub fn refuse_with(&mut self, control: Control, code: Code, detail: &str) {
        self.decision = Decision::Denied;
        self.control = Some(control);
        self.code = Some(code);
        self.detail = Some(detail.chars().take(MAX_DETAIL).collect());
    }

    /// Names the caller's application and partner.
    pub fn caller(&mut self, application: &Application) {
        self.client_id = Some(application.client_id.clone());
        self.partner_id = Some(application.partner_id.clone());
    }

    /// A record of `plane` at `at` with nothing else known yet.
    fn empty(plane: Plane, at: OffsetDateTime) -> Self {
        TraceEvent {
            at: millis(at),
            plane,
            correlation_id: None,
            client_id: None,
            partner_id: None,
            thumbprint: None,
            ip: None,
            method: None,
            path: String::new(),
            siren: None,
            dataset: None,
            year: None,
            decision: Decision::Admitted,
            control: None,
            code: None,
            status: 0,
            latency_us: 0,
            detail: None,
            admin: None,
            actor: None,
            action: None,
            summary: None,
        }
    }
}

/// `method`, or its first [`MAX_METHOD`] characters (a method is an ASCII
/// token, so any prefix is one). A standard method is copied without
/// allocating.
fn bounded(method: &Method) -> Method {
    let text = method.as_str().as_bytes();
    match text.get(..MAX_METHOD) {
        Some(prefix) if text.len() > MAX_METHOD => {
            Method::from_bytes(prefix).unwrap_or_else(|_| method.clone())
        }
        _ => method.clone(),
    }
}

/// A record as read back from the trail: its position and its event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TraceRecord {
    /// Position in the trail, from 1, no gaps (the chain lives in the
    /// trail's frames and checkpoints, see `crate::trail`).
    pub seq: u64,
    /// The node whose chain holds it (in a cluster; `seq` is then a
    /// cluster-wide listing position).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
    /// The event.
    #[serde(flatten)]
    pub event: TraceEvent,
}

/// Serde of a record's method: its name; `""` (never written by this
/// version, which leaves the field out) reads as none.
mod method {
    use hyper::Method;
    use serde::de::{self, Deserializer, Visitor};
    use serde::ser::Serializer;
    use std::fmt;

    /// Writes the method's name (called for `Some` only: `None` is skipped).
    pub fn serialize<S: Serializer>(m: &Option<Method>, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(m.as_ref().map_or("", Method::as_str))
    }

    /// Reads a method name (any HTTP token), `""` as none.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Method>, D::Error> {
        d.deserialize_str(MethodVisitor)
    }

    struct MethodVisitor;

    impl Visitor<'_> for MethodVisitor {
        type Value = Option<Method>;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("an HTTP method")
        }

        fn visit_str<E: de::Error>(self, v: &str) -> Result<Option<Method>, E> {
            if v.is_empty() {
                return Ok(None);
            }
            Method::from_bytes(v.as_bytes())
                .map(Some)
                .map_err(|_| E::custom(format!("not an HTTP method: {v:?}")))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chain::Reason;
    use crate::domain::Environment;

    fn at(text: &str) -> OffsetDateTime {
        stamp::parse_time(text).unwrap()
    }

    #[test]
    fn typed_fields_are_written_as_before() {
        let mut e = TraceEvent::arriving(
            Plane::Env(Environment::Sandbox),
            at("2026-11-23T20:17:15.000Z"),
            &Method::GET,
            "/x",
        );
        e.dataset = Some(Dataset::ComptesBancaires);
        e.siren = Some(Siren::parse("732829320").unwrap());
        e.ip = Some(Address::Ip("::ffff:192.0.2.1".parse().unwrap()));
        e.refuse(&Denial::new(Reason::YearNotGranted, "2019"));
        let v = serde_json::to_value(&e).unwrap();
        assert_eq!(v["time"], "2026-11-23T20:17:15.000Z");
        assert_eq!(v["plane"], "sandbox");
        assert_eq!(v["ip"], "::ffff:192.0.2.1");
        assert_eq!(v["method"], "GET");
        assert_eq!(v["siren"], "732829320");
        assert_eq!(v["dataset"], "comptes-bancaires");
        assert_eq!(v["decision"], "denied");
        assert_eq!(v["control"], "rights");
        assert_eq!(v["code"], "910500");
        let back: TraceEvent = serde_json::from_value(v).unwrap();
        assert_eq!(back, e);
    }

    #[test]
    fn a_system_action_has_no_method_no_path_and_an_empty_ip() {
        let e = TraceEvent::system(
            at("2026-12-07T02:59:09.891Z"),
            Actor::Notifier,
            ActionKind::NoticeSent,
            "notice".into(),
        );
        let v = serde_json::to_value(&e).unwrap();
        assert_eq!(v["ip"], "");
        assert!(v.get("method").is_none() && v.get("path").is_none());
        assert_eq!(serde_json::from_value::<TraceEvent>(v).unwrap(), e);
    }

    #[test]
    fn a_long_method_is_cut_and_a_standard_one_kept() {
        let long = Method::from_bytes(&[b'X'; 40]).unwrap();
        let e = TraceEvent::arriving(Plane::Admin, OffsetDateTime::UNIX_EPOCH, &long, "/");
        assert_eq!(e.method.map(|m| m.as_str().len()), Some(MAX_METHOD));
        assert_eq!(bounded(&Method::DELETE), Method::DELETE);
    }
}
