//! `opale-apim admin …`: the command line over the admin API. Human-readable
//! output by default, the API's JSON with `--json`.

/// `println!` for command output: a reader that went away (`| head`)
/// ends the output, it does not panic the process.
macro_rules! say {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout().lock(), $($arg)*);
    }};
}

mod output;
mod request;
mod status;

pub use status::{IncidentCommand, MaintenanceCommand};

use super::client::{AdminClient, ClientError};
use super::types::SyntaxError;
use crate::config::{Config, ConfigError};
use crate::pki::PkiFiles;
use clap::{Args, Subcommand};
use hyper::StatusCode;
use output::print_human;
use request::{export_path, request};
use std::path::PathBuf;

/// Why an admin command failed.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// The config file.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// Reaching the API.
    #[error(transparent)]
    Client(#[from] ClientError),
    /// A local file.
    #[error("{path}: {source}")]
    File {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// An argument that cannot be turned into a request.
    #[error("{0}")]
    Usage(String),
    /// A request body that cannot be encoded as JSON.
    #[error("{0}")]
    Encode(#[from] serde_json::Error),
    /// An argument that does not follow its grammar.
    #[error(transparent)]
    Syntax(#[from] SyntaxError),
    /// The API refused the call.
    #[error("{status}{field}: {message}", field = field.as_ref().map(|f| format!(" ({f})")).unwrap_or_default())]
    Api {
        /// HTTP status.
        status: StatusCode,
        /// Field named by the API.
        field: Option<String>,
        /// The API's message.
        message: String,
    },
}

/// Options shared by every admin command.
#[derive(Debug, Args)]
pub struct AdminArgs {
    /// Config file (to find the admin listener and certs_dir); default
    /// config/opale.toml when present, else built-in defaults.
    #[arg(long, global = true)]
    pub config: Option<PathBuf>,
    /// Admin API base URL (default https://<admin.listen>).
    #[arg(long, global = true, env = "OPALE_ADMIN_URL")]
    pub url: Option<String>,
    /// Admin client certificate (default <certs_dir>/admin.pem).
    #[arg(long, global = true)]
    pub cert: Option<PathBuf>,
    /// Admin client key (default <certs_dir>/admin.key).
    #[arg(long, global = true)]
    pub key: Option<PathBuf>,
    /// CA to trust for the server (default <certs_dir>/ca.pem).
    #[arg(long, global = true)]
    pub cacert: Option<PathBuf>,
    /// Print the API's JSON instead of text.
    #[arg(long, global = true)]
    pub json: bool,
    /// What to do.
    #[command(subcommand)]
    pub command: AdminCommand,
}

/// Admin command groups.
#[derive(Debug, Subcommand)]
pub enum AdminCommand {
    /// Partners (organisations).
    #[command(subcommand)]
    Partner(PartnerCommand),
    /// Applications (OAuth clients) and their rights.
    #[command(subcommand)]
    App(AppCommand),
    /// Client certificates of applications.
    #[command(subcommand)]
    Cert(CertCommand),
    /// Client secrets.
    #[command(subcommand)]
    Secret(SecretCommand),
    /// Access tokens: introspection (RFC 7662) and revocation (RFC 7009).
    #[command(subcommand)]
    Token(TokenCommand),
    /// Environments: maintenance mode (kill switch).
    #[command(subcommand)]
    Env(EnvCommand),
    /// Incidents shown on the status page and mailed to partners.
    #[command(subcommand)]
    Incident(IncidentCommand),
    /// Scheduled maintenances: close environments by themselves, announced.
    #[command(subcommand)]
    Maintenance(MaintenanceCommand),
    /// Token signing keys of every node: list, rotate this node's.
    #[command(subcommand)]
    Keys(KeysCommand),
    /// The audit trail.
    #[command(subcommand)]
    Trace(TraceCommand),
    /// Re-read the server certificate and key, the CA and CRL files and the
    /// [limits] and [log] sections, without restart (like SIGHUP).
    Reload,
    /// Statistics over the trail (calls per day, dataset, decision, control; latency).
    Stats {
        /// Only this application.
        #[arg(long)]
        app: Option<String>,
    },
}

/// `admin trace …`
#[derive(Debug, Subcommand)]
pub enum TraceCommand {
    /// Latest records, newest first.
    List {
        /// Only this application.
        #[arg(long)]
        app: Option<String>,
        /// Only this decision (admitted, denied).
        #[arg(long)]
        decision: Option<String>,
        /// How many.
        #[arg(long, default_value_t = 20)]
        limit: u32,
    },
    /// Walk the trail (frames, chain, segments, checkpoints) and report
    /// the first bad or missing record.
    Verify {
        /// A checkpoint saved earlier (`trace checkpoint --out`): the trail
        /// must still extend it.
        #[arg(long)]
        checkpoint: Option<std::path::PathBuf>,
    },
    /// The latest signed checkpoint, to keep somewhere else.
    Checkpoint {
        /// Write it to this file instead of standard output.
        #[arg(long)]
        out: Option<std::path::PathBuf>,
    },
    /// Every record as JSON Lines (newest first).
    Export {
        /// Only this application.
        #[arg(long)]
        app: Option<String>,
    },
}

/// `admin env …`
#[derive(Debug, Subcommand)]
pub enum EnvCommand {
    /// Show each environment's state.
    List,
    /// Close an environment: data calls answer 503 (910600) with Retry-After.
    Close {
        /// sandbox or production.
        env: String,
        /// Seconds announced in Retry-After.
        #[arg(long, default_value_t = 300)]
        retry_after: u64,
        /// Message shown to callers.
        #[arg(long)]
        message: Option<String>,
    },
    /// Reopen an environment.
    Open {
        /// sandbox or production.
        env: String,
    },
}

/// `admin keys …`
#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Every node's registered keys: node, environment, kid, created,
    /// retired (the time it stops verifying, or null while it signs).
    List,
    /// Make the node answering the call sign with a new key at once; its
    /// previous key verifies until every token it signed has expired.
    Rotate {
        /// Only this environment (sandbox or production); default both.
        #[arg(long = "env")]
        environment: Option<String>,
    },
}

/// `admin secret …`
#[derive(Debug, Subcommand)]
pub enum SecretCommand {
    /// Replace an application's client secret; prints the new one once.
    Rotate {
        /// client_id.
        app: String,
    },
}

/// `admin token …`
#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Show whether a token is active and its claims.
    Introspect {
        /// The access token.
        token: String,
    },
    /// Revoke a token (refused on the next request).
    Revoke {
        /// The access token.
        token: String,
    },
}

/// `admin partner …`
#[derive(Debug, Subcommand)]
pub enum PartnerCommand {
    /// Register a partner.
    Add {
        /// The partner's SIREN (9 digits, Luhn).
        #[arg(long)]
        siren: String,
        /// Display name.
        #[arg(long)]
        name: String,
        /// A contact as ROLE:NAME:EMAIL[:PHONE], e.g. technique:Jeanne Dupont:jd@example.fr
        #[arg(long = "contact")]
        contacts: Vec<String>,
    },
    /// List partners.
    List,
    /// Show a partner and its applications.
    Show {
        /// Partner id.
        id: String,
    },
    /// Suspend a partner (all its applications are refused).
    Suspend {
        /// Partner id.
        id: String,
    },
    /// Resume a suspended partner.
    Resume {
        /// Partner id.
        id: String,
    },
}

/// `admin app …`
#[derive(Debug, Subcommand)]
pub enum AppCommand {
    /// Register an application; prints its client secret once.
    Add {
        /// Owning partner id.
        #[arg(long)]
        partner: String,
        /// Display name.
        #[arg(long)]
        name: String,
        /// sandbox or production.
        #[arg(long = "env")]
        environment: String,
        /// SCOPE:YEARS, YEARS as 2022,2023 or 2020-2023 or N-3..N-1 (repeatable).
        #[arg(long = "grant")]
        grants: Vec<String>,
        /// First valid day, YYYY-MM-DD.
        #[arg(long)]
        valid_from: String,
        /// Last valid day, YYYY-MM-DD.
        #[arg(long)]
        valid_until: String,
        /// Allowed caller CIDR (repeatable).
        #[arg(long = "ip")]
        ips: Vec<String>,
        /// Calls per minute (default 50).
        #[arg(long)]
        quota: Option<u32>,
    },
    /// List applications.
    List {
        /// Only this partner's.
        #[arg(long)]
        partner: Option<String>,
    },
    /// Show an application and its certificates.
    Show {
        /// client_id.
        id: String,
    },
    /// Suspend an application.
    Suspend {
        /// client_id.
        id: String,
    },
    /// Resume an application.
    Resume {
        /// client_id.
        id: String,
    },
    /// Replace the caller IP allowlist.
    SetIps {
        /// client_id.
        id: String,
        /// CIDR blocks.
        cidrs: Vec<String>,
    },
    /// Set the per-minute quota.
    SetQuota {
        /// client_id.
        id: String,
        /// Calls per minute.
        quota: u32,
    },
    /// Replace the grants.
    Grant {
        /// client_id.
        id: String,
        /// SCOPE:YEARS (repeatable).
        #[arg(long = "grant", required = true)]
        grants: Vec<String>,
    },
}

/// `admin cert …`
#[derive(Debug, Subcommand)]
pub enum CertCommand {
    /// Have the environment CA sign a CSR for an application.
    Issue {
        /// client_id.
        app: String,
        /// PEM CSR file.
        #[arg(long)]
        csr: PathBuf,
        /// Write the certificate here (default: print it).
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Register an externally issued certificate (PEM) for an application.
    Register {
        /// client_id.
        app: String,
        /// PEM certificate file.
        #[arg(long)]
        pem: PathBuf,
    },
    /// Revoke a certificate at once.
    Revoke {
        /// client_id.
        app: String,
        /// x5t#S256 thumbprint.
        thumbprint: String,
    },
    /// List an application's certificates.
    List {
        /// client_id.
        app: String,
    },
}

/// Runs an admin command; prints its result on stdout.
pub async fn run(args: AdminArgs) -> Result<(), CliError> {
    let (config, _) = Config::load(args.config.as_deref())?;
    let files = PkiFiles::new(&config.certs_dir);
    let url = args
        .url
        .clone()
        .unwrap_or_else(|| format!("https://{}", config.admin.listen));
    let client = AdminClient::new(
        &url,
        &args.cacert.clone().unwrap_or_else(|| files.ca_pem()),
        &args.cert.clone().unwrap_or_else(|| files.admin_pem()),
        &args.key.clone().unwrap_or_else(|| files.admin_key()),
    )?;
    let text_path = match &args.command {
        AdminCommand::Trace(TraceCommand::Export { app }) => Some(export_path(app.as_deref())),
        AdminCommand::Trace(TraceCommand::Checkpoint { .. }) => {
            Some(super::call(super::Op::TraceCheckpoint, &[]).1)
        }
        _ => None,
    };
    if let Some(path) = text_path {
        let (status, text) = client.get_text(&path).await?;
        if !status.is_success() {
            return Err(CliError::Api {
                status,
                field: None,
                message: text,
            });
        }
        if let AdminCommand::Trace(TraceCommand::Checkpoint { out: Some(out) }) = &args.command {
            std::fs::write(out, &text).map_err(|source| CliError::File {
                path: out.clone(),
                source,
            })?;
            return Ok(());
        }
        {
            use std::io::Write as _;
            let _ = std::io::stdout().lock().write_all(text.as_bytes());
        }
        return Ok(());
    }
    let (status, value) = match &args.command {
        AdminCommand::Token(t) => {
            let (op, token) = match t {
                TokenCommand::Introspect { token } => (super::Op::IntrospectToken, token),
                TokenCommand::Revoke { token } => (super::Op::RevokeToken, token),
            };
            let (_, path) = super::call(op, &[]);
            client
                .call_form(&path, &[("token", token.as_str())])
                .await?
        }
        cmd => {
            let (method, path, body) = request(cmd)?;
            client.call(method, &path, body.as_ref()).await?
        }
    };
    if !status.is_success() {
        if let Some(e) = value["error"].as_str() {
            let message = value["error_description"].as_str().unwrap_or(e).to_owned();
            return Err(CliError::Api {
                status,
                field: Some(e.to_owned()),
                message,
            });
        }
        let err = &value["error"];
        return Err(CliError::Api {
            status,
            field: err["field"].as_str().map(str::to_owned),
            message: err["message"].as_str().unwrap_or("(no message)").to_owned(),
        });
    }
    if let AdminCommand::Cert(CertCommand::Issue { out: Some(out), .. }) = &args.command {
        let pem = value["certificate"].as_str().unwrap_or_default();
        std::fs::write(out, pem).map_err(|source| CliError::File {
            path: out.clone(),
            source,
        })?;
        eprintln!("certificate written to {}", out.display());
    }
    if args.json {
        say!(
            "{}",
            serde_json::to_string_pretty(&value).unwrap_or_default()
        );
    } else {
        print_human(&args.command, status, value)?;
    }
    Ok(())
}
