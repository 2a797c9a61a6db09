//! `[limits]` (DESIGN §8): what an unauthenticated connection may hold,
//! enforced on all three listeners by `server/`. Nothing unauthenticated
//! may hold a resource for long.

use super::ConfigError;
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// `[limits]`, with the defaults of DESIGN §8.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct LimitsSettings {
    /// Time allowed for the TLS handshake, milliseconds (10 000).
    pub handshake_timeout_ms: u64,
    /// Time allowed for a whole HTTP/1 request head from its first byte,
    /// milliseconds (10 000): slowloris.
    pub header_read_timeout_ms: u64,
    /// A connection with no request in flight is closed after this long,
    /// milliseconds (60 000).
    pub idle_timeout_ms: u64,
    /// Open connections per listener; over it a new one is closed at once
    /// (10 000).
    pub max_connections: usize,
    /// Open connections per caller address and listener, counted before
    /// authentication (512).
    pub max_connections_per_ip: usize,
    /// Largest request body, bytes (262 144): 413 before the rest is read.
    pub max_body_bytes: u64,
    /// Concurrent HTTP/2 streams per connection (100).
    pub h2_max_concurrent_streams: u32,
}

impl Default for LimitsSettings {
    fn default() -> Self {
        LimitsSettings {
            handshake_timeout_ms: 10_000,
            header_read_timeout_ms: 10_000,
            idle_timeout_ms: 60_000,
            max_connections: 10_000,
            max_connections_per_ip: 512,
            max_body_bytes: 262_144,
            h2_max_concurrent_streams: 100,
        }
    }
}

impl LimitsSettings {
    /// The TLS handshake timeout.
    pub fn handshake_timeout(&self) -> Duration {
        Duration::from_millis(self.handshake_timeout_ms)
    }

    /// The request-head timeout.
    pub fn header_read_timeout(&self) -> Duration {
        Duration::from_millis(self.header_read_timeout_ms)
    }

    /// The keep-alive idle timeout.
    pub fn idle_timeout(&self) -> Duration {
        Duration::from_millis(self.idle_timeout_ms)
    }

    /// Every value must be positive.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let positive = [
            ("handshake_timeout_ms", self.handshake_timeout_ms),
            ("header_read_timeout_ms", self.header_read_timeout_ms),
            ("idle_timeout_ms", self.idle_timeout_ms),
            ("max_connections", self.max_connections as u64),
            ("max_connections_per_ip", self.max_connections_per_ip as u64),
            ("max_body_bytes", self.max_body_bytes),
            (
                "h2_max_concurrent_streams",
                u64::from(self.h2_max_concurrent_streams),
            ),
        ];
        match positive.iter().find(|(_, v)| *v == 0) {
            Some((key, _)) => Err(ConfigError::Invalid {
                key: format!("limits.{key}"),
                message: "must be greater than 0".into(),
            }),
            None => Ok(()),
        }
    }
}
