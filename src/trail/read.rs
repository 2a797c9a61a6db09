//! Reading the trail for queries and export: newest-first pages
//! (`before_seq` pagination) and oldest-first from a seq or a time. Both
//! locate a chunk through the sparse index (a mark every 64 KiB), read
//! just that range of the segment, and check each frame's CRC again.
//! Readers see only what the writer has published (durable records).

use super::frame::{self, Entry, Hash};
use super::scan::{FrameReader, Segment};
use super::{Trail, TrailError, writer};
use std::path::PathBuf;

/// Where an oldest-first read starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Start {
    /// At this seq (or the oldest retained record after it).
    Seq(u64),
    /// At the first record with a time at or after this (Unix ms). Times
    /// are taken to be appended in nondecreasing order, as the audit
    /// writer does; seeking relies on it.
    Time(i64),
}

/// A byte range of one segment to read, starting at record `first_seq`.
struct Chunk {
    path: PathBuf,
    offset: u64,
    end: u64,
    first_seq: u64,
}

/// Newest-first iterator (blocking I/O).
pub struct Newest<'a> {
    trail: &'a Trail,
    /// Next seq to yield (0 = done).
    next: u64,
    buf: Vec<Entry>,
}

/// Oldest-first iterator (blocking I/O).
pub struct Oldest<'a> {
    trail: &'a Trail,
    next: u64,
    until: u64,
    min_time: Option<i64>,
    reader: Option<FrameReader>,
    /// The reader was just opened (an empty chunk ends the read).
    fresh: bool,
}

impl Trail {
    /// Records newest first, starting just before `before_seq` (or at the
    /// newest durable record).
    pub fn newest(&self, before_seq: Option<u64>) -> Newest<'_> {
        let last = self.last_seq();
        let next = before_seq.map_or(last, |b| b.saturating_sub(1).min(last));
        Newest {
            trail: self,
            next,
            buf: Vec::new(),
        }
    }

    /// Records oldest first from `start`, up to the newest durable record
    /// at the time of the call.
    pub fn oldest(&self, start: Start) -> Oldest<'_> {
        let (next, min_time) = match start {
            Start::Seq(s) => (s, None),
            Start::Time(t) => (self.seq_near_time(t), Some(t)),
        };
        Oldest {
            trail: self,
            next: next.max(1),
            until: self.last_seq(),
            min_time,
            reader: None,
            fresh: false,
        }
    }

    /// The chain value after record `seq` (blocking: may read the segment
    /// holding it from its start). `GENESIS` for 0; the purge checkpoint's
    /// head for the purge point; an error for a seq not retained.
    pub fn chain_at(&self, seq: u64) -> Result<Hash, TrailError> {
        if seq == 0 {
            return Ok(frame::GENESIS);
        }
        let (start, first) = {
            let st = writer::lock(&self.shared);
            let i = st
                .segments
                .iter()
                .position(|s| s.len > 0 && s.first_seq <= seq && seq <= s.last_seq);
            match i {
                Some(i) if st.segments[i].last_seq == seq => return Ok(st.segments[i].end_hash),
                Some(i) if i > 0 => (Some(st.segments[i - 1].end_hash), st.segments[i].first_seq),
                Some(i) => (None, st.segments[i].first_seq),
                None => (None, seq + 1),
            }
        };
        let mut hash = match start {
            Some(h) => h,
            None if first == 1 => frame::GENESIS,
            None => match self.purge_checkpoint() {
                Some(cp) if cp.count + 1 == first => cp.head,
                _ => return Err(TrailError::Failed(format!("record {seq} is not retained"))),
            },
        };
        if first == seq + 1 {
            return Ok(hash);
        }
        for entry in self.oldest(Start::Seq(first)) {
            let e = entry?;
            hash = frame::chain_entry(&hash, e.seq, e.time_ms, &e.body);
            if e.seq == seq {
                return Ok(hash);
            }
        }
        Err(TrailError::Failed(format!("record {seq} is not retained")))
    }

    /// The purge checkpoint in force, if any (and readable).
    pub fn purge_checkpoint(&self) -> Option<super::Checkpoint> {
        let note = super::check::read_note(&self.dir.join(super::PURGE_FILE), self.verifier());
        note.ok().flatten()
    }

    /// The newest record readers may see (written, synced, published).
    pub fn last_seq(&self) -> u64 {
        writer::lock(&self.shared)
            .segments
            .last()
            .map_or(0, |s| s.last_seq)
    }

    /// A seq at or before the first record at or after time `t`.
    fn seq_near_time(&self, t: i64) -> u64 {
        let st = writer::lock(&self.shared);
        let Some(seg) = st.segments.iter().find(|s| s.max_time >= t && s.len > 0) else {
            return u64::MAX;
        };
        let i = seg.marks.partition_point(|m| m.time_ms < t);
        seg.marks
            .get(i.saturating_sub(1))
            .map_or(seg.first_seq, |m| m.seq)
    }

    /// The chunk holding `seq`: from the last mark at or before it, to the
    /// next mark (`to_segment_end`: to the end of the segment).
    fn chunk(&self, seq: u64, to_segment_end: bool) -> Option<Chunk> {
        let st = writer::lock(&self.shared);
        let i = st
            .segments
            .partition_point(|s| s.first_seq <= seq)
            .checked_sub(1)?;
        let seg: &Segment = &st.segments[i];
        if seq > seg.last_seq {
            return None;
        }
        let m = seg.marks.partition_point(|m| m.seq <= seq).checked_sub(1)?;
        let mark = seg.marks[m];
        let end = match seg.marks.get(m + 1) {
            Some(next) if !to_segment_end => next.offset,
            _ => seg.len,
        };
        Some(Chunk {
            path: seg.path.clone(),
            offset: mark.offset,
            end,
            first_seq: mark.seq,
        })
    }

    /// The first retained seq (records before it were purged).
    fn first_seq(&self) -> u64 {
        let st = writer::lock(&self.shared);
        st.segments
            .iter()
            .find(|s| s.len > 0)
            .map_or(u64::MAX, |s| s.first_seq)
    }
}

