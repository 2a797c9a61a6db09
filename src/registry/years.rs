//! The fiscal years a grant covers: explicit years (`2023`) and ranges,
//! absolute (`"2020..2023"`) or relative to the current year
//! (`"N-3..N-1"`, resolved against today on every request).

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;

/// One end of a range.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum YearBound {
    /// A calendar year.
    Absolute(i32),
    /// `N+offset`, N being the current year.
    Relative(i32),
}

impl YearBound {
    fn resolve(self, current: i32) -> i32 {
        match self {
            YearBound::Absolute(y) => y,
            YearBound::Relative(off) => current + off,
        }
    }

    fn parse(s: &str) -> Option<Self> {
        let s = s.trim();
        if let Some(rest) = s.strip_prefix('N') {
            return match rest {
                "" => Some(YearBound::Relative(0)),
                _ => {
                    let sign = match rest.as_bytes()[0] {
                        b'-' => -1,
                        b'+' => 1,
                        _ => return None,
                    };
                    let n: i32 = rest[1..].parse().ok().filter(|n| (0..=50).contains(n))?;
                    Some(YearBound::Relative(sign * n))
                }
            };
        }
        let y: i32 = s.parse().ok()?;
        (s.len() == 4).then_some(YearBound::Absolute(y))
    }
}

impl fmt::Display for YearBound {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            YearBound::Absolute(y) => write!(f, "{y}"),
            YearBound::Relative(0) => f.write_str("N"),
            YearBound::Relative(o) if o < 0 => write!(f, "N{o}"),
            YearBound::Relative(o) => write!(f, "N+{o}"),
        }
    }
}

/// A year or a range of years.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum YearSpec {
    /// One year.
    Year(i32),
    /// `from..to`, both inclusive.
    Range(YearBound, YearBound),
}

impl YearSpec {
    /// Parses `2023`, `N-1`, `2020..2023` or `N-3..N-1`.
    pub fn parse(s: &str) -> Option<Self> {
        match s.split_once("..") {
            Some((a, b)) => Some(YearSpec::Range(YearBound::parse(a)?, YearBound::parse(b)?)),
            None => match YearBound::parse(s)? {
                YearBound::Absolute(y) => Some(YearSpec::Year(y)),
                rel => Some(YearSpec::Range(rel, rel)),
            },
        }
    }

    /// Parses a comma-separated list, the command line's form of a grant's
    /// years: `2022,2023`, `2020..2023`, `N-3..N-1`, and `2020-2023` (the
    /// command line's spelling of `2020..2023`). `None` if an element is not
    /// a spec or is an inverted range.
    pub fn parse_list(s: &str) -> Option<Vec<Self>> {
        s.split(',')
            .map(|part| {
                let spec = Self::parse(part).or_else(|| Self::parse_dashed(part))?;
                (!spec.is_inverted()).then_some(spec)
            })
            .collect()
    }

    /// `2020-2023`: two absolute years joined by a dash.
    fn parse_dashed(s: &str) -> Option<Self> {
        let (a, b) = s.split_once('-')?;
        match (YearBound::parse(a)?, YearBound::parse(b)?) {
            (a @ YearBound::Absolute(_), b @ YearBound::Absolute(_)) => Some(YearSpec::Range(a, b)),
            _ => None,
        }
    }

    /// Whether `year` is covered when the current year is `current`.
    pub fn covers(&self, year: i32, current: i32) -> bool {
        match *self {
            YearSpec::Year(y) => y == year,
            YearSpec::Range(a, b) => (a.resolve(current)..=b.resolve(current)).contains(&year),
        }
    }

    /// Both ends resolved against `current`.
    pub fn bounds(&self, current: i32) -> (i32, i32) {
        match *self {
            YearSpec::Year(y) => (y, y),
            YearSpec::Range(a, b) => (a.resolve(current), b.resolve(current)),
        }
    }

