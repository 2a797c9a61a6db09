//! Partner self-service (docs/contract.md §12): what a partner signed in
//! with its certificate does alone — its contacts, an application's client
//! secret, a certificate from a CSR, the revocation of one of its
//! certificates. Only its own records: another partner's id, or one that
//! does not exist, is the same 404 page. Every post is a plain HTML form
//! (no script) accepted only from the dashboard's origin and with the
//! token the page put in it (`form.rs`); the admin listener traces each
//! with the partner's certificate thumbprint as actor.

use super::admin::status_badge;
use super::form::{self, FIELD};
use super::html::{Tone, alert, badge, message, page, section, table};
use super::lang::Lang;
use super::messages::Msg;
use super::partner::environment_badge;
use super::{redirect_to, respond};
use crate::admin::Admin;
use crate::registry::ops::{NewContact, PartnerPatch, valid_email, valid_phone};
use crate::registry::{Application, CertOrigin, CertStatus, CertificateRecord, Partner};
use crate::registry::{RegistryError, Snapshot};
use crate::respond::Body;
use crate::server::{RequestBody, media_type};
use hyper::{Request, Response, StatusCode};
use maud::{Markup, html};
use std::collections::BTreeMap;
use std::sync::Arc;
use time::OffsetDateTime;

/// The largest form body read (a CSR is a few KiB).
const MAX_FORM: usize = 32 * 1024;
/// The contact roles offered even when the partner has none yet.
const ROLES: [&str; 2] = ["technique", "administratif"];
/// The role every partner must keep (notices, announcements).
const TECHNICAL: &str = "technique";
/// Roles a partner may keep at most.
const MAX_ROLES: usize = 8;

/// A signed-in partner: who, through which certificate, in which language.
pub struct Session<'a> {
    /// What the dashboard runs on.
    pub state: &'a Arc<Admin>,
    /// The page language.
    pub lang: Lang,
    /// The partner the certificate belongs to.
    pub partner: Partner,
    /// The certificate's `x5t#S256` (form tokens are bound to it).
    pub thumbprint: String,
}

/// A form field's error, shown next to it.
type FieldErrors = BTreeMap<String, String>;

