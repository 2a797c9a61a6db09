//! Configuration: TOML (docs/contract.md §6) parsed once into typed values. Unknown
//! keys and bad values are refused with the key's dotted path and the line.
//! With no file at all, the built-in defaults run a complete local setup.

mod abuse;
mod dashboard;
mod datapass;
mod limits;
mod notify;
mod proxy;
mod quota;
mod status;
mod store;

pub use abuse::AbuseSettings;
pub use dashboard::DashboardSettings;
pub use datapass::{DatapassSettings, WebhookSecret};
pub use limits::LimitsSettings;
pub use notify::{NotifySettings, SmtpUrl};
pub use proxy::ProxyProtocolFrom;
pub use quota::{OnFailure, QuotaBackend, QuotaSettings, RedisUrl};
pub use status::{LocalRange, StatusSettings, Zone};
pub use store::{ClusterSettings, StoreBackend, StoreSettings, StoreUrl, TrailWait};

use serde::{Deserialize, Deserializer};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

/// Where `serve` looks for a config file when none is given.
pub const DEFAULT_CONFIG_PATH: &str = "config/opale.toml";

/// A configuration that could not be read or is not valid.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read config file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A key is unknown, or its value has the wrong type or form.
    #[error("{path}: key `{key}` (line {line}): {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// Dotted path of the key, e.g. `sandbox.listen`.
        key: String,
        /// 1-based line of the offending text.
        line: usize,
        /// What is wrong.
        message: String,
    },
    /// Values that are valid alone but not together.
    #[error("config key `{key}`: {message}")]
    Invalid {
        /// Dotted path of the key.
        key: String,
        /// What is wrong.
        message: String,
    },
}

/// The whole configuration.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// sled state directory (default `./data`).
    #[serde(default = "default_data_dir")]
    pub data_dir: PathBuf,
    /// PKI directory written by `pki init` (default `./certs`).
    #[serde(default = "default_certs_dir")]
    pub certs_dir: PathBuf,
    /// TLS behaviour shared by all listeners.
    #[serde(default)]
    pub tls: TlsSettings,
    /// The sandbox listener.
    #[serde(default = "EnvSettings::sandbox")]
    pub sandbox: EnvSettings,
    /// The production listener and its upstream.
    #[serde(default = "ProductionSettings::default_production")]
    pub production: ProductionSettings,
    /// The admin listener.
    #[serde(default)]
    pub admin: AdminSettings,
    /// The authorization servers.
    #[serde(default)]
    pub oauth: OauthSettings,
    /// The audit trail.
    #[serde(default)]
    pub audit: AuditSettings,
    /// Log output.
    #[serde(default)]
    pub log: LogSettings,
    /// Connection and request limits (docs/contract.md §8).
    #[serde(default)]
    pub limits: LimitsSettings,
    /// The DataPass webhook (docs/contract.md §9).
    #[serde(default)]
    pub datapass: DatapassSettings,
    /// Where the quota logs live (docs/contract.md §10).
    #[serde(default)]
    pub quota: QuotaSettings,
    /// Abnormal-usage detection (docs/contract.md §9).
    #[serde(default)]
    pub abuse: AbuseSettings,
    /// The storage backend (docs/contract.md §10).
    #[serde(default)]
    pub store: StoreSettings,
    /// This node of a cluster (docs/contract.md §10).
    #[serde(default)]
    pub cluster: ClusterSettings,
    /// Expiry notices: SMTP relay, sender, pass interval (docs/contract.md §9).
    #[serde(default)]
    pub notify: NotifySettings,
    /// Service quality: time zone, maintenance window, probes, objective
    /// (docs/contract.md §11).
    #[serde(default)]
    pub status: StatusSettings,
    /// Partner self-service: active certificates per application
    /// (docs/contract.md §12).
    #[serde(default)]
    pub dashboard: DashboardSettings,
}

/// `[tls]`
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsSettings {
    /// Refuse bad or missing client certificates during the handshake instead
    /// of answering HTTP 401 with the reason (default `false`).
    #[serde(default)]
    pub reject_at_handshake: bool,
}

/// `[sandbox]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnvSettings {
    /// Socket address to bind.
    pub listen: SocketAddr,
    /// PEM CRL files checked on every client certificate of this
    /// environment, in addition to the registry's own revocations.
    #[serde(default)]
    pub crls: Vec<PathBuf>,
    /// URL partners use to reach this listener: the OAuth `iss` and the
    /// base of the metadata URLs (default `https://localhost:<port>`).
    #[serde(default)]
    pub public_url: Option<PublicUrl>,
    /// Load balancers whose connections open with a PROXY protocol header
    /// (docs/contract.md §9; default none).
    #[serde(default)]
    pub proxy_protocol_from: ProxyProtocolFrom,
}

