//! `opale-apim admin …`: the command line over the admin API. Human-readable
//! output by default, the API's JSON with `--json`.

use super::client::{AdminClient, ClientError};
use crate::config::{Config, ConfigError};
use crate::pki::PkiFiles;
use clap::{Args, Subcommand};
use hyper::{Method, StatusCode};
use serde_json::{Value, json};
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
    /// The audit trail.
    #[command(subcommand)]
    Trace(TraceCommand),
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
    /// Walk the hash chain and report the first broken link.
    Verify,
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
    if let AdminCommand::Trace(TraceCommand::Export { app }) = &args.command {
        let path = match app {
            Some(a) => format!("/admin/v1/trace/export?client_id={}", seg(a)),
            None => "/admin/v1/trace/export".into(),
        };
        let (status, text) = client.get_text(&path).await?;
        if !status.is_success() {
            return Err(CliError::Api {
                status,
                field: None,
                message: text,
            });
        }
        print!("{text}");
        return Ok(());
    }
    let (status, value) = match &args.command {
        AdminCommand::Token(t) => {
            let (action, token) = match t {
                TokenCommand::Introspect { token } => ("introspect", token),
                TokenCommand::Revoke { token } => ("revoke", token),
            };
            let path = format!("/admin/v1/tokens/{action}");
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
        println!(
            "{}",
            serde_json::to_string_pretty(&value).unwrap_or_default()
        );
    } else {
        print_human(&args.command, status, &value);
    }
    Ok(())
}

fn request(cmd: &AdminCommand) -> Result<(Method, String, Option<Value>), CliError> {
    use AdminCommand as A;
    let patch = |path: String, body: Value| Ok((Method::PATCH, path, Some(body)));
    let get = |path: String| Ok((Method::GET, path, None));
    match cmd {
        A::Partner(p) => match p {
            PartnerCommand::Add {
                siren,
                name,
                contacts,
            } => {
                let mut map = serde_json::Map::new();
                for c in contacts {
                    let (role, contact) = parse_contact(c)?;
                    map.insert(role, contact);
                }
                let body = json!({"siren": siren, "name": name, "contacts": map});
                Ok((Method::POST, "/admin/v1/partners".into(), Some(body)))
            }
            PartnerCommand::List => get("/admin/v1/partners".into()),
            PartnerCommand::Show { id } => get(format!("/admin/v1/partners/{}", seg(id))),
            PartnerCommand::Suspend { id } => patch(
                format!("/admin/v1/partners/{}", seg(id)),
                json!({"status": "suspended"}),
            ),
            PartnerCommand::Resume { id } => patch(
                format!("/admin/v1/partners/{}", seg(id)),
                json!({"status": "active"}),
            ),
        },
        A::App(a) => {
            let app_path = |id: &str| format!("/admin/v1/applications/{}", seg(id));
            match a {
                AppCommand::Add {
                    partner,
                    name,
                    environment,
                    grants,
                    valid_from,
                    valid_until,
                    ips,
                    quota,
                } => {
                    let mut body = json!({
                        "partner_id": partner, "name": name, "environment": environment,
                        "grants": parse_grants(grants)?, "valid_from": valid_from,
                        "valid_until": valid_until, "ip_allowlist": ips,
                    });
                    if let Some(q) = quota {
                        body["quota_per_minute"] = json!(q);
                    }
                    Ok((Method::POST, "/admin/v1/applications".into(), Some(body)))
                }
                AppCommand::List { partner } => get(match partner {
                    Some(p) => format!("/admin/v1/applications?partner_id={}", seg(p)),
                    None => "/admin/v1/applications".into(),
                }),
                AppCommand::Show { id } => get(app_path(id)),
                AppCommand::Suspend { id } => patch(app_path(id), json!({"status": "suspended"})),
                AppCommand::Resume { id } => patch(app_path(id), json!({"status": "active"})),
                AppCommand::SetIps { id, cidrs } => {
                    patch(app_path(id), json!({"ip_allowlist": cidrs}))
                }
                AppCommand::SetQuota { id, quota } => {
                    patch(app_path(id), json!({"quota_per_minute": quota}))
                }
                AppCommand::Grant { id, grants } => {
                    patch(app_path(id), json!({"grants": parse_grants(grants)?}))
                }
            }
        }
        A::Secret(SecretCommand::Rotate { app }) => Ok((
            Method::POST,
            format!("/admin/v1/applications/{}/secret", seg(app)),
            None,
        )),
        A::Token(_) => Err(CliError::Usage("token commands use a form body".into())),
        A::Env(EnvCommand::List) => get("/admin/v1/environments".into()),
        A::Trace(TraceCommand::List {
            app,
            decision,
            limit,
        }) => {
            let mut q = format!("limit={limit}");
            if let Some(a) = app {
                q.push_str(&format!("&client_id={}", seg(a)));
            }
            if let Some(d) = decision {
                q.push_str(&format!("&decision={}", seg(d)));
            }
            get(format!("/admin/v1/trace?{q}"))
        }
        A::Trace(TraceCommand::Verify) => Ok((Method::POST, "/admin/v1/trace/verify".into(), None)),
        A::Trace(TraceCommand::Export { .. }) => {
            Err(CliError::Usage("trace export streams JSON Lines".into()))
        }
        A::Stats { app } => get(match app {
            Some(a) => format!("/admin/v1/stats?client_id={}", seg(a)),
            None => "/admin/v1/stats".into(),
        }),
        A::Env(EnvCommand::Close {
            env,
            retry_after,
            message,
        }) => Ok((
            Method::PUT,
            format!("/admin/v1/environments/{}/maintenance", seg(env)),
            Some(json!({"retry_after": retry_after, "message": message})),
        )),
        A::Env(EnvCommand::Open { env }) => Ok((
            Method::DELETE,
            format!("/admin/v1/environments/{}/maintenance", seg(env)),
            None,
        )),
        A::Cert(c) => {
            let certs = |id: &str| format!("/admin/v1/applications/{}/certificates", seg(id));
            match c {
                CertCommand::Issue { app, csr, .. } => {
                    let body = json!({"csr": read_file(csr)?});
                    Ok((Method::POST, certs(app), Some(body)))
                }
                CertCommand::Register { app, pem } => {
                    let body = json!({"certificate": read_file(pem)?});
                    Ok((Method::POST, certs(app), Some(body)))
                }
                CertCommand::Revoke { app, thumbprint } => Ok((
                    Method::DELETE,
                    format!("{}/{}", certs(app), seg(thumbprint)),
                    None,
                )),
                CertCommand::List { app } => get(certs(app)),
            }
        }
    }
}