impl Session<'_> {
    /// The hidden field carrying the token of the form posting to `action`.
    fn token_field(&self, action: &str) -> Markup {
        form::token_field(&self.state.form_key, &self.thumbprint, action)
    }

    /// The 404 page.
    fn not_found(&self) -> Response<Body> {
        let page = message(
            self.lang,
            Msg::NotFoundTitle,
            Msg::NotFoundText,
            Some("/dashboard"),
        );
        respond(StatusCode::NOT_FOUND, self.lang, page)
    }

    /// A page saying one thing, with a way back.
    fn says(&self, status: StatusCode, title: &str, text: &str, back: &str) -> Response<Body> {
        let lang = self.lang;
        let body = html! {
            p.lead { (text) }
            p { a href=(back) { (lang.t(Msg::BackToDashboard)) } }
        };
        respond(status, lang, page(lang, title, body))
    }

    /// This partner's application `client_id`, if it is one.
    fn own_application(&self, snap: &Snapshot, client_id: &str) -> Option<Application> {
        snap.applications
            .values()
            .find(|a| a.client_id.as_str() == client_id && a.partner_id == self.partner.id)
            .cloned()
    }

    /// Reads a form post to `action` and checks where it came from: the
    /// fields, or the page refusing it (nothing is done then). `owned` is
    /// whether the path names this partner's own record: checked after the
    /// body is read (an answer sent while a client still sends makes some
    /// HTTP/2 clients report a stream error instead of it), before
    /// anything else.
    async fn posted(
        &self,
        req: Request<RequestBody>,
        action: &str,
        owned: bool,
    ) -> Result<Fields, Response<Body>> {
        let (parts, body) = req.into_parts();
        let lang = self.lang;
        let bytes = body.read(MAX_FORM).await.map_err(|e| {
            let (status, text) = match e {
                crate::server::BodyError::TooLarge(_) => (
                    StatusCode::PAYLOAD_TOO_LARGE,
                    lang.pick(
                        "Formulaire trop volumineux (32 Kio au plus).",
                        "Form too large (32 KiB at most).",
                    ),
                ),
                _ => (
                    StatusCode::BAD_REQUEST,
                    lang.pick(
                        "Le formulaire n'a pas été reçu en entier.",
                        "The form was not received whole.",
                    ),
                ),
            };
            self.says(status, lang.t(Msg::ActionFailedTitle), text, "/dashboard")
        })?;
        if !owned {
            return Err(self.not_found());
        }
        let request = Request::from_parts(parts, ());
        if !form::same_origin(&request) {
            let page = message(
                lang,
                Msg::RefusedTitle,
                Msg::CrossOriginText,
                Some("/dashboard"),
            );
            return Err(respond(StatusCode::FORBIDDEN, lang, page));
        }
        if media_type(request.headers()) != "application/x-www-form-urlencoded" {
            let text = lang.pick(
                "Ce formulaire s'envoie encodé en application/x-www-form-urlencoded.",
                "This form is sent as application/x-www-form-urlencoded.",
            );
            let title = lang.t(Msg::ActionFailedTitle);
            return Err(self.says(StatusCode::UNSUPPORTED_MEDIA_TYPE, title, text, action));
        }
        let fields = Fields::parse(&bytes);
        let now = OffsetDateTime::now_utc().unix_timestamp();
        let token = fields.get(FIELD);
        if !(self.state.form_key).accepts(token, &self.thumbprint, action, now) {
            let text = lang.pick(
                "Formulaire expiré ou incomplet : rien n'a été modifié. Rechargez la page \
                 et envoyez-le de nouveau.",
                "Form expired or incomplete: nothing was changed. Reload the page and send \
                 it again.",
            );
            let title = lang.t(Msg::RefusedTitle);
            return Err(self.says(StatusCode::FORBIDDEN, title, text, action));
        }
        Ok(fields)
    }
}

/// A form's fields (first value of each name).
struct Fields(Vec<(String, String)>);

impl Fields {
    fn parse(body: &[u8]) -> Fields {
        Fields(url::form_urlencoded::parse(body).into_owned().collect())
    }

    /// The value of `name`, empty when absent.
    fn get(&self, name: &str) -> &str {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map_or("", |(_, v)| v.as_str())
    }
}

// ----- contacts ---------------------------------------------------------

/// The contacts form's path for partner `id`.
fn contacts_path(id: &str) -> String {
    format!("/dashboard/partners/{id}/contacts")
}

/// `GET /dashboard/partners/{id}/contacts` (`?enregistre` after a save).
pub fn contacts_page(s: &Session<'_>, id: &str, saved: bool) -> Response<Body> {
    if id != s.partner.id.as_str() {
        return s.not_found();
    }
    let values: Vec<(String, [String; 3])> = roles(&s.partner)
        .into_iter()
        .map(|role| {
            let c = s.partner.contacts.get(&role);
            let v = [
                c.map(|c| c.nom.clone()).unwrap_or_default(),
                c.map(|c| c.email.clone()).unwrap_or_default(),
                c.and_then(|c| c.telephone.clone()).unwrap_or_default(),
            ];
            (role, v)
        })
        .collect();
    let page = contacts_markup(s, &values, &FieldErrors::new(), saved);
    respond(StatusCode::OK, s.lang, page)
}

