//! Tests of the trail on real files in temporary directories.

mod note;
mod padding;
mod tamper;

use super::*;
use std::path::Path;

const NAME: &str = "opale.test/trail";

/// One Ed25519 key per test, reusable across reopenings.
fn key_pem() -> String {
    rcgen::KeyPair::generate_for(&rcgen::PKCS_ED25519)
        .unwrap()
        .serialize_pem()
}

fn signer(pem: &str) -> NoteSigner {
    NoteSigner::new(NAME, rcgen::KeyPair::from_pem(pem).unwrap()).unwrap()
}

fn config(dir: &Path, segment_bytes: u64) -> TrailConfig {
    TrailConfig {
        dir: dir.join("trail"),
        segment_bytes,
    }
}

/// A body that names its writer and its number, padded to 64 bytes.
fn body(writer: usize, n: usize) -> Vec<u8> {
    format!("{writer:04}:{n:06}:")
        .into_bytes()
        .into_iter()
        .chain(std::iter::repeat_n(b'.', 52))
        .collect()
}

/// Appends `n` durable records with time = 1000 + seq, returns the trail.
async fn filled(cfg: &TrailConfig, pem: &str, n: usize) -> Trail {
    let trail = Trail::open(cfg, signer(pem)).unwrap();
    for i in 0..n {
        let seq = trail.last_seq() + 1;
        trail
            .append(1000 + seq as i64, body(0, i), true)
            .await
            .unwrap();
    }
    trail
}

fn all_oldest(trail: &Trail) -> Vec<Entry> {
    trail.oldest(Start::Seq(1)).map(Result::unwrap).collect()
}

#[tokio::test]
async fn appended_records_read_back_both_ways_and_after_reopen() {
    let tmp = tempfile::tempdir().unwrap();
    let (pem, cfg) = (key_pem(), config(tmp.path(), 1024));
    let trail = filled(&cfg, &pem, 40).await;
    let newest: Vec<u64> = trail.newest(None).map(|e| e.unwrap().seq).collect();
    assert_eq!(newest, (1..=40).rev().collect::<Vec<_>>());
    let page: Vec<u64> = trail
        .newest(Some(11))
        .take(3)
        .map(|e| e.unwrap().seq)
        .collect();
    assert_eq!(page, vec![10, 9, 8]);
    let from: Vec<u64> = trail
        .oldest(Start::Seq(35))
        .map(|e| e.unwrap().seq)
        .collect();
    assert_eq!(from, vec![35, 36, 37, 38, 39, 40]);
    let by_time = trail
        .oldest(Start::Time(1000 + 38))
        .next()
        .unwrap()
        .unwrap();
    assert_eq!((by_time.seq, by_time.body.clone()), (38, body(0, 37)));
    assert!(trail.verifier().open(&trail.checkpoint()).unwrap().count == 40);
    trail.close().await;
    let again = Trail::open(&cfg, signer(&pem)).unwrap();
    assert!(again.intact(), "{:?}", again.open_report());
    let entries = all_oldest(&again);
    assert_eq!(entries.len(), 40);
    assert!(
        entries
            .iter()
            .enumerate()
            .all(|(i, e)| e.body == body(0, i) && e.time_ms == 1001 + i as i64)
    );
    assert_eq!(again.append(5, b"more".to_vec(), true).await.unwrap(), 41);
    let report = again.verify(None).unwrap();
    assert!(report.ok && report.records == 41, "{report:?}");
}

#[test]
fn concurrent_appenders_get_unique_contiguous_seqs_all_readable_after_reopen() {
    let tmp = tempfile::tempdir().unwrap();
    let (pem, cfg) = (key_pem(), config(tmp.path(), 8 * 1024));
    let trail = Arc::new(Trail::open(&cfg, signer(&pem)).unwrap());
    let threads: Vec<_> = (0..4)
        .map(|t| {
            let trail = trail.clone();
            std::thread::spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .build()
                    .unwrap();
                rt.block_on(async {
                    let tasks: Vec<_> = (0..32)
                        .map(|k| {
                            let trail = trail.clone();
                            tokio::spawn(async move {
                                let mut acked = Vec::new();
                                for n in 0..20 {
                                    let b = body(t * 100 + k, n);
                                    acked.push((
                                        trail.append(7, b.clone(), n % 2 == 0).await.unwrap(),
                                        b,
                                    ));
                                }
                                acked
                            })
                        })
                        .collect();
                    let mut all = Vec::new();
                    for task in tasks {
                        all.extend(task.await.unwrap());
                    }
                    all
                })
            })
        })
        .collect();
    let mut acked: Vec<(u64, Vec<u8>)> = threads
        .into_iter()
        .flat_map(|h| h.join().unwrap())
        .collect();
    acked.sort();
    assert_eq!(
        acked.iter().map(|a| a.0).collect::<Vec<_>>(),
        (1..=2560).collect::<Vec<_>>()
    );
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    rt.block_on(trail.close());
    assert!(
        trail
            .stats()
            .batches
            .load(std::sync::atomic::Ordering::Relaxed)
            < 2560
    );
    let again = Trail::open(&cfg, signer(&pem)).unwrap();
    assert!(again.intact(), "{:?}", again.open_report());
    let read: Vec<(u64, Vec<u8>)> = all_oldest(&again)
        .into_iter()
        .map(|e| (e.seq, e.body))
        .collect();
    assert_eq!(read, acked);
    assert!(
        super::scan::list_segments(&cfg.dir).unwrap().len() > 10,
        "rotation exercised"
    );
}