/// Keeps a path segment to the characters ids and thumbprints use.
fn seg(s: &str) -> String {
    s.chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_'))
        .collect()
}

fn read_file(path: &PathBuf) -> Result<String, CliError> {
    std::fs::read_to_string(path).map_err(|source| CliError::File {
        path: path.clone(),
        source,
    })
}

fn parse_contact(s: &str) -> Result<(String, Value), CliError> {
    let parts: Vec<&str> = s.splitn(4, ':').collect();
    match parts.as_slice() {
        [role, nom, email] => Ok(((*role).into(), json!({"nom": nom, "email": email}))),
        [role, nom, email, tel] => Ok((
            (*role).into(),
            json!({"nom": nom, "email": email, "telephone": tel}),
        )),
        _ => Err(CliError::Usage(format!(
            "--contact {s:?}: expected ROLE:NAME:EMAIL[:PHONE]"
        ))),
    }
}

/// `declarations:2022,2023` or `declarations:2020-2023`.
fn parse_grants(grants: &[String]) -> Result<Vec<Value>, CliError> {
    grants
        .iter()
        .map(|g| {
            let bad = || {
                CliError::Usage(format!(
                    "--grant {g:?}: expected SCOPE:2022,2023 or SCOPE:2020-2023 or SCOPE:N-3..N-1"
                ))
            };
            let (scope, years) = g.split_once(':').ok_or_else(bad)?;
            let mut list = Vec::new();
            for part in years.split(',') {
                if part.contains("..") || part.trim_start().starts_with('N') {
                    list.push(json!(part.trim()));
                    continue;
                }
                match part.split_once('-') {
                    Some((a, b)) => {
                        let (a, b): (i32, i32) = (
                            a.trim().parse().map_err(|_| bad())?,
                            b.trim().parse().map_err(|_| bad())?,
                        );
                        if b < a || b - a > 200 {
                            return Err(bad());
                        }
                        list.extend((a..=b).map(|y| json!(y)));
                    }
                    None => list.push(json!(part.trim().parse::<i32>().map_err(|_| bad())?)),
                }
            }
            Ok(json!({"scope": scope, "years": list}))
        })
        .collect()
}

