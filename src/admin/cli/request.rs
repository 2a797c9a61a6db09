//! What each `admin` command asks of the API: method, path and body. The
//! method and path come from the admin listener's route table
//! (`admin::call`: a path is spelt once), the bodies are the API's own
//! request types (`admin::types`), built typed and serialized; query
//! values and path segments are percent-encoded.

use super::{AdminCommand, AppCommand, CertCommand, CliError, EnvCommand, PartnerCommand};
use super::{KeysCommand, SecretCommand, TraceCommand};
use crate::admin::types::{
    self, ApplicationPatch, ApplicationQuery, CertificateRequest, KeyRotation, Maintenance,
    NewApplication, NewGrant, NewPartner, PartnerPatch, TraceQuery, VerifyRequest,
};
use crate::admin::{Op, call};
use crate::domain::{Cidr, Environment, Status};
use hyper::Method;
use serde::Serialize;
use serde_json::Value;
use std::path::PathBuf;

/// The call a command makes: method, path (with its query) and JSON body.
pub(super) type Call = (Method, String, Option<Value>);

pub(super) fn request(cmd: &AdminCommand) -> Result<Call, CliError> {
    match cmd {
        AdminCommand::Partner(p) => partner_request(p),
        AdminCommand::App(a) => app_request(a),
        AdminCommand::Cert(c) => cert_request(c),
        AdminCommand::Secret(SecretCommand::Rotate { app }) => {
            let (method, path) = call(Op::RotateSecret, &[app]);
            Ok((method, path, None))
        }
        AdminCommand::Token(_) => Err(CliError::Usage("token commands use a form body".into())),
        AdminCommand::Env(e) => env_request(e),
        AdminCommand::Incident(i) => super::status::incident_request(i),
        AdminCommand::Maintenance(m) => super::status::maintenance_request(m),
        AdminCommand::Keys(KeysCommand::List) => plain(Op::ListKeys, &[]),
        AdminCommand::Keys(KeysCommand::Rotate { environment }) => {
            let environment = match environment {
                Some(name) => Some(Environment::parse(name).ok_or_else(|| {
                    CliError::Usage(format!(
                        "environment: must be \"sandbox\" or \"production\", got {name:?}"
                    ))
                })?),
                None => None,
            };
            with_body(Op::RotateKeys, &[], &KeyRotation { environment })
        }
        AdminCommand::Trace(TraceCommand::List {
            app,
            decision,
            limit,
        }) => {
            let q = TraceQuery {
                client_id: app.clone(),
                decision: decision.clone(),
                limit: Some(limit.to_string()),
                ..TraceQuery::default()
            };
            let (method, path) = call(Op::ListTrace, &[]);
            Ok((method, with_query(&path, &q), None))
        }
        AdminCommand::Trace(TraceCommand::Verify { checkpoint }) => {
            let checkpoint = match checkpoint {
                Some(path) => {
                    Some(
                        std::fs::read_to_string(path).map_err(|source| CliError::File {
                            path: path.clone(),
                            source,
                        })?,
                    )
                }
                None => None,
            };
            let verify = body(&VerifyRequest { checkpoint })?;
            let (method, path) = call(Op::VerifyTrace, &[]);
            Ok((method, path, Some(verify)))
        }
        AdminCommand::Trace(TraceCommand::Export { .. } | TraceCommand::Checkpoint { .. }) => Err(
            CliError::Usage("trace export and checkpoint are text".into()),
        ),
        AdminCommand::Reload => plain(Op::Reload, &[]),
        AdminCommand::Stats { app } => Ok((Method::GET, stats_path(app.as_deref()), None)),
    }
}

