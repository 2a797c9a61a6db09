//! `obligations-fiscales`: the taxes the company is registered for, with the
//! regime, the filing frequency and the forms each one calls for. They follow
//! from the company profile, so they are the same every year.

use super::date::Date;
use super::profile::{Profile, Regime};
use serde::Serialize;

/// Name of the list in the JSON body.
pub(super) const KEY: &str = "obligations";

/// One tax obligation.
#[derive(Debug, Serialize)]
pub(super) struct Obligation {
    /// `IS`, `TVA`, `CFE` or `CVAE`.
    pub(super) impot: &'static str,
    /// `RN` (réel normal), `RSI` (réel simplifié d'imposition), `franchise`
    /// (VAT only) or `droit_commun` (CFE, CVAE).
    pub(super) regime: &'static str,
    /// `mensuelle` or `annuelle`; `null` when nothing is filed (VAT franchise).
    pub(super) periodicite: Option<&'static str>,
    /// Forms the obligation calls for (empty under VAT franchise).
    pub(super) formulaires: &'static [&'static str],
    /// Start date (on or before 31 December of the requested year).
    pub(super) date_debut: Date,
}

/// The obligations of the company (the year changes nothing: every company
/// was created before 2015).
pub(super) fn items(profile: &Profile) -> Vec<Obligation> {
    let creation = profile.creation;
    // CFE is not due in the creation year.
    let cfe_debut = Date::first_of(creation.year() + 1);
    let mut out = Vec::with_capacity(4);
    out.push(impot_societes(profile.regime_is, creation));
    out.push(tva(profile.regime_tva, creation));
    out.push(obligation(
        "CFE",
        "droit_commun",
        Some("annuelle"),
        &["1447-C"],
        cfe_debut,
    ));
    if profile.declare_cvae() {
        out.push(obligation(
            "CVAE",
            "droit_commun",
            Some("annuelle"),
            &["1330-CVAE"],
            cfe_debut,
        ));
    }
    out
}

fn impot_societes(regime: Regime, debut: Date) -> Obligation {
    let forms: &'static [&'static str] = match regime {
        Regime::ReelNormal => &["2065", "2050", "2572"],
        _ => &["2065", "2033-A", "2572"],
    };
    obligation("IS", regime.code(), Some("annuelle"), forms, debut)
}

fn tva(regime: Regime, debut: Date) -> Obligation {
    let (periodicite, forms): (_, &'static [&'static str]) = match regime {
        Regime::ReelNormal => (Some("mensuelle"), &["CA3"]),
        Regime::ReelSimplifie => (Some("annuelle"), &["CA12"]),
        Regime::Franchise => (None, &[]),
    };
    obligation("TVA", regime.code(), periodicite, forms, debut)
}

fn obligation(
    impot: &'static str,
    regime: &'static str,
    periodicite: Option<&'static str>,
    formulaires: &'static [&'static str],
    date_debut: Date,
) -> Obligation {
    Obligation {
        impot,
        regime,
        periodicite,
        formulaires,
        date_debut,
    }
}
