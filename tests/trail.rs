//! The trail as evidence that survives the disk (docs/contract.md §7), on the
//! segment files of a real server: a flipped byte, a cut tail, a deleted
//! segment and a rolled-back copy of `data_dir` all make `verify` answer
//! `ok: false` naming what is missing, the start-up check reports it on
//! `/metrics`, and purge refuses a cutoff inside the retention period.
// A test crate: its helpers may unwrap like its #[test] functions (a
// panic is a failed test). The lib and binary deny it (Cargo.toml).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use hyper::Method;
use serde_json::json;
use std::path::{Path, PathBuf};
use support::TestServer;

/// A server whose trail rotates segments every 4 KiB, with `n` traced calls.
async fn with_records(n: usize) -> TestServer {
    let s = TestServer::start_with(|c| c.audit.segment_bytes = 4096).await;
    for _ in 0..n {
        s.admin_call(Method::GET, "/admin/v1/partners", None).await;
    }
    s
}

/// The trail's segment files, oldest first.
fn segments(data: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(data.join("data/trail"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "seg"))
        .collect();
    files.sort();
    files
}

async fn metric(s: &TestServer, name: &str) -> String {
    let r = s.admin_call(Method::GET, "/metrics", None).await;
    String::from_utf8_lossy(&r.raw)
        .lines()
        .find(|l| l.starts_with(name))
        .unwrap_or_default()
        .to_owned()
}

#[tokio::test]
async fn a_healthy_trail_verifies_and_its_checkpoint_is_a_signed_note() {
    let s = with_records(40).await;
    assert!(segments(&s.dir()).len() >= 3, "segments rotate");
    let report = s.verify_trail(None).await;
    assert_eq!(report["ok"], true, "{report}");
    assert!(report["records"].as_u64().unwrap() >= 40);
    let cp = s
        .admin_call(Method::GET, "/admin/v1/trace/checkpoint", None)
        .await;
    let text = String::from_utf8_lossy(&cp.raw).to_string();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], "opale-apim/trail", "{text}");
    assert!(lines[1].parse::<u64>().unwrap() >= 40, "{text}");
    assert!(
        lines.iter().any(|l| l.starts_with("— opale-apim/trail ")),
        "{text}"
    );
    assert_eq!(
        metric(&s, "opale_trail_intact").await,
        "opale_trail_intact 1"
    );
    // A checkpoint altered by one character is refused.
    let forged = text.replacen(
        lines[1],
        &(lines[1].parse::<u64>().unwrap() + 1).to_string(),
        1,
    );
    let report = s.verify_trail(Some(json!({ "checkpoint": forged }))).await;
    assert_eq!(report["ok"], false, "{report}");
}

#[tokio::test]
async fn a_flipped_byte_is_reported_with_its_record() {
    let s = with_records(40).await;
    let s = s
        .restart_with(|dir| {
            let first = &segments(dir)[0];
            let mut bytes = std::fs::read(first).unwrap();
            let at = bytes.len() / 2;
            bytes[at] ^= 0x20;
            std::fs::write(first, bytes).unwrap();
        })
        .await;
    let report = s.verify_trail(None).await;
    assert_eq!(report["ok"], false, "{report}");
    assert!(report["first_bad"].as_u64().is_some(), "{report}");
    assert_eq!(
        metric(&s, "opale_trail_intact").await,
        "opale_trail_intact 0"
    );
}

#[tokio::test]
async fn a_cut_tail_is_reported_at_start_and_by_verify() {
    let s = with_records(40).await;
    let s = s
        .restart_with(|dir| {
            let newest = segments(dir).pop().unwrap();
            let len = std::fs::metadata(&newest).unwrap().len();
            let file = std::fs::OpenOptions::new()
                .write(true)
                .open(&newest)
                .unwrap();
            file.set_len(len.saturating_sub(200)).unwrap();
        })
        .await;
    assert_eq!(
        metric(&s, "opale_trail_intact").await,
        "opale_trail_intact 0"
    );
    let report = s.verify_trail(None).await;
    assert_eq!(report["ok"], false, "{report}");
    assert!(report["reason"].as_str().is_some(), "{report}");
}

#[tokio::test]
async fn a_deleted_segment_is_reported() {
    let s = with_records(40).await;
    let s = s
        .restart_with(|dir| {
            let all = segments(dir);
            std::fs::remove_file(&all[1]).unwrap();
        })
        .await;
    let report = s.verify_trail(None).await;
    assert_eq!(report["ok"], false, "{report}");
    assert!(report["first_bad"].as_u64().is_some(), "{report}");
}

#[tokio::test]
async fn a_rolled_back_copy_no_longer_extends_a_checkpoint_saved_in_between() {
    let s = with_records(10).await;
    let saved = s.dir().join("before-more-traffic");
    let s = s
        .restart_with(|dir| support::copy_tree(&dir.join("data"), &dir.join("before-more-traffic")))
        .await;
    for _ in 0..10 {
        s.admin_call(Method::GET, "/admin/v1/partners", None).await;
    }
    let held = s
        .admin_call(Method::GET, "/admin/v1/trace/checkpoint", None)
        .await;
    let held = String::from_utf8_lossy(&held.raw).to_string();
    let s = s
        .restart_with(move |dir| {
            std::fs::remove_dir_all(dir.join("data")).unwrap();
            support::copy_tree(&saved, &dir.join("data"));
        })
        .await;
    // The restored copy is self-consistent…
    assert_eq!(s.verify_trail(None).await["ok"], true);
    // …but the checkpoint held elsewhere shows the records it lost.
    let report = s.verify_trail(Some(json!({ "checkpoint": held }))).await;
    assert_eq!(report["ok"], false, "{report}");
    assert!(report["reason"].as_str().is_some(), "{report}");
}

#[tokio::test]
async fn purge_refuses_a_cutoff_inside_retention_and_deletes_nothing() {
    let s = with_records(10).await;
    let before = s.verify_trail(None).await["records"].as_u64().unwrap();
    let now = time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    let r = s
        .admin_call(
            Method::POST,
            "/admin/v1/trace/purge",
            Some(json!({ "before": now })),
        )
        .await;
    assert_eq!(r.status, 400, "{:?}", r.body);
    assert_eq!(r.field(), "before");
    let after = s.verify_trail(None).await;
    assert_eq!(after["ok"], true);
    // Nothing deleted: every record is still there (plus the calls since).
    assert!(after["records"].as_u64().unwrap() > before, "{after}");
    assert!(
        segments(&s.dir())
            .first()
            .unwrap()
            .ends_with("00000000000000000001.seg")
    );
}
