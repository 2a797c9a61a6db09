//! The group-commit writer: one std thread owns the tail segment. It takes
//! every queued append at once (up to `MAX_BATCH` records / `MAX_BATCH_BYTES`),
//! frames and chains them into one buffer, writes it with one `pwrite`,
//! makes it durable with one `fdatasync`, signs the checkpoint and writes
//! it in place (one `pwrite` of one 512-byte sector, not synced: see
//! [`Writer::save_checkpoint`]), publishes the new bounds to readers, then
//! acknowledges all.
//! The batching window is the previous batch's own duration. Appenders
//! wait on a bounded queue when it is full: back-pressure, never loss.
//!
//! The tail segment is filled with zeros ahead of the writes ([`AHEAD`]),
//! as PostgreSQL pre-fills its WAL segments: a batch then overwrites bytes
//! the file already has, and its `fdatasync` flushes data only — a write
//! that grows the file also changes its size, which costs a metadata
//! write on every sync (a journal commit on a journalled ext4; this
//! host's ext4 runs without a journal and still paid it:
//! docs/benchmarks.md). Readers stop at the padding
//! (`scan::FrameReader`); sealing a segment (rotation, close) cuts it off,
//! so only the tail of a process that did not stop cleanly has it.
//!
//! An I/O error poisons the writer: the batch and every later append fail
//! (the tail's state on disk is unknown after a failed fsync); reopening
//! the trail truncates the unacknowledged torn tail.

use super::frame::{self, Hash};
use super::note::NoteSigner;
use super::recent::Chained;
use super::scan::Segment;
use super::{CHECKPOINT_FILE, Shared, TrailError};
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Instant;
use tokio::sync::{mpsc, oneshot};

/// Most records in one batch.
const MAX_BATCH: usize = 4096;
/// Most bytes framed in one batch (the batch buffer's bound).
const MAX_BATCH_BYTES: usize = 4 << 20;
/// How far past the last record the tail is filled with zeros, at most.
const AHEAD: u64 = 1 << 20;
/// The zeros left ahead below which the writer fills again.
const LOW: u64 = 256 << 10;
/// A block of zeros to fill from.
static ZEROS: [u8; 64 << 10] = [0; 64 << 10];

/// Work for the writer.
pub enum Job {
    /// Append one record; the reply carries its seq.
    Append {
        /// Unix ms.
        time_ms: i64,
        /// Opaque body.
        body: Vec<u8>,
        /// Reply only once fdatasync'ed (else once written).
        durable: bool,
        /// Where the seq (or the failure) goes.
        reply: oneshot::Sender<Result<u64, TrailError>>,
    },
    /// Finish what is queued before this, then stop.
    Close(oneshot::Sender<()>),
}

/// The writer's own view of the tail.
pub struct Tail {
    /// The open tail segment file.
    pub file: File,
    /// Its metadata (mirrors the last entry of the shared index).
    pub seg: Segment,
    /// Chain value after the last record.
    pub hash: Hash,
    /// Trail directory.
    pub dir: PathBuf,
    /// Rotation threshold in bytes.
    pub segment_bytes: u64,
    /// The file's size: the records, then zeros up to here.
    pub filled: u64,
}

struct Writer {
    tail: Tail,
    shared: Arc<Shared>,
    signer: Arc<NoteSigner>,
    buf: Vec<u8>,
    failed: Option<Arc<std::io::Error>>,
    /// The checkpoint file, opened once and overwritten in place.
    checkpoint: Option<File>,
}

/// The checkpoint file's fixed size: one sector, written whole.
const CHECKPOINT_SECTOR: usize = 512;

/// Starts the writer thread.
pub fn spawn(
    tail: Tail,
    shared: Arc<Shared>,
    signer: Arc<NoteSigner>,
    rx: mpsc::Receiver<Job>,
) -> Result<(), TrailError> {
    let writer = Writer {
        tail,
        shared,
        signer,
        buf: Vec::with_capacity(64 * 1024),
        failed: None,
        checkpoint: None,
    };
    std::thread::Builder::new()
        .name("opale-trail".into())
        .spawn(move || writer.run(rx))
        .map_err(TrailError::from)?;
    Ok(())
}

impl Writer {
    fn run(mut self, mut rx: mpsc::Receiver<Job>) {
        let mut jobs = Vec::new();
        while let Some(first) = rx.blocking_recv() {
            jobs.push(first);
            let mut bytes = 0;
            while jobs.len() < MAX_BATCH && bytes < MAX_BATCH_BYTES {
                match rx.try_recv() {
                    Ok(job) => {
                        if let Job::Append { body, .. } = &job {
                            bytes += body.len() + frame::HEADER + frame::FIXED;
                        }
                        jobs.push(job);
                    }
                    Err(_) => break,
                }
            }
            if self.batch(&mut jobs) {
                return;
            }
        }
    }

