//! French bank account numbers: RIB key (clé RIB) and IBAN check digits
//! (ISO 13616, mod 97-10 as in ISO 7064), plus a small table of real French
//! bank codes and BICs. Branch and account numbers are drawn at random, so
//! the accounts are valid in form but fictitious.

use serde::{Serialize, Serializer};

/// A French IBAN: `FR`, two check digits, then the 23-character BBAN
/// (bank code, branch code, account number, RIB key).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Iban([u8; 27]);

/// A bank of the table: its code (code banque), BIC and name.
pub(super) struct Banque {
    /// Five-digit bank code.
    pub(super) code: &'static str,
    /// BIC (8 or 11 characters).
    pub(super) bic: &'static str,
    /// Name shown as `domiciliation`.
    pub(super) nom: &'static str,
    /// Fixed branch code, for banks whose BIC names the branch.
    pub(super) guichet: Option<&'static str>,
    /// Whether account numbers follow La Banque Postale's `NNNNNNNLNNN` pattern.
    pub(super) lettre: bool,
}

const fn banque(code: &'static str, bic: &'static str, nom: &'static str) -> Banque {
    Banque {
        code,
        bic,
        nom,
        guichet: None,
        lettre: false,
    }
}

/// Real French bank codes with their BICs.
pub(super) const BANQUES: [Banque; 12] = [
    banque("30004", "BNPAFRPP", "BNP Paribas"),
    banque("30003", "SOGEFRPP", "Société Générale"),
    banque("30002", "CRLYFRPP", "LCL"),
    banque("30066", "CMCIFRPP", "CIC"),
    banque("10278", "CMCIFR2A", "Crédit Mutuel"),
    banque("10107", "BREDFRPP", "BRED Banque Populaire"),
    banque(
        "18206",
        "AGRIFRPP882",
        "Crédit Agricole Paris et Île-de-France",
    ),
    banque("17515", "CEPAFRPP751", "Caisse d'Épargne Île-de-France"),
    banque(
        "13335",
        "CEPAFRPP333",
        "Caisse d'Épargne Aquitaine Poitou-Charentes",
    ),
    banque("30056", "CCFRFRPP", "HSBC Continental Europe"),
    Banque {
        guichet: Some("00001"),
        lettre: true,
        ..banque("20041", "PSSTFRPPPAR", "La Banque Postale")
    },
    Banque {
        guichet: Some("01007"),
        lettre: true,
        ..banque("20041", "PSSTFRPPLYO", "La Banque Postale")
    },
];

impl Iban {
    /// The IBAN of a French account; computes the RIB key and the check digits.
    pub(super) fn france(banque: &[u8; 5], guichet: &[u8; 5], compte: &[u8; 11]) -> Self {
        let mut iban = *b"FR00000000000000000000000KK";
        iban[4..9].copy_from_slice(banque);
        iban[9..14].copy_from_slice(guichet);
        iban[14..25].copy_from_slice(compte);
        let key = rib_key(banque, guichet, compte);
        iban[25..27].copy_from_slice(&two_digits(key));
        let check = 98 - iban_remainder(&iban[4..]);
        iban[2..4].copy_from_slice(&two_digits(check));
        Iban(iban)
    }

    /// The 27 characters.
    pub(super) fn as_str(&self) -> &str {
        // Built from ASCII digits and letters only.
        std::str::from_utf8(&self.0).unwrap_or("")
    }
}

impl Serialize for Iban {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// The RIB key: `97 − (89·banque + 15·guichet + 3·compte) mod 97`, letters
/// of the account number replaced by digits (A–I, J–R → 1–9; S–Z → 2–9).
pub(super) fn rib_key(banque: &[u8; 5], guichet: &[u8; 5], compte: &[u8; 11]) -> u8 {
    let number = |chars: &[u8]| chars.iter().fold(0u64, |n, &c| n * 10 + rib_digit(c));
    let sum = 89 * number(banque) + 15 * number(guichet) + 3 * number(compte);
    (97 - sum % 97) as u8
}

/// Letter-to-digit table of the RIB key, `A` to `Z`.
const RIB_LETTERS: &[u8; 26] = b"12345678912345678923456789";

fn rib_digit(c: u8) -> u64 {
    match c {
        b'0'..=b'9' => u64::from(c - b'0'),
        b'A'..=b'Z' => u64::from(RIB_LETTERS[usize::from(c - b'A')] - b'0'),
        _ => 0,
    }
}

/// ISO 13616 remainder of `BBAN + "FR00"` with letters as 10–35.
fn iban_remainder(bban_then_country: &[u8]) -> u8 {
    let tail = b"FR00";
    let r = bban_then_country[..23]
        .iter()
        .chain(tail)
        .fold(0u32, |r, &c| match c {
            b'0'..=b'9' => (r * 10 + u32::from(c - b'0')) % 97,
            _ => (r * 100 + u32::from(c - b'A') + 10) % 97,
        });
    r as u8
}

fn two_digits(n: u8) -> [u8; 2] {
    [b'0' + n / 10, b'0' + n % 10]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reproduces_published_examples() {
        // The classic examples of French IBAN documentation.
        let iban = Iban::france(b"30006", b"00001", b"12345678901");
        assert_eq!(iban.as_str(), "FR7630006000011234567890189");
        let iban = Iban::france(b"20041", b"01005", b"0500013M026");
        assert_eq!(iban.as_str(), "FR1420041010050500013M02606");
    }

    #[test]
    fn every_bank_has_a_french_bic() {
        for b in &BANQUES {
            assert!(b.bic.len() == 8 || b.bic.len() == 11, "{}", b.bic);
            assert_eq!(&b.bic[4..6], "FR");
            assert_eq!(b.code.len(), 5);
        }
    }
}