#[tokio::test]
async fn a_torn_unacknowledged_tail_is_cut_without_alarm() {
    let tmp = tempfile::tempdir().unwrap();
    let (pem, cfg) = (key_pem(), config(tmp.path(), 1 << 20));
    let trail = filled(&cfg, &pem, 10).await;
    trail.close().await;
    let seg = super::scan::list_segments(&cfg.dir)
        .unwrap()
        .pop()
        .unwrap()
        .1;
    let mut torn = Vec::new();
    super::frame::encode(&mut torn, 11, 0, &[7; 100]);
    let mut bytes = std::fs::read(&seg).unwrap();
    bytes.extend_from_slice(&torn[..60]);
    std::fs::write(&seg, bytes).unwrap();
    let again = Trail::open(&cfg, signer(&pem)).unwrap();
    let report = again.open_report();
    assert!(report.intact && report.torn_bytes_cut == 60, "{report:?}");
    assert_eq!(again.append(0, b"next".to_vec(), true).await.unwrap(), 11);
    assert!(again.verify(None).unwrap().ok);
}

#[tokio::test]
async fn an_oversized_body_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let trail = Trail::open(&config(tmp.path(), 1 << 20), signer(&key_pem())).unwrap();
    let err = trail
        .append(0, vec![0; (1 << 20) + 1], true)
        .await
        .unwrap_err();
    assert!(matches!(err, TrailError::TooLarge(_)));
}

#[tokio::test]
async fn chain_at_gives_the_chain_value_after_any_retained_record() {
    let tmp = tempfile::tempdir().unwrap();
    let pem = key_pem();
    // Small segments: the records span several files.
    let trail = filled(&config(tmp.path(), 2048), &pem, 40).await;
    let mut hash = frame::GENESIS;
    let mut expected = vec![hash];
    for e in all_oldest(&trail) {
        hash = frame::chain_entry(&hash, e.seq, e.time_ms, &e.body);
        expected.push(hash);
    }
    assert_eq!(expected.len(), 41);
    for seq in 0..=40u64 {
        assert_eq!(
            trail.chain_at(seq).unwrap(),
            expected[seq as usize],
            "seq {seq}"
        );
    }
    let cp = trail.verifier().open(&trail.checkpoint()).unwrap();
    assert_eq!(
        cp.head, expected[40],
        "the checkpoint's head is the same chain"
    );
    assert!(trail.chain_at(41).is_err(), "not written yet");

    let purged = trail.purge_before(1000 + 30).unwrap(); // the first segment (1..23)
    assert!(purged.records > 0);
    let point = purged.records;
    assert_eq!(
        trail.chain_at(point).unwrap(),
        expected[point as usize],
        "the purge point"
    );
    assert!(trail.chain_at(point - 1).is_err(), "purged");
    assert_eq!(
        trail.chain_at(point + 1).unwrap(),
        expected[point as usize + 1]
    );
}

#[tokio::test]
async fn a_follower_gets_the_durable_records_and_chain_values_the_segments_hold() {
    let tmp = tempfile::tempdir().unwrap();
    let pem = key_pem();
    let cfg = config(tmp.path(), 2048);
    let trail = filled(&cfg, &pem, 3).await;
    assert!(
        trail.recent_from(1, 100).is_empty(),
        "nothing kept before follow"
    );
    trail.follow();
    // Across a segment rotation (2 KiB segments, 64-byte bodies).
    for i in 3..60 {
        trail
            .append(1000 + i as i64, body(1, i), true)
            .await
            .unwrap();
    }
    assert!(
        trail.recent_from(3, 100).is_empty(),
        "record 3 predates follow"
    );
    let kept = trail.recent_from(4, 20);
    assert_eq!(kept.len(), 20);
    let mut hash = trail.chain_at(3).unwrap();
    for (c, e) in kept.iter().zip(trail.oldest(Start::Seq(4))) {
        let e = e.unwrap();
        assert_eq!(c.entry, e, "the same record as the segment's");
        hash = frame::chain_entry(&hash, e.seq, e.time_ms, &e.body);
        assert_eq!(c.hash, hash, "the same chain value, seq {}", e.seq);
    }
    let rest = trail.recent_from(24, 1000);
    assert_eq!(
        rest.iter().map(|c| c.entry.seq).collect::<Vec<_>>(),
        (24..=60).collect::<Vec<_>>()
    );
    assert!(
        trail.recent_from(24, 10).is_empty(),
        "taken records are gone"
    );
}
