//! Fixed-size text buffers on the stack. Dates, amounts, references and
//! names are assembled here and handed to serde_json as one string: on the
//! request path this is several times cheaper than `Display` +
//! `collect_str`, which goes through the formatting machinery and writes
//! (and escapes) each fragment separately.

/// Up to `N` bytes of UTF-8 text.
pub(super) struct Text<const N: usize> {
    buf: [u8; N],
    len: usize,
}

impl<const N: usize> Text<N> {
    /// Empty text.
    pub(super) fn new() -> Self {
        Text {
            buf: [0; N],
            len: 0,
        }
    }

    /// Appends `s` whole, or nothing if it does not fit (so the text stays
    /// valid UTF-8); callers size `N` for their longest value.
    pub(super) fn push_str(&mut self, s: &str) -> &mut Self {
        self.push_whole(s.as_bytes())
    }

    /// Appends `n` in decimal, zero-padded to at least `width` digits
    /// (written in place: no temporary buffer, no copy).
    pub(super) fn push_number(&mut self, n: u64, width: usize) -> &mut Self {
        let mut digits = 1;
        let mut rest = n / 10;
        while rest > 0 {
            digits += 1;
            rest /= 10;
        }
        let end = self.len + digits.max(width);
        debug_assert!(end <= N, "Text<{N}> too small");
        if end <= N {
            let mut rest = n;
            for slot in self.buf[self.len..end].iter_mut().rev() {
                *slot = b'0' + (rest % 10) as u8;
                rest /= 10;
            }
            self.len = end;
        }
        self
    }

    /// Appends one ASCII character.
    pub(super) fn push_ascii(&mut self, c: u8) -> &mut Self {
        debug_assert!(c.is_ascii() && self.len < N, "Text<{N}> too small");
        if c.is_ascii() && self.len < N {
            self.buf[self.len] = c;
            self.len += 1;
        }
        self
    }

    /// Appends the bytes of a whole `&str`.
    fn push_whole(&mut self, bytes: &[u8]) -> &mut Self {
        let end = self.len + bytes.len();
        debug_assert!(end <= N, "Text<{N}> too small");
        if end <= N {
            self.buf[self.len..end].copy_from_slice(bytes);
            self.len = end;
        }
        self
    }

    /// The text.
    pub(super) fn as_str(&self) -> &str {
        // Only whole `&str`s and ASCII characters are ever copied in.
        std::str::from_utf8(&self.buf[..self.len]).unwrap_or("")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pads_numbers_and_keeps_whole_strings() {
        let mut t = Text::<16>::new();
        t.push_number(7, 4)
            .push_ascii(b'-')
            .push_number(0, 2)
            .push_str("é")
            .push_number(123, 1);
        assert_eq!(t.as_str(), "0007-00é123");
        let mut t = Text::<20>::new();
        t.push_number(u64::MAX, 0);
        assert_eq!(t.as_str(), "18446744073709551615");
    }
}