    /// Writes one batch; true when a Close was in it.
    fn batch(&mut self, jobs: &mut Vec<Job>) -> bool {
        let stats = &self.shared.stats;
        stats.batches.fetch_add(1, Relaxed);
        let mut durable = Vec::with_capacity(jobs.len());
        let mut closes = Vec::new();
        let result = self.write_all(jobs, &mut durable, &mut closes);
        for (seq, reply) in durable {
            let _ = reply.send(result.clone().map(|()| seq).map_err(TrailError::Stopped));
        }
        let stop = !closes.is_empty();
        if stop && self.failed.is_none() {
            // A clean stop leaves the tail without padding.
            if let Err(e) = self.seal() {
                tracing::warn!(error = %e, "trail tail padding not cut at close");
            }
        }
        if let (true, Some(file)) = (stop, &self.checkpoint) {
            // A clean stop leaves the latest checkpoint on disk.
            let _ = file.sync_data();
        }
        for c in closes {
            let _ = c.send(());
        }
        stop
    }

    fn write_all(
        &mut self,
        jobs: &mut Vec<Job>,
        durable: &mut Vec<(u64, oneshot::Sender<Result<u64, TrailError>>)>,
        closes: &mut Vec<oneshot::Sender<()>>,
    ) -> Result<(), Arc<std::io::Error>> {
        let mut quick = Vec::new();
        let keep = self.shared.recent.is_on();
        let mut kept = Vec::new();
        self.buf.clear();
        let mut written = 0;
        for job in jobs.drain(..) {
            let (time_ms, body, wait, reply) = match job {
                Job::Append {
                    time_ms,
                    body,
                    durable,
                    reply,
                } => (time_ms, body, durable, reply),
                Job::Close(c) => {
                    closes.push(c);
                    continue;
                }
            };
            if let Some(why) = &self.failed {
                let _ = reply.send(Err(TrailError::Stopped(why.clone())));
                continue;
            }
            let seq = self.tail.seg.last_seq + 1;
            let size = (frame::HEADER + frame::FIXED + body.len()) as u64;
            if self.tail.seg.len + size > self.tail.segment_bytes && self.tail.seg.len > 0 {
                self.guard(|w| w.rotate(seq))?;
            }
            let at = self.buf.len();
            frame::encode(&mut self.buf, seq, time_ms, &body);
            self.tail.hash = frame::chain(&self.tail.hash, &self.buf[at + frame::HEADER..]);
            let offset = self.tail.seg.len;
            self.tail
                .seg
                .push(seq, time_ms, offset, size, self.tail.hash);
            if keep {
                kept.push(Chained {
                    entry: frame::Entry { seq, time_ms, body },
                    hash: self.tail.hash,
                });
            }
            written += 1;
            if wait {
                durable.push((seq, reply));
            } else {
                quick.push((seq, reply));
            }
        }
        if written == 0 {
            return self.failed.clone().map_or(Ok(()), Err);
        }
        self.guard(|w| w.flush_buf())?;
        for (seq, reply) in quick {
            let _ = reply.send(Ok(seq));
        }
        self.guard(|w| w.sync_and_checkpoint())?;
        if keep {
            self.shared.recent.keep(kept);
        }
        self.shared.stats.written.fetch_add(written, Relaxed);
        Ok(())
    }

    /// Runs an I/O step; a failure poisons the writer.
    fn guard(
        &mut self,
        step: impl FnOnce(&mut Self) -> std::io::Result<()>,
    ) -> Result<(), Arc<std::io::Error>> {
        step(self).map_err(|e| {
            tracing::error!(error = %e, "trail writer failed");
            let why = Arc::new(e);
            self.failed = Some(why.clone());
            why
        })
    }

    /// Writes the framed batch, then keeps zeros ahead of it.
    fn flush_buf(&mut self) -> std::io::Result<()> {
        self.write_buf()?;
        self.fill_ahead()
    }

    /// Writes the framed records in place: the buffer ends at the
    /// segment's length.
    fn write_buf(&mut self) -> std::io::Result<()> {
        use std::os::unix::fs::FileExt;
        let at = self.tail.seg.len - self.buf.len() as u64;
        self.tail.file.write_all_at(&self.buf, at)?;
        self.buf.clear();
        self.tail.filled = self.tail.filled.max(self.tail.seg.len);
        Ok(())
    }

    /// Fills the tail with zeros up to [`AHEAD`] past its records (not
    /// past the rotation size) once fewer than [`LOW`] are left.
    fn fill_ahead(&mut self) -> std::io::Result<()> {
        use std::os::unix::fs::FileExt;
        let len = self.tail.seg.len;
        if self.tail.filled >= len + LOW {
            return Ok(());
        }
        let target = (len + AHEAD).min(self.tail.segment_bytes.max(len));
        while self.tail.filled < target {
            let n = (target - self.tail.filled).min(ZEROS.len() as u64) as usize;
            self.tail.file.write_all_at(&ZEROS[..n], self.tail.filled)?;
            self.tail.filled += n as u64;
        }
        Ok(())
    }

