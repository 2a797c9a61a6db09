//! The on-disk record frame and the hash chain, shared by the writer, the
//! readers and the verifier.
//!
//! ```text
//! frame   = len:u32 LE | crc:u32 LE | payload
//! payload = seq:u64 LE | time_ms:i64 LE | body
//! len     = payload length (16 + body length)
//! crc     = CRC32C(len bytes || payload)       (covers all but itself)
//! hash_n  = SHA-256(hash_{n-1} || payload)      hash_0 = 32 zero bytes
//! ```
//!
//! The CRC catches torn writes and media errors cheaply; the chain binds
//! every record (its seq and time too) to everything before it, so the
//! signed head of a checkpoint vouches for the whole prefix.

use sha2::{Digest, Sha256};

/// Bytes before the payload: length and CRC.
pub const HEADER: usize = 8;
/// Fixed payload bytes before the body: seq and time.
pub const FIXED: usize = 16;
/// Largest accepted body (1 MiB): bounds every buffer, and a length field
/// above it is read as corruption rather than an allocation request.
pub const MAX_BODY: usize = 1 << 20;
/// The chain value before the first record.
pub const GENESIS: Hash = [0; 32];

/// A chain value (SHA-256).
pub type Hash = [u8; 32];

/// One decoded record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Sequence number, from 1, contiguous over the trail's life.
    pub seq: u64,
    /// Caller-supplied time, Unix milliseconds.
    pub time_ms: i64,
    /// The caller's opaque record body.
    pub body: Vec<u8>,
}

/// Why bytes at some offset are not a frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FrameFault {
    /// Fewer bytes left than the header or the declared length.
    Short,
    /// Declared length impossible (below the fixed part or above the cap).
    BadLength(u32),
    /// CRC32C mismatch.
    Crc,
}

impl std::fmt::Display for FrameFault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FrameFault::Short => f.write_str("frame cut short"),
            FrameFault::BadLength(n) => write!(f, "impossible frame length {n}"),
            FrameFault::Crc => f.write_str("CRC32C mismatch"),
        }
    }
}

/// Appends the frame of one record to `out`.
pub fn encode(out: &mut Vec<u8>, seq: u64, time_ms: i64, body: &[u8]) {
    let len = (FIXED + body.len()) as u32;
    let start = out.len();
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(&[0; 4]);
    out.extend_from_slice(&seq.to_le_bytes());
    out.extend_from_slice(&time_ms.to_le_bytes());
    out.extend_from_slice(body);
    let crc = crc32c::crc32c_append(crc32c::crc32c(&out[start..start + 4]), &out[start + 8..]);
    out[start + 4..start + 8].copy_from_slice(&crc.to_le_bytes());
}

/// Decodes the frame at the start of `buf`: its payload and total size.
pub fn decode(buf: &[u8]) -> Result<(&[u8], usize), FrameFault> {
    let header = buf.get(..HEADER).ok_or(FrameFault::Short)?;
    let len = u32::from_le_bytes([header[0], header[1], header[2], header[3]]);
    let crc = u32::from_le_bytes([header[4], header[5], header[6], header[7]]);
    if (len as usize) < FIXED || len as usize > FIXED + MAX_BODY {
        return Err(FrameFault::BadLength(len));
    }
    let payload = buf
        .get(HEADER..HEADER + len as usize)
        .ok_or(FrameFault::Short)?;
    if crc32c::crc32c_append(crc32c::crc32c(&header[..4]), payload) != crc {
        return Err(FrameFault::Crc);
    }
    Ok((payload, HEADER + len as usize))
}

/// Seq and time of a decoded payload.
pub fn seq_time(payload: &[u8]) -> (u64, i64) {
    let mut seq = [0; 8];
    let mut time = [0; 8];
    seq.copy_from_slice(&payload[..8]);
    time.copy_from_slice(&payload[8..FIXED]);
    (u64::from_le_bytes(seq), i64::from_le_bytes(time))
}

/// The decoded payload as an owned entry.
pub fn entry(payload: &[u8]) -> Entry {
    let (seq, time_ms) = seq_time(payload);
    Entry {
        seq,
        time_ms,
        body: payload[FIXED..].to_vec(),
    }
}

/// The next chain value.
pub fn chain(prev: &Hash, payload: &[u8]) -> Hash {
    let mut h = Sha256::new();
    h.update(prev);
    h.update(payload);
    h.finalize().into()
}

/// The next chain value from a record's parts: the same value as
/// [`chain`] over its payload, without building the payload.
pub fn chain_entry(prev: &Hash, seq: u64, time_ms: i64, body: &[u8]) -> Hash {
    let mut h = Sha256::new();
    h.update(prev);
    h.update(seq.to_le_bytes());
    h.update(time_ms.to_le_bytes());
    h.update(body);
    h.finalize().into()
}

/// File name of the segment whose first record is `first_seq`.
pub fn segment_name(first_seq: u64) -> String {
    format!("{first_seq:020}.seg")
}

/// The first seq a segment file name stands for, if it is one.
pub fn parse_segment_name(name: &str) -> Option<u64> {
    let digits = name.strip_suffix(".seg")?;
    if digits.len() != 20 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frame_round_trips_and_catches_a_flipped_bit() {
        let mut buf = Vec::new();
        encode(&mut buf, 7, -3, b"hello");
        let (payload, size) = decode(&buf).unwrap();
        assert_eq!(size, buf.len());
        assert_eq!(entry(payload).body, b"hello");
        assert_eq!(seq_time(payload), (7, -3));
        for i in 0..buf.len() {
            let mut bad = buf.clone();
            bad[i] ^= 0x10;
            assert!(decode(&bad).is_err(), "flip at {i} undetected");
        }
        assert_eq!(decode(&buf[..buf.len() - 1]), Err(FrameFault::Short));
    }

    #[test]
    fn chain_entry_is_chain_over_the_payload() {
        let mut buf = Vec::new();
        encode(&mut buf, 9, 1_700_000_000_000, b"body");
        let (payload, _) = decode(&buf).unwrap();
        let prev = [7; 32];
        assert_eq!(
            chain_entry(&prev, 9, 1_700_000_000_000, b"body"),
            chain(&prev, payload)
        );
        assert_ne!(
            chain_entry(&prev, 10, 1_700_000_000_000, b"body"),
            chain(&prev, payload)
        );
    }

    #[test]
    fn segment_names_sort_by_seq() {
        assert_eq!(segment_name(42), "00000000000000000042.seg");
        assert_eq!(parse_segment_name(&segment_name(42)), Some(42));
        assert_eq!(parse_segment_name("checkpoint"), None);
        assert!(segment_name(9) < segment_name(10));
    }
}
