//! `paiements`: what the company paid during the year. Payments that go with
//! a return (CA3, CA12, 2572) are paid on its filing date for the amount it
//! left due; instalments (IS, CVAE, CFE, CA12 VAT) follow the legal calendar
//! and are computed from the previous year's figures.

use super::comptes_bancaires::Comptes;
use super::date::{Date, Periode};
use super::declarations::{self, Declaration};
use super::euros::Euros;
use super::exercice::Exercices;
use super::iban::Iban;
use super::profile::{Profile, Regime};
use super::reference::Reference;
use super::stream::Stream;
use crate::domain::Siren;
use serde::Serialize;

/// Name of the list in the JSON body.
pub(super) const KEY: &str = "paiements";

/// One payment.
#[derive(Debug, Serialize)]
pub(super) struct Paiement {
    /// `PAI-<year>-<9 digits>`.
    pub(super) reference: Reference,
    /// Tax paid: `IS`, `TVA`, `CVAE` or `CFE`.
    pub(super) impot: &'static str,
    /// `acompte` (instalment) or `solde` (balance).
    pub(super) nature: &'static str,
    /// Form the payment goes with (`2571`, `2572`, `CA3`, `CA12`, `3514`,
    /// `1329-AC`, `1329-DEF`); `null` for the CFE, paid on its tax notice.
    pub(super) formulaire: Option<&'static str>,
    /// Period the tax is for.
    pub(super) periode: Periode,
    /// Due date.
    pub(super) date_echeance: Date,
    /// Payment date, inside the requested year.
    pub(super) date_paiement: Date,
    /// Amount paid.
    pub(super) montant: Euros,
    /// `telereglement` (online payment) or `prelevement` (direct debit).
    pub(super) moyen: &'static str,
    /// Account debited: the company's main declared account.
    pub(super) iban_debite: Iban,
    /// `effectue`, or `rejete` when the bank refused the debit.
    pub(super) statut: &'static str,
}

/// What is due, when, and with which form.
struct Echeance {
    impot: &'static str,
    nature: &'static str,
    formulaire: Option<&'static str>,
    periode: Periode,
    date: Date,
    montant: i64,
}

/// The payments made in `year`, by due date.
pub(super) fn items(siren: &Siren, profile: &Profile, year: i32) -> Vec<Paiement> {
    let ex = Exercices::around(siren, profile, year);
    let filed = declarations::from_figures(siren, profile, &ex, year);
    let iban = Comptes::of(siren, profile).principal.iban;
    let mut s = Stream::new(siren, KEY, year);
    let mut out = Vec::with_capacity(filed.len() + 10);
    for d in &filed {
        if let Some(due) = with_return(d, &ex) {
            out.push(pay(&mut s, due, d.date_depot, iban, year));
        }
    }
    for due in instalments(profile, &ex, year) {
        let paid = paid_on(&mut s, &due, year);
        out.push(pay(&mut s, due, paid, iban, year));
    }
    out.sort_unstable_by_key(|p| (p.date_echeance, p.impot, p.reference.number));
    out
}

/// The payment a return carries, if it leaves something to pay.
fn with_return(d: &Declaration, ex: &Exercices) -> Option<Echeance> {
    let (impot, montant) = match d.formulaire {
        "CA3" => ("TVA", d.montant.0),
        "CA12" => ("TVA", ex.solde_tva()),
        "2572" => ("IS", d.montant.0),
        _ => return None,
    };
    let formulaire = Some(d.formulaire);
    let (periode, date) = (d.periode, d.date_limite);
    (montant > 0).then_some(Echeance {
        impot,
        nature: "solde",
        formulaire,
        periode,
        date,
        montant,
    })
}

/// Which amount a line of the calendar pays.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Montant {
    AcompteIs,
    SoldeCvae,
    AcompteCvae,
    AcompteCfe,
    SoldeCfe,
    TvaJuillet,
    TvaDecembre,
}

