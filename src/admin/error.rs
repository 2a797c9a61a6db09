//! The admin API's error body: `{"error":{"status","field","message"}}`.

use crate::registry::RegistryError;
use crate::respond::{self, Body};
use crate::store::StoreError;
use hyper::{Response, StatusCode};
use serde_json::json;

/// The message of a write whose commit PostgreSQL did not confirm.
pub const UNKNOWN_OUTCOME: &str = "the store (PostgreSQL) did not confirm the commit: \
     the outcome is unknown, the change may have been made; read the state again before retrying";

/// A refused admin call.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{status}: {message}")]
pub struct ApiError {
    /// HTTP status.
    pub status: StatusCode,
    /// The JSON field (dotted path) at fault, if any.
    pub field: Option<String>,
    /// What is wrong.
    pub message: String,
}

impl ApiError {
    /// An error with a status, an optional field and a message.
    pub fn new(status: StatusCode, field: Option<&str>, message: impl Into<String>) -> Self {
        ApiError {
            status,
            field: field.map(str::to_owned),
            message: message.into(),
        }
    }

    /// A 400 naming `field`.
    pub fn bad_request(field: &str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, Some(field), message)
    }

    /// The JSON response.
    pub fn into_response(self) -> Response<Body> {
        let body = json!({"error": {
            "status": self.status.as_u16(),
            "field": self.field,
            "message": self.message,
        }});
        respond::json(self.status, &body)
    }
}

impl From<RegistryError> for ApiError {
    fn from(e: RegistryError) -> Self {
        let message = e.to_string();
        match e {
            RegistryError::Invalid { field, message } => {
                ApiError::new(StatusCode::BAD_REQUEST, Some(&field), message)
            }
            RegistryError::NotFound { field, .. } => {
                ApiError::new(StatusCode::NOT_FOUND, Some(&field), message)
            }
            RegistryError::Conflict { field, message } => {
                ApiError::new(StatusCode::CONFLICT, Some(&field), message)
            }
            RegistryError::Store(e) => ApiError::from(e),
            RegistryError::Corrupt { .. } | RegistryError::Random(_) => {
                tracing::error!(error = %message, "registry write failed");
                ApiError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    None,
                    "the registry could not be written; nothing was changed",
                )
            }
        }
    }
}

impl From<StoreError> for ApiError {
    /// An unreachable store (PostgreSQL away) is a 503: nothing was
    /// written and the call can be retried. A commit whose outcome is
    /// unknown is a 503 too, saying so: the change may have been made, so
    /// the caller reads the state again before retrying (docs/contract.md
    /// §10). Any other failure is a 500.
    fn from(e: StoreError) -> Self {
        tracing::error!(error = %e, "store write failed");
        match e {
            StoreError::Unknown { .. } => {
                ApiError::new(StatusCode::SERVICE_UNAVAILABLE, None, UNKNOWN_OUTCOME)
            }
            StoreError::Unavailable { .. } => ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                None,
                "the store (PostgreSQL) is unreachable; nothing was changed, try again later",
            ),
            _ => ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                None,
                "the store could not be written; nothing was changed",
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unknown_commit_is_503_and_never_says_nothing_changed() {
        let e = ApiError::from(StoreError::Unknown {
            message: "no answer to COMMIT".into(),
            source: None,
        });
        assert_eq!(e.status, StatusCode::SERVICE_UNAVAILABLE);
        assert!(e.message.contains("outcome is unknown"), "{}", e.message);
        assert!(!e.message.contains("nothing was changed"), "{}", e.message);
        let e = ApiError::from(StoreError::Unavailable {
            message: "refused".into(),
            source: None,
        });
        assert_eq!(e.status, StatusCode::SERVICE_UNAVAILABLE);
        assert!(e.message.contains("nothing was changed"), "{}", e.message);
    }
}
