//! The texts of the pages, in French and in English: one typed catalogue
//! ([`Msg`], one line per fixed text) and a few phrases built from values
//! (a number of days, a date). A page asks `lang.t(Msg::…)`; no page
//! writes a label of its own, so a missing translation does not compile
//! and both languages stay side by side here, never on a page. Mostly a
//! data table, hence the length.

use super::lang::Lang;
use crate::abuse::Kind;
use crate::audit::Decision;
use crate::chain::Control;
use crate::domain::{Environment, Status};
use crate::notify::ObjectKind;
use std::fmt::Display;

/// Declares [`Msg`] and its `(French, English)` table.
macro_rules! catalogue {
    ($($name:ident => ($fr:literal, $en:literal),)*) => {
        /// A fixed text of the pages (its French text is its doc).
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub enum Msg {
            $(#[doc = $fr] $name,)*
        }

        impl Msg {
            /// Every message, in catalogue order.
            #[cfg(test)]
            pub const ALL: &[Msg] = &[$(Msg::$name,)*];

            /// `(French, English)`.
            fn texts(self) -> (&'static str, &'static str) {
                match self {
                    $(Msg::$name => ($fr, $en),)*
                }
            }
        }
    };
}

catalogue! {
    // The layout (html.rs).
    SkipLinks => ("Accès rapide", "Quick access"),
    SkipToContent => ("Aller au contenu", "Skip to content"),
    ServiceName => ("OPALE — passerelle API", "OPALE — API gateway"),
    ServiceTagline => (
        "Accès des partenaires habilités aux données fiscales des entreprises",
        "Authorised partners' access to companies' tax data"
    ),
    FooterText => (
        "OPALE est la passerelle par laquelle les partenaires habilités appellent l'API des données fiscales des entreprises.",
        "OPALE is the gateway through which authorised partners call the companies' tax data API."
    ),
    ChartData => ("Données du graphique", "Chart data"),
    // Sign-in and error pages (mod.rs, admin.rs).
    SignInTitle => ("Connexion par certificat", "Sign in with a certificate"),
    SignInText => (
        "Ce tableau de bord s'ouvre avec le certificat client enregistré de votre application. Importez-le dans votre navigateur (fichier PKCS #12) puis rechargez la page.",
        "This dashboard opens with your application's registered client certificate. Import it into your browser (a PKCS #12 file), then reload the page."
    ),
    RefusedTitle => ("Accès refusé", "Access refused"),
    RefusedText => (
        "Ce certificat n'ouvre aucun tableau de bord : il n'est enregistré pour aucune application active, ni pour un administrateur.",
        "This certificate opens no dashboard: it is registered to no active application, nor to an administrator."
    ),
    NotFoundTitle => ("Page introuvable", "Page not found"),
    NotFoundText => ("Cette adresse ne mène à aucune page.", "This address leads to no page."),
    BackToDashboard => ("Retour au tableau de bord", "Back to the dashboard"),
    InternalErrorTitle => ("Erreur interne", "Internal error"),
    InternalErrorText => (
        "La page n'a pas pu être construite. Réessayez dans un instant.",
        "The page could not be built. Try again in a moment."
    ),
    CrossOriginText => (
        "Requête venue d'un autre site refusée : ce formulaire ne s'envoie que depuis le tableau de bord.",
        "Request from another site refused: this form can only be sent from the dashboard."
    ),
    FormExpiredText => (
        "Formulaire expiré ou incomplet : rien n'a été modifié. Rechargez la page et envoyez-le de nouveau.",
        "Form expired or incomplete: nothing was changed. Reload the page and send it again."
    ),
    ActionFailedTitle => ("Action impossible", "Action failed"),
    ActionFailedText => ("Ce partenaire n'a pas pu être modifié.", "This partner could not be changed."),
    // The admin dashboard (admin.rs).
    AdminTitle => ("Administration", "Administration"),
    TrailDamaged => ("Piste d'audit altérée", "Audit trail damaged"),
    TrailSee => ("Vérifier avec", "Check with"),
    SecurityEvents => ("Événements de sécurité", "Security events"),
    NoOpenEvent => ("Aucun événement ouvert.", "No open event."),
    Time => ("Heure (UTC)", "Time (UTC)"),
    Kind => ("Type", "Kind"),
    Application => ("Application", "Application"),
    IpAddress => ("Adresse IP", "IP address"),
    Reason => ("Motif", "Reason"),
    Identifier => ("Identifiant", "Identifier"),
    Partners => ("Partenaires", "Partners"),
    Name => ("Nom", "Name"),
    Siren => ("SIREN", "SIREN"),
    Applications => ("Applications", "Applications"),
    Status => ("Statut", "Status"),
    Action => ("Action", "Action"),
    Suspend => ("Suspendre", "Suspend"),
    Resume => ("Réactiver", "Resume"),
    DenialsByControl => ("Refus récents par contrôle", "Recent denials by control"),
    Control => ("Contrôle", "Control"),
    Count => ("Nombre", "Count"),
    TopPartners => ("Partenaires les plus actifs", "Top partners by calls"),
    Partner => ("Partenaire", "Partner"),
    Calls => ("Appels", "Calls"),
    AdminActions => ("Actions d'administration récentes", "Recent admin actions"),
    Who => ("Qui", "Who"),
    What => ("Quoi", "What"),
    HttpStatus => ("Code HTTP", "HTTP status"),
    NothingYet => ("Rien pour l'instant.", "Nothing yet."),
    // The usage page (usage/) and its summary on the partner dashboard.
    UsagePage => ("Usage de l'API sur 30 jours", "API usage over 30 days"),
    UsageLink => ("Voir l'usage détaillé", "See detailed usage"),
    UsageCalls => (
        "Un appel est une requête à l'API de données (/opale/v1/entreprises/…) reçue sur le bac à sable ou la production et tracée pour l'une de vos applications, acceptée ou refusée. Les demandes de jeton, les routes de santé et de découverte, le renouvellement EST et les requêtes refusées avant la lecture de leur chemin (X-Correlation-ID absent) ne sont pas comptés ; ils figurent parmi les dernières requêtes du tableau de bord.",
        "A call is a request to the data API (/opale/v1/entreprises/…) received on the sandbox or production listener and traced for one of your applications, admitted or denied. Token requests, health and discovery routes, EST renewal and requests refused before their path was read (no X-Correlation-ID) are not counted; they are listed among the dashboard's last requests."
    ),
    CsvDays => ("Télécharger les appels par jour (CSV)", "Download calls per day (CSV)"),
    CsvDenials => ("Télécharger les refus par code (CSV)", "Download denials by code (CSV)"),
    Admitted => ("Acceptés", "Admitted"),
    Denied => ("Refusés", "Denied"),
    Total => ("Total", "Total"),
    DenialsByCode => ("Refus par code d'erreur", "Denials by error code"),
    CodeMeaning => ("Code et signification", "Code and meaning"),
    NoDenial => ("Aucun refus sur ces 30 jours.", "No denial over these 30 days."),
    PeakTitle => ("Pic d'appels par minute face au quota", "Peak calls per minute against the quota"),
    PeakPerMinute => ("Pic d'appels par minute", "Peak calls per minute"),
    QuotaPerMinute => ("Quota par minute", "Quota per minute"),
    PartialTitle => ("Données partielles", "Partial data"),
    // The partner dashboard (partner.rs).
    PartnerTitle => ("Tableau de bord partenaire", "Partner dashboard"),
    Refresh => ("Actualiser la page", "Refresh the page"),
    AppsTitle => ("Applications, quotas et échéances", "Applications, quotas and expiry"),
    ClientId => ("Identifiant client", "Client id"),
    Quota => ("Quota", "Quota"),
    QuotaUnavailable => ("indisponible", "unavailable"),
    Grant => ("Habilitation", "Grant"),
    Certificate => ("Certificat", "Certificate"),
    Expired => ("expiré", "expired"),
    NoticesTitle => ("Avis d'expiration", "Expiry notices"),
    NoNotice => ("Aucun avis.", "No notice."),
    Object => ("Objet", "Object"),
    Threshold => ("Seuil", "Threshold"),
    Expiry => ("Expiration", "Expiry"),
    Delivery => ("Envoi", "Delivery"),
    Sent => ("envoyé", "sent"),
    Pending => ("à renvoyer", "to be retried"),
    DashboardOnly => ("tableau de bord seulement", "dashboard only"),
    NoRecipient => ("aucun contact e-mail", "no contact e-mail"),
    UsageTitle => ("Appels par jour sur 30 jours", "Calls per day over 30 days"),
    CallsPerDay => ("Appels par jour", "Calls per day"),
    Day => ("Jour", "Day"),
    ErrorsByControl => ("Refus par contrôle", "Denials by control"),
    Denials => ("Refus", "Denials"),
    LastRequests => ("50 dernières requêtes", "Last 50 requests"),
    Request => ("Requête", "Request"),
    Decision => ("Décision", "Decision"),
}

impl Lang {
    /// The text of `m` in this language.
    pub fn t(self, m: Msg) -> &'static str {
        let (fr, en) = m.texts();
        self.pick(fr, en)
    }

    /// "expires in N days".
    pub fn expires_in(self, days: i64) -> String {
        self.pick(
            format!("expire dans {days} jours"),
            format!("expires in {days} days"),
        )
    }

    /// "N of M calls left this minute".
    pub fn quota_left(self, remaining: u64, limit: u64) -> String {
        self.pick(
            format!("{remaining} appels restants sur {limit} cette minute"),
            format!("{remaining} of {limit} calls left this minute"),
        )
    }

    /// "N days" (a notice's threshold).
    pub fn days(self, n: impl std::fmt::Display) -> String {
        self.pick(format!("{n} jours"), format!("{n} days"))
    }

    /// "sent on DATE at HH:MM UTC".
    pub fn sent_at(self, date: impl std::fmt::Display, hour: u8, minute: u8) -> String {
        self.pick(
            format!("envoyé le {date} à {hour:02}:{minute:02} UTC"),
            format!("sent on {date} at {hour:02}:{minute:02} UTC"),
        )
    }

    /// "record N" (the first altered record of the trail).
    pub fn record(self, n: u64) -> String {
        self.pick(format!("enregistrement {n}"), format!("record {n}"))
    }

    /// "From DATE to DATE (UTC days)." (the usage page's span).
    pub fn period(self, first: impl Display, last: impl Display) -> String {
        self.pick(
            format!("Du {first} au {last} (jours UTC)."),
            format!("From {first} to {last} (UTC days)."),
        )
    }

    /// "N calls over the last 30 days, M of them denied." (the partner
    /// dashboard's summary of the usage page).
    pub fn usage_summary(self, calls: u64, denied: u64) -> String {
        self.pick(
            format!("{calls} appels sur les 30 derniers jours, dont {denied} refusés."),
            format!("{calls} calls over the last 30 days, {denied} of them denied."),
        )
    }

    /// The text alternative of an application's calls per day.
    pub fn calls_summary(self, s: &CallsSummary<'_>) -> String {
        let CallsSummary {
            first,
            last,
            admitted,
            denied,
            busiest,
        } = s;
        let span = self.pick(
            format!("Du {first} au {last} : {admitted} appels acceptés et {denied} refusés"),
            format!("From {first} to {last}: {admitted} calls admitted and {denied} denied"),
        );
        match busiest {
            Some((day, n)) => self.pick(
                format!("{span} ; au plus {n} appels en un jour ({day})."),
                format!("{span}; at most {n} calls in one day ({day})."),
            ),
            None => format!("{span}."),
        }
    }

    /// The text alternative of an application's peaks against its quota.
    pub fn peaks_summary(self, s: &PeaksSummary<'_>) -> String {
        let PeaksSummary {
            first,
            last,
            highest,
            quota,
            days_at_quota,
        } = s;
        let days = self.days_count(*days_at_quota);
        let peak = match highest {
            Some((day, n)) => self.pick(
                format!("au plus {n} appels en une minute ({day})"),
                format!("at most {n} calls in one minute ({day})"),
            ),
            None => self.pick("aucun appel", "no call").to_owned(),
        };
        self.pick(
            format!(
                "Du {first} au {last} : {peak} ; quota de {quota} appels par minute, atteint {days}."
            ),
            format!(
                "From {first} to {last}: {peak}; quota of {quota} calls per minute, reached on {days}."
            ),
        )
    }

    /// The text alternative of the denials by code.
    pub fn codes_summary(self, total: u64, codes: usize, most: (&str, u64)) -> String {
        let (code, n) = most;
        self.pick(
            format!("{total} refus, {codes} codes ; le plus fréquent : {code} ({n} refus)."),
            format!("{total} denials, {codes} codes; the most frequent: {code} ({n} denials)."),
        )
    }

    /// The quota line's label: "quota: 50 calls per minute".
    pub fn quota_line(self, quota: u32) -> String {
        self.pick(
            format!("quota : {quota} appels par minute"),
            format!("quota: {quota} calls per minute"),
        )
    }

    /// Why the counts may be short: the scan stopped at its limit.
    pub fn partial(self, records: usize) -> String {
        self.pick(
            format!(
                "La lecture de la piste s'est arrêtée à sa limite de {records} enregistrements \
                 avant le premier jour : les jours les plus anciens peuvent être incomplets."
            ),
            format!(
                "Reading the trail stopped at its limit of {records} records before the first \
                 day: the oldest days may be incomplete."
            ),
        )
    }

    /// "1 day", "N days" (a count of days in a sentence).
    fn days_count(self, n: usize) -> String {
        match n {
            1 => self.pick("1 jour", "1 day").to_owned(),
            n => self.pick(format!("{n} jours"), format!("{n} days")),
        }
    }

    /// A partner's or an application's status.
    pub fn status(self, s: Status) -> &'static str {
        match s {
            Status::Active => self.pick("actif", "active"),
            Status::Suspended => self.pick("suspendu", "suspended"),
        }
    }

    /// A traced decision.
    pub fn decision(self, d: Decision) -> &'static str {
        match d {
            Decision::Admitted => self.pick("accepté", "admitted"),
            Decision::Denied => self.pick("refusé", "denied"),
        }
    }

    /// An environment.
    pub fn environment(self, e: Environment) -> &'static str {
        match e {
            Environment::Sandbox => self.pick("bac à sable", "sandbox"),
            Environment::Production => "production",
        }
    }

    /// The control that refused a request (docs/contract.md §2).
    pub fn control(self, c: Control) -> &'static str {
        let (fr, en) = match c {
            Control::Hygiene => ("hygiène de la requête", "request hygiene"),
            Control::Certificate => ("certificat", "certificate"),
            Control::Ip => ("adresse IP", "IP address"),
            Control::Token => ("jeton", "token"),
            Control::Identity => ("identité", "identity"),
            Control::Rights => ("droits", "rights"),
            Control::Quota => ("quota", "quota"),
            Control::Service => ("disponibilité du service", "service availability"),
            Control::Data => ("données", "data"),
            Control::TokenEndpoint => ("émission de jeton", "token endpoint"),
            Control::Admin => ("administration", "administration"),
        };
        self.pick(fr, en)
    }

    /// What a security event detected.
    pub fn security_kind(self, k: Kind) -> &'static str {
        let (fr, en) = match k {
            Kind::DenialBurst => ("rafale de refus", "burst of denials"),
            Kind::NewAddress => ("nouvelle adresse d'appel", "new caller address"),
            Kind::QuotaStreak => (
                "quota épuisé minute après minute",
                "quota exhausted minute after minute",
            ),
            Kind::OffHoursSurge => (
                "pic d'appels hors des heures ouvrées",
                "call surge off hours",
            ),
        };
        self.pick(fr, en)
    }

    /// What an expiry notice is about.
    pub fn notice_object(self, k: ObjectKind) -> &'static str {
        match k {
            ObjectKind::Certificate => self.pick("certificat", "certificate"),
            ObjectKind::Application => {
                self.pick("application (habilitation)", "application (grant)")
            }
        }
    }
}

