//! The language of a page: French by default, English when the browser's
//! `Accept-Language` prefers it (RFC 9110 §12.5.4, q-values included).
//! One language per page, never both side by side (docs/contract.md §13):
//! every page is rendered for one [`Lang`], and its texts come from the
//! typed catalogue in `messages.rs`.

use hyper::HeaderMap;
use hyper::header::ACCEPT_LANGUAGE;

/// A language the pages are written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Lang {
    /// French: the default, and the answer to any tie.
    #[default]
    Fr,
    /// English, when the browser ranks it strictly above French.
    En,
}

/// Ranges read from one header at most: a longer list is cut there (a
/// browser sends a handful; a request cannot make the parse costly).
const MAX_RANGES: usize = 32;

impl Lang {
    /// The language chosen for a request from its `Accept-Language`
    /// header(s); French when there is none or it cannot be read.
    pub fn of_request(headers: &HeaderMap) -> Lang {
        let values: Vec<&str> = headers
            .get_all(ACCEPT_LANGUAGE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .collect();
        Lang::negotiate(&values.join(","))
    }

    /// The language preferred by an `Accept-Language` value: each of ours
    /// gets the weight of the range naming its primary subtag (`en`,
    /// `en-GB`: the highest such), else of `*`, else 0; English wins only
    /// with a strictly higher weight than French. Malformed ranges and
    /// q-values are ignored, as RFC 9110 lets a recipient do.
    pub fn negotiate(accept_language: &str) -> Lang {
        let (mut fr, mut en, mut any) = (None::<u16>, None::<u16>, None::<u16>);
        for (range, q) in accept_language
            .split(',')
            .take(MAX_RANGES)
            .filter_map(parse_range)
        {
            let primary = range.split('-').next().unwrap_or_default();
            let slot = match primary.to_ascii_lowercase().as_str() {
                "fr" => &mut fr,
                "en" => &mut en,
                "*" => &mut any,
                _ => continue,
            };
            *slot = Some(slot.map_or(q, |old| old.max(q)));
        }
        let weight = |own: Option<u16>| own.or(any).unwrap_or(0);
        if weight(en) > weight(fr) {
            Lang::En
        } else {
            Lang::Fr
        }
    }

    /// The BCP 47 tag (`<html lang>`, `Content-Language`).
    pub fn tag(self) -> &'static str {
        match self {
            Lang::Fr => "fr",
            Lang::En => "en",
        }
    }

    /// `fr` in French, `en` in English: for the few texts built from
    /// values (a number, a date) that the catalogue cannot hold whole.
    pub fn pick<T>(self, fr: T, en: T) -> T {
        match self {
            Lang::Fr => fr,
            Lang::En => en,
        }
    }
}

/// One `language-range [; q=weight]` element: the range and its weight in
/// thousandths, `None` when malformed (an empty range, a bad q-value).
fn parse_range(element: &str) -> Option<(&str, u16)> {
    let mut parts = element.split(';');
    let range = parts.next()?.trim();
    let well_formed = range == "*"
        || (!range.is_empty()
            && range.split('-').all(|s| {
                (1..=8).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_alphanumeric())
            }));
    if !well_formed {
        return None;
    }
    let mut q = 1000;
    for param in parts {
        let (name, value) = param.split_once('=')?;
        if name.trim().eq_ignore_ascii_case("q") {
            q = qvalue(value.trim())?;
        }
    }
    Some((range, q))
}

/// RFC 9110 §12.4.2 `qvalue`: `0[.ddd]` or `1[.000]`, in thousandths.
fn qvalue(text: &str) -> Option<u16> {
    let (int, frac) = text.split_once('.').unwrap_or((text, ""));
    if frac.len() > 3 || !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let thousandths = format!("{frac:0<3}").parse::<u16>().ok()?;
    match int {
        "0" => Some(thousandths),
        "1" if thousandths == 0 => Some(1000),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn french_is_the_default() {
        for header in [
            "",
            "de-DE",
            "garbage;;;",
            "fr",
            "fr, en",
            "en;q=0.5, fr;q=0.5",
        ] {
            assert_eq!(Lang::negotiate(header), Lang::Fr, "{header:?}");
        }
    }

    #[test]
    fn english_when_it_is_preferred() {
        for header in [
            "en",
            "en-US,en;q=0.9",
            "en-GB",
            "EN-gb, fr;q=0.8",
            "de, en;q=0.7, fr;q=0.3",
            "fr;q=0, *;q=0.1",
            "fr;q=0.5, *",
        ] {
            assert_eq!(Lang::negotiate(header), Lang::En, "{header:?}");
        }
    }

    #[test]
    fn q_values_are_read_as_the_rfc_writes_them() {
        assert_eq!(qvalue("1"), Some(1000));
        assert_eq!(qvalue("1.000"), Some(1000));
        assert_eq!(qvalue("0.8"), Some(800));
        assert_eq!(qvalue("0.125"), Some(125));
        assert_eq!(qvalue("0"), Some(0));
        for bad in ["1.5", "2", "0.1234", "-0.5", "abc", "", ".5", "0.x"] {
            assert_eq!(qvalue(bad), None, "{bad:?}");
        }
        // A malformed weight drops its range, not the whole header.
        assert_eq!(Lang::negotiate("fr;q=high, en;q=0.2"), Lang::En);
        // q=0 means "not acceptable": English refused leaves French.
        assert_eq!(Lang::negotiate("en;q=0, fr;q=0"), Lang::Fr);
        // The most specific range counts before the wildcard.
        assert_eq!(Lang::negotiate("*;q=0.9, fr;q=0.1"), Lang::En);
    }

    #[test]
    fn the_request_headers_are_joined() {
        let mut h = HeaderMap::new();
        assert_eq!(Lang::of_request(&h), Lang::Fr);
        h.append(ACCEPT_LANGUAGE, "fr;q=0.4".parse().unwrap());
        h.append(ACCEPT_LANGUAGE, "en;q=0.6".parse().unwrap());
        assert_eq!(Lang::of_request(&h), Lang::En);
    }

    proptest::proptest! {
        #[test]
        fn any_header_gives_a_language_without_panicking(s in "\\PC{0,200}") {
            let _ = Lang::negotiate(&s);
        }
    }
}