fn read_chunk(c: &Chunk) -> Result<Vec<Entry>, TrailError> {
    let mut reader = FrameReader::open(&c.path, c.offset, c.end - c.offset)?;
    let mut out = Vec::new();
    while let Some((at, payload)) = reader.next_frame()? {
        let payload = payload.map_err(|fault| corrupt(&c.path, at, fault))?;
        out.push(frame::entry(payload));
    }
    Ok(out)
}

fn corrupt(path: &std::path::Path, at: u64, fault: frame::FrameFault) -> TrailError {
    TrailError::Corrupt {
        path: path.to_path_buf(),
        at,
        fault,
    }
}

impl Iterator for Newest<'_> {
    type Item = Result<Entry, TrailError>;

    fn next(&mut self) -> Option<Self::Item> {
        if let Some(e) = self.buf.pop() {
            return Some(Ok(e));
        }
        if self.next == 0 || self.next < self.trail.first_seq() {
            return None;
        }
        let chunk = self.trail.chunk(self.next, false)?;
        let target = self.next;
        self.next = chunk.first_seq - 1;
        match read_chunk(&chunk) {
            Ok(entries) => {
                self.buf = entries.into_iter().filter(|e| e.seq <= target).collect();
                self.buf.pop().map(Ok)
            }
            Err(e) => {
                self.next = 0;
                Some(Err(e))
            }
        }
    }
}

impl Oldest<'_> {
    fn step(&mut self) -> Result<Option<Entry>, TrailError> {
        loop {
            if self.next > self.until {
                return Ok(None);
            }
            if self.reader.is_none() {
                self.next = self.next.max(self.trail.first_seq());
                let Some(c) = self.trail.chunk(self.next, true) else {
                    return Ok(None);
                };
                self.reader = Some(FrameReader::open(&c.path, c.offset, c.end - c.offset)?);
                self.fresh = true;
            }
            let Some(reader) = self.reader.as_mut() else {
                continue;
            };
            let Some((at, payload)) = reader.next_frame()? else {
                self.reader = None;
                if std::mem::take(&mut self.fresh) {
                    return Ok(None);
                }
                continue;
            };
            self.fresh = false;
            let payload = payload.map_err(|fault| corrupt(std::path::Path::new("?"), at, fault))?;
            let (seq, time_ms) = frame::seq_time(payload);
            if seq < self.next || self.min_time.is_some_and(|t| time_ms < t) {
                continue;
            }
            self.min_time = None;
            self.next = seq + 1;
            return Ok(Some(frame::entry(payload)));
        }
    }
}

impl Iterator for Oldest<'_> {
    type Item = Result<Entry, TrailError>;

    fn next(&mut self) -> Option<Self::Item> {
        match self.step() {
            Ok(e) => e.map(Ok),
            Err(e) => {
                self.next = u64::MAX;
                Some(Err(e))
            }
        }
    }
}
