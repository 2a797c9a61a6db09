//! How `admin` commands print the API's answers for a human (the default;
//! `--json` prints the JSON itself). Each command knows the type its
//! operation answers (`admin::types`, the registry's entities): the answer
//! is read as that type, then printed; nothing is guessed from its keys.

use super::{AdminCommand, AppCommand, CertCommand, CliError, EnvCommand, PartnerCommand};
use super::{KeysCommand, SecretCommand, TokenCommand, TraceCommand};
use crate::admin::types::{
    ApplicationView, CreatedApplicationView, PartnerView, RotatedSecret, StoredCertificate,
};
use crate::oauth::KeyRecord;
use crate::registry::{Application, CertificateRecord, Partner};
use hyper::StatusCode;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

/// Prints the answer `value` of `cmd` (a success).
pub(super) fn print_human(
    cmd: &AdminCommand,
    status: StatusCode,
    value: Value,
) -> Result<(), CliError> {
    match cmd {
        AdminCommand::Token(TokenCommand::Revoke { .. }) => {
            say!("token revoked (or already unusable)");
        }
        AdminCommand::Cert(CertCommand::Revoke { thumbprint, .. }) => {
            say!("certificate {thumbprint} revoked");
        }
        AdminCommand::Env(EnvCommand::Close { env, .. }) => say!("{env} closed (503)"),
        AdminCommand::Env(EnvCommand::Open { env }) => say!("{env} open"),
        AdminCommand::Maintenance(crate::admin::cli::MaintenanceCommand::Cancel { id }) => {
            say!("maintenance {id} cancelled (announced)");
        }
        _ if status == StatusCode::NO_CONTENT => {}
        AdminCommand::Partner(PartnerCommand::List) => {
            lines(&read::<Vec<Partner>>(value)?, partner_line);
        }
        AdminCommand::Partner(PartnerCommand::Show { .. }) => {
            let view: PartnerView = read(value)?;
            fields(&view.partner);
            list("applications", &view.applications, application_line);
        }
        AdminCommand::Partner(_) => fields(&read::<Partner>(value)?),
        AdminCommand::App(AppCommand::List { .. }) => {
            lines(&read::<Vec<Application>>(value)?, application_line);
        }
        AdminCommand::App(AppCommand::Show { .. }) => {
            let view: ApplicationView = read(value)?;
            fields(&view.application);
            list("certificates", &view.certificates, certificate_line);
        }
        AdminCommand::App(AppCommand::Add { .. }) => {
            let created: CreatedApplicationView = read(value)?;
            fields(&created.application);
            say!("client_secret: {}", created.client_secret);
            eprintln!("\nThe client_secret above is shown only once: store it now.");
        }
        AdminCommand::App(_) => fields(&read::<Application>(value)?),
        AdminCommand::Cert(CertCommand::List { .. }) => {
            lines(&read::<Vec<CertificateRecord>>(value)?, certificate_line);
        }
        AdminCommand::Cert(_) => {
            let stored: StoredCertificate = read(value)?;
            fields(&stored.record);
            say!("certificate:\n{}", stored.certificate);
        }
        AdminCommand::Secret(SecretCommand::Rotate { .. }) => {
            let rotated: RotatedSecret = read(value)?;
            say!("client_id: {}", rotated.client_id);
            say!("client_secret: {}", rotated.client_secret);
            eprintln!("\nThe previous secret no longer works.");
            eprintln!("The client_secret above is shown only once: store it now.");
        }
        AdminCommand::Keys(KeysCommand::List) => {
            lines(&read::<Vec<KeyRecord>>(value)?, key_line);
        }
        AdminCommand::Keys(KeysCommand::Rotate { .. }) => {
            let fresh = read::<Vec<KeyRecord>>(value)?;
            fresh
                .iter()
                .for_each(|k| say!("{} now signs with {}", k.environment, k.kid));
            eprintln!("\nThe previous keys verify until every token they signed has expired.");
        }
        AdminCommand::Trace(TraceCommand::List { .. }) => {
            lines(&read::<Vec<Value>>(value)?, trace_line);
        }
        // Reports whose every field is meant to be read as it is.
        AdminCommand::Incident(_) | AdminCommand::Maintenance(_) => status_lines(&value),
        AdminCommand::Token(TokenCommand::Introspect { .. })
        | AdminCommand::Env(EnvCommand::List)
        | AdminCommand::Trace(_)
        | AdminCommand::Reload
        | AdminCommand::Stats { .. } => dump(&value),
    }
    Ok(())
}

/// Incidents or maintenances, one line each: id, status, impact,
/// components, title (and the times of a maintenance).
fn status_lines(value: &Value) {
    let items = match value {
        Value::Array(items) => items.clone(),
        other => vec![other.clone()],
    };
    if items.is_empty() {
        say!("(none)");
    }
    for i in &items {
        let text = |k: &str| i[k].as_str().unwrap_or("").to_owned();
        let components: Vec<_> = i["components"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|c| c.as_str())
            .collect();
        let span = match i["scheduled_for"].as_str() {
            Some(from) => format!(" {from} → {}", text("scheduled_until")),
            None => String::new(),
        };
        say!(
            "{}  {}  {}  [{}]{span}  {}",
            text("id"),
            text("status"),
            text("impact"),
            components.join(","),
            text("name")
        );
    }
}

