//! A security event (what was detected, for which application, why), its
//! stored form (`abuse/event/{id}`), and its trace records: raised and
//! auto-suspension are admin-plane records whose actor is `abuse`.

use super::window::Alert;
use crate::audit::{ActionKind, Actor, Address, AdminAction, TraceEvent};
use crate::domain::{ClientId, Environment, PartnerId};
use crate::registry::Application;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::net::IpAddr;
use time::OffsetDateTime;

/// Key prefix of open events in the store.
pub const EVENT_PREFIX: &str = "abuse/event/";

/// What was detected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// Many denials in a short window.
    DenialBurst,
    /// A caller address not seen for the application lately.
    NewAddress,
    /// The quota exhausted minute after minute.
    QuotaStreak,
    /// Many calls in an hour outside working hours.
    OffHoursSurge,
}

impl Kind {
    /// Every kind.
    pub const ALL: [Kind; 4] = [
        Kind::DenialBurst,
        Kind::NewAddress,
        Kind::QuotaStreak,
        Kind::OffHoursSurge,
    ];

    /// The name in JSON, metrics labels and the dashboard.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::DenialBurst => "denial_burst",
            Kind::NewAddress => "new_address",
            Kind::QuotaStreak => "quota_streak",
            Kind::OffHoursSurge => "off_hours_surge",
        }
    }
}

/// One open security event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SecurityEvent {
    /// Its id (a UUID).
    pub id: String,
    /// What was detected.
    pub kind: Kind,
    /// The application's environment.
    pub environment: Environment,
    /// The application.
    pub client_id: ClientId,
    /// Its partner.
    pub partner_id: PartnerId,
    /// When it was raised (RFC 3339).
    #[serde(with = "time::serde::rfc3339")]
    pub raised_at: OffsetDateTime,
    /// The caller address of the call that raised it.
    pub ip: IpAddr,
    /// The figure that crossed the threshold (denials, minutes, calls).
    pub observed: u32,
    /// Why, in words (thresholds included).
    pub reason: String,
    /// Whether `auto_suspend` suspended the application for it.
    pub suspended: bool,
}

impl SecurityEvent {
    /// The event of `alert`, raised by a call from `ip` at `now`.
    pub fn new(
        id: String,
        alert: Alert,
        application: &Application,
        ip: IpAddr,
        now: OffsetDateTime,
        reason: String,
    ) -> Self {
        SecurityEvent {
            id,
            kind: alert.kind,
            environment: application.environment,
            client_id: application.client_id.clone(),
            partner_id: application.partner_id.clone(),
            raised_at: now,
            ip,
            observed: alert.observed,
            reason,
            suspended: false,
        }
    }

    /// Its key in the store.
    pub fn key(&self) -> Vec<u8> {
        format!("{EVENT_PREFIX}{}", self.id).into_bytes()
    }

    /// The trace record of its raising (a system action of the detector,
    /// the event after).
    pub fn raised_record(&self) -> TraceEvent {
        let mut t = record(self, ActionKind::SecurityEventRaised, self.id.clone());
        let after = serde_json::to_value(self).unwrap_or(Value::Null);
        t.admin = Some(AdminAction::change(Value::Null, after));
        t
    }

    /// The trace record of the automatic suspension it caused: the
    /// application before and after.
    pub fn suspension_record(&self, before: &Application, after: &Application) -> TraceEvent {
        let id = self.client_id.as_str();
        let mut t = record(self, ActionKind::ApplicationSuspended, id.to_owned());
        let entity = |a: &Application| json!({"applications": {id: a}});
        t.admin = Some(AdminAction::change(entity(before), entity(after)));
        t
    }
}

/// A system action of the detector about `event`'s application, its reason
/// as detail.
fn record(event: &SecurityEvent, kind: ActionKind, target: String) -> TraceEvent {
    let now = OffsetDateTime::now_utc();
    let mut t = TraceEvent::system(now, Actor::AbuseDetector, kind, target);
    t.client_id = Some(event.client_id.clone());
    t.partner_id = Some(event.partner_id.clone());
    t.ip = Some(Address::Ip(event.ip));
    t.detail = Some(event.reason.clone());
    t
}
