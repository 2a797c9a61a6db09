//! The fictitious company behind a SIREN: name, creation date, size and tax
//! regimes. It depends on the SIREN only (stream `profil`, year 0), so every
//! dataset and every year tell the same story about the same company.

use super::date::Date;
use super::euros::{euros, share};
use super::stream::Stream;
use super::text::Text;
use crate::domain::Siren;
use serde::{Serialize, Serializer};
use std::fmt;

/// What every dataset needs to know about the company.
pub(super) struct Profile {
    /// Company name (`raison sociale`).
    pub(super) denomination: Denomination,
    /// Registration date, between 1990 and 2014 so that every company exists
    /// for the whole 2015–2025 data range.
    pub(super) creation: Date,
    /// Typical yearly turnover, in cents; each year varies around it.
    pub(super) chiffre_affaires: i64,
    /// Corporate tax regime: `ReelNormal` or `ReelSimplifie`.
    pub(super) regime_is: Regime,
    /// VAT regime: `ReelNormal` (monthly CA3), `ReelSimplifie` (yearly CA12) or `Franchise`.
    pub(super) regime_tva: Regime,
    /// Day of the month the CA3 (and CA12 instalments) are due.
    pub(super) jour_tva: u8,
    /// Taxable profit over turnover, in basis points (may be negative).
    pub(super) marge_bp: i64,
    /// Value added over turnover, in basis points.
    pub(super) valeur_ajoutee_bp: i64,
    /// Balance-sheet total over turnover, in basis points.
    pub(super) bilan_bp: i64,
    /// Typical yearly CFE (business property tax), in cents.
    pub(super) cfe: i64,
}

/// A tax regime, written with the DGFiP abbreviations.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Regime {
    /// Réel normal.
    ReelNormal,
    /// Réel simplifié d'imposition.
    ReelSimplifie,
    /// Franchise en base de TVA (no VAT charged, no VAT return).
    Franchise,
}

impl Regime {
    /// `RN`, `RSI` or `franchise`.
    pub(super) fn code(self) -> &'static str {
        match self {
            Regime::ReelNormal => "RN",
            Regime::ReelSimplifie => "RSI",
            Regime::Franchise => "franchise",
        }
    }
}

/// A company name, `"{activité} {nom} {forme}"`, e.g. `Menuiserie Girard SARL`.
#[derive(Debug, Clone, Copy)]
pub(super) struct Denomination {
    activite: &'static str,
    nom: &'static str,
    forme: &'static str,
}

/// Turnover above which the company files the 1330-CVAE (152 500 €).
pub(super) const SEUIL_DECLARATION_CVAE: i64 = euros(152_500);

impl Profile {
    /// The profile of `siren`.
    pub(super) fn new(siren: &Siren) -> Self {
        let mut s = Stream::new(siren, "profil", 0);
        let denomination = Denomination::draw(&mut s);
        let creation_year = s.between(1990, 2014) as i32;
        let creation = s.day_in(creation_year);
        let chiffre_affaires = draw_turnover(&mut s);
        let (regime_is, regime_tva) = draw_regimes(&mut s, chiffre_affaires);
        Profile {
            denomination,
            creation,
            chiffre_affaires,
            regime_is,
            regime_tva,
            jour_tva: s.pick(&[15, 16, 19, 21, 24]),
            marge_bp: s.between(-200, 1200),
            valeur_ajoutee_bp: s.between(2500, 6000),
            bilan_bp: s.between(4000, 12_000),
            cfe: share(chiffre_affaires, s.between(5, 20)).max(euros(250)),
        }
    }

    /// Whether the company files the 1330-CVAE declaration.
    pub(super) fn declare_cvae(&self) -> bool {
        self.chiffre_affaires > SEUIL_DECLARATION_CVAE
    }
}

/// Turnover in cents: mostly small companies, a few large ones.
fn draw_turnover(s: &mut Stream) -> i64 {
    let (low, high) = match s.below(100) {
        0..30 => (40_000, 250_000),
        30..65 => (250_000, 1_500_000),
        65..90 => (1_500_000, 10_000_000),
        _ => (10_000_000, 80_000_000),
    };
    s.between(euros(low), euros(high))
}

/// Corporate-tax and VAT regimes consistent with the turnover (simplified
/// thresholds: RSI up to 840 000 €, VAT franchise up to 91 900 €).
fn draw_regimes(s: &mut Stream, turnover: i64) -> (Regime, Regime) {
    if turnover > euros(840_000) || s.chance(10) {
        return (Regime::ReelNormal, Regime::ReelNormal);
    }
    let tva = if turnover <= euros(91_900) && s.chance(70) {
        Regime::Franchise
    } else if s.chance(25) {
        // "Mini-réel": simplified regime for IS, normal (monthly) for VAT.
        Regime::ReelNormal
    } else {
        Regime::ReelSimplifie
    };
    (Regime::ReelSimplifie, tva)
}

const ACTIVITES: [&str; 20] = [
    "Boulangerie",
    "Transports",
    "Menuiserie",
    "Conseil",
    "Informatique",
    "Garage",
    "Imprimerie",
    "Restaurant",
    "Plomberie",
    "Électricité",
    "Architecture",
    "Paysages",
    "Bâtiment",
    "Logistique",
    "Textiles",
    "Librairie",
    "Fromagerie",
    "Optique",
    "Charpente",
    "Distribution",
];

const NOMS: [&str; 30] = [
    "Martin",
    "Bernard",
    "Dubois",
    "Thomas",
    "Robert",
    "Richard",
    "Petit",
    "Durand",
    "Leroy",
    "Moreau",
    "Simon",
    "Laurent",
    "Lefebvre",
    "Michel",
    "Garcia",
    "David",
    "Bertrand",
    "Roux",
    "Vincent",
    "Fournier",
    "Morel",
    "Girard",
    "André",
    "Mercier",
    "Dupont",
    "Lambert",
    "Bonnet",
    "François",
    "Martinez",
    "Legrand",
];

const FORMES: [&str; 5] = ["SAS", "SARL", "SASU", "EURL", "SA"];

impl Denomination {
    fn draw(s: &mut Stream) -> Self {
        Denomination {
            activite: s.pick(&ACTIVITES),
            nom: s.pick(&NOMS),
            forme: s.pick(&FORMES),
        }
    }
}

impl Denomination {
    fn text(self) -> Text<64> {
        let mut t = Text::new();
        t.push_str(self.activite)
            .push_ascii(b' ')
            .push_str(self.nom)
            .push_ascii(b' ');
        t.push_str(self.forme);
        t
    }
}

impl fmt::Display for Denomination {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.text().as_str())
    }
}

impl Serialize for Denomination {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.text().as_str())
    }
}
