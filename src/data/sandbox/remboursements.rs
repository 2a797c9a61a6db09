//! `remboursements`: refunds of the year — one for each claim of the year
//! decided as `remboursee`, ordered on the decision date and paid by bank
//! transfer a few days later to a declared account that accepts refunds.

use super::comptes_bancaires::Comptes;
use super::creances::{self, Creance};
use super::date::Date;
use super::euros::Euros;
use super::iban::Iban;
use super::profile::Profile;
use super::reference::Reference;
use super::stream::Stream;
use crate::domain::Siren;
use serde::Serialize;

/// Name of the list in the JSON body.
pub(super) const KEY: &str = "remboursements";

/// One refund.
#[derive(Debug, Serialize)]
pub(super) struct Remboursement {
    /// `RBT-<year>-<9 digits>`.
    pub(super) reference: Reference,
    /// The claim refunded (`creances` of the same year).
    pub(super) reference_creance: Reference,
    /// Tax concerned: `TVA`, `IS`, `CFE` or `CVAE`.
    pub(super) impot: &'static str,
    /// Kind of claim refunded.
    pub(super) nature: &'static str,
    /// Date the refund was ordered (the claim's decision date).
    pub(super) date_ordonnancement: Date,
    /// Transfer date, inside the requested year; `null` if not yet paid.
    pub(super) date_virement: Option<Date>,
    /// Amount refunded: the whole claim.
    pub(super) montant: Euros,
    /// Always `virement` (bank transfer).
    pub(super) moyen: &'static str,
    /// Account credited.
    pub(super) iban_credite: Iban,
    /// `effectue` (paid) or `ordonnance` (ordered, transfer after the year end).
    pub(super) statut: &'static str,
}

/// The refunds of `year`, by order date.
pub(super) fn items(siren: &Siren, profile: &Profile, year: i32) -> Vec<Remboursement> {
    let claims = creances::items(siren, profile, year);
    let comptes = Comptes::of(siren, profile);
    let mut s = Stream::new(siren, KEY, year);
    let mut out = Vec::with_capacity(claims.len());
    for claim in &claims {
        if let (Some(ordered), "remboursee") = (claim.date_decision, claim.statut) {
            let iban = comptes.pour_remboursement(ordered).iban;
            out.push(refund(&mut s, claim, ordered, iban, year));
        }
    }
    out.sort_unstable_by_key(|r| (r.date_ordonnancement, r.reference.number));
    out
}

fn refund(s: &mut Stream, claim: &Creance, ordered: Date, iban: Iban, year: i32) -> Remboursement {
    let transfer = ordered.plus_days(s.between(2, 6));
    let paid = transfer.year() == year;
    Remboursement {
        reference: Reference {
            prefix: "RBT",
            year,
            number: s.below(1_000_000_000),
        },
        reference_creance: claim.reference,
        impot: claim.impot,
        nature: claim.nature,
        date_ordonnancement: ordered,
        date_virement: paid.then_some(transfer),
        montant: claim.montant,
        moyen: "virement",
        iban_credite: iban,
        statut: if paid { "effectue" } else { "ordonnance" },
    }
}
