//! The tail's zero padding: written ahead of the records, skipped by
//! readers and by the start-up check, cut when a segment is sealed.

use super::*;

/// Bytes of one record of `body()`: header, seq and time, 64-byte body.
const FRAME: u64 = 8 + 16 + 64;

fn size(path: &Path) -> u64 {
    std::fs::metadata(path).unwrap().len()
}

fn tail_segment(cfg: &TrailConfig) -> std::path::PathBuf {
    super::scan::list_segments(&cfg.dir)
        .unwrap()
        .pop()
        .unwrap()
        .1
}

#[tokio::test]
async fn batches_overwrite_zeros_instead_of_growing_the_file() {
    let tmp = tempfile::tempdir().unwrap();
    let (pem, cfg) = (key_pem(), config(tmp.path(), 64 << 20));
    let trail = filled(&cfg, &pem, 1).await;
    let path = tail_segment(&cfg);
    let ahead = size(&path);
    assert_eq!(ahead, FRAME + (1 << 20), "one record, then 1 MiB of zeros");
    for i in 0..200 {
        trail.append(0, body(1, i), true).await.unwrap();
    }
    assert_eq!(size(&path), ahead, "200 more records, the same file size");
    let bytes = std::fs::read(&path).unwrap();
    assert!(bytes[(201 * FRAME) as usize..].iter().all(|b| *b == 0));
    trail.close().await;
    assert_eq!(size(&path), 201 * FRAME, "a clean close cuts the padding");
    let again = Trail::open(&cfg, signer(&pem)).unwrap();
    assert!(again.intact() && again.last_seq() == 201);
}

#[tokio::test]
async fn a_tail_left_padded_by_a_crash_opens_intact_and_continues() {
    let tmp = tempfile::tempdir().unwrap();
    let (pem, cfg) = (key_pem(), config(tmp.path(), 64 << 20));
    // Dropped without `close`: the writer stops as a killed process would
    // leave it, padding in place.
    drop(filled(&cfg, &pem, 10).await);
    let path = tail_segment(&cfg);
    assert!(size(&path) > 10 * FRAME, "padding left in place");
    let again = Trail::open(&cfg, signer(&pem)).unwrap();
    let report = again.open_report();
    assert!(report.intact && report.torn_bytes_cut == 0, "{report:?}");
    assert_eq!(all_oldest(&again).len(), 10);
    assert_eq!(again.append(0, b"next".to_vec(), true).await.unwrap(), 11);
    let next = again.newest(None).next().unwrap().unwrap();
    assert_eq!((next.seq, next.body), (11, b"next".to_vec()));
    assert!(again.verify(None).unwrap().ok);
    again.close().await;
    let report = super::verify_dir(&cfg.dir, again.verifier(), None).unwrap();
    assert!(report.ok && report.records == 11, "{report:?}");
}

#[tokio::test]
async fn bytes_after_the_padding_are_a_torn_write_or_a_fault() {
    let tmp = tempfile::tempdir().unwrap();
    let (pem, cfg) = (key_pem(), config(tmp.path(), 64 << 20));
    drop(filled(&cfg, &pem, 10).await);
    let path = tail_segment(&cfg);
    let padded = size(&path);
    // A page of a later, unacknowledged batch that reached the disk while
    // the pages before it did not.
    {
        use std::os::unix::fs::FileExt;
        let file = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
        file.write_all_at(&[0xAB; 100], 20 * FRAME).unwrap();
    }
    let again = Trail::open(&cfg, signer(&pem)).unwrap();
    let report = again.open_report();
    assert!(report.intact, "beyond the checkpoint: torn, {report:?}");
    assert_eq!(report.torn_bytes_cut, padded - 10 * FRAME);
    assert_eq!(all_oldest(&again).len(), 10);
    again.close().await;
    // Records the checkpoint vouched for, zeroed: a fault, not padding.
    {
        use std::os::unix::fs::FileExt;
        let file = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
        file.write_all_at(&[0; FRAME as usize], 4 * FRAME).unwrap();
    }
    let damaged = Trail::open(&cfg, signer(&pem)).unwrap();
    let report = damaged.open_report();
    assert!(!report.intact && report.first_bad == Some(5), "{report:?}");
}
