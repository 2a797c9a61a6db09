//! The TLS state of the three listeners as one value, built from the PKI
//! files and the CRL files and swapped whole on reload: the server
//! certificate and key, the root CA (`ca.pem`, admin trust), each
//! environment's issuing CA and CRLs, and the rustls `ServerConfig` and
//! [`ChainVerifier`] of each listener. A connection takes the current
//! value when it is accepted and keeps it for its life.

use super::ReloadError;
use super::crls::CrlSet;
use crate::domain::{Environment, Plane};
use crate::pki::{CertInfo, IssuingCa, PkiError, PkiFiles};
use crate::tls::{self, ChainVerifier, TlsError};
use rustls::ServerConfig;
use rustls::crypto::CryptoProvider;
use rustls::sign::CertifiedKey;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// One environment's CA, trust policy and TLS configuration.
#[derive(Debug)]
pub struct EnvState {
    /// Which environment.
    pub environment: Environment,
    /// Issues partner certificates from CSRs.
    pub ca: Arc<IssuingCa>,
    /// Judges presented certificates (CA + CRLs).
    pub verifier: ChainVerifier,
    /// The listener's TLS configuration.
    pub tls: Arc<ServerConfig>,
    /// The CRL files checked on this environment.
    pub crls: CrlSet,
}

/// The admin listener's trust policy (the root CA) and TLS configuration.
#[derive(Debug)]
pub struct AdminState {
    /// Judges admin certificates (chains to `ca.pem`).
    pub verifier: ChainVerifier,
    /// The listener's TLS configuration.
    pub tls: Arc<ServerConfig>,
}

/// What the PKI files hold, read and checked (the key matches the
/// certificate) before anything is built from them.
pub struct Material {
    files: PkiFiles,
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
    roots: Vec<CertificateDer<'static>>,
    sandbox_ca: Arc<IssuingCa>,
    production_ca: Arc<IssuingCa>,
    /// Facts of the server certificate (leaf of `server.pem`).
    pub server: CertInfo,
}

impl std::fmt::Debug for Material {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Material")
            .field("server", &self.server)
            .finish_non_exhaustive()
    }
}

impl Material {
    /// Reads `server.pem`, `server.key`, `ca.pem` and each environment's
    /// `{env}-ca.pem`/`.key`; an error names the file at fault.
    pub fn read(files: &PkiFiles, provider: &Arc<CryptoProvider>) -> Result<Material, ReloadError> {
        let (pem, key_path) = (files.server_pem(), files.server_key());
        let chain = tls::load_certs(&pem).map_err(|e| tls_error(&pem, e))?;
        let server = CertInfo::from_der(&chain[0]).map_err(|e| pki_error(&pem, e))?;
        let key = tls::load_key(&key_path).map_err(|e| match e {
            TlsError::Pem { message, .. } => key_error(&key_path, message),
            other => key_error(&key_path, other.to_string()),
        })?;
        CertifiedKey::from_der(chain.clone(), key.clone_key(), provider)
            .map_err(|e| key_error(&key_path, format!("unusable with {}: {e}", pem.display())))?;
        let ca_pem = files.ca_pem();
        let roots = tls::load_certs(&ca_pem).map_err(|e| tls_error(&ca_pem, e))?;
        let ca = |env| {
            IssuingCa::load(files, env)
                .map(Arc::new)
                .map_err(|e| pki_error(&files.env_ca_pem(env), e))
        };
        Ok(Material {
            files: files.clone(),
            chain,
            key,
            roots,
            sandbox_ca: ca(Environment::Sandbox)?,
            production_ca: ca(Environment::Production)?,
            server,
        })
    }

    /// The CA files read: the root CA and each environment's issuing CA.
    pub fn ca_files(&self) -> Vec<PathBuf> {
        let f = &self.files;
        vec![
            f.ca_pem(),
            f.env_ca_pem(Environment::Sandbox),
            f.env_ca_pem(Environment::Production),
        ]
    }

    /// An environment's issuing CA.
    pub fn issuing_ca(&self, env: Environment) -> &Arc<IssuingCa> {
        match env {
            Environment::Sandbox => &self.sandbox_ca,
            Environment::Production => &self.production_ca,
        }
    }
}

/// The TLS state of all listeners.
#[derive(Debug)]
pub struct Trust {
    /// Sandbox listener.
    pub sandbox: Arc<EnvState>,
    /// Production listener.
    pub production: Arc<EnvState>,
    /// Admin listener.
    pub admin: Arc<AdminState>,
    /// The files it was built from.
    pub material: Arc<Material>,
    policy: Handshake,
}

/// What the handshake asks of clients, from `[tls] reject_at_handshake`
/// and whether the DataPass webhook is served.
#[derive(Debug, Clone, Copy)]
pub struct Handshake {
    /// Refuse an unknown or revoked certificate during the handshake.
    pub reject_at_handshake: bool,
    /// The admin listener completes handshakes without a certificate (the
    /// DataPass webhook authenticates by HMAC; every other admin route
    /// then answers 401 over HTTP).
    pub admin_without_certificate: bool,
}

impl Handshake {
    /// The policy `config` asks for.
    pub fn of(config: &crate::config::Config) -> Self {
        Handshake {
            reject_at_handshake: config.tls.reject_at_handshake,
            admin_without_certificate: config.datapass.enabled(),
        }
    }
}