/// `POST /dashboard/partners/{id}/contacts`: replaces the contacts, each
/// e-mail and phone checked; 303 back to the form, or the form again with
/// each error next to its field (400, nothing changed).
pub async fn save_contacts(s: &Session<'_>, id: &str, req: Request<RequestBody>) -> Response<Body> {
    let path = contacts_path(id);
    let fields = match s.posted(req, &path, id == s.partner.id.as_str()).await {
        Ok(fields) => fields,
        Err(refused) => return refused,
    };
    let mut submitted: Vec<(String, [String; 3])> = Vec::new();
    for (name, _) in &fields.0 {
        if let Some(role) = name.strip_suffix(".email")
            && is_role(role)
            && !submitted.iter().any(|(r, _)| r == role)
            && submitted.len() < MAX_ROLES
        {
            let get = |f: &str| fields.get(&format!("{role}.{f}")).trim().to_owned();
            submitted.push((
                role.to_owned(),
                [get("nom"), get("email"), get("telephone")],
            ));
        }
    }
    let (contacts, errors) = checked_contacts(s.lang, &submitted);
    if !errors.is_empty() {
        let page = contacts_markup(s, &submitted, &errors, false);
        return respond(StatusCode::BAD_REQUEST, s.lang, page);
    }
    let patch = PartnerPatch {
        contacts: Some(contacts),
        ..PartnerPatch::default()
    };
    match s.state.registry.update_partner(id, patch).await {
        Ok(_) => redirect_to(format!("{path}?enregistre")),
        Err(e) => registry_refusal(s, &e, &path),
    }
}

/// The roles shown: the usual two, then the partner's others.
fn roles(p: &Partner) -> Vec<String> {
    let mut roles: Vec<String> = ROLES.iter().map(|r| (*r).to_owned()).collect();
    for role in p.contacts.keys() {
        if !roles.contains(role) {
            roles.push(role.clone());
        }
    }
    roles.truncate(MAX_ROLES);
    roles
}

/// A role name as the registry takes it (a lowercase word).
fn is_role(role: &str) -> bool {
    !role.is_empty() && role.len() <= 32 && role.chars().all(|c| c.is_ascii_lowercase() || c == '_')
}

/// The submitted contacts as the registry takes them (a role left all
/// blank is removed), or each faulty field with what is wrong in words.
fn checked_contacts(
    lang: Lang,
    submitted: &[(String, [String; 3])],
) -> (BTreeMap<String, NewContact>, FieldErrors) {
    let (mut contacts, mut errors) = (BTreeMap::new(), FieldErrors::new());
    for (role, [nom, email, telephone]) in submitted {
        if nom.is_empty() && email.is_empty() && telephone.is_empty() {
            continue;
        }
        if nom.is_empty() {
            let text = lang.pick("Indiquez un nom.", "Give a name.");
            errors.insert(format!("{role}.nom"), text.to_owned());
        }
        if !valid_email(email) {
            let text = lang.pick(
                "Adresse e-mail invalide. Exemple : prenom.nom@exemple.fr",
                "Not an e-mail address. Example: first.last@example.com",
            );
            errors.insert(format!("{role}.email"), text.to_owned());
        }
        if !telephone.is_empty() && !valid_phone(telephone) {
            let text = lang.pick(
                "Numéro invalide : des chiffres (6 à 15), séparés au besoin par des espaces, \
                 points ou tirets, un + en tête pour l'international. Exemple : 01 23 45 67 89",
                "Not a phone number: digits (6 to 15), separated by spaces, dots or dashes if \
                 need be, a leading + for international numbers. Example: +33 1 23 45 67 89",
            );
            errors.insert(format!("{role}.telephone"), text.to_owned());
        }
        let contact = NewContact {
            nom: nom.clone(),
            email: email.clone(),
            telephone: Some(telephone.clone()).filter(|t| !t.is_empty()),
        };
        contacts.insert(role.clone(), contact);
    }
    if !contacts.contains_key(TECHNICAL) && !errors.contains_key(&format!("{TECHNICAL}.email")) {
        let text = lang.pick(
            "Le contact technique est obligatoire : il reçoit les avis d'expiration et les \
             annonces d'incident et de maintenance.",
            "The technical contact is required: it receives the expiry notices and the \
             incident and maintenance announcements.",
        );
        errors.insert(format!("{TECHNICAL}.email"), text.to_owned());
    }
    (contacts, errors)
}