    /// Cuts the tail's padding and makes the segment durable as it is.
    fn seal(&mut self) -> std::io::Result<()> {
        if self.tail.filled > self.tail.seg.len {
            self.tail.file.set_len(self.tail.seg.len)?;
            self.tail.filled = self.tail.seg.len;
            return self.tail.file.sync_all();
        }
        self.tail.file.sync_data()
    }

    /// Seals the tail segment (written, synced, published) and starts the
    /// one whose first record is `first_seq`.
    fn rotate(&mut self, first_seq: u64) -> std::io::Result<()> {
        self.write_buf()?;
        self.seal()?;
        self.publish();
        let seg = Segment::empty(&self.tail.dir, first_seq, self.tail.hash);
        self.tail.file = create_segment(&seg.path)?;
        self.tail.filled = 0;
        self.tail.seg = seg.clone();
        lock(&self.shared).segments.push(seg);
        Ok(())
    }

    fn sync_and_checkpoint(&mut self) -> std::io::Result<()> {
        let started = Instant::now();
        self.tail.file.sync_data()?;
        let synced = Instant::now();
        let stats = self.shared.clone();
        stats
            .stats
            .sync_ns
            .fetch_add(nanos(synced - started), Relaxed);
        let cp = self
            .signer
            .sign(self.tail.seg.last_seq, &self.tail.hash, None)
            .map_err(std::io::Error::other)?;
        self.save_checkpoint(cp.text.as_bytes())?;
        stats
            .stats
            .checkpoint_ns
            .fetch_add(nanos(synced.elapsed()), Relaxed);
        self.publish();
        lock(&self.shared).latest = cp;
        Ok(())
    }

    /// Overwrites the checkpoint file in place with `text` padded to one
    /// sector. Not synced: it is written only after the records it vouches
    /// for are durable, so it can never vouch for a record a crash could
    /// lose; a process crash keeps it (page cache), and a power loss can at
    /// worst leave the previous one (fewer records vouched for). Syncing it
    /// too (temp file, fsync, rename) cost a second fsync per batch and
    /// halved the trail's throughput (docs/benchmarks.md).
    fn save_checkpoint(&mut self, text: &[u8]) -> std::io::Result<()> {
        use std::os::unix::fs::FileExt;
        let path = self.tail.dir.join(CHECKPOINT_FILE);
        if text.len() > CHECKPOINT_SECTOR {
            return write_atomic(&path, text);
        }
        if self.checkpoint.is_none() {
            let file = OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(false)
                .open(&path)?;
            self.checkpoint = Some(file);
        }
        let mut sector = [0u8; CHECKPOINT_SECTOR];
        sector[..text.len()].copy_from_slice(text);
        match &self.checkpoint {
            Some(file) => file.write_all_at(&sector, 0),
            None => Ok(()),
        }
    }

    /// Makes the tail segment's new records visible to readers.
    fn publish(&self) {
        let mut state = lock(&self.shared);
        if let Some(last) = state.segments.last_mut() {
            let mine = &self.tail.seg;
            if last.first_seq == mine.first_seq {
                let known = last.marks.len();
                last.marks.extend_from_slice(&mine.marks[known..]);
                last.len = mine.len;
                last.last_seq = mine.last_seq;
                last.max_time = mine.max_time;
                last.end_hash = mine.end_hash;
            }
        }
    }
}

fn nanos(d: std::time::Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

/// The shared state, even if a reader panicked while holding it.
pub fn lock(shared: &Shared) -> std::sync::MutexGuard<'_, super::State> {
    shared.state.lock().unwrap_or_else(|p| p.into_inner())
}

/// Creates (or reopens, empty) a segment file and makes its name durable.
pub fn create_segment(path: &Path) -> std::io::Result<File> {
    let file = OpenOptions::new()
        .create(true)
        .write(true)
        .truncate(true)
        .open(path)?;
    sync_dir(path)?;
    Ok(file)
}

/// Writes `bytes` to `path` atomically: temp file, fdatasync, rename.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let tmp = path.with_extension("tmp");
    let mut f = File::create(&tmp)?;
    f.write_all(bytes)?;
    f.sync_data()?;
    std::fs::rename(&tmp, path)
}

/// fsyncs the directory holding `path` (new names survive a crash).
pub fn sync_dir(path: &Path) -> std::io::Result<()> {
    match path.parent() {
        Some(dir) => File::open(dir)?.sync_all(),
        None => Ok(()),
    }
}
