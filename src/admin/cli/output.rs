//! How `admin` commands print the API's answers for a human (the default;
//! `--json` prints the JSON itself).

use super::{AdminCommand, CertCommand, EnvCommand, TokenCommand};
use hyper::StatusCode;
use serde_json::Value;

pub(super) fn print_human(cmd: &AdminCommand, status: StatusCode, value: &Value) {
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
    if let (Some(seq), Some(decision)) = (v["seq"].as_u64(), s("decision")) {
        // A trace record (it also has a thumbprint: test it first).
        let node = s("node").map(|n| format!("{n}  ")).unwrap_or_default();
        return format!(
            "{seq}  {}  {node}{}  {} {}  {}  {decision}  {}",
            s("time").unwrap_or_default(),
            s("plane").unwrap_or_default(),
            s("method").unwrap_or_default(),
            s("path").unwrap_or_default(),
            v["status"],
            s("code").unwrap_or_default()
        );
    }
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
    use super::summary;

    #[test]
    fn a_trace_record_reads_as_one_line_not_as_a_certificate() {
        let record = serde_json::json!({
            "seq": 27, "time": "2026-11-30T04:05:06.688Z", "node": "node-b",
            "plane": "sandbox", "method": "GET", "path": "/opale/v1/x", "status": 403,
            "decision": "denied", "code": "910300", "thumbprint": "abc"
        });
        let line = summary(&record);
        assert!(line.starts_with("27  2026-11-30T04:05:06.688Z  node-b  sandbox  GET /opale/v1/x  403  denied  910300"), "{line}");
        let cert = serde_json::json!({"thumbprint": "abc", "status": "active"});
        assert!(summary(&cert).starts_with("abc  active"));
    }
}
