//! The e-mail of a notice and the SMTP client that sends it (lettre over
//! tokio and rustls). A notice counts as sent once the relay has accepted
//! the message (a 2xx reply to the end of DATA), nothing less.

use super::NotifyError;
use super::record::{Notice, ObjectKind};
use crate::config::NotifySettings;
use lettre::message::{Mailbox, header::ContentType};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use std::str::FromStr;
use std::time::Duration;

/// Time allowed to each SMTP exchange (connect, each command).
const SMTP_TIMEOUT: Duration = Duration::from_secs(30);

/// An SMTP relay and the sender address of the notices.
pub struct Mailer {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
}

impl Mailer {
    /// The mailer of `[notify]`, or `None` without `smtp_url`.
    pub fn from_settings(settings: &NotifySettings) -> Result<Option<Self>, NotifyError> {
        let Some(url) = &settings.smtp_url else {
            return Ok(None);
        };
        // The URL may hold a password: the error says what failed, not it.
        let transport = AsyncSmtpTransport::<Tokio1Executor>::from_url(url.expose())
            .map_err(NotifyError::Relay)?
            .timeout(Some(SMTP_TIMEOUT))
            .build();
        Ok(Some(Mailer {
            transport,
            from: settings.from.clone(),
        }))
    }

    /// Sends `notice` to `to`; `Ok` once the relay accepted it.
    pub async fn send(&self, notice: &Notice, to: &str) -> Result<(), NotifyError> {
        self.send_text(to, subject(notice), body(notice)).await
    }

    /// Sends a plain-text message to `to` (notices, and the incident and
    /// maintenance announcements of `crate::status`); `Ok` once the relay
    /// accepted it.
    pub async fn send_text(
        &self,
        to: &str,
        subject: String,
        body: String,
    ) -> Result<(), NotifyError> {
        let to = Mailbox::from_str(to).map_err(NotifyError::Recipient)?;
        let message = Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(subject)
            .header(ContentType::TEXT_PLAIN)
            .body(body)
            .map_err(NotifyError::Message)?;
        self.transport
            .send(message)
            .await
            .map_err(NotifyError::Smtp)?;
        Ok(())
    }
}

/// A short, secret-free account of an SMTP failure: its class and the
/// relay's reply code, if any.
pub(super) fn describe(e: &lettre::transport::smtp::Error) -> String {
    let class = if e.is_timeout() {
        "timeout"
    } else if e.is_tls() {
        "tls"
    } else if e.is_permanent() {
        "permanent"
    } else if e.is_transient() {
        "transient"
    } else if e.is_response() {
        "response"
    } else {
        "connection"
    };
    match e.status() {
        Some(code) => format!("{class} ({code})"),
        None => class.to_owned(),
    }
}

/// `[OPALE] Certificat : expiration dans 30 jours`. In French, as every
/// text partners read (one language, not two side by side).
pub fn subject(n: &Notice) -> String {
    let what = match n.kind {
        ObjectKind::Certificate => "Certificat",
        ObjectKind::Application => "Habilitation",
    };
    let t = n.threshold_days;
    format!("[OPALE] {what} : expiration dans {t} jours")
}

/// The text of the e-mail, in French: what expires, when, and what to do.
pub fn body(n: &Notice) -> String {
    let (what, action) = match n.kind {
        ObjectKind::Certificate => (
            "Certificat",
            "Déposez un nouveau certificat avant cette date, ou renouvelez-le par machine avec le \
             certificat actuel (EST, RFC 7030) : une demande (CSR) au même sujet, encodée en \
             base64, envoyée par POST à /.well-known/est/simplereenroll (guide des partenaires, \
             section 4).",
        ),
        ObjectKind::Application => (
            "Application (habilitations)",
            "Demandez le renouvellement de l'habilitation avant cette date.",
        ),
    };
    format!(
        "Bonjour,\n\n\
         Seuil d'alerte : {t} jours avant l'expiration\n\
         {what} : {label}\n\
         Identifiant :\n{id}\n\
         Application (client_id) : {client} — environnement : {env}\n\
         Expiration : {at} (UTC)\n\n\
         {action}\n\n\
         -- \nOPALE, passerelle API\n",
        t = n.threshold_days,
        label = n.label,
        id = n.object_id,
        client = n.client_id,
        env = n.environment,
        at = n.expires_at.date(),
    )
}
