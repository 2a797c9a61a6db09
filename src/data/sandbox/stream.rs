//! The only source of randomness in the sandbox: SHA-256 in counter mode.
//!
//! Block `n` of the stream for `(siren, label, year)` is
//! `SHA-256("{siren}|{label}|{year}|{n}")` (decimal, no padding, n from 0).
//! `label` is a dataset path segment, or `profil` / `exercice` for figures
//! shared by several datasets; year `0` marks a stream that depends on the
//! SIREN only (company profile, bank accounts, third parties). Draws take
//! 32-bit words from the blocks in order, so the same key always yields the
//! same draws, on every machine.

use super::date::Date;
use super::text::Text;
use crate::domain::Siren;
use sha2::{Digest, Sha256};

/// A deterministic stream of pseudo-random draws.
pub(super) struct Stream {
    /// Hasher that has already absorbed `"{siren}|{label}|{year}|"`.
    seed: Sha256,
    /// Index of the next block to hash.
    counter: u32,
    /// The current block.
    block: [u8; 32],
    /// Bytes of `block` already consumed (32 = exhausted).
    used: usize,
}

impl Stream {
    /// The stream for one key.
    pub(super) fn new(siren: &Siren, label: &str, year: i32) -> Self {
        let mut seed = Sha256::new();
        seed.update(siren.as_str());
        seed.update(b"|");
        seed.update(label);
        seed.update(b"|");
        let mut digits = Text::<12>::new();
        if year < 0 {
            digits.push_ascii(b'-');
        }
        digits.push_number(u64::from(year.unsigned_abs()), 1);
        seed.update(digits.as_str());
        seed.update(b"|");
        Stream {
            seed,
            counter: 0,
            block: [0; 32],
            used: 32,
        }
    }

    /// The next 32 uniformly distributed bits.
    pub(super) fn next_u32(&mut self) -> u32 {
        if self.used == 32 {
            self.refill();
        }
        let word = &self.block[self.used..self.used + 4];
        self.used += 4;
        u32::from_le_bytes([word[0], word[1], word[2], word[3]])
    }

    /// A draw in `0..n` (0 when `n` is 0), by multiply-shift.
    pub(super) fn below(&mut self, n: u32) -> u32 {
        ((u64::from(self.next_u32()) * u64::from(n)) >> 32) as u32
    }

    /// A draw in `lo..=hi` (`lo` when the range is empty).
    pub(super) fn between(&mut self, lo: i64, hi: i64) -> i64 {
        if hi <= lo {
            return lo;
        }
        let span = (hi - lo) as u64 + 1;
        let offset = match u32::try_from(span) {
            Ok(span) => u64::from(self.below(span)),
            Err(_) => {
                let wide = u64::from(self.next_u32()) << 32 | u64::from(self.next_u32());
                ((u128::from(wide) * u128::from(span)) >> 64) as u64
            }
        };
        lo + offset as i64
    }

    /// True with probability `percent` / 100.
    pub(super) fn chance(&mut self, percent: u32) -> bool {
        self.below(100) < percent
    }

    /// One element of a non-empty table.
    pub(super) fn pick<T: Copy>(&mut self, table: &[T]) -> T {
        table[self.index(table.len())]
    }

    /// An index in `0..len`, for a non-empty table.
    pub(super) fn index(&mut self, len: usize) -> usize {
        self.below(u32::try_from(len).unwrap_or(u32::MAX)) as usize
    }

    /// A day of `year`, uniformly.
    pub(super) fn day_in(&mut self, year: i32) -> Date {
        let length = Date::last_of(year).day_of_year();
        Date::first_of(year).plus_days(self.between(0, i64::from(length) - 1))
    }

    fn refill(&mut self) {
        let mut counter = Text::<12>::new();
        counter.push_number(u64::from(self.counter), 1);
        self.block = self
            .seed
            .clone()
            .chain_update(counter.as_str())
            .finalize()
            .into();
        self.counter = self.counter.wrapping_add(1);
        self.used = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn siren() -> Siren {
        Siren::parse("732829320").unwrap()
    }

    #[test]
    fn first_block_is_sha256_of_the_documented_key() {
        let mut stream = Stream::new(&siren(), "declarations", 2024);
        let expected = Sha256::digest(b"732829320|declarations|2024|0");
        let first = stream.next_u32();
        assert_eq!(first.to_le_bytes(), expected[..4]);
        for _ in 0..7 {
            stream.next_u32();
        }
        let second_block = Sha256::digest(b"732829320|declarations|2024|1");
        assert_eq!(stream.next_u32().to_le_bytes(), second_block[..4]);
    }

    #[test]
    fn negative_years_keep_their_sign_in_the_key() {
        let mut stream = Stream::new(&siren(), "profil", -1);
        let expected = Sha256::digest(b"732829320|profil|-1|0");
        assert_eq!(stream.next_u32().to_le_bytes(), expected[..4]);
    }

    #[test]
    fn draws_stay_in_range() {
        let mut stream = Stream::new(&siren(), "test", 0);
        for _ in 0..10_000 {
            assert!((10..=20).contains(&stream.between(10, 20)));
            assert!(stream.below(7) < 7);
            let wide = stream.between(0, 5_000_000_000);
            assert!((0..=5_000_000_000).contains(&wide));
        }
        assert_eq!(stream.between(5, 5), 5);
        assert_eq!(stream.below(0), 0);
    }
}
