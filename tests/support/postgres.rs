//! A real, throwaway PostgreSQL server for the cluster tests: `initdb` into
//! a temporary directory, `postgres` on a free port of 127.0.0.1 (socket
//! in the same directory), database `opale` created, the server stopped
//! when the value is dropped. PostgreSQL refuses to run as root: when the
//! tests run as root, the directory is given to the `postgres` user and the
//! commands run under its uid (std's `CommandExt::uid`, like runuser).
//! The binaries are found on PATH, else in /usr/lib/postgresql/*/bin
//! (scripts/test.sh installs Debian's `postgresql` when missing).

use std::os::unix::fs::MetadataExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running PostgreSQL server.
pub struct Postgres {
    dir: tempfile::TempDir,
    bin: PathBuf,
    port: u16,
    owner: Option<(u32, u32)>,
    child: Option<Child>,
    /// The processes `freeze` stopped (postmaster first), until `thaw`.
    frozen: Vec<u32>,
}

impl Postgres {
    /// initdb, start, create database `opale`.
    pub async fn start() -> Postgres {
        let bin = bin_dir();
        let dir = tempfile::Builder::new()
            .prefix("opale-pg")
            .tempdir()
            .unwrap();
        let owner = if std::fs::metadata("/proc/self").unwrap().uid() == 0 {
            Some(postgres_ids())
        } else {
            None
        };
        if let Some((uid, gid)) = owner {
            std::os::unix::fs::chown(dir.path(), Some(uid), Some(gid)).unwrap();
        }
        let mut pg = Postgres {
            dir,
            bin,
            port: 0,
            owner,
            child: None,
            frozen: Vec::new(),
        };
        let out = pg
            .command("initdb")
            .args(["-D", "data", "-U", "postgres", "--auth=trust", "-E", "UTF8"])
            .stdout(Stdio::null())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "initdb: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        pg.port = free_port();
        pg.launch().await;
        let (client, conn) = tokio_postgres::connect(&pg.url_of("postgres"), tokio_postgres::NoTls)
            .await
            .unwrap();
        let driver = tokio::spawn(conn);
        client.batch_execute("CREATE DATABASE opale").await.unwrap();
        drop(client);
        let _ = driver.await;
        pg
    }

    /// Runs `sql` (one statement, outside any transaction block) as the
    /// superuser on database `opale`, on a connection of its own.
    pub async fn execute(&self, sql: &str) {
        self.session().await.batch_execute(sql).await.unwrap();
    }

    /// A session of its own on database `opale`, as the superuser (its
    /// connection is driven until the client is dropped).
    pub async fn session(&self) -> tokio_postgres::Client {
        let (client, conn) = tokio_postgres::connect(&self.url(), tokio_postgres::NoTls)
            .await
            .unwrap();
        tokio::spawn(conn);
        client
    }

    /// `postgres://postgres@127.0.0.1:<port>/opale`
    pub fn url(&self) -> String {
        self.url_of("opale")
    }

    fn url_of(&self, db: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{db}", self.port)
    }

    fn command(&self, program: &str) -> Command {
        let mut c = Command::new(self.bin.join(program));
        c.current_dir(self.dir.path());
        if let Some((uid, gid)) = self.owner {
            c.uid(uid).gid(gid);
        }
        c
    }

    /// Starts the server on the same directory and port; returns once it
    /// accepts connections.
    pub async fn launch(&mut self) {
        let dir = self.dir.path().to_str().unwrap().to_owned();
        let child = self
            .command("postgres")
            .args(["-D", "data", "-p", &self.port.to_string(), "-k", &dir])
            .args(["-c", "listen_addresses=127.0.0.1", "-c", "fsync=off"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let ready =
                tokio_postgres::connect(&self.url_of("postgres"), tokio_postgres::NoTls).await;
            if ready.is_ok() {
                return;
            }
            assert!(Instant::now() < deadline, "postgres did not start");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Stops the server (fast shutdown: clients are disconnected).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = Command::new("kill")
                .args(["-INT", &child.id().to_string()])
                .status();
            let deadline = Instant::now() + Duration::from_secs(20);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = child.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Postgres {
    /// Freezes the server without closing anything: SIGSTOP to the
    /// postmaster, then to each of its children (backends, checkpointer,
    /// …). Connections stay open and connects are accepted by the kernel,
    /// but nothing answers: PostgreSQL hung, not stopped.
    pub fn freeze(&mut self) {
        let Some(postmaster) = self.child.as_ref().map(Child::id) else {
            return;
        };
        // The postmaster first: stopped, it forks no new child meanwhile.
        signal("-STOP", postmaster);
        self.frozen.push(postmaster);
        for pid in children(postmaster) {
            signal("-STOP", pid);
            self.frozen.push(pid);
        }
    }

    /// Resumes what `freeze` stopped (children first).
    pub fn thaw(&mut self) {
        for pid in self.frozen.drain(..).rev() {
            signal("-CONT", pid);
        }
    }
}

/// `kill <sig> <pid>`.
fn signal(sig: &str, pid: u32) {
    let status = Command::new("kill")
        .args([sig, &pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success(), "kill {sig} {pid}");
}

/// The pids whose parent is `parent` (from /proc/*/stat).
fn children(parent: u32) -> Vec<u32> {
    let mut pids = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        // `pid (comm) state ppid …`: comm may hold spaces, so read after
        // the last ')'.
        let ppid = stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().nth(1))
            .and_then(|p| p.parse::<u32>().ok());
        if ppid == Some(parent) {
            pids.push(pid);
        }
    }
    pids
}

impl Drop for Postgres {
    fn drop(&mut self) {
        // A frozen server would ignore the shutdown signal.
        self.thaw();
        self.stop();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The uid and gid of the `postgres` user.
fn postgres_ids() -> (u32, u32) {
    let passwd = std::fs::read_to_string("/etc/passwd").unwrap();
    let line = passwd
        .lines()
        .find(|l| l.starts_with("postgres:"))
        .expect("no postgres user: install Debian's postgresql (scripts/test.sh)");
    let fields: Vec<&str> = line.split(':').collect();
    (fields[2].parse().unwrap(), fields[3].parse().unwrap())
}

/// The directory holding `initdb` and `postgres`.
fn bin_dir() -> PathBuf {
    let on_path = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .find(|p| p.join("initdb").is_file() && p.join("postgres").is_file())
    });
    if let Some(dir) = on_path {
        return dir;
    }
    let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path().join("bin"))
        .filter(|p| Path::new(p).join("initdb").is_file())
        .collect();
    versions.sort();
    versions
        .pop()
        .expect("PostgreSQL not found: install Debian's postgresql (scripts/test.sh)")
}