fn partner_request(cmd: &PartnerCommand) -> Result<Call, CliError> {
    let status = |id: &str, status: Status| {
        let patch = PartnerPatch {
            status: Some(status),
            ..PartnerPatch::default()
        };
        with_body(Op::UpdatePartner, &[id], &patch)
    };
    match cmd {
        PartnerCommand::Add {
            siren,
            name,
            contacts,
        } => {
            let input = NewPartner {
                siren: siren.clone(),
                name: name.clone(),
                contacts: contacts
                    .iter()
                    .map(|c| types::parse_contact(c))
                    .collect::<Result<_, _>>()?,
            };
            with_body(Op::CreatePartner, &[], &input)
        }
        PartnerCommand::List => plain(Op::ListPartners, &[]),
        PartnerCommand::Show { id } => plain(Op::ShowPartner, &[id]),
        PartnerCommand::Suspend { id } => status(id, Status::Suspended),
        PartnerCommand::Resume { id } => status(id, Status::Active),
    }
}

fn app_request(cmd: &AppCommand) -> Result<Call, CliError> {
    let patch = |id: &str, p: ApplicationPatch| with_body(Op::UpdateApplication, &[id], &p);
    match cmd {
        AppCommand::Add { .. } => with_body(Op::CreateApplication, &[], &new_application(cmd)?),
        AppCommand::List { partner } => {
            let q = ApplicationQuery {
                partner_id: partner.clone(),
            };
            let (method, path) = call(Op::ListApplications, &[]);
            let path = match q.to_query() {
                query if query.is_empty() => path,
                query => format!("{path}?{query}"),
            };
            Ok((method, path, None))
        }
        AppCommand::Show { id } => plain(Op::ShowApplication, &[id]),
        AppCommand::Suspend { id } => patch(id, status_patch(Status::Suspended)),
        AppCommand::Resume { id } => patch(id, status_patch(Status::Active)),
        AppCommand::SetIps { id, cidrs } => patch(
            id,
            ApplicationPatch {
                ip_allowlist: Some(networks(cidrs)?),
                ..ApplicationPatch::default()
            },
        ),
        AppCommand::SetQuota { id, quota } => patch(
            id,
            ApplicationPatch {
                quota_per_minute: Some(*quota),
                ..ApplicationPatch::default()
            },
        ),
        AppCommand::Grant { id, grants } => patch(
            id,
            ApplicationPatch {
                grants: Some(parse_grants(grants)?),
                ..ApplicationPatch::default()
            },
        ),
    }
}

/// The body of `app add`.
fn new_application(cmd: &AppCommand) -> Result<NewApplication, CliError> {
    let AppCommand::Add {
        partner,
        name,
        environment,
        grants,
        valid_from,
        valid_until,
        ips,
        quota,
    } = cmd
    else {
        return Err(CliError::Usage("not app add".into()));
    };
    let environment = Environment::parse(environment).ok_or_else(|| {
        CliError::Usage(format!(
            "environment: must be \"sandbox\" or \"production\", got {environment:?}"
        ))
    })?;
    Ok(NewApplication {
        partner_id: partner.clone(),
        name: name.clone(),
        environment,
        grants: parse_grants(grants)?,
        valid_from: typed("valid_from", valid_from)?,
        valid_until: typed("valid_until", valid_until)?,
        ip_allowlist: networks(ips)?,
        quota_per_minute: *quota,
    })
}

fn status_patch(status: Status) -> ApplicationPatch {
    ApplicationPatch {
        status: Some(status),
        ..ApplicationPatch::default()
    }
}

/// A command-line value read as the API's type; the error names the
/// API's field, as the API's own 400 would.
fn typed<T>(field: &str, text: &str) -> Result<T, CliError>
where
    T: std::str::FromStr,
    T::Err: std::fmt::Display,
{
    text.parse()
        .map_err(|e| CliError::Usage(format!("{field}: {e}")))
}

/// `--ip`/`set-ips` values as CIDR blocks (`ip_allowlist[i]` when one is not).
fn networks(cidrs: &[String]) -> Result<Vec<Cidr>, CliError> {
    cidrs
        .iter()
        .enumerate()
        .map(|(i, c)| typed(&format!("ip_allowlist[{i}]"), c))
        .collect()
}

