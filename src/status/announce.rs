//! Warning partners in writing (CGU §12, docs/contract.md §11): each
//! incident opened or updated and each maintenance scheduled or cancelled
//! is e-mailed through `[notify]` to the technical contact of every
//! partner with an active application in an affected environment, once per
//! address. The node that took the admin call sends them (so a cluster
//! sends each once), after the change is stored, in the background: the
//! admin call does not wait for the relay. A failed send is logged with
//! the recipient's domain only. Without `[notify] smtp_url`, nothing is
//! mailed; the partner dashboard still shows the open ones.

use super::board::{Incident, Maintenance, UpdateStatus};
use super::window::instant;
use crate::config::Zone;
use crate::domain::{Environment, Status as Lifecycle};
use crate::notify::{Mailer, recipient};
use crate::registry::Snapshot;
use std::collections::BTreeSet;
use std::sync::Arc;
use time::OffsetDateTime;

/// What to announce.
#[derive(Debug, Clone)]
pub enum Announcement {
    /// An incident was opened or updated.
    Incident(Incident),
    /// A maintenance was scheduled.
    Scheduled(Maintenance),
    /// A maintenance was cancelled.
    Cancelled(Maintenance),
}

/// The relay and what the messages need.
pub struct Announcer {
    /// The relay, if `[notify] smtp_url` is set.
    pub(crate) mailer: Option<Mailer>,
    /// The zone times are written in.
    pub(crate) zone: Zone,
    /// The status page's address (the sandbox listener's).
    pub(crate) page: String,
}

/// The addresses to warn of a change on `components`: the technical
/// contact of every active partner with an active application there.
pub fn recipients(snapshot: &Snapshot, components: &[Environment]) -> BTreeSet<String> {
    snapshot
        .applications
        .values()
        .filter(|a| a.status == Lifecycle::Active && components.contains(&a.environment))
        .filter_map(|a| snapshot.partners.get(&a.partner_id))
        .filter(|p| p.status == Lifecycle::Active)
        .filter_map(recipient)
        .collect()
}

impl Announcer {
    /// Sends `what` to the partners concerned, in the background.
    pub fn announce(self: &Arc<Self>, snapshot: &Snapshot, what: Announcement) {
        let Some(_) = self.mailer else {
            return;
        };
        let components = match &what {
            Announcement::Incident(i) => i.components.clone(),
            Announcement::Scheduled(m) | Announcement::Cancelled(m) => m.components.clone(),
        };
        let to = recipients(snapshot, &components);
        if to.is_empty() {
            return;
        }
        let (subject, body) = self.message(&what);
        let this = self.clone();
        tokio::spawn(async move { this.send_all(to, subject, body).await });
    }

    async fn send_all(&self, to: BTreeSet<String>, subject: String, body: String) {
        let Some(mailer) = &self.mailer else {
            return;
        };
        let (mut sent, mut failed) = (0, 0);
        for address in to {
            match mailer
                .send_text(&address, subject.clone(), body.clone())
                .await
            {
                Ok(()) => sent += 1,
                Err(e) => {
                    failed += 1;
                    let domain = address.rsplit_once('@').map_or("?", |(_, d)| d);
                    tracing::warn!(error = %e, recipient_domain = domain, "status announcement not sent");
                }
            }
        }
        tracing::info!(sent, failed, subject = %subject, "status announcement");
    }

    /// Subject and text of an announcement, in French.
    pub fn message(&self, what: &Announcement) -> (String, String) {
        match what {
            Announcement::Incident(i) => {
                let last = i.incident_updates.first();
                let state = last.map_or("", |u| state(u.status));
                let text = last.map_or("", |u| u.body.as_str());
                let subject = format!("[OPALE] Incident : {} ({state})", i.name);
                let body = format!(
                    "Bonjour,\n\nIncident : {}\nÉtat : {state}\nEnvironnements : {}\nOuvert le : {}\n\n{text}\n\n\
                     Suivi : {}\n\n-- \nOPALE\n",
                    i.name,
                    names(&i.components),
                    self.local(i.created_at),
                    self.page,
                );
                (subject, body)
            }
            Announcement::Scheduled(m) => self.maintenance(m, "programmée"),
            Announcement::Cancelled(m) => self.maintenance(m, "annulée"),
        }
    }

    fn maintenance(&self, m: &Maintenance, what: &str) -> (String, String) {
        let kind = if m.emergency {
            "Maintenance d'urgence"
        } else {
            "Maintenance"
        };
        let (from, until) = (self.local(m.scheduled_for), self.local(m.scheduled_until));
        let subject = format!(
            "[OPALE] {kind} {what} : {} du {from} au {until}",
            names(&m.components)
        );
        let body = format!(
            "Bonjour,\n\n{kind} {what}.\nEnvironnements : {}\nDu {from} au {until} (heure de {})\n\n{}\n\n\
             Pendant la maintenance, les appels reçoivent une réponse 503 (code 910600) avec Retry-After.\n\
             Suivi : {}\n\n-- \nOPALE\n",
            names(&m.components),
            self.zone.name,
            m.message,
            self.page,
        );
        (subject, body)
    }

    /// `07/12/2026 23:30` in the configured zone.
    fn local(&self, t: OffsetDateTime) -> String {
        self.zone
            .tz
            .to_datetime(instant(t))
            .strftime("%d/%m/%Y %H:%M")
            .to_string()
    }
}

fn state(s: UpdateStatus) -> &'static str {
    match s {
        UpdateStatus::Investigating => "analyse en cours",
        UpdateStatus::Identified => "cause identifiée",
        UpdateStatus::Monitoring => "sous surveillance",
        UpdateStatus::Resolved => "résolu",
        UpdateStatus::Scheduled => "programmée",
        UpdateStatus::Cancelled => "annulée",
    }
}

fn names(list: &[Environment]) -> String {
    list.iter()
        .map(|e| e.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}
