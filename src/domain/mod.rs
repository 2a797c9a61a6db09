//! Domain newtypes shared by every plane: things that must not be mixed up
//! (`Siren`, `ClientId`, `Thumbprint`, `Environment`, `Scope`) and can only be
//! built through validation.

mod dataset;
mod ids;
mod scope;
mod siren;
mod wire;

pub use dataset::Dataset;
pub use ids::{
    ClientId, PartnerId, RandomError, Thumbprint, fresh_correlation_id, random_bytes, random_uuid,
};
pub use scope::{Scope, UnknownScope};
pub use siren::{Siren, SirenError};
pub use wire::{Cidr, Day, WireError};

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

/// Serializes a unit-like enum as its `as_str()` name and reads it back
/// through its `parse` (`Option`), naming `what` when the name is unknown.
macro_rules! serde_as_name {
    ($ty:ty, $what:literal) => {
        impl serde::Serialize for $ty {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }

        impl<'de> serde::Deserialize<'de> for $ty {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let name = <String as serde::Deserialize>::deserialize(d)?;
                <$ty>::parse(&name).ok_or_else(|| {
                    serde::de::Error::custom(format!(concat!("unknown ", $what, " {:?}"), name))
                })
            }
        }
    };
}
pub(crate) use serde_as_name;

serde_as_name!(Plane, "plane");

/// Which listener accepted a connection: an environment's (data API and
/// `/token`) or the admin plane's. Written `sandbox`, `production` or
/// `admin` in traces and metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Plane {
    /// An environment listener (data API and `/token`).
    Env(Environment),
    /// The admin listener (admin API, dashboards).
    Admin,
}

impl Plane {
    /// `sandbox`, `production` or `admin`.
    pub fn as_str(self) -> &'static str {
        match self {
            Plane::Env(env) => env.as_str(),
            Plane::Admin => "admin",
        }
    }

    /// The plane named `name`.
    pub fn parse(name: &str) -> Option<Plane> {
        match name {
            "admin" => Some(Plane::Admin),
            other => Environment::ALL
                .into_iter()
                .find(|e| e.as_str() == other)
                .map(Plane::Env),
        }
    }
}

impl fmt::Display for Plane {
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
    /// `active` or `suspended`, as in JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Active => "active",
            Status::Suspended => "suspended",
        }
    }

    /// Parses `active` or `suspended`.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "active" => Some(Status::Active),
            "suspended" => Some(Status::Suspended),
            _ => None,
        }
    }
}