/// What the text alternative of calls per day says
/// ([`Lang::calls_summary`]).
pub struct CallsSummary<'a> {
    /// The first day shown.
    pub first: &'a str,
    /// The last day shown.
    pub last: &'a str,
    /// Calls admitted over the days shown.
    pub admitted: u64,
    /// Calls denied over the days shown.
    pub denied: u64,
    /// The (first) day with the most calls and their number, if any call.
    pub busiest: Option<(&'a str, u64)>,
}

/// What the text alternative of peaks per minute says
/// ([`Lang::peaks_summary`]).
pub struct PeaksSummary<'a> {
    /// The first day shown.
    pub first: &'a str,
    /// The last day shown.
    pub last: &'a str,
    /// The (first) day with the highest peak and that peak, if any call.
    pub highest: Option<(&'a str, u64)>,
    /// The application's quota, calls per minute.
    pub quota: u32,
    /// Days whose peak reached the quota.
    pub days_at_quota: usize,
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn every_message_has_a_text_in_each_language() {
        let mut seen = HashSet::new();
        for m in Msg::ALL {
            let (fr, en) = m.texts();
            assert!(!fr.trim().is_empty() && !en.trim().is_empty(), "{m:?}");
            assert!(
                !fr.contains(" / ") && !en.contains(" / "),
                "{m:?}: both languages"
            );
            assert!(seen.insert(fr), "{m:?}: French text used twice");
            assert_eq!(Lang::Fr.t(*m), fr);
            assert_eq!(Lang::En.t(*m), en);
        }
    }

    #[test]
    fn phrases_follow_the_language() {
        assert_eq!(Lang::Fr.expires_in(7), "expire dans 7 jours");
        assert_eq!(Lang::En.expires_in(7), "expires in 7 days");
        assert_eq!(
            Lang::Fr.sent_at("2026-12-01", 9, 5),
            "envoyé le 2026-12-01 à 09:05 UTC"
        );
        assert_eq!(Lang::En.status(Status::Suspended), "suspended");
        assert_eq!(Lang::Fr.decision(Decision::Denied), "refusé");
    }

    #[test]
    fn the_usage_charts_say_what_they_show() {
        let calls = CallsSummary {
            first: "2026-11-08",
            last: "2026-12-07",
            admitted: 4,
            denied: 1,
            busiest: Some(("2026-12-07", 5)),
        };
        assert_eq!(
            Lang::Fr.calls_summary(&calls),
            "Du 2026-11-08 au 2026-12-07 : 4 appels acceptés et 1 refusés ; \
             au plus 5 appels en un jour (2026-12-07)."
        );
        let quiet = CallsSummary {
            busiest: None,
            ..calls
        };
        assert_eq!(
            Lang::En.calls_summary(&quiet),
            "From 2026-11-08 to 2026-12-07: 4 calls admitted and 1 denied."
        );
        let peaks = PeaksSummary {
            first: "2026-11-08",
            last: "2026-12-07",
            highest: Some(("2026-12-07", 6)),
            quota: 5,
            days_at_quota: 1,
        };
        assert_eq!(
            Lang::Fr.peaks_summary(&peaks),
            "Du 2026-11-08 au 2026-12-07 : au plus 6 appels en une minute (2026-12-07) ; \
             quota de 5 appels par minute, atteint 1 jour."
        );
        let none = PeaksSummary {
            highest: None,
            days_at_quota: 0,
            ..peaks
        };
        assert_eq!(
            Lang::En.peaks_summary(&none),
            "From 2026-11-08 to 2026-12-07: no call; quota of 5 calls per minute, reached on 0 days."
        );
        assert_eq!(Lang::En.quota_line(50), "quota: 50 calls per minute");
    }
}
