//! Walking the segments: frames, CRCs, seq continuity, the chain, and the
//! sparse index. One pass serves the start-up check, `verify`, and the
//! rebuilding of the in-memory index, so all three see the same faults.
//!
//! Reading streams through a bounded buffer (`READ_BUF`), never a whole
//! segment in memory.

use super::frame::{self, FrameFault, GENESIS, HEADER, Hash};
use std::fs::File;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

/// Bytes of a read buffer (grows to one frame when a frame is larger).
const READ_BUF: usize = 256 * 1024;
/// A sparse-index mark is taken every this many bytes of segment.
pub const MARK_EVERY: u64 = 64 * 1024;

/// A point of the sparse index: where record `seq` starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mark {
    /// Record at that offset.
    pub seq: u64,
    /// Its time (Unix ms).
    pub time_ms: i64,
    /// Byte offset of its frame in the segment.
    pub offset: u64,
}

/// What the trail knows about one segment file.
#[derive(Debug, Clone)]
pub struct Segment {
    /// First seq (the file's name).
    pub first_seq: u64,
    /// The file.
    pub path: PathBuf,
    /// Bytes of whole, checked frames (readers never go past it).
    pub len: u64,
    /// Last seq held (`first_seq - 1` when empty).
    pub last_seq: u64,
    /// Latest record time held (i64::MIN when empty).
    pub max_time: i64,
    /// Chain value after its last record.
    pub end_hash: Hash,
    /// The sparse index: the first record, then one every `MARK_EVERY` bytes.
    pub marks: Vec<Mark>,
}

impl Segment {
    /// An empty segment starting at `first_seq`.
    pub fn empty(dir: &Path, first_seq: u64, prev_hash: Hash) -> Self {
        Segment {
            first_seq,
            path: dir.join(frame::segment_name(first_seq)),
            len: 0,
            last_seq: first_seq - 1,
            max_time: i64::MIN,
            end_hash: prev_hash,
            marks: Vec::new(),
        }
    }

    /// Accounts for a record written at `offset` with frame size `size`.
    pub fn push(&mut self, seq: u64, time_ms: i64, offset: u64, size: u64, hash: Hash) {
        let due = self
            .marks
            .last()
            .is_none_or(|m| offset >= m.offset + MARK_EVERY);
        if due {
            self.marks.push(Mark {
                seq,
                time_ms,
                offset,
            });
        }
        self.last_seq = seq;
        self.max_time = self.max_time.max(time_ms);
        self.len = offset + size;
        self.end_hash = hash;
    }
}

/// The first thing found wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fault {
    /// First record altered, missing or out of place (None when no record
    /// can be named, e.g. an unreadable checkpoint).
    pub first_bad: Option<u64>,
    /// What is wrong, in words.
    pub reason: String,
}

/// The outcome of a walk.
#[derive(Debug, Default)]
pub struct Scan {
    /// Segments in order, each up to its first bad frame.
    pub segments: Vec<Segment>,
    /// Last seq verified without fault from the start point.
    pub good: u64,
    /// Chain value after `good`.
    pub head: Hash,
    /// The first fault, if any.
    pub fault: Option<Fault>,
    /// Where the first fault is a bad frame: (segment index, byte offset).
    pub bad_frame: Option<(usize, u64)>,
    /// Chain values at the requested counts, when reached without fault.
    pub probes: Vec<(u64, Hash)>,
}

/// A frame's offset in its file, and its payload or why it is not one.
pub type FrameAt<'a> = (u64, Result<&'a [u8], FrameFault>);

/// Streams frames out of one file, up to a byte limit.
pub struct FrameReader {
    file: File,
    buf: Vec<u8>,
    start: usize,
    end: usize,
    /// File offset of `buf[start]`.
    offset: u64,
    remaining: u64,
}

impl FrameReader {
    /// Reads `path` from byte `offset`, at most `limit` bytes.
    pub fn open(path: &Path, offset: u64, limit: u64) -> io::Result<Self> {
        use std::io::Seek;
        let mut file = File::open(path)?;
        file.seek(io::SeekFrom::Start(offset))?;
        Ok(FrameReader {
            file,
            buf: vec![0; READ_BUF],
            start: 0,
            end: 0,
            offset,
            remaining: limit,
        })
    }

