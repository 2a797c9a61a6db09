//! Expiry notices (docs/contract.md §9): certificates and applications (with the
//! grants they carry) that expire within 90, 30 and 7 days produce one
//! notice each per threshold, e-mailed to the partner's technical contact
//! through `[notify] smtp_url` and listed on the partner dashboard and
//! `GET /admin/v1/notices`.
//!
//! A background task (`run`, started beside the listeners) makes one pass
//! at start and one every `check_interval_secs`. A pass reads the current
//! registry snapshot (`due`), skips every notice already sent, and sends
//! the others; a notice is marked `sent` in the store (durably) only once
//! the relay accepted it, so a failed send is retried on the next pass
//! and a restart never sends it again. Nodes sharing a store claim each
//! notice before sending it (`claim.rs`), so a cluster sends it once. Each
//! sent notice is traced as an admin-plane action of actor `notify`. See
//! `docs/notices.md`.

mod claim;
mod due;
mod mail;
mod record;

pub use claim::Claim;
pub use due::{THRESHOLDS, application_expiry, due, recipient, threshold};
pub use mail::Mailer;
pub use record::{Delivery, Notice, Notices, ObjectKind};

use crate::audit::{ActionKind, Actor, AdminAction, Auditor, TraceEvent};
use crate::registry::Snapshot;
use crate::store::StoreError;
use serde_json::json;
use std::sync::Arc;
use time::OffsetDateTime;

