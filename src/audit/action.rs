//! Who acted and what was done, for the records that are not a partner's
//! call: the [`Actor`] (an admin, DataPass, the notifier, the abuse
//! detector, a signal, the node), the [`AdminAction`] change it made, and
//! for a system action (no HTTP exchange) the [`SystemAction`].
//! `AdminAction::change` is the one builder of a change,
//! `TraceEvent::system` the one builder of a system action
//! (docs/architecture.md style rule 16).

use serde::{Deserialize, Serialize};
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
