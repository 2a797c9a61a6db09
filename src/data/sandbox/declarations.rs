//! `declarations`: the returns the company filed during the year. In May it
//! files the previous year's results (2065 with its liasse 2050 or 2033-A,
//! 1330-CVAE when its turnover calls for it), the corporate-tax balance (2572)
//! and, under the simplified VAT regime, the yearly CA12; under the normal
//! VAT regime it files a CA3 every month for the month before.

use super::date::{Date, Periode};
use super::euros::Euros;
use super::exercice::Exercices;
use super::profile::{Profile, Regime};
use super::stream::Stream;
use crate::domain::Siren;
use serde::Serialize;

/// Name of the list in the JSON body.
pub(super) const KEY: &str = "declarations";

/// One return filed.
#[derive(Debug, Serialize)]
pub(super) struct Declaration {
    /// Form number: `2065`, `2050`, `2033-A`, `2572`, `1330-CVAE`, `CA3`, `CA12`.
    pub(super) formulaire: &'static str,
    /// What the form is.
    pub(super) libelle: &'static str,
    /// Period declared: `2023` (financial year) or `2024-03` (month).
    pub(super) periode: Periode,
    /// Legal deadline.
    pub(super) date_limite: Date,
    /// Filing date, inside the requested year.
    pub(super) date_depot: Date,
    /// The headline amount of the form, see `nature_montant`.
    pub(super) montant: Euros,
    /// What `montant` is: `impot_sur_les_societes`, `total_bilan`,
    /// `solde_impot_sur_les_societes`, `valeur_ajoutee` or `tva_nette_due`.
    pub(super) nature_montant: &'static str,
    /// `deposee` (on time) or `en_retard` (after the deadline).
    pub(super) statut: &'static str,
}

/// A form: number, label, meaning of its amount.
struct Formulaire(&'static str, &'static str, &'static str);

const F2065: Formulaire = Formulaire(
    "2065",
    "Déclaration de résultats de l'impôt sur les sociétés",
    "impot_sur_les_societes",
);
const F2050: Formulaire = Formulaire(
    "2050",
    "Liasse fiscale du régime réel normal : bilan actif",
    "total_bilan",
);
const F2033A: Formulaire = Formulaire(
    "2033-A",
    "Liasse fiscale du régime simplifié : bilan simplifié",
    "total_bilan",
);
const F2572: Formulaire = Formulaire(
    "2572",
    "Relevé de solde de l'impôt sur les sociétés",
    "solde_impot_sur_les_societes",
);
const F1330: Formulaire = Formulaire(
    "1330-CVAE",
    "Déclaration de la valeur ajoutée et des effectifs salariés",
    "valeur_ajoutee",
);
const CA3: Formulaire = Formulaire("CA3", "Déclaration mensuelle de TVA", "tva_nette_due");
const CA12: Formulaire = Formulaire(
    "CA12",
    "Déclaration annuelle de TVA du régime simplifié",
    "tva_nette_due",
);

/// The returns filed in `year`, by filing date.
pub(super) fn items(siren: &Siren, profile: &Profile, year: i32) -> Vec<Declaration> {
    from_figures(
        siren,
        profile,
        &Exercices::around(siren, profile, year),
        year,
    )
}

/// The same, from figures already computed (payments reuse them).
pub(super) fn from_figures(
    siren: &Siren,
    profile: &Profile,
    ex: &Exercices,
    year: i32,
) -> Vec<Declaration> {
    let mut s = Stream::new(siren, KEY, year);
    let mut out = Vec::with_capacity(17);
    annual(&mut s, profile, ex, year, &mut out);
    if profile.regime_tva == Regime::ReelNormal {
        monthly_vat(&mut s, profile, ex, year, &mut out);
    }
    // Stable: same-day filings keep the order above (2065 before its liasse).
    out.sort_by_key(|d| d.date_depot);
    out
}

/// The May returns for the previous financial year.
fn annual(
    s: &mut Stream,
    profile: &Profile,
    ex: &Exercices,
    year: i32,
    out: &mut Vec<Declaration>,
) {
    let last = &ex.n_moins_1;
    let periode = Periode::Annee(year - 1);
    // The 2065, its liasse and the 1330-CVAE are filed together.
    let liasse = Depot::draw(s, periode, Date::ymd(year, 5, 18), year);
    let bilan = if profile.regime_is == Regime::ReelNormal {
        F2050
    } else {
        F2033A
    };
    out.push(liasse.of(F2065, last.impot_societes));
    out.push(liasse.of(bilan, last.total_bilan));
    if profile.declare_cvae() {
        out.push(liasse.of(F1330, last.valeur_ajoutee));
    }
    let releve = Depot::draw(s, periode, Date::ymd(year, 5, 15), year);
    out.push(releve.of(F2572, ex.solde_is()));
    if profile.regime_tva == Regime::ReelSimplifie {
        let ca12 = Depot::draw(s, periode, Date::ymd(year, 5, 3), year);
        out.push(ca12.of(CA12, last.tva_annuelle()));
    }
}

/// One CA3 a month, each for the month before (December of N−1 in January).
fn monthly_vat(
    s: &mut Stream,
    profile: &Profile,
    ex: &Exercices,
    year: i32,
    out: &mut Vec<Declaration>,
) {
    for month in 1..=12u8 {
        let periode = Periode::month_before(year, month);
        let montant = match periode {
            Periode::Mois(y, m) if y == year => ex.n.tva_mensuelle[usize::from(m - 1)],
            _ => ex.n_moins_1.tva_mensuelle[11],
        };
        let depot = Depot::draw(s, periode, Date::ymd(year, month, profile.jour_tva), year);
        out.push(depot.of(CA3, montant));
    }
}

/// When and how a return was filed.
#[derive(Clone, Copy)]
struct Depot {
    periode: Periode,
    limite: Date,
    date: Date,
    statut: &'static str,
}

impl Depot {
    /// Usually up to two weeks early, sometimes late (6 %), never outside the year.
    fn draw(s: &mut Stream, periode: Periode, limite: Date, year: i32) -> Self {
        let (date, statut) = if s.chance(6) {
            (
                limite.plus_days(s.between(1, 45)).clamp_to(year),
                "en_retard",
            )
        } else {
            (
                limite.plus_days(-s.between(0, 14)).clamp_to(year),
                "deposee",
            )
        };
        Depot {
            periode,
            limite,
            date,
            statut,
        }
    }

    /// The return of form `f` filed so, declaring `montant` cents.
    fn of(self, f: Formulaire, montant: i64) -> Declaration {
        let Formulaire(formulaire, libelle, nature_montant) = f;
        Declaration {
            formulaire,
            libelle,
            periode: self.periode,
            date_limite: self.limite,
            date_depot: self.date,
            montant: Euros(montant),
            nature_montant,
            statut: self.statut,
        }
    }
}