/// Why a notice could not be sent or recorded.
#[derive(Debug, thiserror::Error)]
pub enum NotifyError {
    /// `[notify] smtp_url` could not be turned into a client. The message
    /// is `mail::describe`'s secret-free account (the URL may hold a
    /// password), the source lettre's error.
    #[error("SMTP relay: {}", mail::describe(.0))]
    Relay(#[source] lettre::transport::smtp::Error),
    /// The recipient address is not a mailbox.
    #[error("recipient address: {0}")]
    Recipient(#[source] lettre::address::AddressError),
    /// The message could not be built.
    #[error("message: {0}")]
    Message(#[source] lettre::error::Error),
    /// The relay refused the message or could not be reached (described as
    /// for `Relay`).
    #[error("SMTP: {}", mail::describe(.0))]
    Smtp(#[source] lettre::transport::smtp::Error),
    /// The relay did not accept the message within the claim's lease
    /// (the send was abandoned, so that no node sends past its claim).
    #[error("SMTP: no answer within the claim lease ({0:?})")]
    Timeout(std::time::Duration),
    /// The notice could not be stored.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What one pass did (for logs and tests).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct PassReport {
    /// Notices due at this pass and not yet sent.
    pub due: usize,
    /// E-mails the relay accepted.
    pub sent: usize,
    /// Sends that failed (retried next pass).
    pub failed: usize,
    /// Notices recorded for the dashboard only.
    pub recorded: usize,
    /// Notices another node sent or was sending (its claim held).
    pub elsewhere: usize,
}

/// What a pass may touch: the registry snapshot, the notices, the relay
/// (if any), the audit trail, and how this node claims a notice.
pub struct Pass<'a> {
    /// The registry as it is now.
    pub snapshot: &'a Snapshot,
    /// Recorded notices.
    pub notices: &'a Arc<Notices>,
    /// The SMTP relay, if configured.
    pub mailer: Option<&'a Mailer>,
    /// Where sent notices are traced.
    pub audit: &'a Auditor,
    /// This node (`cluster.node_id`): names its claims.
    pub node: &'a str,
    /// How long a claim holds (`[notify] claim_lease_secs`); also the
    /// bound of one send.
    pub lease: std::time::Duration,
}

/// What the notifier task runs on (built by `crate::app::App::planes`).
pub struct Notifier {
    /// `[notify]`.
    pub(crate) settings: crate::config::NotifySettings,
    /// Applications and partners, read each pass.
    pub(crate) registry: Arc<crate::registry::Registry>,
    /// Notices recorded and sent.
    pub(crate) notices: Arc<Notices>,
    /// Where each sent notice is traced.
    pub(crate) audit: Arc<crate::audit::Auditor>,
    /// This node (`cluster.node_id`).
    pub(crate) node_id: String,
}

/// The notice task: one pass at start, then one every
/// `[notify] check_interval_secs`, until aborted (`server::run_workers`).
pub async fn run(notifier: Notifier) {
    let settings = &notifier.settings;
    let mailer = match Mailer::from_settings(settings) {
        Ok(m) => m,
        Err(e) => {
            tracing::error!(error = %e, "notices: no e-mail (dashboard only)");
            None
        }
    };
    let mut tick = tokio::time::interval(settings.check_interval());
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let snapshot = notifier.registry.snapshot();
        let pass = Pass {
            snapshot: &snapshot,
            notices: &notifier.notices,
            mailer: mailer.as_ref(),
            audit: &notifier.audit,
            node: &notifier.node_id,
            lease: settings.claim_lease(),
        };
        let r = pass.run(OffsetDateTime::now_utc()).await;
        if r.sent + r.failed + r.recorded > 0 {
            tracing::info!(
                due = r.due,
                sent = r.sent,
                failed = r.failed,
                recorded = r.recorded,
                "notice pass"
            );
        }
    }
}

/// What became of one due notice.
enum Outcome {
    /// E-mailed (the relay accepted it).
    Sent,
    /// Recorded for the dashboard only (or its reason changed).
    Recorded,
    /// Already recorded for the same reason: nothing written.
    Unchanged,
    /// Sent, or being sent, by another node.
    Elsewhere,
}

impl Pass<'_> {
    /// Handles every notice due at `now` that is not sent yet.
    pub async fn run(&self, now: OffsetDateTime) -> PassReport {
        let mut report = PassReport::default();
        for fresh in due(self.snapshot, now) {
            let existing = self.notices.get(&fresh.key());
            if existing
                .as_ref()
                .is_some_and(|n| n.delivery == Delivery::Sent)
            {
                continue;
            }
            report.due += 1;
            match self.handle(fresh, existing, now).await {
                Ok(Outcome::Sent) => report.sent += 1,
                Ok(Outcome::Recorded) => report.recorded += 1,
                Ok(Outcome::Unchanged) => {}
                Ok(Outcome::Elsewhere) => report.elsewhere += 1,
                Err(e) => {
                    report.failed += 1;
                    tracing::warn!(error = %e, "notice not sent; retried next pass");
                }
            }
        }
        report
    }

    /// Sends or records one notice.
    async fn handle(
        &self,
        fresh: Notice,
        existing: Option<Notice>,
        now: OffsetDateTime,
    ) -> Result<Outcome, NotifyError> {
        let (Some(mailer), Some(to)) = (self.mailer, fresh.recipient.clone()) else {
            let was = existing.as_ref().map(|n| n.delivery);
            let mut n = existing.unwrap_or_else(|| fresh.clone());
            n.recipient = fresh.recipient;
            return self.dashboard_only(n, was).await;
        };
        let mut n = match self.claim(fresh).await? {
            Claim::Won(n) => *n,
            Claim::Sent | Claim::Held { .. } => return Ok(Outcome::Elsewhere),
        };
        let sent = tokio::time::timeout(self.lease, mailer.send(&n, &to)).await;
        match sent.unwrap_or(Err(NotifyError::Timeout(self.lease))) {
            Ok(()) => {
                n.delivery = Delivery::Sent;
                n.sent_at = Some(now);
                n.last_error = None;
                self.settle(n.clone()).await?;
                self.trace(&n, now).await;
                tracing::info!(partner_id = %n.partner_id, recipient_domain = domain(&to),
                    kind = n.kind.as_str(), threshold_days = n.threshold_days, "notice sent");
                Ok(Outcome::Sent)
            }
            Err(e) => {
                n.delivery = Delivery::Pending;
                n.last_error = Some(e.to_string());
                // Released: the next pass of any node retries.
                n.claim_expires_at = None;
                tracing::warn!(partner_id = %n.partner_id, recipient_domain = domain(&to),
                    attempts = n.attempts, "notice e-mail failed");
                self.settle(n).await?;
                Err(e)
            }
        }
    }

    /// Records a notice that cannot be e-mailed (no relay, or no
    /// recipient), and logs it, once per reason.
    async fn dashboard_only(
        &self,
        mut n: Notice,
        was: Option<Delivery>,
    ) -> Result<Outcome, NotifyError> {
        let why = match self.mailer {
            Some(_) => Delivery::NoRecipient,
            None => Delivery::DashboardOnly,
        };
        if was == Some(why) {
            return Ok(Outcome::Unchanged);
        }
        n.delivery = why;
        if !self.settle(n.clone()).await? {
            return Ok(Outcome::Elsewhere);
        }
        if why == Delivery::NoRecipient {
            tracing::warn!(partner_id = %n.partner_id, kind = n.kind.as_str(),
                "notice due but the partner has no contact e-mail: dashboard only");
        } else {
            tracing::info!(partner_id = %n.partner_id, kind = n.kind.as_str(),
                "notice due; no [notify] smtp_url: dashboard only");
        }
        Ok(Outcome::Recorded)
    }

    /// Claims `fresh` for this node. The lease runs from the wall clock at
    /// the claim (not the pass's start: a pass may send many notices).
    async fn claim(&self, fresh: Notice) -> Result<Claim, NotifyError> {
        let lease = time::Duration::try_from(self.lease).unwrap_or(time::Duration::MAX);
        let now = OffsetDateTime::now_utc();
        Ok(self.notices.claim(&fresh, self.node, now, lease).await?)
    }

    /// Writes what became of a notice durably; whether it was written
    /// (`Notices::settle`).
    async fn settle(&self, n: Notice) -> Result<bool, NotifyError> {
        let now = OffsetDateTime::now_utc();
        Ok(self.notices.settle(n, self.node, now).await?)
    }

    /// Appends the record of a sent notice (a system action of the notifier).
    async fn trace(&self, n: &Notice, now: OffsetDateTime) {
        let mut event = TraceEvent::system(now, Actor::Notifier, ActionKind::NoticeSent, n.key());
        event.client_id = Some(n.client_id.clone());
        event.partner_id = Some(n.partner_id.clone());
        event.admin = Some(AdminAction::change(
            serde_json::Value::Null,
            json!({
                "notice": n.key(),
                "kind": n.kind,
                "object_id": n.object_id,
                "threshold_days": n.threshold_days,
                "expires_at": crate::audit::timestamp(n.expires_at),
                "recipient_domain": n.recipient.as_deref().map(domain),
            }),
        ));
        if let Err(e) = self.audit.record(&event).await {
            tracing::error!(error = %e, "trace record of a sent notice not written");
        }
    }
}

/// The domain part of an address (what the logs show of a recipient).
fn domain(address: &str) -> &str {
    address.rsplit_once('@').map_or("?", |(_, d)| d)
}
