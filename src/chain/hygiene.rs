//! Request hygiene, before the chain: `X-Correlation-ID` (a UUID) is
//! required on data calls, SIREN and `annee` are validated.

use super::{Denial, Reason};
use crate::domain::Siren;
use hyper::HeaderMap;

/// The request header carrying the caller's correlation id.
pub const CORRELATION_HEADER: &str = "x-correlation-id";

/// The caller's correlation id, which must be a UUID.
pub fn correlation_id(headers: &HeaderMap) -> Result<uuid::Uuid, Denial> {
    let raw = headers.get(CORRELATION_HEADER).ok_or_else(|| {
        Denial::new(
            Reason::CorrelationId,
            "the X-Correlation-ID header is required",
        )
    })?;
    raw.to_str()
        .ok()
        .and_then(|s| uuid::Uuid::try_parse(s.trim()).ok())
        .ok_or_else(|| Denial::new(Reason::CorrelationId, "X-Correlation-ID must be a UUID"))
}

/// The caller's `X-Correlation-ID` as sent (trimmed), to echo back once
/// [`correlation_id`] accepted it.
pub fn raw_correlation_id(headers: &HeaderMap) -> String {
    headers
        .get(CORRELATION_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(|s| s.trim().to_owned())
        .unwrap_or_default()
}

/// The SIREN path segment.
pub fn siren(segment: &str) -> Result<Siren, Denial> {
    Siren::parse(segment)
        .map_err(|e| Denial::new(Reason::SirenMalformed, format!("SIREN {segment:?}: {e}")))
}

/// The `annee` query parameter, 4 digits; `default` when absent.
pub fn annee(query: Option<&str>, default: i32) -> Result<i32, Denial> {
    let mut found = None;
    for (k, v) in form_urlencoded::parse(query.unwrap_or("").as_bytes()) {
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
        assert_eq!(
            correlation_id(&h).unwrap_err().reason,
            Reason::CorrelationId
        );
        h.insert(CORRELATION_HEADER, "not-a-uuid".parse().unwrap());
        assert!(correlation_id(&h).is_err());
        h.insert(
            CORRELATION_HEADER,
            "6f1c2a52-8a52-4a4e-9a53-2b1c7d1e9f00".parse().unwrap(),
        );
        assert!(correlation_id(&h).is_ok());
    }
}