impl EnvSettings {
    fn sandbox() -> Self {
        EnvSettings {
            listen: addr(8443),
            crls: Vec::new(),
            public_url: None,
            proxy_protocol_from: ProxyProtocolFrom::default(),
        }
    }
}

/// `[production]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProductionSettings {
    /// Socket address to bind.
    pub listen: SocketAddr,
    /// Base URL of the upstream data provider (`http` or `https`).
    #[serde(default = "default_upstream")]
    pub upstream: UpstreamUrl,
    /// PEM CRL files, as for the sandbox.
    #[serde(default)]
    pub crls: Vec<PathBuf>,
    /// As for the sandbox.
    #[serde(default)]
    pub public_url: Option<PublicUrl>,
    /// Time to connect to the upstream, in milliseconds (default 2000);
    /// exceeded → 504 / 910601.
    #[serde(default = "default_connect_timeout_ms")]
    pub upstream_connect_timeout_ms: u64,
    /// Time for the upstream to answer (status and headers), in
    /// milliseconds (default 10 000); exceeded → 504 / 910601.
    #[serde(default = "default_upstream_timeout_ms")]
    pub upstream_timeout_ms: u64,
    /// CA bundle (PEM) to trust for an `https://` upstream.
    #[serde(default)]
    pub upstream_ca: Option<PathBuf>,
    /// Client certificate (PEM) presented to the upstream (mTLS).
    #[serde(default)]
    pub upstream_cert: Option<PathBuf>,
    /// Key of `upstream_cert` (PEM).
    #[serde(default)]
    pub upstream_key: Option<PathBuf>,
    /// Load balancers whose connections open with a PROXY protocol header
    /// (docs/contract.md §9; default none), as for the sandbox.
    #[serde(default)]
    pub proxy_protocol_from: ProxyProtocolFrom,
}

fn default_connect_timeout_ms() -> u64 {
    2000
}

fn default_upstream_timeout_ms() -> u64 {
    10_000
}

impl ProductionSettings {
    fn default_production() -> Self {
        ProductionSettings {
            listen: addr(9443),
            upstream: default_upstream(),
            crls: Vec::new(),
            public_url: None,
            upstream_connect_timeout_ms: default_connect_timeout_ms(),
            upstream_timeout_ms: default_upstream_timeout_ms(),
            upstream_ca: None,
            upstream_cert: None,
            upstream_key: None,
            proxy_protocol_from: ProxyProtocolFrom::default(),
        }
    }
}

/// `[oauth]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OauthSettings {
    /// Access token lifetime in seconds (default 3600, at most 86 400).
    #[serde(default = "default_token_lifetime")]
    pub token_lifetime_secs: u32,
}

impl Default for OauthSettings {
    fn default() -> Self {
        OauthSettings {
            token_lifetime_secs: default_token_lifetime(),
        }
    }
}

fn default_token_lifetime() -> u32 {
    3600
}

/// `[audit]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditSettings {
    /// `before_response` (default: a response leaves only once its trace
    /// record is flushed) or `async`.
    #[serde(default)]
    pub durability: crate::audit::Durability,
    /// Records older than this many days are purged (default 1095, i.e.
    /// 36 months), behind a signed checkpoint.
    #[serde(default = "default_retention_days")]
    pub retention_days: u32,
    /// Size at which a trail segment file is closed and a new one begun,
    /// bytes (default 64 MiB); purge deletes whole segments.
    #[serde(default = "default_segment_bytes")]
    pub segment_bytes: u64,
}

impl Default for AuditSettings {
    fn default() -> Self {
        AuditSettings {
            durability: Default::default(),
            retention_days: default_retention_days(),
            segment_bytes: default_segment_bytes(),
        }
    }
}

fn default_segment_bytes() -> u64 {
    64 * 1024 * 1024
}

fn default_retention_days() -> u32 {
    1095
}

/// `[admin]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdminSettings {
    /// Socket address to bind.
    pub listen: SocketAddr,
    /// Load balancers whose connections open with a PROXY protocol header
    /// (docs/contract.md §9; default none), as for the sandbox.
    #[serde(default)]
    pub proxy_protocol_from: ProxyProtocolFrom,
}

impl Default for AdminSettings {
    fn default() -> Self {
        AdminSettings {
            listen: addr(7443),
            proxy_protocol_from: ProxyProtocolFrom::default(),
        }
    }
}

/// `[log]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogSettings {
    /// `text` (default) or `json`.
    #[serde(default)]
    pub format: LogFormat,
    /// A `tracing` filter such as `info` or `opale_apim=debug` (default
    /// `info`); the `RUST_LOG` environment variable wins when set.
    #[serde(default = "default_log_filter")]
    pub filter: String,
}

