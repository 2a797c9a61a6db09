//! `[datapass]` (docs/contract.md §9): the shared secret DataPass signs its webhook
//! deliveries with, and the largest delivery read. Without the secret,
//! `POST /datapass/webhook` answers 404 and the admin listener keeps its
//! handshake policy unchanged.

use super::ConfigError;
use serde::{Deserialize, Deserializer};
use std::fmt;

/// Shortest secret accepted, bytes: the HMAC key must not be guessable.
pub const MIN_SECRET_BYTES: usize = 16;
/// Default of `max_body_bytes`: a DataPass delivery is a few KiB.
pub const DEFAULT_MAX_BODY_BYTES: u64 = 65_536;
/// Highest `max_body_bytes` accepted (1 MiB): a delivery is buffered
/// whole before it is parsed, by a caller not yet authenticated.
pub const MAX_MAX_BODY_BYTES: u64 = 1_048_576;

/// `[datapass]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DatapassSettings {
    /// The secret entered in DataPass's webhook form; the key of the
    /// `X-Hub-Signature-256` HMAC-SHA256 (none: the webhook is disabled).
    pub webhook_secret: Option<WebhookSecret>,
    /// Largest webhook body read, bytes (default 65 536, at most
    /// 1 048 576): a larger declared `Content-Length` is refused (413)
    /// before the body is read, a body that grows past it while arriving is
    /// refused (413) at that point. `[limits] max_body_bytes` still applies
    /// when it is smaller.
    pub max_body_bytes: u64,
}

impl Default for DatapassSettings {
    fn default() -> Self {
        DatapassSettings {
            webhook_secret: None,
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
        }
    }
}

impl DatapassSettings {
    /// Whether the webhook is served.
    pub fn enabled(&self) -> bool {
        self.webhook_secret.is_some()
    }

    /// `max_body_bytes` is between 1 and [`MAX_MAX_BODY_BYTES`].
    pub fn validate(&self) -> Result<(), ConfigError> {
        if !(1..=MAX_MAX_BODY_BYTES).contains(&self.max_body_bytes) {
            return Err(ConfigError::Invalid {
                key: "datapass.max_body_bytes".into(),
                message: format!("must be between 1 and {MAX_MAX_BODY_BYTES}"),
            });
        }
        Ok(())
    }
}

/// The webhook's HMAC key. Its `Debug` never shows it (configs are logged).
#[derive(Clone, PartialEq, Eq)]
pub struct WebhookSecret(String);

impl WebhookSecret {
    /// A secret of at least [`MIN_SECRET_BYTES`] bytes.
    pub fn new(secret: impl Into<String>) -> Result<Self, ConfigError> {
        let secret = secret.into();
        if secret.len() < MIN_SECRET_BYTES {
            return Err(ConfigError::Invalid {
                key: "datapass.webhook_secret".into(),
                message: format!("at least {MIN_SECRET_BYTES} bytes"),
            });
        }
        Ok(WebhookSecret(secret))
    }

    /// The key bytes.
    pub fn as_bytes(&self) -> &[u8] {
        self.0.as_bytes()
    }
}

impl fmt::Debug for WebhookSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("WebhookSecret(<redacted>)")
    }
}

impl<'de> Deserialize<'de> for WebhookSecret {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        WebhookSecret::new(s).map_err(|_| {
            serde::de::Error::custom(format!("must be at least {MIN_SECRET_BYTES} bytes"))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_secret_is_refused_and_debug_hides_it() {
        assert!(WebhookSecret::new("short").is_err());
        let s = WebhookSecret::new("0123456789abcdef-secret").unwrap();
        assert!(!format!("{s:?}").contains("0123"));
        assert_eq!(s.as_bytes(), b"0123456789abcdef-secret");
    }
}