/// The contacts form, filled with `values`, each error by its field.
fn contacts_markup(
    s: &Session<'_>,
    values: &[(String, [String; 3])],
    errors: &FieldErrors,
    saved: bool,
) -> Markup {
    let lang = s.lang;
    let path = contacts_path(s.partner.id.as_str());
    let body = html! {
        p.lead { (s.partner.name) " — SIREN " (s.partner.siren) }
        @if saved {
            (alert(Tone::Success, false, lang.pick("Contacts enregistrés", "Contacts saved"),
                html! { (lang.pick("Les prochains avis et annonces partent vers ces adresses.",
                    "The next notices and announcements go to these addresses.")) }))
        }
        @if !errors.is_empty() {
            (alert(Tone::Error, true, lang.pick("Contacts non enregistrés", "Contacts not saved"),
                html! { (lang.pick(
                    "Corrigez les champs signalés ci-dessous : rien n'a été modifié.",
                    "Correct the fields marked below: nothing was changed.")) }))
        }
        p { (lang.pick(
            "Le contact technique reçoit les avis d'expiration des certificats et des \
             habilitations, et les annonces d'incident et de maintenance. Videz les trois \
             champs d'un autre contact pour le retirer.",
            "The technical contact receives the certificate and grant expiry notices, and \
             the incident and maintenance announcements. Empty the three fields of another \
             contact to remove it.")) }
        form method="post" action=(path) novalidate {
            (s.token_field(&path))
            @for (role, [nom, email, telephone]) in values {
                fieldset.fieldset {
                    legend { (role_label(lang, role)) }
                    (input(role, "nom", lang.pick("Nom et prénom", "Full name"), ("text", "name"), nom, errors))
                    (input(role, "email", lang.pick("Adresse e-mail", "E-mail address"), ("email", "email"), email, errors))
                    (input(role, "telephone", lang.pick("Téléphone (facultatif)", "Phone (optional)"), ("tel", "tel"), telephone, errors))
                }
            }
            button.button type="submit" { (lang.pick("Enregistrer les contacts", "Save the contacts")) }
        }
        p { a href="/dashboard" { (lang.t(Msg::BackToDashboard)) } }
    };
    page(lang, lang.pick("Contacts", "Contacts"), body)
}

/// A role as a legend.
fn role_label(lang: Lang, role: &str) -> String {
    match role {
        "technique" => lang
            .pick("Contact technique", "Technical contact")
            .to_owned(),
        "administratif" => lang
            .pick("Contact administratif", "Administrative contact")
            .to_owned(),
        other => format!("{} « {other} »", lang.pick("Contact", "Contact")),
    }
}

/// One labelled input, with its error (if any) tied to it.
fn input(
    role: &str,
    field: &str,
    label: &str,
    (kind, autocomplete): (&str, &str),
    value: &str,
    errors: &FieldErrors,
) -> Markup {
    let name = format!("{role}.{field}");
    let id = format!("{role}-{field}");
    let error = errors.get(&name);
    let error_id = format!("{id}-error");
    html! {
        div.input-group {
            label.label for=(id) { (label) }
            input.input #(id) type=(kind) name=(name) value=(value) autocomplete=(autocomplete)
                aria-invalid=[error.map(|_| "true")]
                aria-describedby=[error.map(|_| error_id.as_str())];
            @if let Some(e) = error {
                p.error-text #(error_id) { (e) }
            }
        }
    }
}

// ----- applications -----------------------------------------------------

/// The page of application `client_id`.
fn application_path(client_id: &str) -> String {
    format!("/dashboard/applications/{client_id}")
}

/// What the application page shows besides its state: an error on the
/// certificate form, with the CSR sent.
#[derive(Default)]
struct Feedback<'a> {
    error: Option<String>,
    csr: &'a str,
}

/// `GET /dashboard/applications/{client_id}`.
pub fn application_page(s: &Session<'_>, client_id: &str) -> Response<Body> {
    let snap = s.state.registry.snapshot();
    match s.own_application(&snap, client_id) {
        None => s.not_found(),
        Some(app) => {
            let page = application_markup(s, &snap, &app, &Feedback::default());
            respond(StatusCode::OK, s.lang, page)
        }
    }
}

