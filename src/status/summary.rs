//! The state now, in Statuspage v2's shapes (`summary.json`,
//! `status.json`, `incidents.json`) so that status aggregators and
//! monitors read the gateway as they read any Statuspage page.
//!
//! A component is `under_maintenance` while its environment is closed (the
//! switch or a maintenance); else the worst open incident on it sets its
//! status (`minor` → `degraded_performance`, `major` → `partial_outage`,
//! `critical` → `major_outage`); else a failed last probe makes it
//! `major_outage`; else it is `operational`. The page's indicator is the
//! worst open incident's impact, else `maintenance` while a component is
//! under maintenance, else `major` while a probe fails, else `none`.

use super::board::{Impact, Incident};
use super::{Status, index};
use crate::availability::Availability;
use crate::domain::Environment;
use serde::Serialize;
use serde_json::{Value, json};
use time::OffsetDateTime;

/// A component's status (Statuspage's values).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ComponentStatus {
    /// Working.
    Operational,
    /// Slow or partly failing.
    DegradedPerformance,
    /// Partly out.
    PartialOutage,
    /// Out.
    MajorOutage,
    /// Closed for maintenance.
    UnderMaintenance,
}

impl ComponentStatus {
    /// In French, for the page.
    pub fn label(self) -> &'static str {
        match self {
            ComponentStatus::Operational => "Opérationnel",
            ComponentStatus::DegradedPerformance => "Performances dégradées",
            ComponentStatus::PartialOutage => "Panne partielle",
            ComponentStatus::MajorOutage => "Panne majeure",
            ComponentStatus::UnderMaintenance => "En maintenance",
        }
    }
}

/// A component now.
#[derive(Debug, Clone, Serialize)]
pub struct Component {
    /// `sandbox` or `production`.
    pub id: Environment,
    /// Its name, in French.
    pub name: &'static str,
    /// Its status now.
    pub status: ComponentStatus,
    /// When measurement began.
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// When its status last changed (as seen by this node).
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
    /// Its place on the page.
    pub position: u8,
    /// What it is.
    pub description: &'static str,
}

/// The page's overall state.
#[derive(Debug, Clone, Serialize)]
pub struct Indicator {
    /// `none`, `minor`, `major`, `critical` or `maintenance`.
    pub indicator: &'static str,
    /// In French.
    pub description: &'static str,
}

/// The name of a component.
pub fn name(env: Environment) -> &'static str {
    match env {
        Environment::Sandbox => "Bac à sable (sandbox)",
        Environment::Production => "Production",
    }
}

impl Status {
    /// Both components now.
    pub fn components(&self, availability: &Availability, now: OffsetDateTime) -> Vec<Component> {
        let board = self.board();
        let created = board.since.unwrap_or(now);
        Environment::ALL
            .iter()
            .enumerate()
            .map(|(i, &env)| {
                let status = self.status_of(env, availability, &board.incidents, now);
                Component {
                    id: env,
                    name: name(env),
                    status,
                    created_at: created,
                    updated_at: self.shown_since(env, status, now),
                    position: i as u8 + 1,
                    description: match env {
                        Environment::Sandbox => "Données fictives, même chaîne de contrôle",
                        Environment::Production => "Données réelles du fournisseur",
                    },
                }
            })
            .collect()
    }

    fn status_of(
        &self,
        env: Environment,
        a: &Availability,
        incidents: &[Incident],
        now: OffsetDateTime,
    ) -> ComponentStatus {
        if a.closed(env, now).is_some() {
            return ComponentStatus::UnderMaintenance;
        }
        let worst = incidents
            .iter()
            .filter(|i| i.is_open() && i.components.contains(&env))
            .map(|i| i.impact)
            .max();
        match worst {
            Some(Impact::Critical) => ComponentStatus::MajorOutage,
            Some(Impact::Major) => ComponentStatus::PartialOutage,
            Some(Impact::Minor) => ComponentStatus::DegradedPerformance,
            _ if !self.probe_ok(env) => ComponentStatus::MajorOutage,
            _ => ComponentStatus::Operational,
        }
    }

