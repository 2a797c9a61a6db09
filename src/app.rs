//! The running gateway's state, built once from the configuration: the
//! PKI (created on first start), the store and registry, and each
//! listener's TLS configuration and trust policy (held in [`Live`], which
//! `reload` replaces). [`App::planes`] then hands the environment
//! listeners, the admin listener, the background tasks and the reloader
//! each the narrow state it runs on; nothing else takes an `App`.

use crate::audit::Auditor;
use crate::availability::Availability;
use crate::config::Config;
use crate::config::StoreBackend;
use crate::dashboard::form::FormKey;
use crate::data::transmitted::Transmissions;
use crate::data::upstream::{Upstream, UpstreamError};
use crate::domain::{Environment, Plane};
use crate::oauth::{DenyList, Keyring, OAuthError, Oauth, TokenAuthority};
use crate::pki::{self, CertInfo, PkiError, PkiFiles};
use crate::quota::Quotas;
use crate::registry::{AdminRecord, Registry, RegistryError};
use crate::reload::{Live, ReloadError, Reloader, Trust};
use crate::store::{PgStore, SledStore, Store, StoreError};
use crate::tls::{self, TlsError};
use std::sync::Arc;

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
    /// Two kinds of state claim the same store area (a wiring bug).
    #[error(transparent)]
    Keyspace(#[from] crate::store::keyspace::AreaTaken),
    /// Service quality (incidents, maintenances, availability).
    #[error(transparent)]
    Status(#[from] crate::status::StatusError),
    /// The dashboards' form key.
    #[error(transparent)]
    Form(#[from] crate::dashboard::form::FormError),
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
    abuse: Arc<crate::abuse::Abuse>,
    cluster: crate::cluster::Cluster,
    notices: Arc<crate::notify::Notices>,
    status: Arc<crate::status::Status>,
    form_key: Arc<FormKey>,
}

/// The gateway's parts, built once from the configuration. Not an
/// argument anywhere: [`App::planes`] hands each part of the gateway the
/// narrow state it runs on.
pub struct App {
    config: Config,
    pki: PkiFiles,
    registry: Arc<Registry>,
    live: Arc<Live>,
    oauth: Arc<Oauth>,
    quotas: Arc<Quotas>,
    upstream: Arc<Upstream>,
    transmissions: Arc<Transmissions>,
    availability: Arc<Availability>,
    audit: Arc<Auditor>,
    metrics: Arc<crate::metrics::Metrics>,
    edges: Arc<crate::server::Edges>,
    abuse: Arc<crate::abuse::Abuse>,
    notices: Arc<crate::notify::Notices>,
    status: Arc<crate::status::Status>,
    form_key: Arc<FormKey>,
    store: std::sync::Weak<dyn Store>,
}

/// What `App::build` did and found that the operator should know.
#[derive(Debug, Default)]
pub struct Startup {
    /// A dev PKI was created because none existed.
    pub created_pki: bool,
    /// This node's id (`cluster.node_id`).
    pub node_id: String,
    /// Records in the local trail at start.
    pub trail_records: u64,
    /// Whether the start-up check of the trail passed.
    pub trail_intact: bool,
    /// With PostgreSQL: the chain the trail is shipped as, and how many
    /// records it holds there.
    pub shipped: Option<(String, u64)>,
}

/// The state each part of the gateway runs on, built by [`App::planes`].
pub struct Planes {
    /// The three listeners: admission, dispatch, and the gateway and admin
    /// planes requests are dispatched to.
    pub server: Arc<crate::server::Server>,
    /// What the background tasks run on.
    pub tasks: crate::server::Tasks,
    /// Reloads of the TLS state and limits (signal, admin API, CRL watcher).
    pub reloader: Arc<Reloader>,
    /// Whether every part has let the store and the trail go.
    pub held: Held,
}

/// Weak handles on what holds files open (the store's directory lock, the
/// trail's segments): a restart on the same directory waits until every
/// part of the previous run has let them go.
#[derive(Clone)]
pub struct Held {
    store: std::sync::Weak<dyn Store>,
    audit: std::sync::Weak<Auditor>,
}

impl Held {
    /// Whether nothing holds the store or the trail any more.
    pub fn released(&self) -> bool {
        self.store.strong_count() == 0 && self.audit.strong_count() == 0
    }
}

impl App {
    /// Builds the state: creates the dev PKI if `certs_dir` has none, opens
    /// the store (sled in `data_dir/sled`, or PostgreSQL at `store.url`,
    /// migrated, with change propagation started) and registers
    /// `admin.pem` as an admin certificate. Runs on the runtime that will
    /// outlive the node's parts (the cluster's reloader is a task there).
    pub async fn build(config: Config) -> Result<(App, Startup), AppError> {
        let mut startup = Startup {
            node_id: config.cluster.node_id.clone(),
            ..Startup::default()
        };
        let files = PkiFiles::new(&config.certs_dir);
        if !files.ca_pem().exists() && files.all().iter().all(|f| !f.exists()) {
            pki::init(&files, false)?;
            startup.created_pki = true;
        }
        let pg = open_postgres(&config).await?;
        let store: Arc<dyn Store> = match &pg {
            Some(pg) => pg.clone(),
            None => open_store(&config).await?,
        };
        let keyspaces = crate::store::Keyspaces::new();
        let registry = Arc::new(Registry::open(store.clone()).await?);
        keyspaces.join(&registry)?;
        let oauth = oauth(&config, store.clone(), registry.clone()).await?;
        keyspaces.join(&oauth.denylist)?;
        keyspaces.join(&oauth.keys)?;
        let transmissions = Arc::new(Transmissions::open(store.clone()).await?);
        keyspaces.join(&transmissions)?;
        let mut availability = Availability::open(store.clone()).await?;
        if let Some(health) = store.health() {
            availability = availability.with_staleness(health, config.cluster.max_staleness());
        }
        let availability = Arc::new(availability);
        keyspaces.join(&availability)?;
        let mut abuse =
            crate::abuse::Abuse::open(config.abuse.clone(), store.clone(), registry.clone())
                .await?;
        if config.quota.backend == crate::config::QuotaBackend::Redis {
            let shared = crate::abuse::SharedDenials::connect(&config.quota)
                .map_err(crate::abuse::AbuseError::from)?;
            abuse = abuse.with_shared_denials(shared);
        }
        let abuse = Arc::new(abuse);
        keyspaces.join(&abuse)?;
        let notices = Arc::new(crate::notify::Notices::open(store.clone()).await?);
        keyspaces.join(&notices)?;
        let status = Arc::new(
            crate::status::Status::open(
                config.status.clone(),
                store.clone(),
                &config.cluster.node_id,
                Environment::ALL.map(|env| config.public_url(env)),
                time::OffsetDateTime::now_utc(),
            )
            .await?,
        );
        keyspaces.join(&status)?;
        let form_key = Arc::new(FormKey::open(&*store).await?);
        let cluster = crate::cluster::Cluster::start(&config.cluster.node_id, &*store, keyspaces);
        let key_path = config.data_dir.join("keys").join("audit-signing.pem");
        let held = Arc::downgrade(&store);
        drop(store);
        let audit = Auditor::start(
            &config.data_dir,
            &key_path,
            config.audit.durability,
            config.audit.segment_bytes,
            pg.map(|store| crate::audit::ClusterSink {
                store,
                node: config.cluster.node_id.clone(),
                wait: config.cluster.trail_wait,
            }),
        )?;
        let report = audit.open_report();
        (startup.trail_records, startup.trail_intact) = (report.records, report.intact);
        startup.shipped = audit
            .cluster()
            .map(|c| (c.node().to_string(), c.progress().seq));
        let parts = Parts {
            oauth,
            transmissions,
            availability,
            audit,
            abuse,
            cluster,
            notices,
            status,
            form_key,
        };
        let app = Self::assemble(config, files, registry, parts, held).await?;
        Ok((app, startup))
    }

    async fn assemble(
        config: Config,
        files: PkiFiles,
        registry: Arc<Registry>,
        parts: Parts,
        store: std::sync::Weak<dyn Store>,
    ) -> Result<App, AppError> {
        let crls = [&config.sandbox.crls, &config.production.crls].map(Vec::as_slice);
        let policy = crate::reload::Handshake::of(&config);
        let trust = Trust::load(&files, crls, policy, &tls::provider())?;
        let live = Arc::new(Live::new(trust, config.limits.clone()));
        let thresholds = crate::audit::unidentified::Thresholds::of(&config.limits);
        parts.audit.unidentified.set_limits(thresholds);
        bootstrap_admin(&registry, &files).await?;
        let upstream = Arc::new(Upstream::new(&config.production)?);
        let edges = crate::server::Edges::new(&config.limits);
        let (trail, shipped) = parts.audit.metric_sources();
        let metrics = crate::metrics::Metrics::new(crate::metrics::Sources {
            trail,
            shipped,
            store: parts.cluster.health.clone(),
            registry: registry.clone(),
        });
        let quotas = Quotas::from_settings(&config.quota, metrics.quota_backend_errors())?;
        Ok(App {
            config,
            pki: files,
            registry,
            live,
            oauth: Arc::new(parts.oauth),
            quotas: Arc::new(quotas),
            upstream,
            transmissions: parts.transmissions,
            availability: parts.availability,
            audit: Arc::new(parts.audit),
            metrics: Arc::new(metrics),
            edges,
            abuse: parts.abuse,
            notices: parts.notices,
            status: parts.status,
            form_key: parts.form_key,
            store,
        })
    }

    /// Hands each part of the gateway the state it runs on.
    pub fn planes(self) -> Planes {
        let reloader = Arc::new(Reloader::new(
            self.live.clone(),
            self.config.clone(),
            self.pki,
            self.edges.clone(),
            self.audit.clone(),
        ));
        let drain = Arc::new(crate::server::Drain::default());
        let public = crate::status::public::Sources {
            status: self.status.clone(),
            availability: self.availability.clone(),
        };
        let watch = crate::status::task::Watch {
            status: self.status.clone(),
            availability: self.availability.clone(),
            upstream: self.upstream.clone(),
        };
        let announcer = Arc::new(announcer(&self.config, &self.status));
        let gateway = Arc::new(crate::gateway::Gateway {
            registry: self.registry.clone(),
            oauth: self.oauth.clone(),
            quotas: self.quotas.clone(),
            availability: self.availability.clone(),
            upstream: self.upstream,
            transmissions: self.transmissions,
            abuse: self.abuse.clone(),
            audit: self.audit.clone(),
            metrics: self.metrics.clone(),
            drain: drain.clone(),
            status: public,
            est: crate::est::Est {
                live: self.live.clone(),
                max_certificates: self.config.dashboard.max_certificates_per_application as usize,
            },
        });
        let admin = Arc::new(crate::admin::Admin {
            registry: self.registry.clone(),
            oauth: self.oauth,
            availability: self.availability,
            quotas: self.quotas,
            audit: self.audit.clone(),
            metrics: self.metrics.clone(),
            abuse: self.abuse,
            notices: self.notices.clone(),
            reloader: reloader.clone(),
            retention_days: self.config.audit.retention_days,
            datapass: self.config.datapass.clone(),
            status: self.status,
            announcer,
            form_key: self.form_key,
            max_certificates: self.config.dashboard.max_certificates_per_application as usize,
        });
        let c = &self.config;
        let server = Arc::new(crate::server::Server {
            live: self.live,
            edges: self.edges,
            metrics: self.metrics,
            audit: self.audit.clone(),
            proxies: [
                Plane::Env(Environment::Sandbox),
                Plane::Env(Environment::Production),
                Plane::Admin,
            ]
            .map(|plane| c.proxy_protocol_from(plane).clone()),
            gateway,
            admin,
            drain,
        });
        let tasks = crate::server::Tasks {
            notifier: crate::notify::Notifier {
                settings: self.config.notify.clone(),
                registry: self.registry,
                notices: self.notices,
                audit: self.audit.clone(),
                node_id: self.config.cluster.node_id.clone(),
            },
            reloader: reloader.clone(),
            audit: self.audit.clone(),
            retention_days: self.config.audit.retention_days,
            node_id: self.config.cluster.node_id.clone(),
            status: watch,
        };
        let held = Held {
            store: self.store,
            audit: Arc::downgrade(&self.audit),
        };
        Planes {
            server,
            tasks,
            reloader,
            held,
        }
    }
}

/// The announcer of incidents and maintenances: `[notify]`'s relay (none
/// without `smtp_url`, or if it cannot be built: logged, the dashboard
/// still shows them).
fn announcer(
    config: &Config,
    status: &crate::status::Status,
) -> crate::status::announce::Announcer {
    let mailer = crate::notify::Mailer::from_settings(&config.notify).unwrap_or_else(|e| {
        tracing::error!(error = %e, "incidents and maintenances: no e-mail (status page and dashboard only)");
        None
    });
    crate::status::announce::Announcer {
        mailer,
        zone: config.status.timezone.clone(),
        page: format!("{}/status", status.url(Environment::Production)),
    }
}

/// Opens the signing keys (this node's in `data_dir/keys`, every node's
/// registered in the store), each environment's authority, and the
/// deny-list.
async fn oauth(
    config: &Config,
    store: Arc<dyn Store>,
    registry: Arc<Registry>,
) -> Result<Oauth, AppError> {
    let lifetime = i64::from(config.oauth.token_lifetime_secs);
    let keys = Arc::new(
        Keyring::open(
            store.clone(),
            &config.data_dir.join("keys"),
            &config.cluster.node_id,
            lifetime,
            time::OffsetDateTime::now_utc(),
        )
        .await?,
    );
    let authority =
        |env: Environment| TokenAuthority::new(env, config.public_url(env), lifetime, keys.clone());
    let now = crate::oauth::unix_now();
    Ok(Oauth {
        sandbox: authority(Environment::Sandbox),
        production: authority(Environment::Production),
        denylist: Arc::new(DenyList::open(store, registry, lifetime, now).await?),
        keys,
    })
}

/// Opens PostgreSQL (schema migrated) when it is the configured store.
async fn open_postgres(config: &Config) -> Result<Option<Arc<PgStore>>, AppError> {
    match (config.store.backend, &config.store.url) {
        (StoreBackend::Postgres, Some(url)) => Ok(Some(Arc::new(
            PgStore::open(&url.0, config.store.pool_size, &config.cluster.node_id).await?,
        ))),
        (StoreBackend::Postgres, None) => Err(StoreError::broken("store.url is not set").into()),
        (StoreBackend::Sled, _) => Ok(None),
    }
}

/// Opens the configured store: sled in `data_dir/sled` (created if
/// missing), or PostgreSQL (schema migrated).
pub async fn open_store(config: &Config) -> Result<Arc<dyn Store>, AppError> {
    match open_postgres(config).await? {
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
async fn bootstrap_admin(registry: &Registry, files: &PkiFiles) -> Result<(), AppError> {
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
    registry
        .add_admin(AdminRecord {
            thumbprint: info.thumbprint,
            subject: info.subject,
            registered_at: time::OffsetDateTime::now_utc(),
        })
        .await?;
    Ok(())
}
