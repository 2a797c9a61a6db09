//! The company's figures for one financial year (`exercice`, the calendar
//! year here): turnover, corporate tax, VAT, CFE, CVAE. Declarations and
//! payments of a year are both computed from these, so the VAT a CA3 declares
//! is the VAT the matching payment pays. Tax schedules are simplified but
//! follow the real rates of each year.

use super::euros::{euros, share};
use super::profile::{Profile, Regime};
use super::stream::Stream;
use crate::domain::Siren;

/// Figures of one financial year, all in cents.
pub(super) struct Exercice {
    /// Corporate tax (IS) due for the year.
    pub(super) impot_societes: i64,
    /// Net VAT due for each month, January first (zero under franchise).
    pub(super) tva_mensuelle: [i64; 12],
    /// Value added (CVAE base).
    pub(super) valeur_ajoutee: i64,
    /// Balance-sheet total at year end.
    pub(super) total_bilan: i64,
    /// CFE due for the year (none in the creation year).
    pub(super) cfe: i64,
    /// CVAE due for the year.
    pub(super) cvae: i64,
}

impl Exercice {
    /// The figures of `year` (stream `exercice`); all zero before the company existed.
    pub(super) fn new(siren: &Siren, profile: &Profile, year: i32) -> Self {
        let created = profile.creation.year();
        if year < created {
            return Exercice::empty();
        }
        let mut s = Stream::new(siren, "exercice", year);
        let mut ca = share(profile.chiffre_affaires, s.between(8500, 12_000));
        if year == created {
            ca = share(ca, profile.creation.share_of_year_left());
        }
        let benefice = share(ca, profile.marge_bp + s.between(-300, 300));
        let valeur_ajoutee = share(ca, profile.valeur_ajoutee_bp);
        let cfe_drift = 200 * i64::from(year - 2015) + s.between(-300, 300);
        Exercice {
            impot_societes: impot_societes(year, ca, benefice),
            tva_mensuelle: tva_mensuelle(&mut s, profile, valeur_ajoutee),
            valeur_ajoutee,
            total_bilan: share(ca, profile.bilan_bp),
            cfe: if year > created {
                share(profile.cfe, 10_000 + cfe_drift)
            } else {
                0
            },
            cvae: cvae(year, ca, valeur_ajoutee),
        }
    }

    /// Each of the four corporate-tax instalments (`acomptes`, form 2571)
    /// due next year: a quarter of this year's tax, when it exceeds 3 000 €.
    pub(super) fn acompte_is(&self) -> i64 {
        if self.impot_societes > euros(3000) {
            share(self.impot_societes, 2500)
        } else {
            0
        }
    }

    /// The two VAT instalments of the simplified regime due next year (July
    /// 55 %, December 40 % of this year's VAT), when it reaches 1 000 €.
    pub(super) fn acomptes_tva(&self) -> (i64, i64) {
        let tva = self.tva_annuelle();
        if tva >= euros(1000) {
            (share(tva, 5500), share(tva, 4000))
        } else {
            (0, 0)
        }
    }

    /// Each of the two CVAE instalments (June, September) due next year:
    /// half of this year's CVAE, when it exceeds 1 500 €.
    pub(super) fn acompte_cvae(&self) -> i64 {
        if self.cvae > euros(1500) {
            share(self.cvae, 5000)
        } else {
            0
        }
    }

    /// The June CFE instalment due next year: half of this year's CFE, when it
    /// reaches 3 000 €.
    pub(super) fn acompte_cfe(&self) -> i64 {
        if self.cfe >= euros(3000) {
            share(self.cfe, 5000)
        } else {
            0
        }
    }

    /// Net VAT due for the whole year.
    pub(super) fn tva_annuelle(&self) -> i64 {
        self.tva_mensuelle.iter().sum()
    }

    fn empty() -> Self {
        Exercice {
            impot_societes: 0,
            tva_mensuelle: [0; 12],
            valeur_ajoutee: 0,
            total_bilan: 0,
            cfe: 0,
            cvae: 0,
        }
    }
}

/// The three financial years a tax year touches: returns filed in year N
/// declare N−1, and what N−1 owed after its instalments depends on N−2.
pub(super) struct Exercices {
    /// Year N−2.
    pub(super) n_moins_2: Exercice,
    /// Year N−1.
    pub(super) n_moins_1: Exercice,
    /// Year N.
    pub(super) n: Exercice,
}

impl Exercices {
    /// The figures of `year` and the two years before it.
    pub(super) fn around(siren: &Siren, profile: &Profile, year: i32) -> Self {
        Exercices {
            n_moins_2: Exercice::new(siren, profile, year - 2),
            n_moins_1: Exercice::new(siren, profile, year - 1),
            n: Exercice::new(siren, profile, year),
        }
    }

    /// Corporate tax of N−1 still due after its instalments (form 2572).
    pub(super) fn solde_is(&self) -> i64 {
        solde(
            self.n_moins_1.impot_societes,
            4 * self.n_moins_2.acompte_is(),
        )
    }

