//! The trail against damage: flipped bytes, cut tails, rolled-back copies,
//! deleted segments, and retention purges (the sled trail's three bugs).

use super::*;
use crate::trail::frame::{FIXED, HEADER};
use crate::trail::scan::list_segments;

/// Frame size of the test bodies.
const FRAME: u64 = (HEADER + FIXED + 64) as u64;

fn flip(path: &Path, offset: u64) {
    let mut bytes = std::fs::read(path).unwrap();
    bytes[offset as usize] ^= 0x01;
    std::fs::write(path, bytes).unwrap();
}

#[tokio::test]
async fn a_flipped_byte_is_named_at_open_and_by_verify() {
    let tmp = tempfile::tempdir().unwrap();
    let (pem, cfg) = (key_pem(), config(tmp.path(), 10 * FRAME));
    filled(&cfg, &pem, 36).await.close().await;
    let (first, path) = list_segments(&cfg.dir).unwrap()[1].clone();
    assert_eq!(first, 11);
    flip(&path, 3 * FRAME + 40); // in the body of record 14
    let report = verify_dir(&cfg.dir, &signer(&pem).verifier().clone(), None).unwrap();
    assert!(!report.ok);
    assert_eq!(report.first_bad, Some(14), "{report:?}");
    assert!(report.reason.unwrap().contains("CRC32C"));
    let trail = Trail::open(&cfg, signer(&pem)).unwrap();
    assert!(!trail.intact());
    assert_eq!(trail.open_report().first_bad, Some(14));
    // Still traces, continuing after the signed record 36, and still says so.
    assert_eq!(trail.append(0, b"after".to_vec(), true).await.unwrap(), 37);
    let report = trail.verify(None).unwrap();
    assert!(!report.ok && report.first_bad == Some(14), "{report:?}");
    assert_eq!(trail.newest(None).next().unwrap().unwrap().body, b"after");
}

#[tokio::test]
async fn a_cut_tail_is_not_intact_and_fails_against_a_held_checkpoint() {
    let tmp = tempfile::tempdir().unwrap();
    let (pem, cfg) = (key_pem(), config(tmp.path(), 64 << 20));
    let trail = filled(&cfg, &pem, 36).await;
    let held = trail.checkpoint();
    trail.close().await;
    let path = list_segments(&cfg.dir).unwrap().pop().unwrap().1;
    let len = std::fs::metadata(&path).unwrap().len();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&path)
        .unwrap()
        .set_len(len - 200)
        .unwrap();
    let trail = Trail::open(&cfg, signer(&pem)).unwrap();
    let open = trail.open_report();
    assert!(!open.intact, "{open:?}");
    // 200 bytes = 2 frames and a bit: record 34 is torn, 34..36 are gone.
    assert_eq!(open.first_bad, Some(34), "{open:?}");
    let report = trail.verify(Some(&held)).unwrap();
    assert!(!report.ok && report.first_bad == Some(34), "{report:?}");
    assert_eq!(trail.append(0, b"x".to_vec(), true).await.unwrap(), 37);
}

#[tokio::test]
async fn a_restored_older_copy_fails_against_a_checkpoint_taken_in_between() {
    let tmp = tempfile::tempdir().unwrap();
    let (pem, cfg) = (key_pem(), config(tmp.path(), 20 * FRAME));
    filled(&cfg, &pem, 30).await.close().await;
    let backup = tempfile::tempdir().unwrap();
    copy_dir(&cfg.dir, backup.path());
    let trail = filled(&cfg, &pem, 30).await;
    let held = trail.checkpoint();
    trail.close().await;
    std::fs::remove_dir_all(&cfg.dir).unwrap();
    copy_dir(backup.path(), &cfg.dir);
    let trail = Trail::open(&cfg, signer(&pem)).unwrap();
    assert!(trail.intact(), "the copy is consistent in itself");
    assert!(trail.verify(None).unwrap().ok);
    let report = trail.verify(Some(&held)).unwrap();
    assert!(!report.ok, "{report:?}");
    assert_eq!(report.first_bad, Some(31));
    // Even after new traffic re-reaches count 60, the rewritten history shows.
    for _ in 0..30 {
        trail.append(0, b"other".to_vec(), true).await.unwrap();
    }
    let report = trail.verify(Some(&held)).unwrap();
    assert!(!report.ok && report.first_bad == Some(60), "{report:?}");
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for item in std::fs::read_dir(from).unwrap() {
        let item = item.unwrap();
        std::fs::copy(item.path(), to.join(item.file_name())).unwrap();
    }
}

