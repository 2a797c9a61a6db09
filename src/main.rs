//! The `opale-apim` binary: parses the command line and wires the library.
#![forbid(unsafe_code)]

use anyhow::Context;
use clap::{Parser, Subcommand};
use opale_apim::app::{App, Startup};
use opale_apim::config::{Config, LogFormat};
use opale_apim::pki::{self, PkiFiles};
use opale_apim::reload::{self, LogHook};
use opale_apim::server::{self, Listeners};
use std::path::PathBuf;
use tracing_subscriber::EnvFilter;

/// mimalloc instead of glibc's malloc: per-thread free lists suit
/// thread-per-core workers that allocate and free on the same thread
/// (glibc's malloc, free and consolidation were ~6 % of the server's CPU
/// under load: docs/benchmarks.md, session 13).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// API management gateway for the OPALE tax data API.
#[derive(Debug, Parser)]
#[command(name = "opale-apim", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Development PKI.
    #[command(subcommand)]
    Pki(PkiCommand),
    /// Run the sandbox, production and admin listeners.
    Serve {
        /// TOML config (default config/opale.toml when present, else built-in defaults).
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// Client of the admin API (mTLS with the admin certificate).
    Admin(Box<opale_apim::admin::cli::AdminArgs>),
    /// Moves the state between backends (sled → PostgreSQL).
    #[command(subcommand)]
    Store(StoreCommand),
}

#[derive(Debug, Subcommand)]
enum StoreCommand {
    /// Writes every record of the configured store to stdout, one JSON line each.
    Export {
        /// TOML config naming the store (default as for `serve`).
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// Reads `store export` lines from stdin into the configured store, which must be empty.
    Import {
        /// TOML config naming the store (default as for `serve`).
        #[arg(long)]
        config: Option<PathBuf>,
    },
}

#[derive(Debug, Subcommand)]
enum PkiCommand {
    /// Create the dev CA, server, environment CAs and admin certificate.
    Init {
        /// Target directory (default: certs_dir of the config, ./certs).
        #[arg(long)]
        dir: Option<PathBuf>,
        /// Overwrite an existing PKI.
        #[arg(long)]
        force: bool,
        /// Config file to read certs_dir from.
        #[arg(long)]
        config: Option<PathBuf>,
    },
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    // The serving threads are `server::run_workers`' own runtimes; this
    // one carries the background tasks (reloads, notices, status probes,
    // the Redis quota client, summaries) and blocking work goes to its
    // blocking pool. One worker thread: a second one only stole and woke
    // the first one, 5 µs (one node) to 12 µs (cluster node) of CPU per
    // data call (docs/benchmarks.md, session 12).
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {}", report(&e));
            std::process::ExitCode::FAILURE
        }
    }
}

/// The error and its causes, each said once: our error messages often end
/// with their source's own text (`"trail I/O: {0}"` over an `io::Error`),
/// which `{:#}` would print a second time.
fn report(e: &anyhow::Error) -> String {
    let mut text = e.to_string();
    for cause in e.chain().skip(1) {
        let said = cause.to_string();
        if !text.contains(&said) {
            text.push_str(": ");
            text.push_str(&said);
        }
    }
    text
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Pki(PkiCommand::Init { dir, force, config }) => {
            let dir = match dir {
                Some(d) => d,
                None => Config::load(config.as_deref())?.0.certs_dir,
            };
            let written = pki::init(&PkiFiles::new(&dir), force)?;
            println!("dev PKI written to {}:", dir.display());
            for f in written {
                println!("  {}", f.display());
            }
            Ok(())
        }
        Command::Serve { config } => serve(config).await,
        Command::Admin(args) => Ok(opale_apim::admin::cli::run(*args).await?),
        Command::Store(command) => store(command).await,
    }
}

/// `store export` / `store import` on the configured backend (not while
/// `serve` holds a sled directory: sled's lock refuses a second process).
async fn store(command: StoreCommand) -> anyhow::Result<()> {
    use opale_apim::store::dump;
    let path = match &command {
        StoreCommand::Export { config } | StoreCommand::Import { config } => config.clone(),
    };
    let (config, _) = Config::load(path.as_deref())?;
    let store = opale_apim::app::open_store(&config)
        .await
        .context("cannot open the store")?;
    match command {
        StoreCommand::Export { .. } => {
            let n = dump::export(&*store, &mut std::io::stdout().lock()).await?;
            eprintln!("exported {n} records");
        }
        StoreCommand::Import { .. } => {
            let n = dump::import(&*store, &mut std::io::stdin().lock()).await?;
            eprintln!("imported {n} records");
        }
    }
    Ok(())
}

