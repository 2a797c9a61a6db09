//! A real HAProxy (Debian's `haproxy`) in front of the gateway, on a free
//! 127.0.0.1 port, for the tests of the PROXY protocol and of a rolling
//! restart. Without haproxy a test fails and says what to install: a
//! missing tool is never a pass.

use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// The running `haproxy -db`; killed when the test ends, passed or not.
pub struct Haproxy(Child);

impl Drop for Haproxy {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts HAProxy in TCP mode with frontend `front` bound to a free port
/// and `backend` as the text of its backend section (without the
/// `backend opale` line); returns once the frontend accepts. Its log is
/// `dir/haproxy.log`.
pub async fn start(dir: &Path, backend: &str) -> (Haproxy, SocketAddr) {
    assert!(
        Command::new("haproxy").arg("-v").output().is_ok(),
        "haproxy is not installed: apt-get install haproxy (scripts/test.sh installs it)"
    );
    let front = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let cfg = dir.join("haproxy.cfg");
    std::fs::write(
        &cfg,
        format!(
            "defaults\n  mode tcp\n  timeout connect 2s\n  timeout client 30s\n  \
             timeout server 30s\nfrontend front\n  bind {front}\n  default_backend opale\n\
             backend opale\n{backend}"
        ),
    )
    .unwrap();
    let log = std::fs::File::create(dir.join("haproxy.log")).unwrap();
    let child = Command::new("haproxy")
        .arg("-db")
        .arg("-f")
        .arg(&cfg)
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .stdin(Stdio::null())
        .spawn()
        .unwrap();
    let mut child = Haproxy(child);
    for _ in 0..200 {
        if let Some(status) = child.0.try_wait().unwrap() {
            let log = std::fs::read_to_string(dir.join("haproxy.log")).unwrap();
            panic!("haproxy exited ({status}): {log}");
        }
        if std::net::TcpStream::connect(front).is_ok() {
            return (child, front);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("haproxy did not listen on {front}");
}
