//! A real SMTP receiver for the notice tests: Python aiosmtpd
//! (`tests/support/smtp_sink.py`) writing one JSON line per message
//! accepted. Without aiosmtpd the tests that need it fail, saying what to
//! install (`scripts/test.sh` installs it): a missing tool is never a pass.

use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration as StdDuration;

/// A running aiosmtpd receiver writing one JSON line per message.
pub struct Sink {
    child: Child,
    /// The port it listens on (127.0.0.1).
    pub port: u16,
    out: PathBuf,
    _dir: tempfile::TempDir,
}

impl Drop for Sink {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A Python interpreter that has aiosmtpd; without one the test fails
/// and says what to install.
pub fn python() -> &'static str {
    ["python3", "/usr/bin/python3"]
        .into_iter()
        .find(|p| {
            Command::new(p)
                .args(["-c", "import aiosmtpd"])
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
        })
        .expect(
            "no python3 with aiosmtpd: install python3-aiosmtpd \
             (apt-get install python3-aiosmtpd; scripts/test.sh installs it)",
        )
}

impl Sink {
    /// Starts the receiver on `port` (0: any free port).
    pub fn start(python: &str, port: u16) -> Sink {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("mail.jsonl");
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/support/smtp_sink.py");
        let mut child = Command::new(python)
            .arg(script)
            .arg(&out)
            .arg(port.to_string())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let port = line.trim().strip_prefix("PORT ").unwrap().parse().unwrap();
        Sink {
            child,
            port,
            out,
            _dir: dir,
        }
    }

    /// The messages received so far.
    pub fn messages(&self) -> Vec<Value> {
        std::fs::read_to_string(&self.out)
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    /// Waits (up to 20 s) until `n` messages have arrived.
    pub async fn wait_for(&self, n: usize) -> Vec<Value> {
        for _ in 0..200 {
            let m = self.messages();
            if m.len() >= n {
                return m;
            }
            tokio::time::sleep(StdDuration::from_millis(100)).await;
        }
        panic!("expected {n} e-mails, got {:?}", self.messages());
    }
}
