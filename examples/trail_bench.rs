//! Throughput of the trail's storage engine: N records of ~300 bytes
//! appended durably by concurrent tasks on current-thread runtimes (the
//! gateway's shape), reporting records/s, batches, and the writer
//! thread's CPU per record (from /proc, 10 ms resolution).
//!
//! `cargo run --release --example trail_bench -- [records] [tasks] [dir]`

use opale_apim::trail::{NoteSigner, Trail, TrailConfig};
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Instant;

const THREADS: usize = 2;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let records: usize = args.next().map_or(Ok(200_000), |a| a.parse())?;
    let tasks: usize = args.next().map_or(Ok(64), |a| a.parse())?;
    let tmp = tempfile::tempdir()?;
    let dir = args
        .next()
        .map_or_else(|| tmp.path().to_path_buf(), Into::into);
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ED25519)?;
    let trail = Arc::new(Trail::open(
        &TrailConfig::new(&dir),
        NoteSigner::new("bench/trail", key)?,
    )?);
    let (cpu0, writer0) = (process_ticks(), writer_ticks());
    let started = Instant::now();
    let per_task = records / tasks;
    let handles: Vec<_> = (0..THREADS)
        .map(|t| {
            let trail = trail.clone();
            std::thread::spawn(move || run_thread(trail, t, tasks / THREADS, per_task))
        })
        .collect();
    for h in handles {
        h.join().map_err(|_| "appender thread panicked")?;
    }
    let elapsed = started.elapsed().as_secs_f64();
    let (cpu, writer) = (process_ticks() - cpu0, writer_ticks() - writer0);
    let stats = trail.stats();
    let written = stats.written.load(Relaxed);
    let batches = stats.batches.load(Relaxed);
    println!(
        "records {written} in {elapsed:.2} s: {:.0} records/s",
        written as f64 / elapsed
    );
    println!(
        "batches {batches}: {:.1} records/batch",
        written as f64 / batches as f64
    );
    println!(
        "fdatasync {:.0} us/batch; checkpoint sign+persist {:.0} us/batch",
        stats.sync_ns.load(Relaxed) as f64 / 1e3 / batches as f64,
        stats.checkpoint_ns.load(Relaxed) as f64 / 1e3 / batches as f64
    );
    println!(
        "writer thread CPU {:.2} us/record",
        writer as f64 * 1e4 / written as f64
    );
    println!(
        "process CPU {:.2} us/record (appenders included)",
        cpu as f64 * 1e4 / written as f64
    );
    let verify = Instant::now();
    let report = trail.verify(None)?;
    println!(
        "verify ok={} records={} in {:.2} s",
        report.ok,
        report.records,
        verify.elapsed().as_secs_f64()
    );
    println!("VmHWM {}", status_field("VmHWM"));
    Ok(())
}

fn run_thread(trail: Arc<Trail>, t: usize, tasks: usize, per_task: usize) {
    let Ok(rt) = tokio::runtime::Builder::new_current_thread().build() else {
        return;
    };
    rt.block_on(async {
        let joins: Vec<_> = (0..tasks)
            .map(|k| {
                let trail = trail.clone();
                tokio::spawn(async move {
                    for n in 0..per_task {
                        let body = format!(
                            "{{\"t\":{t},\"k\":{k},\"n\":{n},\"pad\":\"{}\"}}",
                            "x".repeat(260)
                        );
                        if trail
                            .append(1_700_000_000_000 + n as i64, body.into_bytes(), true)
                            .await
                            .is_err()
                        {
                            return;
                        }
                    }
                })
            })
            .collect();
        for j in joins {
            let _ = j.await;
        }
    });
}

/// utime + stime ticks of a /proc stat line.
fn ticks(stat: &str) -> u64 {
    let after = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<&str> = after.split_whitespace().collect();
    f.get(11).and_then(|u| u.parse::<u64>().ok()).unwrap_or(0)
        + f.get(12).and_then(|s| s.parse::<u64>().ok()).unwrap_or(0)
}

fn process_ticks() -> u64 {
    ticks(&std::fs::read_to_string("/proc/self/stat").unwrap_or_default())
}

fn writer_ticks() -> u64 {
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return 0;
    };
    tasks
        .flatten()
        .filter(|t| {
            std::fs::read_to_string(t.path().join("comm")).is_ok_and(|c| c.trim() == "opale-trail")
        })
        .map(|t| ticks(&std::fs::read_to_string(t.path().join("stat")).unwrap_or_default()))
        .sum()
}

fn status_field(name: &str) -> String {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with(name))
        .map_or_else(String::new, |l| {
            l.trim_start_matches(name)
                .trim_matches(|c| c == ':' || c == ' ')
                .to_owned()
        })
}
