//! Gateway nodes of one cluster (docs/contract.md §10) for the cluster tests: nodes
//! started in-process on a shared PostgreSQL (`first_node`, `peer_node`,
//! `two_nodes`), a node run as the real `opale-apim serve` process (for
//! SIGKILL), and `eventually` for what must happen within a bound.

use super::postgres::Postgres;
use super::{Client, TestServer};
use opale_apim::config::{Config, StoreBackend, StoreUrl};
use opale_apim::domain::Environment;
use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How long a change may take to reach the other node.
pub const PROPAGATION: Duration = Duration::from_secs(2);

const BIN: &str = env!("CARGO_BIN_EXE_opale-apim");

/// Puts `c` on the PostgreSQL at `url` as node `node`.
pub fn on_postgres(c: &mut Config, url: &str, node: &str) {
    c.store.backend = StoreBackend::Postgres;
    c.store.url = Some(StoreUrl(url.to_owned()));
    c.cluster.node_id = node.to_owned();
}

/// Node A (`node-a`): a fresh PKI, its state in PostgreSQL.
pub async fn first_node(
    pg: &Postgres,
    tweak: impl Fn(&mut Config) + Send + Sync + 'static,
) -> TestServer {
    let url = pg.url();
    TestServer::start_with(move |c| {
        on_postgres(c, &url, "node-a");
        tweak(c);
    })
    .await
}

/// Another node of `peer`'s cluster: the same PKI (its `certs_dir`), its
/// own data directory `data` (its own token signing keys, registered in
/// the shared store, and its own trail). Nothing else is shared.
pub async fn peer_node(
    peer: &TestServer,
    url: &str,
    node: &'static str,
    data: &Path,
    tweak: impl Fn(&mut Config) + Send + Sync + 'static,
) -> TestServer {
    let (certs, data, url) = (peer.dir().join("certs"), data.to_path_buf(), url.to_owned());
    let mut node_b = TestServer::start_with(move |c| {
        on_postgres(c, &url, node);
        c.certs_dir = certs.clone();
        c.data_dir = data.clone();
        tweak(c);
    })
    .await;
    node_b.pki = peer.pki.clone();
    node_b
}

/// Nodes `node-a` and `node-b` (whose data directory is `data_b`).
pub async fn two_nodes(pg: &Postgres, data_b: &Path) -> (TestServer, TestServer) {
    let a = first_node(pg, |_| {}).await;
    let b = peer_node(&a, &pg.url(), "node-b", data_b, |_| {}).await;
    (a, b)
}

/// Polls `probe` until it returns true or `within` has passed.
pub async fn eventually<F: Future<Output = bool>>(
    within: Duration,
    mut probe: impl FnMut() -> F,
) -> bool {
    let deadline = Instant::now() + within;
    loop {
        if probe().await {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A node of `peer`'s cluster run as the real `opale-apim serve` process
/// (its own config, data directory, token signing keys and ports; `peer`'s
/// PKI), so that a test can SIGKILL it. Killed when dropped.
pub struct NodeProcess {
    child: Child,
    /// The sandbox listener.
    pub sandbox: SocketAddr,
    /// The admin listener.
    pub admin: SocketAddr,
    /// Its configuration file (for `opale-apim admin --config`).
    pub config: PathBuf,
    dir: PathBuf,
}

impl NodeProcess {
    /// Writes `dir/opale.toml` and starts `serve`; returns once the admin
    /// listener accepts connections. Its log goes to `dir/serve.log`.
    pub fn spawn(peer: &TestServer, url: &str, node: &str, dir: &Path) -> NodeProcess {
        Self::spawn_with(peer, url, node, dir, |_| {})
    }

    /// As [`spawn`](Self::spawn), with the configuration file's table
    /// changed by `tweak` before it is written.
    pub fn spawn_with(
        peer: &TestServer,
        url: &str,
        node: &str,
        dir: &Path,
        tweak: impl FnOnce(&mut toml::Table),
    ) -> NodeProcess {
        let data = dir.join("data");
        let (sandbox, production, admin) = (free_addr(), free_addr(), free_addr());
        let config = dir.join("opale.toml");
        // The OAuth issuer of the in-process nodes (their configured
        // listeners are the defaults): one issuer for the whole cluster, as
        // behind a load balancer, so tokens from any node work on this one.
        let issuer = |env| Config::default().public_url(env);
        let text = format!(
            "data_dir = {data:?}\ncerts_dir = {certs:?}\n\
             [sandbox]\nlisten = \"{sandbox}\"\npublic_url = \"{sb_url}\"\n\
             [production]\nlisten = \"{production}\"\npublic_url = \"{pr_url}\"\n\
             [admin]\nlisten = \"{admin}\"\n[log]\nfilter = \"warn\"\n\
             [store]\nbackend = \"postgres\"\nurl = \"{url}\"\n[cluster]\nnode_id = \"{node}\"\n",
            data = data.display().to_string(),
            certs = peer.dir().join("certs").display().to_string(),
            sb_url = issuer(Environment::Sandbox),
            pr_url = issuer(Environment::Production),
        );
        let mut table: toml::Table = text.parse().unwrap();
        tweak(&mut table);
        std::fs::write(&config, table.to_string()).unwrap();
        let child = Self::launch(&config, dir, admin);
        NodeProcess {
            child,
            sandbox,
            admin,
            config,
            dir: dir.to_path_buf(),
        }
    }

    /// Starts `serve` on `config`; returns once `admin` accepts.
    fn launch(config: &Path, dir: &Path, admin: SocketAddr) -> Child {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.join("serve.log"))
            .unwrap();
        let mut child = Command::new(BIN)
            .args(["serve", "--config"])
            .arg(config)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::net::TcpStream::connect(admin).is_err() {
            let log = std::fs::read_to_string(dir.join("serve.log")).unwrap_or_default();
            if let Some(status) = child.try_wait().unwrap() {
                panic!("serve exited ({status}): {log}");
            }
            assert!(Instant::now() < deadline, "serve did not start: {log}");
            std::thread::sleep(Duration::from_millis(50));
        }
        child
    }

    /// SIGTERM, then waits for the process to end (at most `within`);
    /// returns how long it took.
    pub fn terminate(&mut self, within: Duration) -> Duration {
        let sent = Instant::now();
        let pid = self.child.id().to_string();
        let killed = Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        assert!(killed.success(), "kill -TERM {pid} failed");
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                assert!(status.success(), "serve ended with {status} after SIGTERM");
                return sent.elapsed();
            }
            assert!(
                sent.elapsed() < within,
                "serve still runs {within:?} after SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Starts the process again on the same configuration and data
    /// directory (after [`terminate`](Self::terminate)).
    pub fn start_again(&mut self) {
        self.child = Self::launch(&self.config, &self.dir, self.admin);
    }

    /// SIGKILL: no shutdown path runs.
    pub fn kill9(mut self) {
        self.kill_now();
    }

    /// SIGKILL, keeping the handle: [`start_again`](Self::start_again)
    /// restarts the node on its data directory.
    pub fn kill_now(&mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }
}

impl Drop for NodeProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_addr() -> SocketAddr {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
}

/// Whether `node` knows `c` within the propagation bound.
pub async fn known_on(node: &TestServer, c: &Client) -> bool {
    let form = format!("grant_type=client_credentials&client_id={}", c.id);
    eventually(PROPAGATION, || async {
        let r = node
            .token_request(Environment::Sandbox, Some(&c.cert), None, &form)
            .await;
        r.status == 200
    })
    .await
}