impl Default for LogSettings {
    fn default() -> Self {
        LogSettings {
            format: LogFormat::Text,
            filter: default_log_filter(),
        }
    }
}

/// Log line format.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

/// A listener's public base URL: `https://host[:port]`, no path.
#[derive(Debug, Clone)]
pub struct PublicUrl(pub String);

impl<'de> Deserialize<'de> for PublicUrl {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        let uri: hyper::Uri = s
            .parse()
            .map_err(|e| serde::de::Error::custom(format!("{s:?} is not a URL: {e}")))?;
        let path_ok = matches!(uri.path(), "" | "/") && uri.query().is_none();
        match (uri.scheme_str(), uri.host(), path_ok) {
            (Some("https"), Some(_), true) => Ok(PublicUrl(s.trim_end_matches('/').to_owned())),
            _ => Err(serde::de::Error::custom(format!(
                "{s:?} must be an https:// URL with a host and no path"
            ))),
        }
    }
}

/// An upstream base URL: `http://` or `https://` with a host.
#[derive(Debug, Clone)]
pub struct UpstreamUrl(pub hyper::Uri);

impl<'de> Deserialize<'de> for UpstreamUrl {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        let uri: hyper::Uri = s
            .parse()
            .map_err(|e| serde::de::Error::custom(format!("{s:?} is not a URL: {e}")))?;
        match (uri.scheme_str(), uri.host()) {
            (Some("http" | "https"), Some(_)) => Ok(UpstreamUrl(uri)),
            _ => Err(serde::de::Error::custom(format!(
                "{s:?} must be an http:// or https:// URL with a host"
            ))),
        }
    }
}

fn addr(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}
fn default_data_dir() -> PathBuf {
    PathBuf::from("./data")
}
fn default_certs_dir() -> PathBuf {
    PathBuf::from("./certs")
}
fn default_upstream() -> UpstreamUrl {
    UpstreamUrl(hyper::Uri::from_static("http://127.0.0.1:8080"))
}
fn default_log_filter() -> String {
    "info".into()
}

impl Default for Config {
    fn default() -> Self {
        Config {
            data_dir: default_data_dir(),
            certs_dir: default_certs_dir(),
            tls: TlsSettings::default(),
            sandbox: EnvSettings::sandbox(),
            production: ProductionSettings::default_production(),
            admin: AdminSettings::default(),
            oauth: OauthSettings::default(),
            audit: AuditSettings::default(),
            log: LogSettings::default(),
            limits: LimitsSettings::default(),
            datapass: DatapassSettings::default(),
            quota: QuotaSettings::default(),
            abuse: AbuseSettings::default(),
            store: StoreSettings::default(),
            cluster: ClusterSettings::default(),
            notify: NotifySettings::default(),
            status: StatusSettings::default(),
            dashboard: DashboardSettings::default(),
        }
    }
}

impl Config {
    /// The public base URL of an environment listener (OAuth issuer).
    pub fn public_url(&self, env: crate::domain::Environment) -> String {
        let (configured, listen) = match env {
            crate::domain::Environment::Sandbox => (&self.sandbox.public_url, self.sandbox.listen),
            crate::domain::Environment::Production => {
                (&self.production.public_url, self.production.listen)
            }
        };
        configured
            .as_ref()
            .map(|u| u.0.clone())
            .unwrap_or_else(|| format!("https://localhost:{}", listen.port()))
    }

    /// Reads `path` if given; else `config/opale.toml` if present; else the
    /// built-in defaults. Returns the file actually read, if any.
    pub fn load(path: Option<&Path>) -> Result<(Config, Option<PathBuf>), ConfigError> {
        let path = match path {
            Some(p) => p.to_path_buf(),
            None if Path::new(DEFAULT_CONFIG_PATH).is_file() => PathBuf::from(DEFAULT_CONFIG_PATH),
            None => return Ok((Config::default(), None)),
        };
        let text = std::fs::read_to_string(&path).map_err(|source| ConfigError::Read {
            path: path.clone(),
            source,
        })?;
        let config = Config::parse(&text, &path)?;
        Ok((config, Some(path)))
    }

    /// Parses and validates a TOML document; `path` is only used in errors.
    pub fn parse(text: &str, path: &Path) -> Result<Config, ConfigError> {
        let parse_error = |key: String, e: toml::de::Error| ConfigError::Parse {
            path: path.to_path_buf(),
            key,
            line: e.span().map(|s| line_of(text, s.start)).unwrap_or(1),
            message: e.message().trim().to_owned(),
        };
        let de = toml::Deserializer::parse(text).map_err(|e| parse_error("(syntax)".into(), e))?;
        let config: Config = serde_path_to_error::deserialize(de)
            .map_err(|e| parse_error(e.path().to_string(), e.into_inner()))?;
        config.validate()?;
        Ok(config)
    }

