//! Request hygiene, before the chain: `X-Correlation-ID` (a UUID) is
//! required on data calls, SIREN and `annee` are validated.

use super::{Denial, Reason};
use crate::domain::Siren;
use hyper::HeaderMap;

/// The request header carrying the caller's correlation id.
pub const CORRELATION_HEADER: &str = "x-correlation-id";

/// A request's `X-Correlation-ID`, read once when the request arrives and
/// carried by its context: the span, the hygiene step, the response and
/// the trace all use this value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Correlation {
    /// A UUID, kept as sent (trimmed) so that it is echoed verbatim.
    Valid(String),
    /// No header.
    Missing,
    /// Present but not a UUID (first 64 characters, for the log only).
    Malformed(String),
}

impl Correlation {
    /// Reads the header of `headers`.
    pub fn read(headers: &HeaderMap) -> Self {
        let Some(raw) = headers.get(CORRELATION_HEADER) else {
            return Correlation::Missing;
        };
        let text = raw.to_str().map(str::trim).unwrap_or("");
        match uuid::Uuid::try_parse(text) {
            Ok(_) => Correlation::Valid(text.to_owned()),
            Err(_) => Correlation::Malformed(text.chars().take(64).collect()),
        }
    }

    /// The hygiene rule of data calls: a UUID is required (910000).
    pub fn require(&self) -> Result<&str, Denial> {
        match self {
            Correlation::Valid(id) => Ok(id),
            Correlation::Missing => Err(Denial::new(
                Reason::CorrelationId,
                "the X-Correlation-ID header is required",
            )),
            Correlation::Malformed(_) => Err(Denial::new(
                Reason::CorrelationId,
                "X-Correlation-ID must be a UUID",
            )),
        }
    }

    /// The id a response carries: the caller's when valid, else a fresh one.
    pub fn echo(&self) -> String {
        match self {
            Correlation::Valid(id) => id.clone(),
            _ => crate::domain::fresh_correlation_id(),
        }
    }

    /// What the request's log span shows (possibly invalid, never long).
    pub fn for_log(&self) -> &str {
        match self {
            Correlation::Valid(id) | Correlation::Malformed(id) => id,
            Correlation::Missing => "",
        }
    }
}

/// The SIREN path segment.
pub fn siren(segment: &str) -> Result<Siren, Denial> {
    Siren::parse(segment)
        .map_err(|e| Denial::new(Reason::SirenMalformed, format!("SIREN {segment:?}: {e}")))
}

/// The `annee` query parameter, 4 digits; `default` when absent.
pub fn annee(query: Option<&str>, default: i32) -> Result<i32, Denial> {
    let mut found = None;
    for (k, v) in url::form_urlencoded::parse(query.unwrap_or("").as_bytes()) {
        if k == "annee" {
            if found.is_some() {
                return Err(Denial::new(
                    Reason::AnneeMalformed,
                    "annee is given more than once",
                ));
            }
            found = Some(v);
        }
    }
    match found {
        None => Ok(default),
        Some(v) if v.len() == 4 && v.bytes().all(|b| b.is_ascii_digit()) => v
            .parse()
            .map_err(|_| Denial::new(Reason::AnneeMalformed, "annee must be 4 digits")),
        Some(v) => Err(Denial::new(
            Reason::AnneeMalformed,
            format!("annee {v:?} must be 4 digits (YYYY)"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn annee_rules() {
        assert_eq!(annee(None, 2025), Ok(2025));
        assert_eq!(annee(Some("annee=2023"), 2025), Ok(2023));
        assert_eq!(annee(Some("x=1&annee=2023"), 2025), Ok(2023));
        assert!(annee(Some("annee=23"), 2025).is_err());
        assert!(annee(Some("annee=2023&annee=2024"), 2025).is_err());
        assert!(annee(Some("annee=20a3"), 2025).is_err());
        assert!(annee(Some("annee"), 2025).is_err());
        // The query is form-decoded (application/x-www-form-urlencoded).
        assert_eq!(annee(Some("annee=%32%30%32%33"), 2025), Ok(2023));
        assert!(annee(Some("ann%65e=2023&annee=2024"), 2025).is_err());
    }

    #[test]
    fn correlation_id_must_be_a_uuid() {
        let mut h = HeaderMap::new();
        let missing = Correlation::read(&h);
        assert_eq!(missing.require().unwrap_err().reason, Reason::CorrelationId);
        assert_ne!(missing.echo(), missing.echo(), "a fresh id each time");
        h.insert(CORRELATION_HEADER, "not-a-uuid".parse().unwrap());
        let bad = Correlation::read(&h);
        assert!(bad.require().is_err());
        assert_eq!(bad.for_log(), "not-a-uuid");
        let id = "6F1C2A52-8a52-4a4e-9a53-2b1c7d1e9f00";
        h.insert(CORRELATION_HEADER, format!(" {id} ").parse().unwrap());
        let ok = Correlation::read(&h);
        assert_eq!(ok.require(), Ok(id));
        assert_eq!(ok.echo(), id, "echoed as sent");
    }
}
