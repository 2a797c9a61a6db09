//! Why a request was refused, in plain French or English (the page's
//! language), for the "last requests" table of the partner dashboard. One
//! sentence in each language per row of
//! the docs/contract.md §5 catalogue, keyed by [`Reason`]: the `match` in [`plain`]
//! is exhaustive, so a new catalogue row does not compile until it is
//! explained here. [`cause_of`] is the one place that reads the trace
//! record's code; [`meaning`] says what a code means in general (the
//! usage page's denials by code). Mostly a data table.

use super::lang::Lang;
use crate::audit::{Code, TraceEvent};
use crate::chain::Reason;

/// What a trace record says about a refusal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cause {
    /// A row of the catalogue.
    Row(Reason),
    /// Any other code: an OAuth error (`invalid_client`), or the HTTP
    /// status of a refused admin call.
    Other(String),
}

impl Cause {
    /// The code as the trace writes it (`910500`, `invalid_client`).
    pub fn code(&self) -> String {
        match self {
            Cause::Row(reason) => reason.code().to_string(),
            Cause::Other(code) => code.clone(),
        }
    }
}

/// The cause recorded in `e`, if any. The only reader of `e.code` in the
/// dashboards: when the trace's code becomes a typed value, this is the
/// one function to change.
pub fn cause_of(e: &TraceEvent) -> Option<Cause> {
    match e.code.as_ref()? {
        Code::Catalogue(reason) => Some(Cause::Row(*reason)),
        other => Some(other.to_string())
            .filter(|c| !c.is_empty())
            .map(Cause::Other),
    }
}

/// The explanation of `e`'s refusal in `lang`, empty when the record
/// carries no code (an admitted request).
pub fn explain(e: &TraceEvent, lang: Lang) -> String {
    let Some(cause) = cause_of(e) else {
        return String::new();
    };
    let (fr, en) = match cause {
        Cause::Row(reason) => plain(reason, e),
        Cause::Other(code) => (format!("refus {code}"), format!("refused ({code})")),
    };
    lang.pick(fr, en)
}

/// What a code means in general, in `lang` (the usage page's denials by
/// code): the sentence of [`explain`] without a record's IP or year.
pub fn meaning(cause: &Cause, lang: Lang) -> String {
    let generic = |fr: &str, en: &str| (fr.to_owned(), en.to_owned());
    let (fr, en) = match cause {
        Cause::Row(Reason::IpNotAllowed) => {
            generic("adresse IP non déclarée", "IP address not declared")
        }
        Cause::Row(Reason::YearNotGranted) => generic(
            "année non couverte par l'habilitation",
            "year not covered by the grant",
        ),
        Cause::Row(Reason::NoDataForYear) => generic(
            "aucune donnée pour l'année demandée",
            "no data for the year asked",
        ),
        Cause::Row(reason) => plain(*reason, &TraceEvent::default()),
        Cause::Other(_) => generic("code sans description", "code without a description"),
    };
    lang.pick(fr, en)
}

