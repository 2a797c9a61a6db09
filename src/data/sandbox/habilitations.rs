//! `habilitations`: third parties the company authorised to act for it
//! with the tax administration — its chartered accountant above all, and
//! sometimes an approved management body (OGA), a tax lawyer or an EDI
//! partner — with the EDI procedures (missions) each may use. Mandates belong
//! to the company, not to a year (stream `habilitations`, year 0): a year
//! lists those in force at some point of it.

use super::date::Date;
use super::profile::{Profile, Regime};
use super::stream::Stream;
use super::text::Text;
use crate::domain::Siren;
use serde::{Serialize, Serializer};
use std::fmt;

/// Name of the list in the JSON body.
pub(super) const KEY: &str = "habilitations";

/// One authorised third party, as seen in the requested year.
#[derive(Debug, Serialize)]
pub(super) struct Habilitation {
    /// SIREN of the third party (fictitious, Luhn-valid, never a reserved one).
    pub(super) siren: SirenTiers,
    /// Its name.
    pub(super) denomination: NomTiers,
    /// `expert_comptable`, `organisme_de_gestion_agree`, `avocat` or `partenaire_edi`.
    pub(super) qualite: &'static str,
    /// DGFiP EDI procedures it may use: `EDI-TDFC` (annual accounts and
    /// returns), `EDI-TVA`, `EDI-PAIEMENT`, `EDI-REQUETE` (data requests).
    pub(super) missions: &'static [&'static str],
    /// Start of the mandate (on or before 31 December of the requested year).
    pub(super) date_debut: Date,
    /// End of the mandate when it ended in the requested year, else `null`.
    pub(super) date_fin: Option<Date>,
    /// `active`, or `terminee` when it ended in the requested year.
    pub(super) statut: &'static str,
}

/// A generated SIREN: eight digits (the first one 4, 5, 7, 8 or 9, so never a
/// reserved SIREN) and the Luhn check digit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct SirenTiers([u8; 9]);

/// A third party's name: `prefixe + nom + suffixe`.
#[derive(Debug, Clone, Copy)]
pub(super) struct NomTiers(&'static str, &'static str, &'static str);

/// A kind of third party: quality, possible missions, name patterns.
struct Role {
    qualite: &'static str,
    missions: &'static [&'static [&'static str]],
    noms: &'static [(&'static str, &'static str)],
    lieux: &'static [&'static str],
}

const FAMILLES: [&str; 12] = [
    "Aubert",
    "Chevalier",
    "Faure",
    "Gauthier",
    "Henry",
    "Lemoine",
    "Marchand",
    "Perrin",
    "Renaud",
    "Rousseau",
    "Sanchez",
    "Vidal",
];
const REGIONS: [&str; 6] = [
    "Bretagne",
    "Grand Est",
    "Normandie",
    "Occitanie",
    "Provence",
    "Val de Loire",
];

const EXPERT: Role = Role {
    qualite: "expert_comptable",
    missions: &[
        &["EDI-TDFC", "EDI-TVA", "EDI-PAIEMENT", "EDI-REQUETE"],
        &["EDI-TDFC", "EDI-TVA", "EDI-PAIEMENT"],
        &["EDI-TDFC", "EDI-TVA"],
    ],
    noms: &[
        ("Cabinet ", " Expertise Comptable"),
        ("", " & Associés"),
        ("", " Audit et Conseil"),
        ("Fiduciaire ", ""),
    ],
    lieux: &FAMILLES,
};
const OGA: Role = Role {
    qualite: "organisme_de_gestion_agree",
    missions: &[&["EDI-TDFC"]],
    noms: &[("Centre de gestion agréé ", "")],
    lieux: &REGIONS,
};
const AVOCAT: Role = Role {
    qualite: "avocat",
    missions: &[&["EDI-REQUETE"]],
    noms: &[("Cabinet ", " Avocats"), ("", " Avocats Associés")],
    lieux: &FAMILLES,
};
const PARTENAIRE_EDI: Role = Role {
    qualite: "partenaire_edi",
    missions: &[&["EDI-TVA", "EDI-PAIEMENT"]],
    noms: &[("", " Télédéclarations"), ("EDI ", " Services")],
    lieux: &REGIONS,
};

/// A mandate over the life of the company.
struct Mandat {
    role: &'static Role,
    siren: SirenTiers,
    denomination: NomTiers,
    missions: &'static [&'static str],
    debut: Date,
    fin: Option<Date>,
}

