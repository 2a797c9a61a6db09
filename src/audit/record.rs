//! One trace record (docs/contract.md §7) and its place in the hash chain: each
//! record stores the SHA-256 of the previous record's canonical bytes, so
//! editing, deleting or reordering any record breaks a link.

use crate::chain::{Control, Denial, Reason};
use crate::domain::{Dataset, Plane};
use crate::registry::Application;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;

/// What an admin call or a system action changed (secrets are never part
/// of it); who acted is the record's [`Actor`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AdminAction {
    /// Who acted, as records written before [`Actor`] existed name it
    /// (read back, never written again).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub actor_subject: String,
    /// The acting admin certificate's thumbprint, in records written
    /// before [`Actor`] existed (read back, never written again).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub actor_thumbprint: String,
    /// The entity before the change (`null` when created).
    pub before: Value,
    /// The entity after the change (`null` when nothing was found).
    pub after: Value,
}

impl AdminAction {
    /// The change from `before` to `after`.
    pub fn change(before: Value, after: Value) -> Self {
        AdminAction {
            actor_subject: String::new(),
            actor_thumbprint: String::new(),
            before,
            after,
        }
    }
}

/// Who acted: the party a record is about, named by what authenticated it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Actor {
    /// An admin, by its client certificate.
    Admin {
        /// The certificate's subject DN.
        subject: String,
        /// Its `x5t#S256`.
        thumbprint: String,
    },
    /// A partner, by its client certificate (self-service).
    Partner {
        /// Its `x5t#S256`.
        thumbprint: String,
    },
    /// DataPass, by the webhook's HMAC signature.
    Datapass,
    /// The expiry notifier (`crate::notify`).
    Notifier,
    /// The abnormal-usage detector (`crate::abuse`).
    AbuseDetector,
    /// A signal sent to the process.
    Signal {
        /// Its name (`SIGHUP`).
        name: String,
    },
    /// The gateway node itself (summaries, start-up), by its node id.
    Node {
        /// `cluster.node_id`.
        id: String,
    },
}

impl std::fmt::Display for Actor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Actor::Admin { subject, .. } => write!(f, "admin {subject}"),
            Actor::Partner { thumbprint } => write!(f, "partner {thumbprint}"),
            Actor::Datapass => f.write_str("datapass"),
            Actor::Notifier => f.write_str("notifier"),
            Actor::AbuseDetector => f.write_str("abuse detector"),
            Actor::Signal { name } => write!(f, "signal {name}"),
            Actor::Node { id } => write!(f, "node {id}"),
        }
    }
}

/// What a system action did: something the gateway did by itself, not an
/// HTTP exchange (those have a method and a path instead).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ActionKind {
    /// An expiry notice was sent; target: the notice.
    NoticeSent,
    /// A security event was raised; target: the event id.
    SecurityEventRaised,
    /// An application was suspended automatically; target: its client_id.
    ApplicationSuspended,
    /// The TLS state and limits were reloaded; target: the config file.
    Reloaded,
    /// Refusals before identification were summarised; target: the source.
    RefusalsSummarised,
}

/// A system action and what it acted on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SystemAction {
    /// What was done.
    pub kind: ActionKind,
    /// What it was done to (see [`ActionKind`]).
    pub target: String,
}

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

/// The code of a refusal: a row of the catalogue (docs/contract.md §5), an RFC 6749
/// §5.2 error of the token endpoint, or the HTTP status of an admin-plane
/// refusal. Written as a string (`"910500"`, `"invalid_client"`, `"403"`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Code {
    /// A catalogue row.
    Catalogue(Reason),
    /// An OAuth error code.
    OAuth(String),
    /// An HTTP status (admin plane).
    Status(u16),
}

impl Code {
    /// The catalogue row, if this is one.
    pub fn reason(&self) -> Option<Reason> {
        match self {
            Code::Catalogue(r) => Some(*r),
            _ => None,
        }
    }

    /// Reads the written form back.
    pub fn parse(text: &str) -> Code {
        let number = text
            .parse::<u32>()
            .ok()
            .filter(|_| text.bytes().all(|b| b.is_ascii_digit()));
        match number {
            Some(n) if text.len() == 6 => Reason::from_code(n)
                .map(Code::Catalogue)
                .unwrap_or_else(|| Code::OAuth(text.to_owned())),
            Some(n) if text.len() == 3 => Code::Status(n as u16),
            _ => Code::OAuth(text.to_owned()),
        }
    }
}

impl std::fmt::Display for Code {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Code::Catalogue(r) => write!(f, "{}", r.code()),
            Code::OAuth(e) => f.write_str(e),
            Code::Status(s) => write!(f, "{s}"),
        }
    }
}

impl Serialize for Code {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Code {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(Code::parse(&String::deserialize(d)?))
    }
}

