//! The running gateway's state, built once from the configuration: the
//! PKI (created on first start), the store and registry, and each
//! listener's TLS configuration and trust policy.

use crate::audit::Auditor;
use crate::availability::Availability;
use crate::config::Config;
use crate::data::transmitted::Transmissions;
use crate::data::upstream::{Upstream, UpstreamError};
use crate::domain::Environment;
use crate::oauth::{DenyList, OAuthError, Oauth, SigningKey, TokenAuthority};
use crate::pki::{self, CertInfo, IssuingCa, PkiError, PkiFiles};
use crate::quota::{Quotas, SystemClock};
use crate::registry::{AdminRecord, Registry, RegistryError};
use crate::store::{SledStore, Store, StoreError};
use crate::tls::{self, ChainVerifier, TlsError};
use rustls::ServerConfig;
use rustls_pki_types::CertificateRevocationListDer;
use rustls_pki_types::pem::PemObject;
use std::path::Path;
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
    /// A CRL file.
    #[error("CRL {path}: {message}")]
    Crl {
        /// The file.
        path: String,
        /// What is wrong.
        message: String,
    },
    /// The audit trail.
    #[error(transparent)]
    Audit(#[from] crate::audit::AuditError),
    /// Token signing keys.
    #[error(transparent)]
    OAuth(#[from] OAuthError),
    /// The upstream client.
    #[error(transparent)]
    Upstream(#[from] UpstreamError),
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
    availability: Availability,
    audit: Auditor,
    notices: Arc<crate::notify::Notices>,
}

/// One environment's CA, trust policy and TLS configuration.
#[derive(Debug)]
pub struct EnvState {
    /// Which environment.
    pub environment: Environment,
    /// Issues partner certificates from CSRs.
    pub ca: IssuingCa,
    /// Judges presented certificates (CA + CRLs).
    pub verifier: ChainVerifier,
    /// The listener's TLS configuration.
    pub tls: Arc<ServerConfig>,
}

/// Everything a request handler may need, shared by all connections.
pub struct App {
    /// The configuration it was built from.
    pub config: Config,
    /// The PKI files.
    pub pki: PkiFiles,
    /// Partners, applications, certificates.
    pub registry: Arc<Registry>,
    /// Sandbox state.
    pub sandbox: EnvState,
    /// Production state.
    pub production: EnvState,
    /// Trust policy of the admin listener (the root CA).
    pub admin_verifier: ChainVerifier,
    /// The admin listener's TLS configuration.
    pub admin_tls: Arc<ServerConfig>,
    /// Token issuers and the deny-list.
    pub oauth: Oauth,
    /// Per-application quota logs.
    pub quotas: Quotas,
    /// Production data source.
    pub upstream: Upstream,
    /// Claims transmitted by partners.
    pub transmissions: Arc<Transmissions>,
    /// Maintenance / kill switch per environment.
    pub availability: Availability,
    /// The audit trail.
    pub audit: Auditor,
    /// Prometheus series.
    pub metrics: crate::metrics::Metrics,
    /// Connection admission on the three listeners (DESIGN §8).
    pub edges: Arc<crate::server::Edges>,
    /// Expiry notices recorded and sent (DESIGN §9, `crate::notify`).
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
    /// the sled store in `data_dir/sled` and registers `admin.pem` as an
    /// admin certificate.
    pub fn build(config: Config) -> Result<(App, Startup), AppError> {
        let mut startup = Startup::default();
        let files = PkiFiles::new(&config.certs_dir);
        if !files.ca_pem().exists() && files.all().iter().all(|f| !f.exists()) {
            pki::init(&files, false)?;
            startup.created_pki = true;
        }
        let dir = config.data_dir.join("sled");
        std::fs::create_dir_all(&dir).map_err(|source| AppError::Io {
            path: dir.display().to_string(),
            source,
        })?;
        let store: Arc<dyn Store> = Arc::new(SledStore::open(&dir)?);
        let registry = Arc::new(Registry::open(store.clone())?);
        let oauth = oauth(&config, store.clone(), registry.clone())?;
        let transmissions = Arc::new(Transmissions::open(store.clone())?);
        let availability = Availability::open(store.clone())?;
        let notices = Arc::new(crate::notify::Notices::open(store.clone())?);
        let key_path = config.data_dir.join("keys").join("audit-signing.pem");
        drop(store);
        let audit = Auditor::start(
            &config.data_dir,
            &key_path,
            config.audit.durability,
            config.audit.segment_bytes,
        )?;
        let parts = Parts {
            oauth,
            transmissions,
            availability,
            audit,
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
        let provider = tls::provider();
        let chain = tls::load_certs(&files.server_pem())?;
        let key = || tls::load_key(&files.server_key());
        let reject = config.tls.reject_at_handshake;
        let env_state = |environment: Environment, crls: &[std::path::PathBuf]| {
            let ca = IssuingCa::load(&files, environment)?;
            let verifier = ChainVerifier::new(
                provider.clone(),
                &[ca.certificate().clone()],
                load_crls(crls)?,
            )?;
            let tls = tls::server_config(
                provider.clone(),
                chain.clone(),
                key()?,
                verifier.handshake_verifier(reject),
            )?;
            Ok::<_, AppError>(EnvState {
                environment,
                ca,
                verifier,
                tls,
            })
        };
        let sandbox = env_state(Environment::Sandbox, &config.sandbox.crls)?;
        let production = env_state(Environment::Production, &config.production.crls)?;
        let roots = tls::load_certs(&files.ca_pem())?;
        let admin_verifier = ChainVerifier::new(provider.clone(), &roots, Vec::new())?;
        let admin_tls = tls::server_config(
            provider,
            chain.clone(),
            key()?,
            admin_verifier.handshake_verifier(reject),
        )?;
        bootstrap_admin(&registry, &files)?;
        let upstream = Upstream::new(&config.production)?;
        let edges = crate::server::Edges::new(&config.limits);
        let app = App {
            config,
            pki: files,
            registry,
            sandbox,
            production,
            admin_verifier,
            admin_tls,
            oauth: parts.oauth,
            quotas: Quotas::new(Arc::new(SystemClock::default())),
            upstream,
            transmissions: parts.transmissions,
            availability: parts.availability,
            audit: parts.audit,
            metrics: crate::metrics::Metrics::new(),
            edges,
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

    /// The state of one environment.
    pub fn env(&self, environment: Environment) -> &EnvState {
        match environment {
            Environment::Sandbox => &self.sandbox,
            Environment::Production => &self.production,
        }
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
        denylist: DenyList::open(store, registry, lifetime, now)?,
    })
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

fn load_crls(
    paths: &[std::path::PathBuf],
) -> Result<Vec<CertificateRevocationListDer<'static>>, AppError> {
    let mut crls = Vec::new();
    for path in paths {
        let err = |message: String| AppError::Crl {
            path: path.display().to_string(),
            message,
        };
        let iter = CertificateRevocationListDer::pem_file_iter(Path::new(path))
            .map_err(|e| err(e.to_string()))?;
        for crl in iter {
            crls.push(crl.map_err(|e| err(e.to_string()))?);
        }
    }
    Ok(crls)
}