impl Trust {
    /// Reads the PKI files of `files` and the CRL files of each
    /// environment (`[sandbox, production]`), then builds.
    pub fn load(
        files: &PkiFiles,
        [sandbox, production]: [&[PathBuf]; 2],
        policy: Handshake,
        provider: &Arc<CryptoProvider>,
    ) -> Result<Trust, ReloadError> {
        let material = Arc::new(Material::read(files, provider)?);
        let crls =
            |env, paths| CrlSet::read(paths, material.issuing_ca(env).certificate(), provider);
        let crls = [
            crls(Environment::Sandbox, sandbox)?,
            crls(Environment::Production, production)?,
        ];
        Trust::build(material, crls, policy, provider)
    }

    /// Builds every listener's verifier and `ServerConfig` from `material`
    /// and the environments' CRLs.
    pub fn build(
        material: Arc<Material>,
        [sandbox, production]: [CrlSet; 2],
        policy: Handshake,
        provider: &Arc<CryptoProvider>,
    ) -> Result<Trust, ReloadError> {
        let m = &material;
        let reject = policy.reject_at_handshake;
        let config = |handshake| {
            tls::server_config(
                provider.clone(),
                m.chain.clone(),
                m.key.clone_key(),
                handshake,
            )
            .map_err(|e| key_error(&m.files.server_key(), e.to_string()))
        };
        let env_state = |environment, crls: CrlSet| {
            let ca = m.issuing_ca(environment).clone();
            let roots = std::slice::from_ref(ca.certificate());
            let verifier = ChainVerifier::new(provider.clone(), roots, crls.ders.clone())
                .map_err(|e| tls_error(&m.files.env_ca_pem(environment), e))?;
            let tls = config(verifier.handshake_verifier(reject))?;
            Ok::<_, ReloadError>(Arc::new(EnvState {
                environment,
                ca,
                verifier,
                tls,
                crls,
            }))
        };
        let sandbox = env_state(Environment::Sandbox, sandbox)?;
        let production = env_state(Environment::Production, production)?;
        // Partners sign in to their dashboard here with a certificate of
        // an environment's CA: name those CAs to their browsers too.
        let partner_cas = [&sandbox, &production].map(|env| env.ca.certificate().clone());
        let verifier = ChainVerifier::new(provider.clone(), &m.roots, Vec::new())
            .and_then(|v| v.also_naming(&partner_cas))
            .map_err(|e| tls_error(&m.files.ca_pem(), e))?;
        let handshake = if policy.admin_without_certificate {
            verifier.handshake_verifier_allowing_none(reject)
        } else {
            verifier.handshake_verifier(reject)
        };
        let admin = Arc::new(AdminState {
            tls: config(handshake)?,
            verifier,
        });
        Ok(Trust {
            sandbox,
            production,
            admin,
            material,
            policy,
        })
    }

    /// The same certificates and CAs with the environments' CRL files
    /// read again.
    pub fn with_crls_reread(&self, provider: &Arc<CryptoProvider>) -> Result<Trust, ReloadError> {
        let crls = [&self.sandbox, &self.production]
            .map(|env| CrlSet::read(&env.crls.paths(), env.ca.certificate(), provider));
        let [sandbox, production] = crls;
        Trust::build(
            self.material.clone(),
            [sandbox?, production?],
            self.policy,
            provider,
        )
    }

    /// An environment's state.
    pub fn env(&self, environment: Environment) -> &Arc<EnvState> {
        match environment {
            Environment::Sandbox => &self.sandbox,
            Environment::Production => &self.production,
        }
    }

    /// The TLS configuration of `plane`'s listener.
    pub fn server_config(&self, plane: Plane) -> Arc<ServerConfig> {
        match plane {
            Plane::Env(env) => self.env(env).tls.clone(),
            Plane::Admin => self.admin.tls.clone(),
        }
    }

    /// The trust policy of `plane`'s listener.
    pub fn verifier(&self, plane: Plane) -> &ChainVerifier {
        match plane {
            Plane::Env(env) => &self.env(env).verifier,
            Plane::Admin => &self.admin.verifier,
        }
    }

    /// Whether a CRL file of either environment changed on disk.
    pub fn crls_changed(&self) -> bool {
        self.sandbox.crls.changed() || self.production.crls.changed()
    }
}

fn tls_error(file: &Path, e: TlsError) -> ReloadError {
    let message = match e {
        TlsError::Pem { message, .. } => message,
        other => other.to_string(),
    };
    ReloadError::Certificate {
        file: file.to_path_buf(),
        message,
    }
}

fn key_error(file: &Path, message: String) -> ReloadError {
    ReloadError::Key {
        file: file.to_path_buf(),
        message,
    }
}

/// A PKI error names its own file when it has one (a CA key), else `file`.
fn pki_error(file: &Path, e: PkiError) -> ReloadError {
    match e {
        PkiError::BadKey { path, message } => key_error(&path, message),
        PkiError::Missing(path) => ReloadError::Certificate {
            file: path,
            message: "missing".into(),
        },
        PkiError::Io { path, source } => ReloadError::Certificate {
            file: path,
            message: source.to_string(),
        },
        other => ReloadError::Certificate {
            file: file.to_path_buf(),
            message: other.to_string(),
        },
    }
}