/// What happened to one request. Never a token, a secret, a key or data.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TraceEvent {
    /// RFC 3339 UTC time the request arrived.
    pub time: String,
    /// The listener: `sandbox`, `production` or `admin`.
    pub plane: Plane,
    /// The caller's X-Correlation-ID (or the one assigned).
    pub correlation_id: Option<String>,
    /// The application, once known.
    pub client_id: Option<String>,
    /// Its partner.
    pub partner_id: Option<String>,
    /// Thumbprint of the presented client certificate.
    pub thumbprint: Option<String>,
    /// Socket peer address.
    pub ip: String,
    /// HTTP method (absent from system actions).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub method: String,
    /// Path without the query string (absent from system actions).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub path: String,
    /// SIREN of a data call.
    pub siren: Option<String>,
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
    /// Start of the minute (UTC, the records' timestamp form).
    pub minute: String,
    /// Refusals counted in that minute, traced one by one or not.
    pub refused: u64,
    /// Of those, the ones only counted here.
    pub summarised: u64,
    /// The summarised refusals by code.
    pub codes: std::collections::BTreeMap<String, u64>,
    /// The summarised refusals by HTTP status.
    pub statuses: std::collections::BTreeMap<u16, u64>,
}

impl Default for TraceEvent {
    /// An empty admin-plane record (for tests and builders).
    fn default() -> Self {
        TraceEvent::arriving(Plane::Admin, String::new(), "", "")
    }
}

impl TraceEvent {
    /// A record for a request arriving on `plane` (no query string: it may
    /// carry anything, including a misplaced token).
    pub fn arriving(plane: Plane, time: String, method: &str, path: &str) -> Self {
        TraceEvent {
            time,
            plane,
            correlation_id: None,
            client_id: None,
            partner_id: None,
            thumbprint: None,
            ip: String::new(),
            method: method.chars().take(32).collect(),
            path: path.chars().take(512).collect(),
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

    /// The record of a system action by `actor` at `time`, on the admin
    /// plane: no method, no path, no status.
    pub fn system(time: String, actor: Actor, kind: ActionKind, target: String) -> Self {
        let mut event = TraceEvent::arriving(Plane::Admin, time, "", "");
        event.actor = Some(actor);
        event.action = Some(SystemAction { kind, target });
        event
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
        self.detail = Some(detail.chars().take(512).collect());
    }

    /// Names the caller's application and partner.
    pub fn caller(&mut self, application: &Application) {
        self.client_id = Some(application.client_id.to_string());
        self.partner_id = Some(application.partner_id.to_string());
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

/// The fixed-width UTC timestamp of records (`2026-11-23T20:17:15.929Z`):
/// fixed width so that comparing the strings compares the times.
pub fn timestamp(t: time::OffsetDateTime) -> String {
    let fmt = time::macros::format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z"
    );
    t.to_offset(time::UtcOffset::UTC)
        .format(&fmt)
        .unwrap_or_default()
}

/// Parses an RFC 3339 time (any offset, any precision) into [`timestamp`] form.
pub fn normalize(rfc3339: &str) -> Option<String> {
    time::OffsetDateTime::parse(rfc3339, &time::format_description::well_known::Rfc3339)
        .ok()
        .map(timestamp)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_are_fixed_width_so_strings_order_like_times() {
        let a = normalize("2026-11-23T20:17:15Z").unwrap();
        let b = normalize("2026-11-23T20:17:15.5+00:00").unwrap();
        let c = normalize("2026-11-23T21:17:15.123456789+01:00").unwrap();
        assert_eq!(a, "2026-11-23T20:17:15.000Z");
        assert_eq!(c, "2026-11-23T20:17:15.123Z");
        assert!(a < c && c < b);
        assert_eq!(normalize("yesterday"), None);
    }

    #[test]
    fn typed_fields_are_written_as_before() {
        let mut e = TraceEvent::arriving(
            Plane::Env(crate::domain::Environment::Sandbox),
            "2026-11-23T20:17:15.000Z".into(),
            "GET",
            "/x",
        );
        e.dataset = Some(Dataset::ComptesBancaires);
        e.refuse(&Denial::new(Reason::YearNotGranted, "2019"));
        let v = serde_json::to_value(&e).unwrap();
        assert_eq!(v["plane"], "sandbox");
        assert_eq!(v["dataset"], "comptes-bancaires");
        assert_eq!(v["decision"], "denied");
        assert_eq!(v["control"], "rights");
        assert_eq!(v["code"], "910500");
        let back: TraceEvent = serde_json::from_value(v).unwrap();
        assert_eq!(back, e);
        for (text, code) in [
            ("910500", Code::Catalogue(Reason::YearNotGranted)),
            ("invalid_client", Code::OAuth("invalid_client".into())),
            ("403", Code::Status(403)),
            ("999999", Code::OAuth("999999".into())),
        ] {
            assert_eq!(Code::parse(text), code);
            assert_eq!(code.to_string(), text);
        }
    }
}
