//! Checkpoints as C2SP signed notes.

use super::*;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use sha2::{Digest, Sha256};

#[tokio::test]
async fn checkpoint_text_parses_and_verifies_and_a_modified_one_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let pem = key_pem();
    let trail = filled(&config(tmp.path(), 1 << 20), &pem, 3).await;
    let text = trail.checkpoint();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[..2], [NAME, "3"]);
    assert_eq!(STANDARD.decode(lines[2]).unwrap().len(), 32);
    assert_eq!(lines[3], "");
    let sig_line = lines[4].strip_prefix("\u{2014} opale.test/trail ").unwrap();
    let blob = STANDARD.decode(sig_line).unwrap();
    assert_eq!(blob.len(), 4 + 64);
    let public = rcgen::KeyPair::from_pem(&pem)
        .unwrap()
        .public_key_raw()
        .to_vec();
    let id = Sha256::digest([NAME.as_bytes(), b"\n\x01", &public].concat());
    assert_eq!(blob[..4], id[..4], "key id per signed-note");
    let cp = trail.verifier().open(&text).unwrap();
    assert_eq!((cp.count, cp.purge_before), (3, None));

    let forged = text.replacen("\n3\n", "\n4\n", 1);
    assert!(trail.verifier().open(&forged).is_err());
    let other = signer(&key_pem()).sign(3, &cp.head, None).unwrap().text;
    assert!(trail.verifier().open(&other).is_err(), "another key");
    let extra_sig = format!("{text}\u{2014} witness.example AAAAAAAA\n");
    assert!(
        trail.verifier().open(&extra_sig).is_ok(),
        "unknown signatures are ignored"
    );
    let report = trail.verify(Some(&forged)).unwrap();
    assert!(!report.ok && report.reason.unwrap().contains("refused"));
}

#[tokio::test]
async fn offline_verify_refuses_a_checkpoint_of_another_key() {
    let tmp = tempfile::tempdir().unwrap();
    let (pem, cfg) = (key_pem(), config(tmp.path(), 1 << 20));
    let trail = filled(&cfg, &pem, 2).await;
    let held = trail.checkpoint();
    trail.close().await;
    let verifier = signer(&pem).verifier().clone();
    assert!(verify_dir(&cfg.dir, &verifier, Some(&held)).unwrap().ok);
    let other = signer(&key_pem()).sign(2, &[0; 32], None).unwrap().text;
    let report = verify_dir(&cfg.dir, &verifier, Some(&other)).unwrap();
    assert!(!report.ok && report.reason.unwrap().contains("refused"));
}

#[test]
fn several_notes_one_after_the_other_split_back_into_each_note() {
    let pem = key_pem();
    let one = signer(&pem).sign(3, &[1; 32], None).unwrap().text;
    let extra_sig = format!("{one}\u{2014} witness.example AAAAAAAA\n");
    let two = signer(&pem).sign(9, &[2; 32], None).unwrap().text;
    let text = format!("{extra_sig}{two}");
    let notes = note::split_notes(&text);
    assert_eq!(notes, [extra_sig.as_str(), two.as_str()]);
    for n in &notes {
        assert!(signer(&pem).verifier().open(n).is_ok());
        assert_eq!(note::origin_of(n), Some(NAME));
    }
    assert_eq!(note::split_notes(&one), [one.as_str()]);
    assert!(note::split_notes("").is_empty());
    assert_eq!(note::split_notes("garbage"), ["garbage"]);
}