async fn serve(config_path: Option<PathBuf>) -> anyhow::Result<()> {
    let (config, source) = Config::load(config_path.as_deref())?;
    let log_hook = init_logging(config.log.format, &config.log.filter);
    let (app, startup) = App::build(config.clone()).await.context("cannot start")?;
    let planes = app.planes();
    planes.reloader.attach(source.clone(), log_hook);
    #[cfg(unix)]
    tokio::spawn(reload::hangups(planes.reloader.clone()).context("cannot listen for SIGHUP")?);
    let listeners = Listeners::bind(&config).await?;
    print_banner(&config, &startup, &listeners, source);
    let workers = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(2);
    // SIGTERM or Ctrl-C: drain for `cluster.drain_secs` (a second signal
    // ends it), then stop.
    let (server, drain) = (planes.server.clone(), config.cluster.drain());
    let stop = async move {
        shutdown_signal().await;
        server::drain_for(server.drain(), drain, shutdown_signal()).await;
    };
    server::run_workers((planes.server, planes.tasks), listeners, workers, stop).await?;
    eprintln!("opale-apim stopped");
    Ok(())
}

fn print_banner(config: &Config, startup: &Startup, l: &Listeners, source: Option<PathBuf>) {
    let addr = |t: &tokio::net::TcpListener| {
        t.local_addr()
            .map(|a| a.to_string())
            .unwrap_or_else(|_| "?".into())
    };
    let certs = config.certs_dir.display();
    let cfg = source
        .map(|p| p.display().to_string())
        .unwrap_or_else(|| "built-in defaults".into());
    if startup.created_pki {
        println!("created a development PKI in {certs} (pki init)");
    }
    println!("opale-apim {} — config: {cfg}", env!("CARGO_PKG_VERSION"));
    println!(
        "  sandbox     https://{}   (partners: mTLS with a sandbox-CA certificate)",
        addr(&l.sandbox)
    );
    println!(
        "  production  https://{}   (upstream {})",
        addr(&l.production),
        config.production.upstream.0
    );
    println!(
        "  admin       https://{}   (mTLS with {certs}/admin.pem)",
        addr(&l.admin)
    );
    match config.store.backend {
        opale_apim::config::StoreBackend::Sled => println!(
            "  state       {} (registry, sled)",
            config.data_dir.join("sled").display()
        ),
        opale_apim::config::StoreBackend::Postgres => println!(
            "  state       PostgreSQL (registry, shared; this node: {})",
            startup.node_id
        ),
    }
    println!(
        "  trail       {} ({} records, {})",
        config.data_dir.join("trail").display(),
        startup.trail_records,
        if startup.trail_intact {
            "intact"
        } else {
            "NOT INTACT: see the error above and `admin trace verify`"
        }
    );
    if let Some((node, records)) = &startup.shipped {
        println!(
            "              shipped to PostgreSQL as the chain of {node} ({records} records there)"
        );
    }
    println!(
        "  status      https://{}/status (public: availability, incidents, maintenances)",
        addr(&l.sandbox)
    );
    println!(
        "  dashboard   https://{}/dashboard (partners sign in with an application's certificate: \
         usage, contacts, secret, certificates; admins with admin.pem)",
        addr(&l.admin)
    );
    println!();
    println!("Try next (in another terminal):");
    println!(
        "  curl --cacert {certs}/ca.pem https://{}/opale/v1/etatSante",
        addr(&l.sandbox)
    );
    println!(
        "  opale-apim admin partner add --siren 732829320 --name \"Exemple SA\" --contact technique:Jeanne Dupont:jd@example.fr"
    );
    println!(
        "  opale-apim admin app add --partner <id> --name demo --env sandbox --grant declarations:2022-2024 \\"
    );
    println!("      --valid-from 2025-01-01 --valid-until 2027-12-31 --ip 127.0.0.1/32");
    println!(
        "  openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout app.key -out app.csr -subj /CN=demo"
    );
    println!("  opale-apim admin cert issue <client_id> --csr app.csr --out app.pem");
    println!(
        "  curl --cacert {certs}/ca.pem --cert app.pem --key app.key -H \"X-Correlation-ID: $(cat /proc/sys/kernel/random/uuid)\" \\"
    );
    println!(
        "      https://{}/opale/v1/entreprises/732829320/declarations?annee=2024",
        addr(&l.sandbox)
    );
    println!("(with cargo: replace `opale-apim` by `cargo run --release --`). Ctrl-C stops.");
}

/// Installs the subscriber; returns the hook that applies a reloaded
/// `[log] filter`, unless `RUST_LOG` is set (it wins, and stays).
fn init_logging(format: LogFormat, filter: &str) -> Option<LogHook> {
    let from_env = EnvFilter::try_from_default_env().ok();
    let reloadable = from_env.is_none();
    let filter = from_env.unwrap_or_else(|| EnvFilter::new(filter));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let hook: LogHook = match format {
        LogFormat::Json => {
            let builder = builder.json().with_filter_reloading();
            let handle = builder.reload_handle();
            let _ = builder.try_init();
            Box::new(move |f| handle.reload(f).map_err(|e| e.to_string()))
        }
        LogFormat::Text => {
            let builder = builder.with_filter_reloading();
            let handle = builder.reload_handle();
            let _ = builder.try_init();
            Box::new(move |f| handle.reload(f).map_err(|e| e.to_string()))
        }
    };
    reloadable.then_some(hook)
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => return ctrl_c.await.unwrap_or(()),
            };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}
