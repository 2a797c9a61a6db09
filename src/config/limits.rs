//! `[limits]` (docs/contract.md §8): what an unauthenticated connection may hold,
//! enforced on all three listeners by `server/`. Nothing unauthenticated
//! may hold a resource for long.

use super::ConfigError;
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// `[limits]`, with the defaults of docs/contract.md §8.
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
    /// A request body must be complete within this long of its head,
    /// milliseconds (10 000): with `max_body_bytes`, the minimum rate.
    pub body_read_timeout_ms: u64,
    /// A response that does not move (the socket takes no byte, an HTTP/2
    /// window stays closed) for this long drops its connection,
    /// milliseconds (10 000).
    pub send_timeout_ms: u64,
    /// Any connection is asked to close gracefully at this age, seconds
    /// (300), and dropped if it is still open 10 s later.
    pub max_connection_age_secs: u64,
    /// Concurrent HTTP/2 streams on a connection without a verified client
    /// certificate (4).
    pub unauthenticated_h2_streams: u32,
    /// Largest request body on a connection without a verified client
    /// certificate, bytes (65 536).
    pub unauthenticated_max_body_bytes: u64,
    /// Per source address and minute, requests refused before an
    /// application is identified are traced one by one up to this count,
    /// then summarised in one record (60).
    pub unauthenticated_traced_per_minute: u32,
    /// Per source address and minute, requests without a verified client
    /// certificate beyond this count of refusals are answered 429 (600).
    pub unauthenticated_per_minute: u32,
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
            body_read_timeout_ms: 10_000,
            send_timeout_ms: 10_000,
            max_connection_age_secs: 300,
            unauthenticated_h2_streams: 4,
            unauthenticated_max_body_bytes: 65_536,
            unauthenticated_traced_per_minute: 60,
            unauthenticated_per_minute: 600,
        }
    }
}

impl LimitsSettings {
    /// The largest request body a connection may send: `max_body_bytes`,
    /// and at most `unauthenticated_max_body_bytes` without a verified
    /// client certificate.
    pub fn body_cap(&self, verified: bool) -> u64 {
        if verified {
            self.max_body_bytes
        } else {
            self.max_body_bytes.min(self.unauthenticated_max_body_bytes)
        }
    }

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

    /// The request-body deadline.
    pub fn body_read_timeout(&self) -> Duration {
        Duration::from_millis(self.body_read_timeout_ms)
    }

    /// How long a response may stand still.
    pub fn send_timeout(&self) -> Duration {
        Duration::from_millis(self.send_timeout_ms)
    }

    /// The age at which a connection is asked to close.
    pub fn max_connection_age(&self) -> Duration {
        Duration::from_secs(self.max_connection_age_secs)
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
            ("body_read_timeout_ms", self.body_read_timeout_ms),
            ("send_timeout_ms", self.send_timeout_ms),
            ("max_connection_age_secs", self.max_connection_age_secs),
            (
                "unauthenticated_h2_streams",
                u64::from(self.unauthenticated_h2_streams),
            ),
            (
                "unauthenticated_max_body_bytes",
                self.unauthenticated_max_body_bytes,
            ),
            (
                "unauthenticated_traced_per_minute",
                u64::from(self.unauthenticated_traced_per_minute),
            ),
            (
                "unauthenticated_per_minute",
                u64::from(self.unauthenticated_per_minute),
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