/// The third parties in force during `year`, in order of appointment.
pub(super) fn items(siren: &Siren, profile: &Profile, year: i32) -> Vec<Habilitation> {
    mandats(siren, profile)
        .into_iter()
        .filter_map(|m| m.during(year))
        .collect()
}

/// The chartered accountant from the start (sometimes replaced by another
/// one), then the occasional OGA, lawyer and EDI partner.
fn mandats(siren: &Siren, profile: &Profile) -> Vec<Mandat> {
    let mut s = Stream::new(siren, KEY, 0);
    let mut out = Vec::with_capacity(5);
    let debut = profile.creation.plus_days(s.between(0, 180));
    let fin = if s.chance(30) {
        Some(day_between(&mut s, 2016, 2025))
    } else {
        None
    };
    out.push(Mandat::draw(&mut s, &EXPERT, debut, fin));
    if let Some(fin) = fin {
        out.push(Mandat::draw(&mut s, &EXPERT, fin.plus_days(1), None));
    }
    if profile.regime_is == Regime::ReelSimplifie && s.chance(30) {
        let debut = day_between(&mut s, profile.creation.year() + 1, 2025);
        out.push(Mandat::draw(&mut s, &OGA, debut, None));
    }
    if s.chance(20) {
        // A lawyer for one matter: a few weeks to a year.
        let debut = day_between(&mut s, 2015, 2025);
        let fin = debut.plus_days(s.between(30, 400));
        out.push(Mandat::draw(&mut s, &AVOCAT, debut, Some(fin)));
    }
    if s.chance(15) {
        let debut = day_between(&mut s, 2015, 2025);
        out.push(Mandat::draw(&mut s, &PARTENAIRE_EDI, debut, None));
    }
    out
}

/// A day of a year drawn in `first..=last`.
fn day_between(s: &mut Stream, first: i32, last: i32) -> Date {
    let year = s.between(i64::from(first), i64::from(last)) as i32;
    s.day_in(year)
}

impl Mandat {
    fn draw(s: &mut Stream, role: &'static Role, debut: Date, fin: Option<Date>) -> Self {
        let (prefixe, suffixe) = s.pick(role.noms);
        Mandat {
            role,
            siren: SirenTiers::draw(s),
            denomination: NomTiers(prefixe, s.pick(role.lieux), suffixe),
            missions: s.pick(role.missions),
            debut,
            fin,
        }
    }

    /// The mandate as seen in `year`, if it was in force at some point of it.
    fn during(&self, year: i32) -> Option<Habilitation> {
        let (first, last) = (Date::first_of(year), Date::last_of(year));
        let date_fin = match self.fin {
            _ if self.debut > last => return None,
            Some(fin) if fin < first => return None,
            Some(fin) if fin <= last => Some(fin),
            _ => None,
        };
        Some(Habilitation {
            siren: self.siren,
            denomination: self.denomination,
            qualite: self.role.qualite,
            missions: self.missions,
            date_debut: self.debut,
            date_fin,
            statut: if date_fin.is_some() {
                "terminee"
            } else {
                "active"
            },
        })
    }
}

impl SirenTiers {
    fn draw(s: &mut Stream) -> Self {
        let mut digits = [b'0'; 9];
        digits[0] = s.pick(b"45789");
        for d in &mut digits[1..8] {
            *d = b'0' + s.below(10) as u8;
        }
        digits[8] = luhn_check_digit(&digits[..8]);
        SirenTiers(digits)
    }

    /// The nine digits.
    pub(super) fn as_str(&self) -> &str {
        // Built from ASCII digits only.
        std::str::from_utf8(&self.0).unwrap_or("")
    }
}

/// The digit that makes `digits` followed by it pass the Luhn check: from the
/// right of the full number, every second digit (here the odd indexes) is doubled.
fn luhn_check_digit(digits: &[u8]) -> u8 {
    let sum: u32 = digits
        .iter()
        .enumerate()
        .map(|(i, d)| {
            let v = u32::from(d - b'0');
            if i % 2 == 1 {
                if v * 2 > 9 { v * 2 - 9 } else { v * 2 }
            } else {
                v
            }
        })
        .sum();
    b'0' + ((10 - sum % 10) % 10) as u8
}

impl Serialize for SirenTiers {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl NomTiers {
    fn text(self) -> Text<96> {
        let mut t = Text::new();
        t.push_str(self.0).push_str(self.1).push_str(self.2);
        t
    }
}

impl fmt::Display for NomTiers {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.text().as_str())
    }
}

impl Serialize for NomTiers {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.text().as_str())
    }
}