fn print_human(cmd: &AdminCommand, status: StatusCode, value: &Value) {
    if let AdminCommand::Token(TokenCommand::Revoke { .. }) = cmd {
        println!("token revoked (or already unusable)");
        return;
    }
    if status == StatusCode::NO_CONTENT {
        match cmd {
            AdminCommand::Cert(CertCommand::Revoke { thumbprint, .. }) => {
                println!("certificate {thumbprint} revoked");
            }
            AdminCommand::Env(EnvCommand::Close { env, .. }) => println!("{env} closed (503)"),
            AdminCommand::Env(EnvCommand::Open { env }) => println!("{env} open"),
            _ => {}
        }
        return;
    }
    match value {
        Value::Array(items) if items.is_empty() => println!("(none)"),
        Value::Array(items) => items.iter().for_each(|i| println!("{}", summary(i))),
        Value::Object(map) => {
            for (k, v) in map {
                match v {
                    Value::Array(items)
                        if items.iter().all(Value::is_object) && !items.is_empty() =>
                    {
                        println!("{k}:");
                        items.iter().for_each(|i| println!("  - {}", summary(i)));
                    }
                    Value::String(s) if k == "certificate" || k == "pem" => {
                        if k == "certificate" {
                            println!("{k}:\n{s}");
                        }
                    }
                    Value::String(s) => println!("{k}: {s}"),
                    other => println!("{k}: {other}"),
                }
            }
            if map.contains_key("client_secret") && map.len() <= 2 {
                eprintln!("\nThe previous secret no longer works.");
            }
            if map.contains_key("client_secret") {
                eprintln!("\nThe client_secret above is shown only once: store it now.");
            }
        }
        other => println!("{other}"),
    }
}

/// One line describing a partner, application, grant or certificate.
fn summary(v: &Value) -> String {
    let s = |k: &str| v[k].as_str().map(str::to_owned);
    if let Some(t) = s("thumbprint") {
        return format!(
            "{t}  {}  {}  until {}",
            s("status").unwrap_or_default(),
            s("subject").unwrap_or_default(),
            s("not_after").unwrap_or_default()
        );
    }
    if let Some(c) = s("client_id") {
        return format!(
            "{c}  {}  {}  {}",
            s("environment").unwrap_or_default(),
            s("status").unwrap_or_default(),
            s("name").unwrap_or_default()
        );
    }
    if let Some(id) = s("id") {
        return format!(
            "{id}  {}  {}  {}",
            s("siren").unwrap_or_default(),
            s("status").unwrap_or_default(),
            s("name").unwrap_or_default()
        );
    }
    if let Some(scope) = s("scope") {
        return format!("{scope}: {}", v["years"]);
    }
    v.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grant_syntax() {
        let g = parse_grants(&["declarations:2020-2022,2024,N-3..N-1".into()]).unwrap();
        assert_eq!(
            g[0],
            json!({"scope": "declarations", "years": [2020, 2021, 2022, 2024, "N-3..N-1"]})
        );
        assert!(parse_grants(&["declarations".into()]).is_err());
        assert!(parse_grants(&["declarations:2024-2020".into()]).is_err());
    }

    #[test]
    fn contact_syntax() {
        let (role, c) = parse_contact("technique:Jeanne Dupont:jd@example.fr:0102030405").unwrap();
        assert_eq!(role, "technique");
        assert_eq!(c["telephone"], "0102030405");
        assert!(parse_contact("technique:Jeanne").is_err());
    }
}