/// `(French, English)` for a catalogue row; the IP and year come from the
/// record. A table: one arm per row of docs/contract.md §5, in its order.
fn plain(reason: Reason, e: &TraceEvent) -> (String, String) {
    let year = e.year.map(|y| y.to_string()).unwrap_or_else(|| "?".into());
    let (fr, en) = match reason {
        Reason::CorrelationId => (
            "en-tête X-Correlation-ID absent ou invalide",
            "missing or invalid X-Correlation-ID header",
        ),
        Reason::SirenMalformed => ("SIREN invalide", "invalid SIREN"),
        Reason::AnneeMalformed => ("année mal formée", "malformed year"),
        Reason::BodyTooLarge => (
            "corps de la requête trop volumineux",
            "request body too large",
        ),
        Reason::BodyTimeout => (
            "corps de la requête incomplet dans le délai",
            "request body not complete in time",
        ),
        Reason::TooManyUnidentified => (
            "trop de requêtes refusées sans certificat depuis cette adresse",
            "too many refused requests without a certificate from this address",
        ),
        Reason::BodyInvalid => (
            "corps de la requête non conforme",
            "request body does not match its schema",
        ),
        Reason::IdempotencyConflict => (
            "clé Idempotency-Key déjà utilisée avec un autre corps",
            "Idempotency-Key already used with another body",
        ),
        Reason::CertMissing => (
            "aucun certificat client présenté",
            "no client certificate presented",
        ),
        Reason::CertUntrusted => (
            "certificat non reconnu, expiré ou pas encore valide",
            "certificate not trusted, expired or not yet valid",
        ),
        Reason::CertRevoked => ("certificat révoqué", "certificate revoked"),
        Reason::CertUnregistered => (
            "certificat non enregistré pour une application de cet environnement",
            "certificate not registered to an application here",
        ),
        Reason::IpNotAllowed => {
            let ip = e.ip.map(|a| a.to_string()).unwrap_or_default();
            return (
                format!("IP {ip} non déclarée"),
                format!("IP {ip} not declared"),
            );
        }
        Reason::TokenMissing => ("jeton d'accès absent", "access token missing"),
        Reason::TokenInvalid => (
            "jeton d'accès invalide, expiré ou révoqué",
            "access token invalid, expired or revoked",
        ),
        Reason::TokenBoundElsewhere => (
            "jeton lié à un autre certificat",
            "token bound to another certificate",
        ),
        Reason::ClientMismatch => (
            "jeton émis pour une autre application",
            "token issued to another application",
        ),
        Reason::Suspended => (
            "application ou partenaire suspendu",
            "application or partner suspended",
        ),
        Reason::ScopeNotGranted => ("périmètre (scope) non accordé", "scope not granted"),
        Reason::YearNotGranted => {
            return (
                format!("année {year} non couverte par l'habilitation"),
                format!("year {year} not covered by the grant"),
            );
        }
        Reason::GrantNotValidToday => (
            "habilitation hors de sa période de validité",
            "grant outside its validity period",
        ),
        Reason::OverQuota => ("quota de la minute atteint", "per-minute quota reached"),
        Reason::Unavailable => ("service en maintenance", "service under maintenance"),
        Reason::UpstreamTimeout => (
            "le fournisseur de données n'a pas répondu à temps",
            "the data provider timed out",
        ),
        Reason::UpstreamFailure => (
            "le fournisseur de données a échoué",
            "the data provider failed",
        ),
        Reason::NoRoute => ("ressource inexistante", "no such resource"),
        Reason::StorageFailure => (
            "stockage de la passerelle indisponible",
            "the gateway's storage is unavailable",
        ),
        Reason::UnknownCompany => (
            "aucune entreprise avec ce SIREN",
            "no company with that SIREN",
        ),
        Reason::NoDataForYear => {
            return (
                format!("aucune donnée pour l'année {year}"),
                format!("no data for year {year}"),
            );
        }
        Reason::NonDiffusible => (
            "entreprise non diffusible",
            "company not diffusible (its data is not public)",
        ),
    };
    (fr.to_owned(), en.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    fn denied(code: &str) -> TraceEvent {
        TraceEvent {
            ip: crate::audit::Address::parse("203.0.113.7"),
            year: Some(2019),
            code: Some(Code::parse(code)),
            ..TraceEvent::default()
        }
    }

    #[test]
    fn every_catalogue_row_has_its_own_explanation_in_both_languages() {
        let (mut fr_seen, mut en_seen) = (HashSet::new(), HashSet::new());
        for r in Reason::ALL {
            let (fr, en) = plain(r, &denied(""));
            assert!(!fr.is_empty() && !en.is_empty(), "{r:?}");
            assert!(fr_seen.insert(fr), "{r:?}: French text shared");
            assert!(en_seen.insert(en), "{r:?}: English text shared");
        }
    }

    #[test]
    fn catalogue_codes_are_rows_and_others_are_kept_as_text() {
        assert_eq!(
            cause_of(&denied("910500")),
            Some(Cause::Row(Reason::YearNotGranted))
        );
        for other in ["invalid_client", "404", "123"] {
            assert_eq!(cause_of(&denied(other)), Some(Cause::Other(other.into())));
        }
        assert_eq!(cause_of(&TraceEvent::default()), None);
        assert_eq!(cause_of(&denied("")), None);
    }

    #[test]
    fn the_record_fills_in_the_ip_and_the_year_in_one_language() {
        assert_eq!(
            explain(&denied("910200"), Lang::Fr),
            "IP 203.0.113.7 non déclarée"
        );
        assert_eq!(
            explain(&denied("910200"), Lang::En),
            "IP 203.0.113.7 not declared"
        );
        assert_eq!(
            explain(&denied("910500"), Lang::Fr),
            "année 2019 non couverte par l'habilitation"
        );
        assert_eq!(
            explain(&denied("910500"), Lang::En),
            "year 2019 not covered by the grant"
        );
        assert!(explain(&TraceEvent::default(), Lang::Fr).is_empty());
    }

    #[test]
    fn a_code_has_a_meaning_without_the_record() {
        let cause = |code: &str| cause_of(&denied(code)).unwrap();
        assert_eq!(cause("910500").code(), "910500");
        assert_eq!(
            meaning(&cause("910500"), Lang::Fr),
            "année non couverte par l'habilitation"
        );
        assert_eq!(
            meaning(&cause("910200"), Lang::En),
            "IP address not declared"
        );
        assert_eq!(
            meaning(&cause("900901"), Lang::Fr),
            "jeton d'accès invalide, expiré ou révoqué"
        );
        assert_eq!(cause("invalid_client").code(), "invalid_client");
        assert_eq!(
            meaning(&cause("invalid_client"), Lang::En),
            "code without a description"
        );
    }

    #[test]
    fn an_unknown_code_is_explained_generically() {
        assert_eq!(
            explain(&denied("invalid_client"), Lang::Fr),
            "refus invalid_client"
        );
        assert_eq!(explain(&denied("404"), Lang::En), "refused (404)");
    }
}