    /// Whether the range is empty whatever the current year (both ends
    /// absolute or both relative, and from > to). A mixed range such as
    /// `2020..N` is empty only in some years, so it is accepted.
    pub fn is_inverted(&self) -> bool {
        match *self {
            YearSpec::Year(_) => false,
            YearSpec::Range(YearBound::Absolute(a), YearBound::Absolute(b))
            | YearSpec::Range(YearBound::Relative(a), YearBound::Relative(b)) => a > b,
            YearSpec::Range(..) => false,
        }
    }
}

impl fmt::Display for YearSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            YearSpec::Year(y) => write!(f, "{y}"),
            YearSpec::Range(a, b) if a == b => write!(f, "{a}"),
            YearSpec::Range(a, b) => write!(f, "{a}..{b}"),
        }
    }
}

impl Serialize for YearSpec {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match *self {
            YearSpec::Year(y) => s.serialize_i32(y),
            // One absolute year is a number however it was written
            // ("2023..2023" too), so what is written reads back the same.
            YearSpec::Range(YearBound::Absolute(a), YearBound::Absolute(b)) if a == b => {
                s.serialize_i32(a)
            }
            ref other => s.serialize_str(&other.to_string()),
        }
    }
}

impl<'de> Deserialize<'de> for YearSpec {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Year(i32),
            Text(String),
        }
        match Raw::deserialize(d)? {
            Raw::Year(y) => Ok(YearSpec::Year(y)),
            Raw::Text(t) => YearSpec::parse(&t).ok_or_else(|| {
                serde::de::Error::custom(format!(
                    "{t:?} is not a year, a range such as \"2020..2023\", or a relative range such as \"N-3..N-1\""
                ))
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_ranges_follow_the_current_year() {
        let spec = YearSpec::parse("N-3..N-1").unwrap();
        assert!(spec.covers(2023, 2026) && spec.covers(2025, 2026));
        assert!(!spec.covers(2026, 2026) && !spec.covers(2022, 2026));
        assert!(spec.covers(2026, 2027));
        assert_eq!(spec.to_string(), "N-3..N-1");
        assert_eq!(
            YearSpec::parse("2020..2022").unwrap().bounds(0),
            (2020, 2022)
        );
        assert_eq!(YearSpec::parse("N").unwrap().to_string(), "N");
        assert!(YearSpec::parse("N-1..N-3").unwrap().is_inverted());
        assert!(YearSpec::parse("2023..2020").unwrap().is_inverted());
        // Regression: a mixed range was judged against the year 2000.
        assert!(!YearSpec::parse("2020..N").unwrap().is_inverted());
        assert!(YearSpec::parse("2020..N").unwrap().covers(2025, 2026));
        for bad in ["", "N*2", "20", "N-..N", "abcd", "2020..", "N-99"] {
            assert_eq!(YearSpec::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn lists_are_the_command_line_form() {
        let list = YearSpec::parse_list("2020-2022, 2024,N-3..N-1,2019..2020").unwrap();
        let text: Vec<String> = list.iter().map(ToString::to_string).collect();
        assert_eq!(text, ["2020..2022", "2024", "N-3..N-1", "2019..2020"]);
        assert_eq!(
            YearSpec::parse_list("N-1").unwrap(),
            [YearSpec::Range(
                YearBound::Relative(-1),
                YearBound::Relative(-1)
            )]
        );
        for bad in [
            "",
            "2024-2020",
            "2020..2019",
            "2022,",
            "2020-N",
            "N-1-2",
            "x",
        ] {
            assert_eq!(YearSpec::parse_list(bad), None, "{bad}");
        }
    }

    #[test]
    fn serde_keeps_numbers_as_numbers() {
        let v: Vec<YearSpec> = serde_json::from_str(r#"[2023, "N-2..N"]"#).unwrap();
        assert_eq!(serde_json::to_string(&v).unwrap(), r#"[2023,"N-2..N"]"#);
    }
}