#[tokio::test]
async fn a_deleted_middle_segment_is_named_as_a_gap() {
    let tmp = tempfile::tempdir().unwrap();
    let (pem, cfg) = (key_pem(), config(tmp.path(), 10 * FRAME));
    filled(&cfg, &pem, 45).await.close().await;
    let segs = list_segments(&cfg.dir).unwrap();
    std::fs::remove_file(&segs[2].1).unwrap(); // records 21..30
    let report = verify_dir(&cfg.dir, signer(&pem).verifier(), None).unwrap();
    assert!(!report.ok);
    assert_eq!(report.first_bad, Some(21));
    assert!(report.reason.unwrap().contains("records 21..30 missing"));
    let trail = Trail::open(&cfg, signer(&pem)).unwrap();
    assert_eq!(trail.open_report().first_bad, Some(21));
}

#[tokio::test]
async fn purge_removes_whole_old_segments_and_verify_starts_from_its_checkpoint() {
    let tmp = tempfile::tempdir().unwrap();
    let (pem, cfg) = (key_pem(), config(tmp.path(), 10 * FRAME));
    let trail = filled(&cfg, &pem, 45).await; // time = 1000 + seq
    let out = trail.purge_before(1000 + 25).unwrap(); // records 1..24 are older
    assert_eq!(
        (out.segments, out.records),
        (2, 20),
        "segment 21..30 holds 25..30: kept"
    );
    assert_eq!(list_segments(&cfg.dir).unwrap()[0].0, 21);
    let report = trail.verify(None).unwrap();
    assert!(report.ok && report.records == 25, "{report:?}");
    let purge = trail
        .verifier()
        .open(report.purge_checkpoint.as_deref().unwrap())
        .unwrap();
    assert_eq!((purge.count, purge.purge_before), (20, Some(1025)));
    assert_eq!(trail.oldest(Start::Seq(1)).next().unwrap().unwrap().seq, 21);
    assert_eq!(trail.newest(None).count(), 25);
    // "before = now": everything but the newest segment goes; verify stays honest.
    let out = trail.purge_before(i64::MAX).unwrap();
    assert_eq!((out.segments, out.records), (2, 20));
    let report = trail.verify(None).unwrap();
    assert!(report.ok && report.records == 5, "{report:?}");
    trail.append(0, b"x".to_vec(), true).await.unwrap();
    trail.close().await;
    let again = Trail::open(&cfg, signer(&pem)).unwrap();
    assert!(again.intact(), "{:?}", again.open_report());
    assert_eq!(again.newest(None).count(), 6);
}

#[tokio::test]
async fn tampering_after_a_purge_is_detected() {
    let tmp = tempfile::tempdir().unwrap();
    let (pem, cfg) = (key_pem(), config(tmp.path(), 10 * FRAME));
    let trail = filled(&cfg, &pem, 45).await;
    trail.purge_before(1000 + 25).unwrap();
    trail.close().await;
    let segs = list_segments(&cfg.dir).unwrap();
    flip(&segs[0].1, 2 * FRAME + 30); // record 23
    let verifier = signer(&pem).verifier().clone();
    let report = verify_dir(&cfg.dir, &verifier, None).unwrap();
    assert!(!report.ok && report.first_bad == Some(23), "{report:?}");
    flip(&segs[0].1, 2 * FRAME + 30);
    assert!(verify_dir(&cfg.dir, &verifier, None).unwrap().ok);
    // Deleting the next segment and forging a purge needs the key: without
    // the purge file, the walk starts at genesis and finds 1..20 missing.
    std::fs::remove_file(cfg.dir.join("purge")).unwrap();
    let report = verify_dir(&cfg.dir, &verifier, None).unwrap();
    assert!(!report.ok && report.first_bad == Some(1), "{report:?}");
}