    /// When `env` began to show `status` (now, if it just changed).
    fn shown_since(
        &self,
        env: Environment,
        status: ComponentStatus,
        now: OffsetDateTime,
    ) -> OffsetDateTime {
        let mut shown = self.shown.lock().unwrap_or_else(|p| p.into_inner());
        let slot = &mut shown[index(env)];
        if slot.0 != status {
            *slot = (status, now);
        }
        slot.1
    }

    /// The page's indicator given its components.
    pub fn indicator(&self, components: &[Component]) -> Indicator {
        let board = self.board();
        let worst = board
            .incidents
            .iter()
            .filter(|i| i.is_open())
            .map(|i| i.impact)
            .max();
        let maintenance = components
            .iter()
            .any(|c| c.status == ComponentStatus::UnderMaintenance);
        let outage = components
            .iter()
            .any(|c| c.status == ComponentStatus::MajorOutage);
        let (indicator, description) = match worst {
            Some(Impact::Critical) => ("critical", "Panne critique en cours"),
            Some(Impact::Major) => ("major", "Panne majeure en cours"),
            Some(Impact::Minor) => ("minor", "Perturbation mineure en cours"),
            _ if maintenance => ("maintenance", "Maintenance en cours"),
            _ if outage => ("major", "Service indisponible"),
            _ => ("none", "Tous les services sont opérationnels"),
        };
        Indicator {
            indicator,
            description,
        }
    }

    /// `page`: the page as seen from `env`'s listener.
    pub fn page(&self, env: Environment, components: &[Component], now: OffsetDateTime) -> Value {
        let board = self.board();
        let changed = board.incidents.iter().map(|i| i.updated_at);
        let changed = changed.chain(board.maintenances.iter().map(|m| m.updated_at));
        let updated = changed
            .chain(components.iter().map(|c| c.updated_at))
            .max()
            .unwrap_or(now);
        json!({
            "id": "opale",
            "name": "OPALE",
            "url": format!("{}/status", self.url(env)),
            "time_zone": self.settings.timezone.name,
            "updated_at": crate::audit::timestamp(updated),
        })
    }

    /// `summary.json`.
    pub fn summary(
        &self,
        env: Environment,
        availability: &Availability,
        now: OffsetDateTime,
    ) -> Value {
        let components = self.components(availability, now);
        let board = self.board();
        let open: Vec<&Incident> = board.incidents.iter().filter(|i| i.is_open()).collect();
        let pending: Vec<_> = board
            .maintenances
            .iter()
            .filter(|m| m.is_pending(now))
            .map(|m| m.view(now))
            .collect();
        json!({
            "page": self.page(env, &components, now),
            "status": self.indicator(&components),
            "components": components,
            "incidents": open,
            "scheduled_maintenances": pending,
        })
    }

    /// `status.json`.
    pub fn status_doc(
        &self,
        env: Environment,
        availability: &Availability,
        now: OffsetDateTime,
    ) -> Value {
        let components = self.components(availability, now);
        json!({
            "page": self.page(env, &components, now),
            "status": self.indicator(&components),
        })
    }

    /// `incidents.json`: every incident of the last 90 days, newest first.
    pub fn incidents_doc(
        &self,
        env: Environment,
        availability: &Availability,
        now: OffsetDateTime,
    ) -> Value {
        let components = self.components(availability, now);
        let cutoff = now - time::Duration::days(super::task::RETENTION_DAYS);
        let board = self.board();
        let recent: Vec<&Incident> = board
            .incidents
            .iter()
            .filter(|i| i.resolved_at.is_none_or(|r| r >= cutoff))
            .collect();
        json!({ "page": self.page(env, &components, now), "incidents": recent })
    }
}