    /// The next frame: its offset and payload; `Ok(None)` at a clean end:
    /// the end of the file (or limit), or the tail's zero padding (zero
    /// bytes where a header would start, and nothing but zeros after them:
    /// [`super::writer`] fills the tail with zeros ahead of its writes).
    pub fn next_frame(&mut self) -> io::Result<Option<FrameAt<'_>>> {
        let at = self.offset;
        if !self.fill(1)? {
            return Ok(None);
        }
        let whole = self.fill(HEADER)?;
        let head = &self.buf[self.start..self.end.min(self.start + HEADER)];
        if head.iter().all(|b| *b == 0) && self.zeros_to_end()? {
            return Ok(None);
        }
        if !whole {
            return Ok(Some((at, Err(FrameFault::Short))));
        }
        let b = &self.buf[self.start..];
        let len = u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize;
        if len <= frame::FIXED + frame::MAX_BODY && !self.fill(HEADER + len)? {
            return Ok(Some((at, Err(FrameFault::Short))));
        }
        match frame::decode(&self.buf[self.start..self.end]) {
            Ok((_, size)) => {
                let payload = self.start + HEADER..self.start + size;
                self.start += size;
                self.offset += size as u64;
                Ok(Some((at, Ok(&self.buf[payload]))))
            }
            Err(fault) => Ok(Some((at, Err(fault)))),
        }
    }

    /// Whether every byte from here to the end of the file (or limit) is
    /// zero. True leaves the reader at its end; false leaves it as it was
    /// (the bytes past the buffer are read with `pread`, in place).
    fn zeros_to_end(&mut self) -> io::Result<bool> {
        use std::os::unix::fs::FileExt;
        if self.buf[self.start..self.end].iter().any(|b| *b != 0) {
            return Ok(false);
        }
        let mut chunk = vec![0u8; READ_BUF];
        let mut at = self.offset + (self.end - self.start) as u64;
        let mut remaining = self.remaining;
        while remaining > 0 {
            let room = chunk
                .len()
                .min(usize::try_from(remaining).unwrap_or(usize::MAX));
            let n = self.file.read_at(&mut chunk[..room], at)?;
            if n == 0 {
                break;
            }
            if chunk[..n].iter().any(|b| *b != 0) {
                return Ok(false);
            }
            at += n as u64;
            remaining -= n as u64;
        }
        self.start = self.end;
        self.remaining = 0;
        Ok(true)
    }

    /// Ensures `need` buffered bytes; false if the file (or limit) ends first.
    fn fill(&mut self, need: usize) -> io::Result<bool> {
        if self.end - self.start >= need {
            return Ok(true);
        }
        self.buf.copy_within(self.start..self.end, 0);
        self.end -= self.start;
        self.start = 0;
        if self.buf.len() < need {
            self.buf.resize(need, 0);
        }
        while self.end < need && self.remaining > 0 {
            let room = (self.buf.len() - self.end).min(self.remaining as usize);
            let n = self.file.read(&mut self.buf[self.end..self.end + room])?;
            if n == 0 {
                break;
            }
            self.end += n;
            self.remaining -= n as u64;
        }
        Ok(self.end >= need)
    }
}

/// Segment files in `dir`, sorted by first seq.
pub fn list_segments(dir: &Path) -> io::Result<Vec<(u64, PathBuf)>> {
    let mut out = Vec::new();
    for item in std::fs::read_dir(dir)? {
        let item = item?;
        if let Some(first) = item
            .file_name()
            .to_str()
            .and_then(frame::parse_segment_name)
        {
            out.push((first, item.path()));
        }
    }
    out.sort();
    Ok(out)
}

/// The walk's position.
struct Walk {
    scan: Scan,
    next: u64,
    hash: Hash,
    stop_after: u64,
    want: Vec<u64>,
}

impl Walk {
    fn fault(&mut self, first_bad: Option<u64>, reason: String) {
        if self.scan.fault.is_none() {
            self.scan.fault = Some(Fault { first_bad, reason });
        }
    }
}

/// Walks `files` from the start point `(count, hash)` (a purge point, or
/// `(0, GENESIS)`), up to record `stop_after`. Files wholly before the
/// start point (left by an interrupted purge) are skipped.
pub fn walk(
    files: &[(u64, PathBuf)],
    start: (u64, Hash),
    stop_after: u64,
    want: &[u64],
) -> io::Result<Scan> {
    let skip = files
        .iter()
        .rposition(|(first, _)| *first <= start.0 + 1)
        .unwrap_or(0);
    let mut w = Walk {
        scan: Scan {
            good: start.0,
            head: start.1,
            ..Scan::default()
        },
        next: start.0 + 1,
        hash: start.1,
        stop_after,
        want: want.to_vec(),
    };
    if want.contains(&start.0) {
        w.scan.probes.push((start.0, start.1));
    }
    for (first, path) in &files[skip..] {
        if *first > stop_after {
            break;
        }
        walk_segment(&mut w, *first, path)?;
    }
    Ok(w.scan)
}

fn walk_segment(w: &mut Walk, first: u64, path: &Path) -> io::Result<()> {
    let name = frame::segment_name(first);
    if first != w.next {
        let reason = if first > w.next {
            format!(
                "records {}..{} missing: no segment holds them",
                w.next,
                first - 1
            )
        } else {
            format!("segment {name} overlaps records already read")
        };
        w.fault(Some(w.next.min(first)), reason);
        w.next = first;
    }
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut seg = Segment::empty(dir, first, w.hash);
    let mut reader = FrameReader::open(path, 0, u64::MAX)?;
    while w.next <= w.stop_after {
        let Some((offset, payload)) = reader.next_frame()? else {
            break;
        };
        let payload = match payload {
            Ok(p) => p,
            Err(fault) => {
                if w.scan.fault.is_none() {
                    w.scan.bad_frame = Some((w.scan.segments.len(), offset));
                }
                let why = format!("record {}: {fault} in {name} at byte {offset}", w.next);
                w.fault(Some(w.next), why);
                break;
            }
        };
        let (seq, time_ms) = frame::seq_time(payload);
        if seq != w.next {
            let why = format!("record {}: found seq {seq} in its place ({name})", w.next);
            w.fault(Some(w.next), why);
        }
        w.hash = frame::chain(&w.hash, payload);
        let size = (HEADER + payload.len()) as u64;
        seg.push(seq, time_ms, offset, size, w.hash);
        if w.scan.fault.is_none() {
            w.scan.good = seq;
            w.scan.head = w.hash;
            if w.want.contains(&seq) {
                w.scan.probes.push((seq, w.hash));
            }
        }
        w.next = seq + 1;
    }
    w.scan.segments.push(seg);
    Ok(())
}

/// The genesis start point.
pub fn genesis() -> (u64, Hash) {
    (0, GENESIS)
}