/// The answer as the type its operation documents.
fn read<T: DeserializeOwned>(value: Value) -> Result<T, CliError> {
    serde_json::from_value(value).map_err(|e| CliError::Usage(format!("unexpected answer: {e}")))
}

/// One line per item, or `(none)`.
fn lines<T>(items: &[T], line: fn(&T) -> String) {
    if items.is_empty() {
        say!("(none)");
    }
    items.iter().for_each(|i| say!("{}", line(i)));
}

/// `name:` then one indented line per item.
fn list<T>(name: &str, items: &[T], line: fn(&T) -> String) {
    say!("{name}:");
    items.iter().for_each(|i| say!("  - {}", line(i)));
}

/// `key: value` for each field of an entity (the PEM of a certificate
/// record is left out: `cert issue --out` writes it).
fn fields(entity: &impl Serialize) {
    if let Ok(Value::Object(map)) = serde_json::to_value(entity) {
        for (k, v) in map.iter().filter(|(k, _)| k.as_str() != "pem") {
            match v {
                Value::String(s) => say!("{k}: {s}"),
                other => say!("{k}: {other}"),
            }
        }
    }
}

/// A report: `key: value` lines, arrays of objects one item a line.
fn dump(value: &Value) {
    match value {
        Value::Object(map) => {
            for (k, v) in map {
                match v {
                    Value::Array(items)
                        if !items.is_empty() && items.iter().all(Value::is_object) =>
                    {
                        say!("{k}:");
                        items.iter().for_each(|i| say!("  - {i}"));
                    }
                    Value::String(s) => say!("{k}: {s}"),
                    other => say!("{k}: {other}"),
                }
            }
        }
        Value::Array(items) if items.is_empty() => say!("(none)"),
        Value::Array(items) => items.iter().for_each(|i| say!("{i}")),
        other => say!("{other}"),
    }
}

/// `environment  node  kid  created  retired_at|-`
fn key_line(k: &KeyRecord) -> String {
    let rfc3339 = |t: &time::OffsetDateTime| {
        t.format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_default()
    };
    let retired = k.retired_at.as_ref().map_or("-".to_owned(), rfc3339);
    format!(
        "{}  {}  {}  {}  {}",
        k.environment,
        k.node,
        k.kid,
        rfc3339(&k.created),
        retired
    )
}

fn partner_line(p: &Partner) -> String {
    format!("{}  {}  {}  {}", p.id, p.siren, p.status.as_str(), p.name)
}

fn application_line(a: &Application) -> String {
    format!(
        "{}  {}  {}  {}",
        a.client_id,
        a.environment,
        a.status.as_str(),
        a.name
    )
}

fn certificate_line(c: &CertificateRecord) -> String {
    let status = serde_json::to_value(c.status).unwrap_or_default();
    let until = c
        .not_after
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default();
    format!(
        "{}  {}  {}  until {until}",
        c.thumbprint,
        status.as_str().unwrap_or_default(),
        c.subject
    )
}

/// One trace record: number, time, node, plane, method and path (or the
/// system action), status, decision, code.
fn trace_line(v: &Value) -> String {
    let s = |k: &str| v[k].as_str().unwrap_or_default().to_owned();
    let node = v["node"]
        .as_str()
        .map(|n| format!("{n}  "))
        .unwrap_or_default();
    let what = match v["action"]["kind"].as_str() {
        Some(kind) => format!(
            "{kind} {}",
            v["action"]["target"].as_str().unwrap_or_default()
        ),
        None => format!("{} {}", s("method"), s("path")),
    };
    format!(
        "{}  {}  {node}{}  {what}  {}  {}  {}",
        v["seq"],
        s("time"),
        s("plane"),
        v["status"],
        s("decision"),
        s("code")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_trace_record_reads_as_one_line() {
        let record = serde_json::json!({
            "seq": 27, "time": "2026-11-30T04:05:06.688Z", "node": "node-b",
            "plane": "sandbox", "method": "GET", "path": "/opale/v1/x", "status": 403,
            "decision": "denied", "code": "910300", "thumbprint": "abc"
        });
        let line = trace_line(&record);
        assert!(line.starts_with("27  2026-11-30T04:05:06.688Z  node-b  sandbox  GET /opale/v1/x  403  denied  910300"), "{line}");
        let action = serde_json::json!({
            "seq": 28, "time": "t", "plane": "admin", "status": 200, "decision": "admitted",
            "action": {"kind": "notice_sent", "target": "n-1"}
        });
        assert!(
            trace_line(&action).contains("admin  notice_sent n-1  200"),
            "{}",
            trace_line(&action)
        );
    }

    #[test]
    fn an_answer_of_another_type_is_an_error_not_a_guess() {
        let cert = serde_json::json!({"thumbprint": "abc", "status": "active"});
        assert!(read::<Partner>(cert).is_err());
    }
}
