//! Reload without restart (docs/contract.md §9): `SIGHUP`, `POST /admin/v1/reload`
//! and the CRL watcher re-read the server certificate and key, the CA
//! files, the CRL files and the `[limits]` and `[log]` sections of the
//! configuration file the process was started with.
//!
//! Everything is read and checked first; only then is the new state
//! published ([`Live`] holds it behind `ArcSwap`). A bad file refuses the
//! whole reload: the old state stays, the error names the file.
//! Connections already open keep the state they were accepted with (they
//! hold its `Arc`); new connections take the new one. Ports, `data_dir`,
//! `certs_dir`, the store and every other key need a restart.

mod crls;
mod trust;
mod watch;

pub use crls::{CrlFile, CrlSet, Stamp};
pub use trust::{AdminState, EnvState, Handshake, Material, Trust};
pub use watch::{CRL_POLL_INTERVAL, hangups, watch_crls};

use crate::audit::Auditor;
use crate::config::{Config, LimitsSettings, LogSettings};
use crate::domain::Environment;
use crate::pki::PkiFiles;
use crate::server::Edges;
use arc_swap::ArcSwap;
use serde::Serialize;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};
use time::format_description::well_known::Rfc3339;
use tracing_subscriber::EnvFilter;

/// Why a reload was refused; each names the file at fault.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ReloadError {
    /// A certificate file (server or CA) is missing or unusable.
    #[error("{}: {message}", file.display())]
    Certificate {
        /// The file.
        file: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// A private key is unusable or does not match its certificate.
    #[error("{}: {message}", file.display())]
    Key {
        /// The file.
        file: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// A CRL file is missing or unusable.
    #[error("{}: {message}", file.display())]
    Crl {
        /// The file.
        file: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// The configuration file does not parse or validate.
    #[error("{}: {message}", file.display())]
    Config {
        /// The file.
        file: PathBuf,
        /// What is wrong.
        message: String,
    },
}

impl ReloadError {
    /// The file at fault.
    pub fn file(&self) -> &Path {
        match self {
            ReloadError::Certificate { file, .. }
            | ReloadError::Key { file, .. }
            | ReloadError::Crl { file, .. }
            | ReloadError::Config { file, .. } => file,
        }
    }

    /// What is wrong with it.
    pub fn message(&self) -> &str {
        match self {
            ReloadError::Certificate { message, .. }
            | ReloadError::Key { message, .. }
            | ReloadError::Crl { message, .. }
            | ReloadError::Config { message, .. } => message,
        }
    }
}

/// Applies a new `[log] filter` to the process's subscriber (installed by
/// `main`, which owns the subscriber).
pub type LogHook = Box<dyn Fn(EnvFilter) -> Result<(), String> + Send + Sync>;

/// What `main` tells the reloader about the process.
struct Attached {
    config_file: Option<PathBuf>,
    log: Option<LogHook>,
}

/// The reloadable state of the running gateway, published by a [`Reloader`].
pub struct Reloader {
    live: Arc<Live>,
    /// The configuration read at start (the sections when no file is
    /// attached; what needs a restart is compared against it).
    config: Config,
    pki: PkiFiles,
    edges: Arc<Edges>,
    audit: Arc<Auditor>,
}

impl Reloader {
    /// A reloader publishing into `live`; a reload also applies the new
    /// `[limits]` to `edges` and to the trail's summaries of unidentified
    /// callers.
    pub(crate) fn new(
        live: Arc<Live>,
        config: Config,
        pki: PkiFiles,
        edges: Arc<Edges>,
        audit: Arc<Auditor>,
    ) -> Self {
        Reloader {
            live,
            config,
            pki,
            edges,
            audit,
        }
    }

    /// What `main` tells it about the process: the configuration file to
    /// re-read and how to replace the log filter (first call wins).
    pub fn attach(&self, config_file: Option<PathBuf>, log: Option<LogHook>) {
        self.live.attach(config_file, log);
    }

    /// The current TLS state of every listener.
    pub fn trust(&self) -> Arc<Trust> {
        self.live.trust()
    }

    /// The current state of one environment (CA, verifier, TLS).
    pub fn env(&self, environment: Environment) -> Arc<EnvState> {
        self.live.trust().env(environment).clone()
    }

    /// The `[limits]` in force.
    pub fn limits(&self) -> Arc<LimitsSettings> {
        self.live.limits()
    }

    /// Where the records of signal-driven reloads go.
    pub(crate) fn audit(&self) -> &Auditor {
        &self.audit
    }
}

/// The reloadable state of the running gateway.
pub struct Live {
    trust: ArcSwap<Trust>,
    limits: ArcSwap<LimitsSettings>,
    attached: OnceLock<Attached>,
    /// One reload at a time (signal, API and watcher may race).
    busy: Mutex<()>,
}

impl std::fmt::Debug for Live {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Live")
            .field("limits", &self.limits.load())
            .finish_non_exhaustive()
    }
}

impl Live {
    /// The state read at start.
    pub fn new(trust: Trust, limits: LimitsSettings) -> Live {
        Live {
            trust: ArcSwap::from_pointee(trust),
            limits: ArcSwap::from_pointee(limits),
            attached: OnceLock::new(),
            busy: Mutex::new(()),
        }
    }

    /// The current TLS state (a new connection takes it once).
    pub fn trust(&self) -> Arc<Trust> {
        self.trust.load_full()
    }

    /// Whether `trust` is still the TLS state in force (no reload and no
    /// CRL change since it was taken): cheap, read on every request.
    pub fn still_trusts(&self, trust: &Arc<Trust>) -> bool {
        Arc::ptr_eq(&self.trust.load(), trust)
    }

    /// The current `[limits]`.
    pub fn limits(&self) -> Arc<LimitsSettings> {
        self.limits.load_full()
    }

    /// Names the configuration file to re-read (`None`: built-in
    /// defaults, only the PKI and CRL files are re-read) and the hook that
    /// applies `[log] filter` (`None`: the filter is not reloaded, e.g.
    /// because `RUST_LOG` wins). Only the first call counts.
    pub fn attach(&self, config_file: Option<PathBuf>, log: Option<LogHook>) {
        let _ = self.attached.set(Attached { config_file, log });
    }
}

/// What a reload put in place (the API's 200 body).
#[derive(Debug, Clone, Serialize)]
pub struct Reloaded {
    /// The server certificate now presented.
    pub server_certificate: ServerCertificate,
    /// The CA files read.
    pub ca_files: Vec<String>,
    /// CRL files per environment, with how many CRLs each holds.
    pub crls: CrlSummary,
    /// `[limits]` now in force.
    pub limits: LimitsSettings,
    /// `[log] filter` now in force; `null` when not reloadable (`RUST_LOG`).
    pub log_filter: Option<String>,
    /// The configuration file read; `null` with built-in defaults.
    pub config_file: Option<String>,
}

/// Facts of the server certificate.
#[derive(Debug, Clone, Serialize)]
pub struct ServerCertificate {
    /// Subject DN.
    pub subject: String,
    /// Serial number, lowercase hex.
    pub serial: String,
    /// End of validity, RFC 3339.
    pub not_after: String,
}

/// CRL files of both environments.
#[derive(Debug, Clone, Serialize)]
pub struct CrlSummary {
    /// Sandbox files.
    pub sandbox: Vec<CrlFileSummary>,
    /// Production files.
    pub production: Vec<CrlFileSummary>,
    /// CRLs loaded in all.
    pub total: usize,
}

/// One CRL file.
#[derive(Debug, Clone, Serialize)]
pub struct CrlFileSummary {
    /// The file.
    pub file: String,
    /// CRLs it holds.
    pub crls: usize,
}

/// The reloadable sections, as read from the configuration file.
struct Sections {
    limits: LimitsSettings,
    log: LogSettings,
    crls: [Vec<PathBuf>; 2],
    file: Option<PathBuf>,
}

/// Re-reads everything (blocking: file reads and key parsing) and, when
/// every file is good, publishes the new state. Logged either way.
pub fn reload(r: &Reloader) -> Result<Reloaded, ReloadError> {
    let live = &r.live;
    let _one = live.busy.lock().unwrap_or_else(|p| p.into_inner());
    let result = prepare(r).map(|(trust, sections, filter)| {
        live.trust.store(Arc::new(trust));
        live.limits.store(Arc::new(sections.limits.clone()));
        r.edges.apply(&sections.limits);
        let thresholds = crate::audit::unidentified::Thresholds::of(&sections.limits);
        r.audit.unidentified.set_limits(thresholds);
        let log_filter = apply_log(r, &sections.log, filter);
        summary(r, log_filter, sections.file.as_deref())
    });
    match &result {
        Ok(r) => tracing::info!(
            serial = %r.server_certificate.serial,
            not_after = %r.server_certificate.not_after,
            crls = r.crls.total,
            "reloaded"
        ),
        Err(e) => {
            tracing::error!(file = %e.file().display(), error = %e.message(), "reload refused; the previous state is kept")
        }
    }
    result
}

/// Reads and builds everything, publishing nothing.
fn prepare(r: &Reloader) -> Result<(Trust, Sections, Option<EnvFilter>), ReloadError> {
    let sections = sections(r)?;
    // Without a file or a hook there is no new filter to install.
    let filter = match (&sections.file, log_hook(r)) {
        (Some(file), Some(_)) => Some(new_filter(file, &sections.log.filter)?),
        _ => None,
    };
    let crls = sections.crls.each_ref().map(Vec::as_slice);
    let policy = Handshake::of(&r.config);
    let trust = Trust::load(&r.pki, crls, policy, &crate::tls::provider())?;
    Ok((trust, sections, filter))
}

/// `filter` as a tracing filter, refused with the file it came from.
fn new_filter(file: &Path, filter: &str) -> Result<EnvFilter, ReloadError> {
    EnvFilter::try_new(filter).map_err(|e| ReloadError::Config {
        file: file.to_path_buf(),
        message: format!("log.filter: {e}"),
    })
}

/// Re-reads the CRL files alone when one changed on disk since it was
/// read: `Ok(Some(CRLs now loaded))`, or `Ok(None)` when none changed.
pub fn reload_crls_if_changed(r: &Reloader) -> Result<Option<usize>, ReloadError> {
    let live = &r.live;
    let _one = live.busy.lock().unwrap_or_else(|p| p.into_inner());
    let current = live.trust();
    if !current.crls_changed() {
        return Ok(None);
    }
    let trust = current.with_crls_reread(&crate::tls::provider())?;
    let total = trust.sandbox.crls.ders.len() + trust.production.crls.ders.len();
    live.trust.store(Arc::new(trust));
    Ok(Some(total))
}

/// The sections from the configuration file, or the start-up values.
fn sections(r: &Reloader) -> Result<Sections, ReloadError> {
    let file = attached_file(r);
    let config = match &file {
        Some(path) => {
            Config::load(Some(path))
                .map(|(c, _)| c)
                .map_err(|e| ReloadError::Config {
                    file: path.clone(),
                    message: e.to_string(),
                })?
        }
        None => r.config.clone(),
    };
    if config.log.format != r.config.log.format {
        tracing::warn!("log.format changed: it takes effect at the next restart");
    }
    Ok(Sections {
        limits: config.limits,
        log: config.log,
        crls: [config.sandbox.crls, config.production.crls],
        file,
    })
}

fn attached_file(r: &Reloader) -> Option<PathBuf> {
    r.live.attached.get().and_then(|a| a.config_file.clone())
}

fn log_hook(r: &Reloader) -> Option<&LogHook> {
    r.live.attached.get().and_then(|a| a.log.as_ref())
}

/// Installs the new filter; `None` when there is no hook.
fn apply_log(r: &Reloader, log: &LogSettings, filter: Option<EnvFilter>) -> Option<String> {
    let (hook, filter) = (log_hook(r)?, filter?);
    match hook(filter) {
        Ok(()) => Some(log.filter.clone()),
        Err(e) => {
            tracing::error!(error = %e, "log filter not reloaded");
            None
        }
    }
}

fn summary(r: &Reloader, log_filter: Option<String>, file: Option<&Path>) -> Reloaded {
    let trust = r.live.trust();
    let server = &trust.material.server;
    let files = |set: &CrlSet| {
        set.files
            .iter()
            .map(|f| CrlFileSummary {
                file: f.path.display().to_string(),
                crls: f.count,
            })
            .collect::<Vec<_>>()
    };
    Reloaded {
        server_certificate: ServerCertificate {
            subject: server.subject.clone(),
            serial: server.serial.clone(),
            not_after: server.not_after.format(&Rfc3339).unwrap_or_default(),
        },
        ca_files: trust
            .material
            .ca_files()
            .iter()
            .map(|p| p.display().to_string())
            .collect(),
        crls: CrlSummary {
            sandbox: files(&trust.sandbox.crls),
            production: files(&trust.production.crls),
            total: trust.sandbox.crls.ders.len() + trust.production.crls.ders.len(),
        },
        limits: (*r.live.limits()).clone(),
        log_filter,
        config_file: file.map(|p| p.display().to_string()),
    }
}
