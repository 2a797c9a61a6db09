//! OAuth scopes: one per dataset of the data API (docs/contract.md §4), plus the
//! transmission scope. The scope name is the dataset name with `_` for `-`.

use serde::{Deserialize, Deserializer, Serialize};
use std::fmt;

/// A scope the gateway knows. Unknown names are refused at the edge.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Scope {
    /// `declarations`
    Declarations,
    /// `comptes_bancaires` (dataset `comptes-bancaires`)
    ComptesBancaires,
    /// `creances`
    Creances,
    /// `paiements`
    Paiements,
    /// `remboursements`
    Remboursements,
    /// `obligations_fiscales` (dataset `obligations-fiscales`)
    ObligationsFiscales,
    /// `habilitations`
    Habilitations,
    /// `creances_transmission`: `POST .../creances`
    CreancesTransmission,
}

/// A scope name the gateway does not know.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown scope {0:?}; known scopes: {known}", known = Scope::known_list())]
pub struct UnknownScope(pub String);

impl Scope {
    /// Every scope, in catalogue order.
    pub const ALL: [Scope; 8] = [
        Scope::Declarations,
        Scope::ComptesBancaires,
        Scope::Creances,
        Scope::Paiements,
        Scope::Remboursements,
        Scope::ObligationsFiscales,
        Scope::Habilitations,
        Scope::CreancesTransmission,
    ];

    /// The OAuth scope string.
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Declarations => "declarations",
            Scope::ComptesBancaires => "comptes_bancaires",
            Scope::Creances => "creances",
            Scope::Paiements => "paiements",
            Scope::Remboursements => "remboursements",
            Scope::ObligationsFiscales => "obligations_fiscales",
            Scope::Habilitations => "habilitations",
            Scope::CreancesTransmission => "creances_transmission",
        }
    }

    /// Parses an OAuth scope string.
    pub fn parse(s: &str) -> Result<Self, UnknownScope> {
        Self::ALL
            .into_iter()
            .find(|sc| sc.as_str() == s)
            .ok_or_else(|| UnknownScope(s.to_owned()))
    }

    fn known_list() -> String {
        Self::ALL.map(Scope::as_str).join(", ")
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for Scope {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Scope {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Scope::parse(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_scope_round_trips_and_unknown_is_named() {
        for sc in Scope::ALL {
            assert_eq!(Scope::parse(sc.as_str()), Ok(sc));
        }
        let err = Scope::parse("comptes-bancaires").unwrap_err();
        assert!(err.to_string().contains("comptes-bancaires"));
    }
}
