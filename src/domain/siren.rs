//! SIREN: the 9-digit French company identifier, checked with the Luhn
//! algorithm as python-stdnum does (`stdnum.fr.siren`).
//!
//! La Poste's SIREN 356 000 000 passes Luhn like any other; La Poste's special
//! rule in python-stdnum (digit sum divisible by 5) applies to its 14-digit
//! SIRETs only, so it has no effect on a SIREN and is not needed here.

use serde::{Deserialize, Deserializer, Serialize};
use std::fmt;
use std::str::FromStr;

/// A validated SIREN: exactly 9 ASCII digits with a valid Luhn checksum.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Siren([u8; 9]);

/// Why a string is not a SIREN.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SirenError {
    /// Not exactly nine characters.
    #[error("a SIREN has exactly 9 digits, got {0} characters")]
    Length(usize),
    /// A character other than 0-9.
    #[error("a SIREN contains digits only")]
    NotDigits,
    /// The Luhn checksum does not hold.
    #[error("invalid SIREN checksum (Luhn)")]
    Checksum,
}

impl Siren {
    /// Validates `s` (surrounding spaces are not accepted).
    pub fn parse(s: &str) -> Result<Self, SirenError> {
        let chars = s.chars().count();
        if chars != 9 {
            return Err(SirenError::Length(chars));
        }
        let bytes = s.as_bytes();
        if !bytes.iter().all(u8::is_ascii_digit) {
            return Err(SirenError::NotDigits);
        }
        if !luhn_valid(bytes) {
            return Err(SirenError::Checksum);
        }
        let mut digits = [0u8; 9];
        digits.copy_from_slice(bytes);
        Ok(Siren(digits))
    }

    /// The nine digits.
    pub fn as_str(&self) -> &str {
        // Built only from ASCII digits in `parse`.
        std::str::from_utf8(&self.0).unwrap_or("000000000")
    }
}

/// Luhn over ASCII digits, rightmost digit undoubled.
fn luhn_valid(digits: &[u8]) -> bool {
    let sum: u32 = digits
        .iter()
        .rev()
        .enumerate()
        .map(|(i, d)| {
            let v = u32::from(d - b'0');
            if i % 2 == 1 {
                let dbl = v * 2;
                if dbl > 9 { dbl - 9 } else { dbl }
            } else {
                v
            }
        })
        .sum();
    sum.is_multiple_of(10)
}

impl FromStr for Siren {
    type Err = SirenError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Siren::parse(s)
    }
}

impl fmt::Display for Siren {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for Siren {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Siren {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Siren::parse(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_known_valid_sirens() {
        for s in [
            "732829320",
            "552100554",
            "356000000",
            "000000000",
            "443061841",
        ] {
            assert!(Siren::parse(s).is_ok(), "{s} should be valid");
        }
    }

    #[test]
    fn rejects_bad_checksum_length_and_characters() {
        assert_eq!(Siren::parse("732829321"), Err(SirenError::Checksum));
        assert_eq!(Siren::parse("73282932"), Err(SirenError::Length(8)));
        assert_eq!(Siren::parse("7328293200"), Err(SirenError::Length(10)));
        assert_eq!(Siren::parse("73282932a"), Err(SirenError::NotDigits));
        assert_eq!(Siren::parse("é3282932a"), Err(SirenError::NotDigits));
    }
}
