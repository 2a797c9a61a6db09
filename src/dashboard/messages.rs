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

    /// A chart's text alternative: its span, total and peak.
    pub fn chart_summary(self, s: &ChartSummary<'_>) -> String {
        let ChartSummary {
            bars,
            first,
            last,
            total,
            peak,
            peak_at,
            unit,
        } = s;
        self.pick(
            format!(
                "{bars} barres, de {first} à {last} : {total} {unit} au total, au plus {peak} ({peak_at})."
            ),
            format!(
                "{bars} bars, from {first} to {last}: {total} {unit} in all, at most {peak} ({peak_at})."
            ),
        )
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

/// What a chart's text alternative says ([`Lang::chart_summary`]).
pub struct ChartSummary<'a> {
    /// How many bars.
    pub bars: usize,
    /// The first bar's label.
    pub first: &'a str,
    /// The last bar's label.
    pub last: &'a str,
    /// The sum of the values.
    pub total: u64,
    /// The largest value.
    pub peak: u64,
    /// The label of the (first) largest value.
    pub peak_at: &'a str,
    /// What the values count, in the page's language (`appels`).
    pub unit: &'a str,
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
}