/// The application page: its facts, its secret form, its certificates
/// (each active one with a revoke form), the CSR form.
fn application_markup(
    s: &Session<'_>,
    snap: &Snapshot,
    app: &Application,
    feedback: &Feedback<'_>,
) -> Markup {
    let lang = s.lang;
    let cid = app.client_id.as_str();
    let base = application_path(cid);
    let now = OffsetDateTime::now_utc();
    let mut certs = snap.certificates_of(&app.client_id);
    certs.sort_by_key(|c| std::cmp::Reverse(c.registered_at));
    let active = certs.iter().filter(|c| is_active(c, now)).count();
    let max = s.state.max_certificates;
    let head = [
        lang.pick("Empreinte (SHA-256)", "Thumbprint (SHA-256)"),
        lang.pick("Sujet", "Subject"),
        lang.pick("Valide jusqu'au", "Valid until"),
        lang.t(Msg::Status),
        lang.t(Msg::Action),
    ];
    let secret_action = format!("{base}/secret");
    let issue_action = format!("{base}/certificates");
    let body = html! {
        p { (environment_badge(lang, app.environment)) " " (status_badge(lang, app.status)) }
        dl.facts {
            dt { (lang.t(Msg::ClientId)) } dd { code { (cid) } }
            dt { (lang.t(Msg::Quota)) } dd { (app.quota_per_minute) " " (lang.pick("appels par minute", "calls per minute")) }
        }
        @if let Some(error) = &feedback.error {
            (alert(Tone::Error, true, lang.t(Msg::ActionFailedTitle), html! { (error) }))
        }
        (section("secret", lang.pick("Secret client", "Client secret"), html! {
            p { (lang.pick(
                "Le secret sert à l'authentification client_secret_basic, toujours avec le \
                 certificat. Un nouveau secret remplace l'ancien aussitôt : l'ancien est refusé \
                 dès cet envoi. Il ne s'affiche qu'une fois.",
                "The secret authenticates client_secret_basic, always with the certificate. \
                 A new secret replaces the old one at once: the old one is refused from this \
                 post on. It is shown once.")) }
            form method="post" action=(secret_action) {
                (s.token_field(&secret_action))
                button.button type="submit" { (lang.pick("Générer un nouveau secret", "Generate a new secret")) }
            }
        }))
        (section("certificates", lang.pick("Certificats", "Certificates"), html! {
            p { (lang.pick(
                format!("{active} certificat(s) actif(s) sur {max} autorisés. Révoquer un certificat le refuse aussitôt, avec les jetons émis pour lui."),
                format!("{active} active certificate(s) of {max} allowed. A revoked certificate is refused at once, with the tokens issued to it."))) }
            (table("certificates-title", &head, html! {
                @for c in &certs {
                    @let thumb = c.thumbprint.as_str();
                    tr {
                        td { code { (thumb.get(..16).unwrap_or(thumb)) "…" } }
                        td { (c.subject) }
                        td { (c.not_after.date()) }
                        td { (cert_badge(lang, c, now)) }
                        td {
                            @if !is_active(c, now) {
                                "—"
                            } @else if thumb == s.thumbprint {
                                (lang.pick("certificat de cette connexion", "certificate of this connection"))
                            } @else {
                                @let action = format!("{base}/certificates/{thumb}/revoke");
                                form method="post" action=(action) {
                                    (s.token_field(&action))
                                    button.button.button--secondary.button--sm type="submit"
                                        aria-label=(format!("{} {}…", lang.pick("Révoquer le certificat", "Revoke certificate"), thumb.get(..16).unwrap_or(thumb))) {
                                        (lang.pick("Révoquer", "Revoke"))
                                    }
                                }
                            }
                        }
                    }
                }
            }))
        }))
        (section("new-certificate", lang.pick("Nouveau certificat", "New certificate"), html! {
            p { (lang.pick(
                "Créez une clé et une demande (CSR) sur votre serveur, puis collez ici la demande ; \
                 la clé ne quitte pas votre serveur :",
                "Create a key and a request (CSR) on your server, then paste the request here; \
                 the key never leaves your server:")) }
            pre.pem tabindex="0" { code { "openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \\\n    -keyout app.key -out app.csr -subj \"/O=" (s.partner.name) "/CN=" (app.name) "\"" } }
            form method="post" action=(issue_action) {
                (s.token_field(&issue_action))
                div.input-group {
                    label.label for="csr" {
                        (lang.pick("Demande de certificat (CSR, format PEM)", "Certificate request (CSR, PEM)"))
                        span.hint { "-----BEGIN CERTIFICATE REQUEST----- …" }
                    }
                    textarea.input #csr name="csr" rows="8" spellcheck="false"
                        aria-invalid=[feedback.error.as_ref().filter(|_| !feedback.csr.is_empty()).map(|_| "true")] {
                        (feedback.csr)
                    }
                }
                button.button type="submit" { (lang.pick("Obtenir le certificat", "Get the certificate")) }
            }
            p { (lang.pick(
                "Avant l'expiration, votre serveur peut aussi renouveler son certificat seul, \
                 avec le certificat en cours (EST, RFC 7030) : /.well-known/est/simplereenroll \
                 sur l'adresse de l'environnement.",
                "Before expiry, your server can also renew its certificate by itself with the \
                 current one (EST, RFC 7030): /.well-known/est/simplereenroll on the \
                 environment's address.")) }
        }))
        p { a href="/dashboard" { (lang.t(Msg::BackToDashboard)) } }
    };
    let title = format!("{} {}", lang.t(Msg::Application), app.name);
    page(lang, &title, body)
}

