//! `comptes-bancaires`: the bank accounts the company declared to the tax
//! administration, for direct debits (`prelevement`) and refunds
//! (`remboursement`). Accounts belong to the company, not to a year (stream
//! `comptes-bancaires`, year 0): a year lists those opened by its 31 December,
//! 1 to 3 of them.

use super::date::Date;
use super::iban::{BANQUES, Banque, Iban};
use super::profile::{Denomination, Profile};
use super::stream::Stream;
use crate::domain::Siren;
use serde::Serialize;

/// Name of the list in the JSON body.
pub(super) const KEY: &str = "comptes";

/// One declared bank account.
#[derive(Debug, Serialize)]
pub(super) struct Compte {
    /// French IBAN (27 characters, no spaces).
    pub(super) iban: Iban,
    /// BIC of the bank (8 or 11 characters).
    pub(super) bic: &'static str,
    /// Bank name.
    pub(super) domiciliation: &'static str,
    /// Account holder: the company.
    pub(super) titulaire: Denomination,
    /// Opening date (on or before 31 December of the requested year).
    pub(super) date_ouverture: Date,
    /// `prelevement_et_remboursement`, `prelevement` or `remboursement`.
    pub(super) usage: &'static str,
}

impl Compte {
    /// Whether refunds may be paid into this account.
    pub(super) fn accepte_remboursements(&self) -> bool {
        self.usage != "prelevement"
    }
}

/// Every account the company ever declared.
pub(super) struct Comptes {
    /// The capital-deposit account, opened shortly before registration: it
    /// exists in every year of data, takes the direct debits and may receive
    /// refunds.
    pub(super) principal: Compte,
    /// Accounts opened later (up to two), oldest first.
    pub(super) autres: Vec<Compte>,
}

impl Comptes {
    /// The accounts of the company.
    pub(super) fn of(siren: &Siren, profile: &Profile) -> Self {
        let mut s = Stream::new(siren, "comptes-bancaires", 0);
        let ouverture = profile.creation.plus_days(-s.between(5, 30));
        let principal = draw(&mut s, profile, ouverture, "prelevement_et_remboursement");
        let count = match s.below(100) {
            0..50 => 0,
            50..85 => 1,
            _ => 2,
        };
        let mut autres = Vec::with_capacity(count);
        for _ in 0..count {
            let year = s.between(i64::from(profile.creation.year()) + 1, 2025) as i32;
            let ouverture = s.day_in(year);
            let usage = s.pick(&["prelevement", "remboursement"]);
            autres.push(draw(&mut s, profile, ouverture, usage));
        }
        autres.sort_by_key(|c| c.date_ouverture);
        Comptes { principal, autres }
    }

    /// The account refunds go to on `date`: the latest one open that accepts them.
    pub(super) fn pour_remboursement(&self, date: Date) -> &Compte {
        self.autres
            .iter()
            .rev()
            .find(|c| c.accepte_remboursements() && c.date_ouverture <= date)
            .unwrap_or(&self.principal)
    }

    /// The accounts open on 31 December of `year`, oldest first.
    fn open_in(self, year: i32) -> Vec<Compte> {
        let mut open = Vec::with_capacity(1 + self.autres.len());
        open.push(self.principal);
        let end = Date::last_of(year);
        open.extend(self.autres.into_iter().filter(|c| c.date_ouverture <= end));
        open
    }
}

/// The accounts open at the end of `year`.
pub(super) fn items(siren: &Siren, profile: &Profile, year: i32) -> Vec<Compte> {
    Comptes::of(siren, profile).open_in(year)
}

fn draw(s: &mut Stream, profile: &Profile, ouverture: Date, usage: &'static str) -> Compte {
    let banque = &BANQUES[s.index(BANQUES.len())];
    Compte {
        iban: Iban::france(&code(banque.code), &guichet(s, banque), &numero(s, banque)),
        bic: banque.bic,
        domiciliation: banque.nom,
        titulaire: profile.denomination,
        date_ouverture: ouverture,
        usage,
    }
}

fn code(digits: &str) -> [u8; 5] {
    let mut out = [b'0'; 5];
    for (o, d) in out.iter_mut().zip(digits.bytes()) {
        *o = d;
    }
    out
}

fn guichet(s: &mut Stream, banque: &Banque) -> [u8; 5] {
    match banque.guichet {
        Some(fixed) => code(fixed),
        None => random_digits(s),
    }
}

/// Eleven digits, or La Banque Postale's seven digits, a letter, three digits.
fn numero(s: &mut Stream, banque: &Banque) -> [u8; 11] {
    let mut n: [u8; 11] = random_digits(s);
    if banque.lettre {
        n[7] = b'A' + s.below(26) as u8;
    }
    n
}

fn random_digits<const N: usize>(s: &mut Stream) -> [u8; N] {
    let mut out = [b'0'; N];
    for d in &mut out {
        *d = b'0' + s.below(10) as u8;
    }
    out
}