fn env_request(cmd: &EnvCommand) -> Result<Call, CliError> {
    match cmd {
        EnvCommand::List => plain(Op::ListEnvironments, &[]),
        EnvCommand::Close {
            env,
            retry_after,
            message,
        } => {
            let m = Maintenance {
                retry_after: *retry_after,
                message: message.clone(),
            };
            with_body(Op::CloseEnvironment, &[env], &m)
        }
        EnvCommand::Open { env } => plain(Op::OpenEnvironment, &[env]),
    }
}

fn cert_request(cmd: &CertCommand) -> Result<Call, CliError> {
    match cmd {
        CertCommand::Issue { app, csr, .. } => {
            let input = CertificateRequest {
                csr: Some(read_file(csr)?),
                certificate: None,
            };
            with_body(Op::AddCertificate, &[app], &input)
        }
        CertCommand::Register { app, pem } => {
            let input = CertificateRequest {
                csr: None,
                certificate: Some(read_file(pem)?),
            };
            with_body(Op::AddCertificate, &[app], &input)
        }
        CertCommand::Revoke { app, thumbprint } => plain(Op::RevokeCertificate, &[app, thumbprint]),
        CertCommand::List { app } => plain(Op::ListCertificates, &[app]),
    }
}

/// `/admin/v1/stats`, for one application or all.
fn stats_path(app: Option<&str>) -> String {
    let q = TraceQuery {
        client_id: app.map(str::to_owned),
        ..TraceQuery::default()
    };
    with_query(&call(Op::Stats, &[]).1, &q)
}

/// `/admin/v1/trace/export`, for one application or all.
pub(super) fn export_path(app: Option<&str>) -> String {
    let q = TraceQuery {
        client_id: app.map(str::to_owned),
        ..TraceQuery::default()
    };
    with_query(&call(Op::ExportTrace, &[]).1, &q)
}

/// `path?query`, or `path` when the query is empty.
fn with_query(path: &str, q: &TraceQuery) -> String {
    match q.to_query() {
        query if query.is_empty() => path.to_owned(),
        query => format!("{path}?{query}"),
    }
}

/// The call of `op` without a body.
pub(super) fn plain(op: Op, params: &[&str]) -> Result<Call, CliError> {
    let (method, path) = call(op, params);
    Ok((method, path, None))
}

/// The call of `op` with a typed body.
pub(super) fn with_body(op: Op, params: &[&str], input: &impl Serialize) -> Result<Call, CliError> {
    let (method, path) = call(op, params);
    Ok((method, path, Some(body(input)?)))
}

/// A typed request body, serialized as the API will read it.
fn body(value: &impl Serialize) -> Result<Value, CliError> {
    Ok(serde_json::to_value(value)?)
}

fn read_file(path: &PathBuf) -> Result<String, CliError> {
    std::fs::read_to_string(path).map_err(|source| CliError::File {
        path: path.clone(),
        source,
    })
}