impl Montant {
    fn of(self, profile: &Profile, ex: &Exercices) -> i64 {
        let last = &ex.n_moins_1;
        let tva = match profile.regime_tva {
            Regime::ReelSimplifie => last.acomptes_tva(),
            _ => (0, 0),
        };
        match self {
            Montant::AcompteIs => last.acompte_is(),
            Montant::SoldeCvae => ex.solde_cvae(),
            Montant::AcompteCvae => last.acompte_cvae(),
            Montant::AcompteCfe => last.acompte_cfe(),
            Montant::SoldeCfe => ex.solde_cfe(),
            Montant::TvaJuillet => tva.0,
            Montant::TvaDecembre => tva.1,
        }
    }
}

/// A line of the calendar: tax, nature, form, month, day (0: the company's
/// VAT day), amount.
type Ligne = (
    &'static str,
    &'static str,
    Option<&'static str>,
    u8,
    u8,
    Montant,
);

/// The legal calendar of instalments and balances.
const CALENDRIER: [Ligne; 11] = [
    ("IS", "acompte", Some("2571"), 3, 15, Montant::AcompteIs),
    ("CVAE", "solde", Some("1329-DEF"), 5, 3, Montant::SoldeCvae),
    ("IS", "acompte", Some("2571"), 6, 15, Montant::AcompteIs),
    (
        "CVAE",
        "acompte",
        Some("1329-AC"),
        6,
        15,
        Montant::AcompteCvae,
    ),
    ("CFE", "acompte", None, 6, 15, Montant::AcompteCfe),
    ("TVA", "acompte", Some("3514"), 7, 0, Montant::TvaJuillet),
    ("IS", "acompte", Some("2571"), 9, 15, Montant::AcompteIs),
    (
        "CVAE",
        "acompte",
        Some("1329-AC"),
        9,
        15,
        Montant::AcompteCvae,
    ),
    ("IS", "acompte", Some("2571"), 12, 15, Montant::AcompteIs),
    ("CFE", "solde", None, 12, 15, Montant::SoldeCfe),
    ("TVA", "acompte", Some("3514"), 12, 0, Montant::TvaDecembre),
];

/// What the calendar makes due in `year` (lines with nothing due are skipped).
fn instalments<'a>(
    profile: &'a Profile,
    ex: &'a Exercices,
    year: i32,
) -> impl Iterator<Item = Echeance> + 'a {
    CALENDRIER
        .iter()
        .filter_map(move |&(impot, nature, formulaire, month, day, which)| {
            let montant = which.of(profile, ex);
            let day = if day == 0 { profile.jour_tva } else { day };
            // The CVAE balance is for last year; every other line for this one.
            let for_year = if which == Montant::SoldeCvae {
                year - 1
            } else {
                year
            };
            (montant > 0).then(|| Echeance {
                impot,
                nature,
                formulaire,
                periode: Periode::Annee(for_year),
                date: Date::ymd(year, month, day),
                montant,
            })
        })
}

/// Usually paid on the due date; 5 % of online payments are up to a month
/// late (a direct debit is always taken on the due date).
fn paid_on(s: &mut Stream, due: &Echeance, year: i32) -> Date {
    if due.impot != "CFE" && s.chance(5) {
        due.date.plus_days(s.between(1, 30)).clamp_to(year)
    } else {
        due.date
    }
}

fn pay(s: &mut Stream, due: Echeance, paid: Date, iban: Iban, year: i32) -> Paiement {
    let moyen = if due.impot == "CFE" {
        "prelevement"
    } else {
        "telereglement"
    };
    Paiement {
        reference: Reference {
            prefix: "PAI",
            year,
            number: s.below(1_000_000_000),
        },
        impot: due.impot,
        nature: due.nature,
        formulaire: due.formulaire,
        periode: due.periode,
        date_echeance: due.date,
        date_paiement: paid,
        montant: Euros(due.montant),
        moyen,
        iban_debite: iban,
        statut: if s.chance(1) { "rejete" } else { "effectue" },
    }
}
