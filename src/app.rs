//! The running gateway's state, built once from the configuration: the
//! PKI (created on first start), the store and registry, and each
//! listener's TLS configuration and trust policy (held in [`Live`], which
//! `reload` replaces).

use crate::audit::Auditor;
use crate::availability::Availability;
use crate::config::Config;
use crate::config::{LimitsSettings, StoreBackend};
use crate::data::transmitted::Transmissions;
use crate::data::upstream::{Upstream, UpstreamError};
use crate::domain::Environment;
use crate::oauth::{DenyList, OAuthError, Oauth, SigningKey, TokenAuthority};
use crate::pki::{self, CertInfo, PkiError, PkiFiles};
use crate::quota::Quotas;
use crate::registry::{AdminRecord, Registry, RegistryError};
use crate::reload::{Live, ReloadError, Trust};
use crate::store::{PgStore, SledStore, Store, StoreError};
use crate::tls::{self, TlsError};
use std::sync::Arc;

pub use crate::reload::EnvState;

/// Why the gateway could not start.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// PKI files.
    #[error(transparent)]
    Pki(#[from] PkiError),
    /// TLS configuration.
    #[error(transparent)]
    Tls(#[from] TlsError),
    /// The state directory.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The registry.
    #[error(transparent)]
    Registry(#[from] RegistryError),
    /// A certificate, key, CA or CRL file (named).
    #[error(transparent)]
    Files(#[from] ReloadError),
    /// The audit trail.
    #[error(transparent)]
    Audit(#[from] crate::audit::AuditError),
    /// The security events.
    #[error(transparent)]
    Abuse(#[from] crate::abuse::AbuseError),
    /// Token signing keys.
    #[error(transparent)]
    OAuth(#[from] OAuthError),
    /// The upstream client.
    #[error(transparent)]
    Upstream(#[from] UpstreamError),
    /// The quota backend.
    #[error(transparent)]
    Quota(#[from] crate::quota::QuotaError),
    /// Creating the state directory.
    #[error("{path}: {source}")]
    Io {
        /// The directory.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
}

/// State opened from the store, handed to `assemble`.
struct Parts {
    oauth: Oauth,
    transmissions: Arc<Transmissions>,
    availability: Arc<Availability>,
    audit: Auditor,
    abuse: crate::abuse::Abuse,
    cluster: crate::cluster::Cluster,
    notices: Arc<crate::notify::Notices>,
}

/// Everything a request handler may need, shared by all connections.
pub struct App {
    /// The configuration it was built from.
    pub config: Config,
    /// The PKI files.
    pub pki: PkiFiles,
    /// Partners, applications, certificates.
    pub registry: Arc<Registry>,
    /// What a reload replaces (docs/contract.md §9): each listener's TLS state
    /// (certificates, CAs, CRLs) and the `[limits]` in force. `config`
    /// keeps the values read at start.
    pub live: Live,
    /// Token issuers and the deny-list.
    pub oauth: Oauth,
    /// Per-application quota logs (in process or in Redis).
    pub quotas: Quotas,
    /// Production data source.
    pub upstream: Upstream,
    /// Claims transmitted by partners.
    pub transmissions: Arc<Transmissions>,
    /// Maintenance / kill switch per environment (and the staleness
    /// cut-off of a cluster node).
    pub availability: Arc<Availability>,
    /// The audit trail.
    pub audit: Auditor,
    /// Prometheus series.
    pub metrics: crate::metrics::Metrics,
    /// Connection admission on the three listeners (docs/contract.md §8).
    pub edges: Arc<crate::server::Edges>,
    /// Abnormal-usage detector and open security events (docs/contract.md §9).
    pub abuse: crate::abuse::Abuse,
    /// This node of a cluster: store health, change propagation (§10).
    pub cluster: crate::cluster::Cluster,
    /// Expiry notices recorded and sent (docs/contract.md §9, `crate::notify`).
    pub notices: Arc<crate::notify::Notices>,
}

/// What `App::build` did that the operator should know.
#[derive(Debug, Default)]
pub struct Startup {
    /// A dev PKI was created because none existed.
    pub created_pki: bool,
}

impl App {
    /// Builds the state: creates the dev PKI if `certs_dir` has none, opens
    /// the store (sled in `data_dir/sled`, or PostgreSQL at `store.url`,
    /// migrated, with change propagation started) and registers
    /// `admin.pem` as an admin certificate.
    pub fn build(config: Config) -> Result<(App, Startup), AppError> {
        let mut startup = Startup::default();
        let files = PkiFiles::new(&config.certs_dir);
        if !files.ca_pem().exists() && files.all().iter().all(|f| !f.exists()) {
            pki::init(&files, false)?;
            startup.created_pki = true;
        }
        let pg = open_postgres(&config)?;
        let store: Arc<dyn Store> = match &pg {
            Some(pg) => pg.clone(),
            None => open_store(&config)?,
        };
        let registry = Arc::new(Registry::open(store.clone())?);
        let oauth = oauth(&config, store.clone(), registry.clone())?;
        let transmissions = Arc::new(Transmissions::open(store.clone())?);
        let mut availability = Availability::open(store.clone())?;
        if let Some(health) = store.health() {
            availability = availability.with_staleness(health, config.cluster.max_staleness());
        }
        let availability = Arc::new(availability);
        let abuse =
            crate::abuse::Abuse::open(config.abuse.clone(), store.clone(), registry.clone())?;
        let targets = crate::cluster::Targets {
            registry: Arc::downgrade(&registry),
            denylist: Arc::downgrade(&oauth.denylist),
            availability: Arc::downgrade(&availability),
            transmissions: Arc::downgrade(&transmissions),
        };
        let cluster = crate::cluster::Cluster::start(&config.cluster.node_id, &*store, targets);
        let notices = Arc::new(crate::notify::Notices::open(store.clone())?);
        let key_path = config.data_dir.join("keys").join("audit-signing.pem");
        drop(store);
        let audit = Auditor::start(
            &config.data_dir,
            &key_path,
            config.audit.durability,
            config.audit.segment_bytes,
            pg.map(|store| crate::audit::ClusterSink {
                store,
                node: config.cluster.node_id.clone(),
            }),
        )?;
        let parts = Parts {
            oauth,
            transmissions,
            availability,
            audit,
            abuse,
            cluster,
            notices,
        };
        Self::assemble(config, files, registry, parts, startup)
    }

    fn assemble(
        config: Config,
        files: PkiFiles,
        registry: Arc<Registry>,
        parts: Parts,
        startup: Startup,
    ) -> Result<(App, Startup), AppError> {
        let crls = [&config.sandbox.crls, &config.production.crls].map(Vec::as_slice);
        let policy = crate::reload::Handshake::of(&config);
        let trust = Trust::load(&files, crls, policy, &tls::provider())?;
        let live = Live::new(trust, config.limits.clone());
        let thresholds = crate::audit::unidentified::Thresholds::of(&config.limits);
        parts.audit.unidentified.set_limits(thresholds);
        bootstrap_admin(&registry, &files)?;
        let upstream = Upstream::new(&config.production)?;
        let edges = crate::server::Edges::new(&config.limits);
        let metrics = crate::metrics::Metrics::new();
        let quotas = Quotas::from_settings(&config.quota, metrics.quota_backend_errors())?;
        let app = App {
            config,
            pki: files,
            registry,
            live,
            oauth: parts.oauth,
            quotas,
            upstream,
            transmissions: parts.transmissions,
            availability: parts.availability,
            audit: parts.audit,
            metrics,
            edges,
            abuse: parts.abuse,
            cluster: parts.cluster,
            notices: parts.notices,
        };
        Ok((app, startup))
    }

    /// What the control chain may read for one request on `env`.
    pub fn chain_context<'s>(
        &'s self,
        env: Environment,
        snapshot: &'s crate::registry::Snapshot,
    ) -> crate::chain::Context<'s> {
        crate::chain::Context {
            env,
            snapshot,
            authority: self.oauth.authority(env),
            denylist: &self.oauth.denylist,
            quotas: &self.quotas,
            availability: &self.availability,
            now: time::OffsetDateTime::now_utc(),
        }
    }

    /// The data sources of admitted reads and transmissions.
    pub fn sources(&self) -> crate::gateway::Sources<'_> {
        crate::gateway::Sources {
            upstream: &self.upstream,
            transmissions: &self.transmissions,
        }
    }

    /// The current state of one environment (CA, verifier, TLS).
    pub fn env(&self, environment: Environment) -> Arc<EnvState> {
        self.live.trust().env(environment).clone()
    }

    /// The current TLS state of every listener.
    pub fn trust(&self) -> Arc<Trust> {
        self.live.trust()
    }

    /// The `[limits]` in force (reloadable; `config.limits` is the value
    /// read at start).
    pub fn limits(&self) -> Arc<LimitsSettings> {
        self.live.limits()
    }
}

/// Loads (or creates) each environment's signing key, and the deny-list.
fn oauth(
    config: &Config,
    store: Arc<dyn Store>,
    registry: Arc<Registry>,
) -> Result<Oauth, AppError> {
    let lifetime = i64::from(config.oauth.token_lifetime_secs);
    let authority = |env: Environment| {
        let path = config
            .data_dir
            .join("keys")
            .join(format!("{env}-token-signing.pem"));
        let key = SigningKey::load_or_create(&path)?;
        Ok::<_, AppError>(TokenAuthority::new(
            env,
            config.public_url(env),
            lifetime,
            key,
        ))
    };
    let now = crate::oauth::unix_now();
    Ok(Oauth {
        sandbox: authority(Environment::Sandbox)?,
        production: authority(Environment::Production)?,
        denylist: Arc::new(DenyList::open(store, registry, lifetime, now)?),
    })
}

/// Opens PostgreSQL (schema migrated) when it is the configured store.
fn open_postgres(config: &Config) -> Result<Option<Arc<PgStore>>, AppError> {
    match (config.store.backend, &config.store.url) {
        (StoreBackend::Postgres, Some(url)) => Ok(Some(Arc::new(PgStore::open(
            &url.0,
            config.store.pool_size,
            &config.cluster.node_id,
        )?))),
        (StoreBackend::Postgres, None) => {
            Err(StoreError::Backend("store.url is not set".into()).into())
        }
        (StoreBackend::Sled, _) => Ok(None),
    }
}

/// Opens the configured store: sled in `data_dir/sled` (created if
/// missing), or PostgreSQL (schema migrated).
pub fn open_store(config: &Config) -> Result<Arc<dyn Store>, AppError> {
    match open_postgres(config)? {
        Some(pg) => Ok(pg),
        None => {
            let dir = config.data_dir.join("sled");
            std::fs::create_dir_all(&dir).map_err(|source| AppError::Io {
                path: dir.display().to_string(),
                source,
            })?;
            Ok(Arc::new(SledStore::open(&dir)?))
        }
    }
}

/// Makes sure `admin.pem` (from `pki init`) may use the admin listener.
fn bootstrap_admin(registry: &Registry, files: &PkiFiles) -> Result<(), AppError> {
    let path = files.admin_pem();
    if !path.exists() {
        return Ok(());
    }
    let chain = pki::parse_certificate_chain(&files.read(&path)?)?;
    let Some(leaf) = chain.first() else {
        return Ok(());
    };
    let info = CertInfo::from_der(leaf)?;
    if registry.snapshot().admins.contains_key(&info.thumbprint) {
        return Ok(());
    }
    registry.add_admin(AdminRecord {
        thumbprint: info.thumbprint,
        subject: info.subject,
        registered_at: time::OffsetDateTime::now_utc(),
    })?;
    Ok(())
}