    /// VAT of N−1 still due after its instalments (form CA12).
    pub(super) fn solde_tva(&self) -> i64 {
        let (juillet, decembre) = self.n_moins_2.acomptes_tva();
        solde(self.n_moins_1.tva_annuelle(), juillet + decembre)
    }

    /// CVAE of N−1 still due after its instalments (form 1329-DEF).
    pub(super) fn solde_cvae(&self) -> i64 {
        solde(self.n_moins_1.cvae, 2 * self.n_moins_2.acompte_cvae())
    }

    /// CFE of N still due in December after the June instalment.
    pub(super) fn solde_cfe(&self) -> i64 {
        solde(self.n.cfe, self.n_moins_1.acompte_cfe())
    }
}

/// What remains due; an overpayment shows as nothing due (its refund is a
/// separate claim).
fn solde(du: i64, verse: i64) -> i64 {
    (du - verse).max(0)
}

/// About 20 % of the value added, spread unevenly over the months.
fn tva_mensuelle(s: &mut Stream, profile: &Profile, valeur_ajoutee: i64) -> [i64; 12] {
    let mut months = [0; 12];
    if profile.regime_tva == Regime::Franchise {
        return months;
    }
    let average = share(valeur_ajoutee, 2000) / 12;
    for month in &mut months {
        *month = share(average, s.between(7000, 13_000));
    }
    months
}

/// Corporate tax: 15 % on the first bracket for SMEs, the transitional 28 %
/// bracket of 2017–2019, then the normal rate of the year (33⅓ % → 25 %).
fn impot_societes(year: i32, ca: i64, benefice: i64) -> i64 {
    if benefice <= 0 {
        return 0;
    }
    let (pme_plafond, pme_ca) = match year {
        ..=2020 => (38_120, 7_630_000),
        2021 | 2022 => (38_120, 10_000_000),
        _ => (42_500, 10_000_000),
    };
    let (tranche_28, normal) = match year {
        ..=2016 => (0, 3333),
        2017 => (75_000, 3333),
        2018 => (500_000, 3333),
        2019 => (500_000, 3100),
        2020 => (0, 2800),
        2021 => (0, 2650),
        _ => (0, 2500),
    };
    let reduit = if ca < euros(pme_ca) {
        benefice.min(euros(pme_plafond))
    } else {
        0
    };
    let intermediaire = (benefice.min(euros(tranche_28)) - reduit).max(0);
    let reste = benefice - reduit - intermediaire;
    share(reduit, 1500) + share(intermediaire, 2800) + share(reste, normal)
}

/// CVAE: the progressive effective rate on value added (0 below 500 000 € of
/// turnover, 1.5 % above 50 M€), scaled by the year's cuts (halved in 2021,
/// halved again in 2023, 0.28 % top rate from 2024); nothing below 63 €.
fn cvae(year: i32, ca: i64, valeur_ajoutee: i64) -> i64 {
    let ca = i128::from(ca / 100);
    // Effective rate in units of 0.001 %, on the pre-2021 schedule (max 1500).
    let taux = match ca {
        ..500_000 => 0,
        500_000..3_000_000 => 500 * (ca - 500_000) / 2_500_000,
        3_000_000..10_000_000 => 500 + 900 * (ca - 3_000_000) / 7_000_000,
        10_000_000..50_000_000 => 1400 + 100 * (ca - 10_000_000) / 40_000_000,
        _ => 1500,
    };
    let echelle: i128 = match year {
        ..=2020 => 1500,
        2021 | 2022 => 750,
        2023 => 375,
        _ => 280,
    };
    let due = (i128::from(valeur_ajoutee) * taux * echelle / 1500 / 100_000) as i64;
    // Below 63 € the CVAE is not collected.
    if due < euros(63) { 0 } else { due }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn corporate_tax_follows_the_year_schedule() {
        // 100 000 € profit, SME: 15 % on 42 500 + 25 % on 57 500 in 2024.
        assert_eq!(
            impot_societes(2024, euros(1_000_000), euros(100_000)),
            euros(20_750)
        );
        // 2016: 15 % on 38 120 + 33.33 % on 61 880.
        assert_eq!(
            impot_societes(2016, euros(1_000_000), euros(100_000)),
            euros(5718) + share(euros(61_880), 3333)
        );
        // Large company in 2019: 28 % up to 500 000, 31 % above.
        assert_eq!(
            impot_societes(2019, euros(20_000_000), euros(1_000_000)),
            euros(140_000) + euros(155_000)
        );
        assert_eq!(impot_societes(2024, euros(1_000_000), -euros(5000)), 0);
    }

    #[test]
    fn cvae_is_zero_below_500k_and_capped() {
        assert_eq!(cvae(2019, euros(400_000), euros(200_000)), 0);
        assert_eq!(
            cvae(2019, euros(60_000_000), euros(10_000_000)),
            euros(150_000)
        );
        assert_eq!(
            cvae(2024, euros(60_000_000), euros(10_000_000)),
            euros(28_000)
        );
    }
}
