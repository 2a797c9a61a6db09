//! References of claims, payments and refunds: `CRE-2024-004815162`.

use super::text::Text;
use serde::{Serialize, Serializer};
use std::fmt;

/// A document reference: a kind prefix, the year it was issued, a number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Reference {
    /// `CRE` (créance), `PAI` (paiement) or `RBT` (remboursement).
    pub(super) prefix: &'static str,
    /// Year of issue.
    pub(super) year: i32,
    /// Serial number, below 10⁹ (nine digits, zero-padded).
    pub(super) number: u32,
}

impl Reference {
    fn text(self) -> Text<32> {
        let mut t = Text::new();
        t.push_str(self.prefix).push_ascii(b'-');
        t.push_number(u64::from(self.year.unsigned_abs()), 4)
            .push_ascii(b'-');
        t.push_number(u64::from(self.number), 9);
        t
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.text().as_str())
    }
}

impl Serialize for Reference {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.text().as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_padded() {
        let r = Reference {
            prefix: "PAI",
            year: 2024,
            number: 4_815_162,
        };
        assert_eq!(r.to_string(), "PAI-2024-004815162");
    }
}