/// Whether `c` is active (not revoked, not expired) at `now`.
fn is_active(c: &CertificateRecord, now: OffsetDateTime) -> bool {
    c.status == CertStatus::Active && c.not_after > now
}

/// A certificate's state as a badge.
fn cert_badge(lang: Lang, c: &CertificateRecord, now: OffsetDateTime) -> Markup {
    match (c.status, c.not_after > now) {
        (CertStatus::Revoked, _) => badge(Tone::Error, lang.pick("révoqué", "revoked")),
        (_, false) => badge(Tone::Warning, lang.t(Msg::Expired)),
        _ => badge(Tone::Success, lang.pick("actif", "active")),
    }
}

/// `POST /dashboard/applications/{client_id}/secret`: a new secret, shown
/// once on the answer page (never stored in clear, never traced).
pub async fn rotate_secret(
    s: &Session<'_>,
    client_id: &str,
    req: Request<RequestBody>,
) -> Response<Body> {
    let snap = s.state.registry.snapshot();
    let owned = s.own_application(&snap, client_id).is_some();
    let base = application_path(client_id);
    if let Err(refused) = s.posted(req, &format!("{base}/secret"), owned).await {
        return refused;
    }
    let rotated = match s.state.registry.rotate_secret(client_id).await {
        Ok(rotated) => rotated,
        Err(e) => return registry_refusal(s, &e, &base),
    };
    let lang = s.lang;
    let body = html! {
        (alert(Tone::Warning, true, lang.pick("Copiez ce secret maintenant", "Copy this secret now"),
            html! { (lang.pick(
                "Il ne sera plus jamais affiché. L'ancien secret est déjà refusé.",
                "It will never be shown again. The old secret is already refused.")) }))
        dl.facts {
            dt { (lang.t(Msg::ClientId)) } dd { code { (rotated.client_id) } }
            dt { (lang.pick("Nouveau secret client", "New client secret")) }
            dd { code #secret { (rotated.client_secret) } }
        }
        p { a href=(base) { (lang.pick("Retour à l'application", "Back to the application")) } }
    };
    let title = lang.pick("Nouveau secret client", "New client secret");
    respond(StatusCode::OK, lang, page(lang, title, body))
}

/// `POST /dashboard/applications/{client_id}/certificates` (field `csr`):
/// a certificate signed by the application's environment CA, registered
/// to it within `[dashboard] max_certificates_per_application`; the PEM
/// on the answer page. A bad CSR or a full application: the page again
/// with the reason (400 / 409), nothing registered.
pub async fn issue_certificate(
    s: &Session<'_>,
    client_id: &str,
    req: Request<RequestBody>,
) -> Response<Body> {
    let snap = s.state.registry.snapshot();
    let app = s.own_application(&snap, client_id);
    let action = format!("{}/certificates", application_path(client_id));
    let fields = match s.posted(req, &action, app.is_some()).await {
        Ok(fields) => fields,
        Err(refused) => return refused,
    };
    let Some(app) = app else {
        return s.not_found();
    };
    let lang = s.lang;
    let csr = fields.get("csr").trim();
    let again = |status: StatusCode, error: String| {
        let feedback = Feedback {
            error: Some(error),
            csr,
        };
        let snap = s.state.registry.snapshot();
        respond(status, lang, application_markup(s, &snap, &app, &feedback))
    };
    let now = OffsetDateTime::now_utc();
    let max = s.state.max_certificates;
    let active = snap
        .certificates_of(&app.client_id)
        .iter()
        .filter(|c| is_active(c, now))
        .count();
    if active >= max {
        return again(
            StatusCode::CONFLICT,
            lang.pick(
                format!("Cette application a déjà {active} certificats actifs (au plus {max}) : révoquez-en un d'abord."),
                format!("This application already holds {active} active certificates (at most {max}): revoke one first."),
            ),
        );
    }
    if csr.is_empty() {
        let text = lang.pick(
            "Collez la demande de certificat (CSR) au format PEM.",
            "Paste the certificate request (CSR) in PEM.",
        );
        return again(StatusCode::BAD_REQUEST, text.to_owned());
    }
    let env = s.state.reloader.env(app.environment);
    let record = env.ca.issue(csr, now).and_then(|der| {
        CertificateRecord::active(
            &app.client_id,
            app.environment,
            &der,
            CertOrigin::Issued,
            now,
        )
    });
    let record = match record {
        Ok(record) => record,
        Err(e) => {
            let text = lang.pick(
                "Demande de certificat illisible",
                "Unreadable certificate request",
            );
            return again(StatusCode::BAD_REQUEST, format!("{text} : {e}"));
        }
    };
    let limit = Some((max, now));
    let stored = s.state.registry.add_certificate_within(record, limit);
    let stored = match stored.await {
        Ok(stored) => stored,
        Err(RegistryError::Conflict { message, .. }) => {
            return again(StatusCode::CONFLICT, message);
        }
        Err(e) => return registry_refusal(s, &e, &application_path(client_id)),
    };
    let body = html! {
        (alert(Tone::Success, false, lang.pick("Certificat émis et enregistré", "Certificate issued and registered"),
            html! { (lang.pick(
                "Il est accepté dès maintenant pour cette application, avec la clé de votre demande.",
                "It is accepted from now on for this application, with your request's key.")) }))
        dl.facts {
            dt { (lang.pick("Empreinte (SHA-256)", "Thumbprint (SHA-256)")) } dd { code { (stored.thumbprint) } }
            dt { (lang.pick("Sujet", "Subject")) } dd { (stored.subject) }
            dt { (lang.pick("Valide jusqu'au", "Valid until")) } dd { (stored.not_after.date()) }
        }
        p { (lang.pick("Enregistrez ce certificat (par exemple dans app.pem) :", "Save this certificate (for instance as app.pem):")) }
        pre.pem #certificate tabindex="0" { code { (stored.pem) } }
        p { a href=(application_path(client_id)) { (lang.pick("Retour à l'application", "Back to the application")) } }
    };
    let title = lang.pick("Nouveau certificat", "New certificate");
    respond(StatusCode::OK, lang, page(lang, title, body))
}

/// `POST /dashboard/applications/{client_id}/certificates/{thumbprint}/revoke`:
/// refused at once (tokens bound to it too: they need the certificate);
/// 303 back to the application. The certificate signed in with is kept
/// (409): the partner would lock itself out; it signs in with another.
pub async fn revoke_certificate(
    s: &Session<'_>,
    (client_id, thumbprint): (&str, &str),
    req: Request<RequestBody>,
) -> Response<Body> {
    let snap = s.state.registry.snapshot();
    let app = s.own_application(&snap, client_id);
    let owned = app.is_some()
        && snap
            .certificates_of(&crate::domain::ClientId::new(client_id))
            .iter()
            .any(|c| c.thumbprint.as_str() == thumbprint);
    let base = application_path(client_id);
    let action = format!("{base}/certificates/{thumbprint}/revoke");
    if let Err(refused) = s.posted(req, &action, owned).await {
        return refused;
    }
    let Some(app) = app else {
        return s.not_found();
    };
    if thumbprint == s.thumbprint {
        let feedback = Feedback {
            error: Some(
                s.lang
                    .pick(
                        "Ce certificat est celui de cette connexion : connectez-vous avec un \
                         autre certificat de l'application pour le révoquer.",
                        "This is the certificate of this connection: sign in with another \
                         certificate of the application to revoke it.",
                    )
                    .to_owned(),
            ),
            csr: "",
        };
        let page = application_markup(s, &snap, &app, &feedback);
        return respond(StatusCode::CONFLICT, s.lang, page);
    }
    let now = OffsetDateTime::now_utc();
    match s
        .state
        .registry
        .revoke_certificate(client_id, thumbprint, now)
        .await
    {
        Ok(_) => redirect_to(base),
        Err(e) => registry_refusal(s, &e, &base),
    }
}

/// A registry write that failed, as a page: 404 for an id that vanished,
/// 409 for a clash, 400 for bad input, 503 when the store failed (nothing
/// was changed then either: the registry publishes only what it wrote).
fn registry_refusal(s: &Session<'_>, e: &RegistryError, back: &str) -> Response<Body> {
    let lang = s.lang;
    let (status, text) = match e {
        RegistryError::NotFound { .. } => return s.not_found(),
        RegistryError::Conflict { message, .. } => (StatusCode::CONFLICT, message.clone()),
        RegistryError::Invalid { field, message } => {
            (StatusCode::BAD_REQUEST, format!("{field} : {message}"))
        }
        _ => {
            tracing::warn!(error = %e, "dashboard: registry write failed");
            let text = lang.pick(
                "Le registre n'a pas pu être modifié (stockage indisponible) : rien n'a \
                 changé. Réessayez dans un instant.",
                "The registry could not be changed (storage unavailable): nothing changed. \
                 Try again in a moment.",
            );
            (StatusCode::SERVICE_UNAVAILABLE, text.to_owned())
        }
    };
    s.says(status, lang.t(Msg::ActionFailedTitle), &text, back)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(role: &str, nom: &str, email: &str, tel: &str) -> (String, [String; 3]) {
        (role.into(), [nom.into(), email.into(), tel.into()])
    }

    #[test]
    fn contacts_are_checked_field_by_field() {
        let (c, e) = checked_contacts(
            Lang::Fr,
            &[
                row(
                    "technique",
                    "Jeanne Dupont",
                    "jeanne@exemple.fr",
                    "01 23 45 67 89",
                ),
                row("administratif", "", "", ""),
            ],
        );
        assert!(e.is_empty(), "{e:?}");
        assert_eq!(c.len(), 1, "a blank role is removed");
        let (_, e) = checked_contacts(Lang::Fr, &[row("technique", "", "pas-une-adresse", "12")]);
        let fields: Vec<_> = e.keys().map(String::as_str).collect();
        assert_eq!(
            fields,
            ["technique.email", "technique.nom", "technique.telephone"]
        );
        let (_, e) = checked_contacts(Lang::En, &[row("administratif", "A", "a@b.fr", "")]);
        assert!(e["technique.email"].contains("technical contact is required"));
    }

    #[test]
    fn roles_are_lowercase_words() {
        assert!(is_role("technique") && is_role("support_n"));
        assert!(!is_role("juridique_2"));
        assert!(!is_role("") && !is_role("Technique") && !is_role("a.b"));
    }
}
