//! The datasets of the data API (docs/contract.md §4): path segment and scope.

use super::Scope;
use std::fmt;

/// A dataset served under `/opale/v1/entreprises/{siren}/{dataset}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Dataset {
    /// `declarations`: tax returns filed (forms 2065, 2033-A, CA3…).
    Declarations,
    /// `comptes-bancaires`: bank accounts declared (IBAN, BIC).
    ComptesBancaires,
    /// `creances`: claims on the administration.
    Creances,
    /// `paiements`: payments made.
    Paiements,
    /// `remboursements`: refunds.
    Remboursements,
    /// `obligations-fiscales`: tax obligations and regimes.
    ObligationsFiscales,
    /// `habilitations`: third parties authorised for the company.
    Habilitations,
}

impl Dataset {
    /// Every dataset, in catalogue order.
    pub const ALL: [Dataset; 7] = [
        Dataset::Declarations,
        Dataset::ComptesBancaires,
        Dataset::Creances,
        Dataset::Paiements,
        Dataset::Remboursements,
        Dataset::ObligationsFiscales,
        Dataset::Habilitations,
    ];

    /// The path segment.
    pub fn as_str(self) -> &'static str {
        match self {
            Dataset::Declarations => "declarations",
            Dataset::ComptesBancaires => "comptes-bancaires",
            Dataset::Creances => "creances",
            Dataset::Paiements => "paiements",
            Dataset::Remboursements => "remboursements",
            Dataset::ObligationsFiscales => "obligations-fiscales",
            Dataset::Habilitations => "habilitations",
        }
    }

    /// Parses a path segment.
    pub fn parse(segment: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|d| d.as_str() == segment)
    }

    /// The scope that grants reading it.
    pub fn scope(self) -> Scope {
        match self {
            Dataset::Declarations => Scope::Declarations,
            Dataset::ComptesBancaires => Scope::ComptesBancaires,
            Dataset::Creances => Scope::Creances,
            Dataset::Paiements => Scope::Paiements,
            Dataset::Remboursements => Scope::Remboursements,
            Dataset::ObligationsFiscales => Scope::ObligationsFiscales,
            Dataset::Habilitations => Scope::Habilitations,
        }
    }
}

impl fmt::Display for Dataset {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

super::serde_as_name!(Dataset, "dataset");

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scope_is_the_dataset_name_with_underscores() {
        for d in Dataset::ALL {
            assert_eq!(d.scope().as_str(), d.as_str().replace('-', "_"));
            assert_eq!(Dataset::parse(d.as_str()), Some(d));
        }
    }
}
