//! `[dashboard]` (docs/contract.md §12): what a partner may do alone. For
//! now the number of active certificates an application may hold, which
//! bounds certificate renewal by machine (EST) as well as the dashboard.

use super::ConfigError;
use serde::Deserialize;

/// `[dashboard]`, with the contract's defaults.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DashboardSettings {
    /// Active (neither revoked nor expired) certificates an application may
    /// hold before a new one is refused (default 3, 1 to 20): two during a
    /// renewal, one spare.
    pub max_certificates_per_application: u32,
}

impl Default for DashboardSettings {
    fn default() -> Self {
        DashboardSettings {
            max_certificates_per_application: 3,
        }
    }
}

impl DashboardSettings {
    /// Checks values that are well-formed but unusable.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if !(1..=20).contains(&self.max_certificates_per_application) {
            return Err(ConfigError::Invalid {
                key: "dashboard.max_certificates_per_application".into(),
                message: "must be between 1 and 20".into(),
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_is_three_and_zero_is_refused() {
        assert_eq!(
            DashboardSettings::default().max_certificates_per_application,
            3
        );
        let zero = DashboardSettings {
            max_certificates_per_application: 0,
        };
        let err = zero.validate().unwrap_err().to_string();
        assert!(
            err.contains("dashboard.max_certificates_per_application"),
            "{err}"
        );
    }
}
