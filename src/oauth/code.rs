//! The error codes the authorization server answers with: the RFC 6749
//! §5.2 codes of the token endpoint (also the `invalid_request` of the
//! RFC 7009 revocation and RFC 7662 introspection answers, which reuse
//! them), and `temporarily_unavailable` (RFC 6749 §4.1.2.1), which §5.2
//! lacks for a server that cannot serve now. One value each, written as the RFC spells them, in the `error`
//! member of an answer and in the `code` of the request's trace record
//! (`crate::audit::Code::OAuth`).

use std::fmt;

/// An RFC 6749 error code the gateway sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ErrorCode {
    /// `invalid_request`: a parameter is missing, repeated or malformed,
    /// or the method or content type is wrong.
    InvalidRequest,
    /// `invalid_client`: client authentication failed (401).
    InvalidClient,
    /// `invalid_grant`: the grant is invalid (oxide-auth's answer).
    InvalidGrant,
    /// `unauthorized_client`: an authenticated client that may not be
    /// served now (suspended, outside its validity, address not declared).
    UnauthorizedClient,
    /// `unsupported_grant_type`: not `client_credentials`.
    UnsupportedGrantType,
    /// `invalid_scope`: a scope not granted to the client, or unknown.
    InvalidScope,
    /// `temporarily_unavailable` (RFC 6749 §4.1.2.1, defined for the
    /// authorization endpoint; §5.2 has no code for it): answered with 503
    /// by a cluster node cut off from its store for longer than
    /// `cluster.max_staleness_secs` (docs/contract.md §3, §10).
    TemporarilyUnavailable,
}

impl ErrorCode {
    /// Every code.
    pub const ALL: [ErrorCode; 7] = [
        ErrorCode::InvalidRequest,
        ErrorCode::InvalidClient,
        ErrorCode::InvalidGrant,
        ErrorCode::UnauthorizedClient,
        ErrorCode::UnsupportedGrantType,
        ErrorCode::InvalidScope,
        ErrorCode::TemporarilyUnavailable,
    ];

    /// The code as RFC 6749 spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::InvalidRequest => "invalid_request",
            ErrorCode::InvalidClient => "invalid_client",
            ErrorCode::InvalidGrant => "invalid_grant",
            ErrorCode::UnauthorizedClient => "unauthorized_client",
            ErrorCode::UnsupportedGrantType => "unsupported_grant_type",
            ErrorCode::InvalidScope => "invalid_scope",
            ErrorCode::TemporarilyUnavailable => "temporarily_unavailable",
        }
    }

    /// The code spelt `name`.
    pub fn parse(name: &str) -> Option<ErrorCode> {
        Self::ALL.into_iter().find(|c| c.as_str() == name)
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

crate::domain::serde_as_name!(ErrorCode, "OAuth error code");

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_reads_back_from_its_name() {
        for code in ErrorCode::ALL {
            assert_eq!(ErrorCode::parse(code.as_str()), Some(code));
            let json = serde_json::to_string(&code).unwrap();
            assert_eq!(json, format!("\"{code}\""));
        }
        assert_eq!(ErrorCode::parse("invalid_token"), None);
    }
}