    /// Cross-key checks.
    fn validate(&self) -> Result<(), ConfigError> {
        let listeners = [
            ("sandbox.listen", self.sandbox.listen),
            ("production.listen", self.production.listen),
            ("admin.listen", self.admin.listen),
        ];
        for (i, (key, a)) in listeners.iter().enumerate() {
            if let Some((other, _)) = listeners[..i].iter().find(|(_, b)| b == a && a.port() != 0) {
                return Err(ConfigError::Invalid {
                    key: (*key).into(),
                    message: format!("{a} is already used by {other}"),
                });
            }
        }
        if self.audit.segment_bytes < 4096 {
            return Err(ConfigError::Invalid {
                key: "audit.segment_bytes".into(),
                message: "at least 4096 bytes".into(),
            });
        }
        if self.audit.retention_days == 0 {
            return Err(ConfigError::Invalid {
                key: "audit.retention_days".into(),
                message: "must be at least 1".into(),
            });
        }
        if !(60..=86_400).contains(&self.oauth.token_lifetime_secs) {
            return Err(ConfigError::Invalid {
                key: "oauth.token_lifetime_secs".into(),
                message: "must be between 60 and 86400".into(),
            });
        }
        let p = &self.production;
        if p.upstream_cert.is_some() != p.upstream_key.is_some() {
            return Err(ConfigError::Invalid {
                key: "production.upstream_key".into(),
                message: "upstream_cert and upstream_key go together".into(),
            });
        }
        if p.upstream_timeout_ms == 0 || p.upstream_connect_timeout_ms == 0 {
            return Err(ConfigError::Invalid {
                key: "production.upstream_timeout_ms".into(),
                message: "upstream timeouts must be greater than 0".into(),
            });
        }
        store::validate(&self.store, &self.cluster)?;
        self.limits.validate()?;
        self.quota.validate()?;
        self.abuse.validate()?;
        self.datapass.validate()?;
        self.notify.validate()?;
        self.dashboard.validate()?;
        self.status.validate()
    }
}

fn line_of(text: &str, offset: usize) -> usize {
    text.as_bytes()[..offset.min(text.len())]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Config, ConfigError> {
        Config::parse(text, Path::new("test.toml"))
    }

    #[test]
    fn empty_file_gives_defaults() {
        let c = parse("").unwrap();
        assert_eq!(c.sandbox.listen, addr(8443));
        assert_eq!(c.production.listen, addr(9443));
        assert_eq!(c.admin.listen, addr(7443));
        assert_eq!(c.data_dir, PathBuf::from("./data"));
    }

    #[test]
    fn unknown_key_is_named_with_its_line() {
        let err = parse("data_dir = \"d\"\n[sandbox]\nlisten = \"127.0.0.1:1\"\nlisen = 3\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("lisen"), "{err}");
        assert!(err.contains("line 4"), "{err}");
    }

    #[test]
    fn bad_value_names_the_dotted_key_and_line() {
        let err = parse("\n[production]\nlisten = \"127.0.0.1:9443\"\nupstream = \"ftp://x\"\n")
            .unwrap_err();
        match err {
            ConfigError::Parse { key, line, .. } => {
                assert_eq!(key, "production.upstream");
                assert_eq!(line, 4);
            }
            other => panic!("unexpected {other}"),
        }
        let err = parse("[admin]\nlisten = \"nowhere\"\n")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("admin.listen") && err.contains("line 2"),
            "{err}"
        );
    }

    #[test]
    fn datapass_secret_is_optional_and_checked() {
        assert!(!parse("").unwrap().datapass.enabled());
        let c = parse("[datapass]\nwebhook_secret = \"0123456789abcdef\"\n").unwrap();
        assert!(c.datapass.enabled());
        let err = parse("[datapass]\nwebhook_secret = \"short\"\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("datapass.webhook_secret"), "{err}");
    }

    #[test]
    fn datapass_body_cap_has_a_default_and_bounds() {
        assert_eq!(parse("").unwrap().datapass.max_body_bytes, 65_536);
        let c = parse("[datapass]\nmax_body_bytes = 4096\n").unwrap();
        assert_eq!(c.datapass.max_body_bytes, 4096);
        for bad in ["0", "1048577"] {
            let err = parse(&format!("[datapass]\nmax_body_bytes = {bad}\n"))
                .unwrap_err()
                .to_string();
            assert!(err.contains("datapass.max_body_bytes"), "{bad}: {err}");
        }
        let err = parse("[datapass]\nmax_body = 1\n").unwrap_err().to_string();
        assert!(err.contains("max_body"), "{err}");
    }

    #[test]
    fn same_address_twice_is_refused() {
        let err = parse("[admin]\nlisten = \"127.0.0.1:8443\"\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("admin.listen"), "{err}");
    }
}
