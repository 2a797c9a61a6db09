//! The code of a refusal in a record: a row of the catalogue
//! (docs/contract.md §5), an RFC 6749 §5.2 error of the token endpoint, or
//! the HTTP status of an admin-plane refusal. Written as a string
//! (`"910500"`, `"invalid_client"`, `"403"`).

use crate::chain::Reason;
use crate::oauth::ErrorCode;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;

/// The code of a refusal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Code {
    /// A catalogue row.
    Catalogue(Reason),
    /// An OAuth error code of the token endpoint.
    OAuth(ErrorCode),
    /// An HTTP status (admin plane).
    Status(u16),
    /// A code this build does not know, kept as written: only read back
    /// from a record written by another version (a catalogue row since
    /// retired, such as `910603`), never built otherwise, so that such a
    /// record still lists and verifies.
    Unknown(String),
}

impl Code {
    /// The catalogue row, if this is one.
    pub fn reason(&self) -> Option<Reason> {
        match self {
            Code::Catalogue(r) => Some(*r),
            _ => None,
        }
    }

    /// Reads the written form back.
    pub fn parse(text: &str) -> Code {
        let number = text
            .parse::<u32>()
            .ok()
            .filter(|_| text.bytes().all(|b| b.is_ascii_digit()));
        let known = match number {
            Some(n) if text.len() == 6 => Reason::from_code(n).map(Code::Catalogue),
            Some(n) if text.len() == 3 => Some(Code::Status(n as u16)),
            _ => ErrorCode::parse(text).map(Code::OAuth),
        };
        known.unwrap_or_else(|| Code::Unknown(text.to_owned()))
    }
}

impl fmt::Display for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Code::Catalogue(r) => write!(f, "{}", r.code()),
            Code::OAuth(e) => f.write_str(e.as_str()),
            Code::Status(s) => write!(f, "{s}"),
            Code::Unknown(text) => f.write_str(text),
        }
    }
}

impl Serialize for Code {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Code {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(Code::parse(&String::deserialize(d)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_of_code_reads_back_from_its_text() {
        for (text, code) in [
            ("910500", Code::Catalogue(Reason::YearNotGranted)),
            ("invalid_client", Code::OAuth(ErrorCode::InvalidClient)),
            (
                "unsupported_grant_type",
                Code::OAuth(ErrorCode::UnsupportedGrantType),
            ),
            ("403", Code::Status(403)),
            ("910603", Code::Unknown("910603".into())),
            ("999999", Code::Unknown("999999".into())),
            ("invalid_token", Code::Unknown("invalid_token".into())),
        ] {
            assert_eq!(Code::parse(text), code);
            assert_eq!(code.to_string(), text);
            let json = serde_json::to_string(&code).unwrap();
            assert_eq!(serde_json::from_str::<Code>(&json).unwrap(), code);
        }
    }
}