fn parse_grants(grants: &[String]) -> Result<Vec<NewGrant>, CliError> {
    Ok(grants
        .iter()
        .map(|g| types::parse_grant(g))
        .collect::<Result<_, _>>()?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::admin::api::parse_json;
    use serde::de::DeserializeOwned;
    use serde_json::json;

    /// What the server reads from the CLI's body, serialized back.
    fn as_api_reads<T: DeserializeOwned + Serialize>(body: &Value) -> Value {
        let bytes = serde_json::to_vec(body).unwrap();
        serde_json::to_value(parse_json::<T>(&bytes).unwrap()).unwrap()
    }

    #[test]
    fn app_add_builds_the_body_the_api_reads() {
        let cmd = AppCommand::Add {
            partner: "p-1".into(),
            name: "demo".into(),
            environment: "sandbox".into(),
            grants: vec!["declarations:2020-2022,2024,N-3..N-1".into()],
            valid_from: "2025-01-01".into(),
            valid_until: "2027-12-31".into(),
            ips: vec!["127.0.0.1/32".into()],
            quota: Some(7),
        };
        let (method, path, b) = app_request(&cmd).unwrap();
        assert_eq!(
            (method, path.as_str()),
            (Method::POST, "/admin/v1/applications")
        );
        let b = b.unwrap();
        assert_eq!(
            b["grants"][0]["years"],
            json!(["2020..2022", 2024, "N-3..N-1"])
        );
        assert_eq!(b["quota_per_minute"], 7);
        assert_eq!(as_api_reads::<NewApplication>(&b), b);
    }

    #[test]
    fn every_cli_body_is_accepted_by_the_api_type() {
        let partner = PartnerCommand::Add {
            siren: "732829320".into(),
            name: "ACME".into(),
            contacts: vec!["technique:Jeanne Dupont:jd@example.fr:0102".into()],
        };
        let b = partner_request(&partner).unwrap().2.unwrap();
        assert_eq!(b["contacts"]["technique"]["telephone"], "0102");
        assert_eq!(as_api_reads::<NewPartner>(&b), b);
        let b = partner_request(&PartnerCommand::Suspend { id: "p".into() });
        let b = b.unwrap().2.unwrap();
        assert_eq!(as_api_reads::<PartnerPatch>(&b)["status"], "suspended");
        let grant = AppCommand::Grant {
            id: "c".into(),
            grants: vec!["revenus:N-1".into()],
        };
        let b = app_request(&grant).unwrap().2.unwrap();
        assert_eq!(
            as_api_reads::<ApplicationPatch>(&b)["grants"][0]["years"],
            json!(["N-1"])
        );
        let close = EnvCommand::Close {
            env: "sandbox".into(),
            retry_after: 60,
            message: Some("bientôt".into()),
        };
        let b = env_request(&close).unwrap().2.unwrap();
        assert_eq!(as_api_reads::<Maintenance>(&b), b);
        let rotate = |environment: Option<&str>| {
            let environment = environment.map(str::to_owned);
            request(&AdminCommand::Keys(KeysCommand::Rotate { environment }))
        };
        let (method, path, b) = rotate(Some("production")).unwrap();
        assert_eq!(
            (method, path.as_str()),
            (Method::POST, "/admin/v1/keys/rotate")
        );
        let b = b.unwrap();
        assert_eq!(b, json!({"environment": "production"}));
        assert_eq!(as_api_reads::<KeyRotation>(&b), b);
        assert_eq!(rotate(None).unwrap().2.unwrap(), json!({}));
        assert!(matches!(rotate(Some("staging")), Err(CliError::Usage(_))));
        let bad = AppCommand::Grant {
            id: "c".into(),
            grants: vec!["revenus:2024-2020".into()],
        };
        assert!(matches!(app_request(&bad), Err(CliError::Syntax(_))));
    }

    #[test]
    fn filter_values_with_special_characters_arrive_intact() {
        let value = "a&b c+d=é/%?#";
        let cmd = AdminCommand::Trace(TraceCommand::List {
            app: Some(value.into()),
            decision: Some("denied".into()),
            limit: 5,
        });
        let (_, path, _) = request(&cmd).unwrap();
        let (route, query) = path.split_once('?').unwrap();
        assert_eq!(route, "/admin/v1/trace");
        assert!(query.is_ascii() && !query.contains(' '), "{query}");
        // What the server reads (the same parser as trace.rs).
        let read = TraceQuery::parse(query);
        assert_eq!(read.client_id.as_deref(), Some(value));
        assert_eq!(read.limit.as_deref(), Some("5"));
        let app_list = AppCommand::List {
            partner: Some(value.into()),
        };
        let (_, path, _) = app_request(&app_list).unwrap();
        let (route, query) = path.split_once('?').unwrap();
        assert_eq!(route, "/admin/v1/applications");
        let read = ApplicationQuery::parse(query);
        assert_eq!(read.partner_id.as_deref(), Some(value));
        assert_eq!(
            export_path(Some("x y")),
            "/admin/v1/trace/export?client_id=x%20y"
        );
        assert_eq!(stats_path(None), "/admin/v1/stats");
    }
}
