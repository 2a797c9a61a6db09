//! Euro amounts. Computed as integer cents, written as JSON strings with
//! exactly two decimals (`"12345.67"`): no floating point anywhere, so no
//! rounding or locale surprises and byte-stable output.

use super::text::Text;
use serde::{Serialize, Serializer};
use std::fmt;

/// An amount in euro cents, serialized as `"<euros>.<cents>"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(super) struct Euros(pub(super) i64);

/// `amount × basis_points / 10 000`, truncated toward zero (1 bp = 0.01 %).
pub(super) fn share(amount: i64, basis_points: i64) -> i64 {
    (i128::from(amount) * i128::from(basis_points) / 10_000) as i64
}

/// Whole euros to cents.
pub(super) const fn euros(whole: i64) -> i64 {
    whole * 100
}

impl Euros {
    fn text(self) -> Text<24> {
        let cents = self.0.unsigned_abs();
        let mut t = Text::new();
        if self.0 < 0 {
            t.push_ascii(b'-');
        }
        t.push_number(cents / 100, 1)
            .push_ascii(b'.')
            .push_number(cents % 100, 2);
        t
    }
}

impl fmt::Display for Euros {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.text().as_str())
    }
}

impl Serialize for Euros {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.text().as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn always_two_decimals() {
        assert_eq!(Euros(0).to_string(), "0.00");
        assert_eq!(Euros(5).to_string(), "0.05");
        assert_eq!(Euros(1_234_567).to_string(), "12345.67");
        assert_eq!(Euros(-250).to_string(), "-2.50");
        assert_eq!(Euros(i64::MIN).to_string(), "-92233720368547758.08");
        assert_eq!(serde_json::to_string(&Euros(100)).unwrap(), "\"1.00\"");
    }

    #[test]
    fn share_is_integer_basis_points() {
        assert_eq!(share(euros(1000), 2500), euros(250));
        assert_eq!(share(999, 5000), 499);
        assert_eq!(share(i64::MAX / 2, 10_000), i64::MAX / 2);
    }
}
