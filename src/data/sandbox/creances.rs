//! `creances`: the claims the company holds on the administration and filed
//! during the year — VAT credit refund requests, research tax credit,
//! loss carry-back, CFE relief capped on value added, CVAE overpayment —
//! with the decision taken on each. Refunds (`remboursements`) are the paid
//! ones of this list.

use super::date::{Date, Periode};
use super::euros::{Euros, euros, share};
use super::exercice::Exercice;
use super::profile::{Profile, Regime};
use super::reference::Reference;
use super::stream::Stream;
use crate::domain::Siren;
use serde::Serialize;

/// Name of the list in the JSON body.
pub(super) const KEY: &str = "creances";

/// One claim.
#[derive(Debug, Serialize)]
pub(super) struct Creance {
    /// `CRE-<year>-<9 digits>`.
    pub(super) reference: Reference,
    /// Tax concerned: `TVA`, `IS`, `CFE` or `CVAE`.
    pub(super) impot: &'static str,
    /// `credit_de_tva`, `credit_impot_recherche`, `report_en_arriere_des_deficits`,
    /// `plafonnement_valeur_ajoutee` or `excedent_de_versement`.
    pub(super) nature: &'static str,
    /// Form that carries the claim.
    pub(super) formulaire: &'static str,
    /// Period the claim arose in (the previous financial year).
    pub(super) periode: Periode,
    /// Filing date, inside the requested year.
    pub(super) date_depot: Date,
    /// Amount claimed.
    pub(super) montant: Euros,
    /// `en_instruction`, `admise`, `rejetee`, `imputee` (set off against
    /// another tax) or `remboursee` (refunded).
    pub(super) statut: &'static str,
    /// Date of the decision, inside the requested year; `null` while `en_instruction`.
    pub(super) date_decision: Option<Date>,
}

/// A kind of claim.
struct Nature {
    impot: &'static str,
    nature: &'static str,
    formulaire: &'static str,
    /// Amount range, in basis points of the turnover.
    montant_bp: (i64, i64),
    /// Whether the company can have it, given last year's figures.
    possible: fn(&Profile, &Exercice) -> bool,
}

/// The kinds of claims.
const NATURES: [Nature; 5] = [
    Nature {
        impot: "TVA",
        nature: "credit_de_tva",
        formulaire: "3519",
        montant_bp: (20, 300),
        possible: |profile, _| profile.regime_tva != Regime::Franchise,
    },
    Nature {
        impot: "IS",
        nature: "credit_impot_recherche",
        formulaire: "2069-A",
        montant_bp: (50, 500),
        possible: |_, _| true,
    },
    Nature {
        impot: "IS",
        nature: "report_en_arriere_des_deficits",
        formulaire: "2039",
        montant_bp: (20, 200),
        // A loss carried back: only after a year without corporate tax.
        possible: |_, last| last.impot_societes == 0,
    },
    Nature {
        impot: "CFE",
        nature: "plafonnement_valeur_ajoutee",
        formulaire: "1327-CET",
        montant_bp: (3, 12),
        possible: |_, last| last.cfe > 0,
    },
    Nature {
        impot: "CVAE",
        nature: "excedent_de_versement",
        formulaire: "1329-DEF",
        montant_bp: (5, 30),
        possible: |_, last| last.cvae > 0,
    },
];

/// The claims filed in `year`, by filing date: none to four.
pub(super) fn items(siren: &Siren, profile: &Profile, year: i32) -> Vec<Creance> {
    let mut s = Stream::new(siren, KEY, year);
    let count = match s.below(100) {
        0..30 => 0,
        30..65 => 1,
        65..85 => 2,
        85..95 => 3,
        _ => 4,
    };
    if count == 0 {
        return Vec::new();
    }
    let last = Exercice::new(siren, profile, year - 1);
    let mut possible = [0usize; NATURES.len()];
    let mut n = 0;
    for (i, nature) in NATURES.iter().enumerate() {
        if (nature.possible)(profile, &last) {
            possible[n] = i;
            n += 1;
        }
    }
    let mut out = Vec::with_capacity(count);
    for _ in 0..count {
        let nature = &NATURES[s.pick(&possible[..n])];
        out.push(draw(&mut s, profile, nature, year));
    }
    out.sort_unstable_by_key(|c| (c.date_depot, c.reference.number));
    out
}

fn draw(s: &mut Stream, profile: &Profile, kind: &Nature, year: i32) -> Creance {
    let (low, high) = kind.montant_bp;
    let date_depot = s.day_in(year);
    let montant = share(profile.chiffre_affaires, s.between(low, high)).max(euros(150));
    let (statut, date_decision) = decide(s, date_depot, year);
    Creance {
        reference: Reference {
            prefix: "CRE",
            year,
            number: s.below(1_000_000_000),
        },
        impot: kind.impot,
        nature: kind.nature,
        formulaire: kind.formulaire,
        periode: Periode::Annee(year - 1),
        date_depot,
        montant: Euros(montant),
        statut,
        date_decision,
    }
}

/// Decided 20 to 90 days after filing, unless that falls after the year end.
fn decide(s: &mut Stream, depot: Date, year: i32) -> (&'static str, Option<Date>) {
    let statut = match s.below(100) {
        0..20 => return ("en_instruction", None),
        20..65 => "remboursee",
        65..80 => "imputee",
        80..90 => "admise",
        _ => "rejetee",
    };
    let decision = depot.plus_days(s.between(20, 90));
    if decision.year() == year {
        (statut, Some(decision))
    } else {
        ("en_instruction", None)
    }
}
