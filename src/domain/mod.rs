//! Domain newtypes shared by every plane: things that must not be mixed up
//! (`Siren`, `ClientId`, `Thumbprint`, `Environment`, `Scope`) and can only be
//! built through validation.

mod dataset;
mod ids;
mod scope;
mod siren;

pub use dataset::Dataset;
pub use ids::{
    ClientId, PartnerId, RandomError, Thumbprint, fresh_correlation_id, random_bytes, random_uuid,
};
pub use scope::{Scope, UnknownScope};
pub use siren::{Siren, SirenError};

use serde::{Deserialize, Serialize};
use std::fmt;

/// One of the two isolated environments a partner can call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Environment {
    /// Fictitious data, same code path as production.
    Sandbox,
    /// Real data from the upstream data provider.
    Production,
}

impl Environment {
    /// Both environments, sandbox first.
    pub const ALL: [Environment; 2] = [Environment::Sandbox, Environment::Production];

    /// The lowercase name used in paths, JSON and file names.
    pub fn as_str(self) -> &'static str {
        match self {
            Environment::Sandbox => "sandbox",
            Environment::Production => "production",
        }
    }

    /// Parses `sandbox` or `production`.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|e| e.as_str() == s)
    }
}

impl fmt::Display for Environment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Whether a partner or an application may currently use the API.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Normal operation.
    Active,
    /// Access refused until an admin resumes it.
    Suspended,
}

impl Status {
    /// Parses `active` or `suspended`.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "active" => Some(Status::Active),
            "suspended" => Some(Status::Suspended),
            _ => None,
        }
    }
}
