//! The last DataPass event applied to each authorization request, per
//! environment. It lives in the registry (`reg/datapass/<environment>/<id>`)
//! so that it is committed in the same atomic operation as the application
//! change it records, on sled as on PostgreSQL, and reloaded with the rest
//! of the registry on every node. The webhook (`crate::datapass::apply`)
//! compares each new event with it: events apply in `fired_at` order.

use crate::domain::Environment;
use serde::{Deserialize, Serialize};
use std::fmt;
use time::OffsetDateTime;

/// A DataPass event that changes the registry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DatapassEvent {
    /// The request was approved: partner and application created or extended.
    Approve,
    /// The request was revoked: the application suspended, its tokens revoked.
    Revoke,
}

impl DatapassEvent {
    /// `approve` or `revoke`, as DataPass names it.
    pub fn as_str(self) -> &'static str {
        match self {
            DatapassEvent::Approve => "approve",
            DatapassEvent::Revoke => "revoke",
        }
    }
}

impl fmt::Display for DatapassEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One authorization request (`data.id`) in one environment: the key of
/// one application `datapass-<id>`, and of its [`DatapassMark`].
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct DatapassKey {
    /// The environment of the signed `form_uid`.
    pub environment: Environment,
    /// DataPass's `data.id`.
    pub request_id: String,
}

impl fmt::Display for DatapassKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.environment, self.request_id)
    }
}

/// The last event applied to one request in one environment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DatapassMark {
    /// The environment of the request's `form_uid`.
    pub environment: Environment,
    /// DataPass's `data.id`.
    pub request_id: String,
    /// `approve` or `revoke`.
    pub event: DatapassEvent,
    /// DataPass's `fired_at` of that event, Unix seconds.
    pub fired_at: i64,
    /// SHA-256 of the signed body, lowercase hex: the same delivery
    /// received again is recognised by it.
    pub body_sha256: String,
    /// When it was applied here (RFC 3339).
    #[serde(with = "time::serde::rfc3339")]
    pub applied_at: OffsetDateTime,
}

impl DatapassMark {
    /// The request it is about.
    pub fn key(&self) -> DatapassKey {
        DatapassKey {
            environment: self.environment,
            request_id: self.request_id.clone(),
        }
    }
}
