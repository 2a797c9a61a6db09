//! `application/x-www-form-urlencoded` bodies of the OAuth endpoints:
//! size-limited, UTF-8, every parameter at most once (RFC 6749 §3.2).

use std::collections::BTreeMap;

/// Largest form body accepted (bytes).
pub const MAX_FORM_BODY: usize = 8 * 1024;

/// Why a form body is refused (always `invalid_request`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FormError {
    /// Wrong or missing Content-Type.
    #[error("the body must be application/x-www-form-urlencoded")]
    ContentType,
    /// Over [`MAX_FORM_BODY`].
    #[error("the body exceeds {MAX_FORM_BODY} bytes")]
    TooLarge,
    /// Not UTF-8 once decoded.
    #[error("the body is not valid UTF-8")]
    NotUtf8,
    /// A parameter given twice.
    #[error("parameter {0:?} is repeated")]
    Repeated(String),
}

/// Checks the content type and decodes the parameters. Parameters with an
/// empty value are treated as omitted (RFC 6749 §3.1).
pub fn parse_form(
    content_type: Option<&str>,
    body: &[u8],
) -> Result<BTreeMap<String, String>, FormError> {
    let media = content_type
        .and_then(|ct| ct.split(';').next())
        .map(|m| m.trim().to_ascii_lowercase());
    if media.as_deref() != Some("application/x-www-form-urlencoded") {
        return Err(FormError::ContentType);
    }
    if body.len() > MAX_FORM_BODY {
        return Err(FormError::TooLarge);
    }
    std::str::from_utf8(body).map_err(|_| FormError::NotUtf8)?;
    let mut params = BTreeMap::new();
    for (k, v) in url::form_urlencoded::parse(body) {
        // form_urlencoded replaces bad UTF-8 with U+FFFD: refuse instead.
        if k.contains('\u{FFFD}') || v.contains('\u{FFFD}') {
            return Err(FormError::NotUtf8);
        }
        if params.contains_key(k.as_ref()) {
            return Err(FormError::Repeated(k.into_owned()));
        }
        params.insert(k.into_owned(), v.into_owned());
    }
    params.retain(|_, v| !v.is_empty());
    Ok(params)
}

#[cfg(test)]
mod tests {
    use super::*;

    const FORM: Option<&str> = Some("application/x-www-form-urlencoded; charset=UTF-8");

    #[test]
    fn decodes_and_refuses_repeats_bad_utf8_and_wrong_type() {
        let p = parse_form(FORM, b"grant_type=client_credentials&scope=a+b&x=").unwrap();
        assert_eq!(p["scope"], "a b");
        assert!(!p.contains_key("x"));
        assert_eq!(
            parse_form(FORM, b"a=1&a=2"),
            Err(FormError::Repeated("a".into()))
        );
        assert_eq!(parse_form(FORM, b"a=%FF"), Err(FormError::NotUtf8));
        assert_eq!(
            parse_form(Some("application/json"), b"{}"),
            Err(FormError::ContentType)
        );
        assert_eq!(parse_form(FORM, &[b'a'; 9000]), Err(FormError::TooLarge));
    }
}
