//! Records as the trail already holds them, verbatim: they must still read
//! (the hash chain covers the stored bytes, so a stored record is never
//! rewritten), and those in the current format must be written back to the
//! very same bytes, so that a listing or an export shows what is stored.

use super::{
    ActionKind, Actor, Address, Code, Decision, TraceEvent, TraceRecord, millis, parse_time,
};
use crate::chain::{Control, Reason};
use crate::domain::{Dataset, Environment, Plane, Siren};
use crate::oauth::ErrorCode;
use hyper::Method;

/// A data call, admitted (current format).
const DATA_CALL: &str = r#"{"time":"2026-12-07T02:59:09.891Z","plane":"sandbox","correlation_id":"3f1c9a2e-8d4b-4e0f-9a6d-2b7c5e1f0a93","client_id":"6739b7c7-f441-4a8a-b34c-0f7659949424","partner_id":"62390381-dc92-4c6b-8389-cb0fdd79c113","thumbprint":"UmAcZd8GNgvxHSxCjKJEkzx2bNtcLU4NSBwbwWJUsn4","ip":"127.0.0.1","method":"GET","path":"/opale/v1/entreprises/732829320/comptes-bancaires","siren":"732829320","dataset":"comptes-bancaires","year":2025,"decision":"admitted","control":null,"code":null,"status":200,"latency_us":412,"detail":null,"admin":null}"#;

/// A token request refused with an RFC 6749 §5.2 code (current format).
const TOKEN_REFUSED: &str = r#"{"time":"2026-12-07T03:00:01.004Z","plane":"production","correlation_id":"9b2f4c1e-0d7a-4e8b-8f3c-5a6d7e8f9a0b","client_id":null,"partner_id":null,"thumbprint":"ungWv48Bz-pBQUDeXa4iI7ADYaOWF3qctBD_YfIAFa0","ip":"2001:db8::7","method":"POST","path":"/token","siren":null,"dataset":null,"year":null,"decision":"denied","control":"token_endpoint","code":"invalid_client","status":401,"latency_us":95,"detail":"client authentication failed","admin":null}"#;

/// An admin call written before `actor` existed: the actor in `admin`.
const ADMIN_BEFORE_ACTOR: &str = r#"{"time":"2026-11-30T04:11:38.120Z","plane":"admin","correlation_id":null,"client_id":null,"partner_id":null,"thumbprint":"OPwgvt7P6bvvvdPsCK1TdSPPHlHw13M0BaGSWdjpNu4","ip":"127.0.0.1","method":"PATCH","path":"/admin/v1/partners/62390381-dc92-4c6b-8389-cb0fdd79c113","siren":null,"dataset":null,"year":null,"decision":"admitted","control":null,"code":null,"status":200,"latency_us":1830,"detail":null,"admin":{"actor_subject":"O=opale-apim (dev PKI), CN=opale-admin","actor_thumbprint":"OPwgvt7P6bvvvdPsCK1TdSPPHlHw13M0BaGSWdjpNu4","before":{"partners":{"62390381-dc92-4c6b-8389-cb0fdd79c113":{"status":"active"}}},"after":{"partners":{"62390381-dc92-4c6b-8389-cb0fdd79c113":{"status":"suspended"}}}}}"#;

/// A refused admin call by an admin certificate (current format).
const ADMIN_REFUSED: &str = r#"{"time":"2026-12-07T03:01:00.000Z","plane":"admin","correlation_id":null,"client_id":null,"partner_id":null,"thumbprint":"OPwgvt7P6bvvvdPsCK1TdSPPHlHw13M0BaGSWdjpNu4","ip":"::ffff:10.0.0.9","method":"DELETE","path":"/admin/v1/partners/nope","siren":null,"dataset":null,"year":null,"decision":"denied","control":"admin","code":"404","status":404,"latency_us":310,"detail":"no partner nope","admin":{"before":{},"after":{}},"actor":{"kind":"admin","subject":"O=opale-apim (dev PKI), CN=opale-admin","thumbprint":"OPwgvt7P6bvvvdPsCK1TdSPPHlHw13M0BaGSWdjpNu4"}}"#;

/// A system action: a notice sent (no caller, no method, no path).
const NOTICE_SENT: &str = r#"{"time":"2026-12-07T02:00:00.123Z","plane":"admin","correlation_id":null,"client_id":"6739b7c7-f441-4a8a-b34c-0f7659949424","partner_id":"62390381-dc92-4c6b-8389-cb0fdd79c113","thumbprint":null,"ip":"","siren":null,"dataset":null,"year":null,"decision":"admitted","control":null,"code":null,"status":0,"latency_us":0,"detail":null,"admin":{"before":null,"after":{"expires_at":"2026-12-21T00:00:00.000Z","kind":"certificate","notice":"notice/certificate/abc/14","object_id":"abc","recipient_domain":"banque-exemple.fr","threshold_days":14}},"actor":{"kind":"notifier"},"action":{"kind":"notice_sent","target":"notice/certificate/abc/14"}}"#;

/// A system action: a reload by signal that failed.
const RELOAD_FAILED: &str = r#"{"time":"2026-12-07T02:10:00.500Z","plane":"admin","correlation_id":null,"client_id":null,"partner_id":null,"thumbprint":null,"ip":"","siren":null,"dataset":null,"year":null,"decision":"denied","control":"admin","code":"400","status":0,"latency_us":0,"detail":"certs/server.pem: no such file","admin":{"before":null,"after":null},"actor":{"kind":"signal","name":"SIGHUP"},"action":{"kind":"reloaded","target":"config/opale.toml"}}"#;

/// A summary of refusals before identification from an IPv6 /64.
const SUMMARY: &str = r#"{"time":"2026-12-07T01:40:00.000Z","plane":"sandbox","correlation_id":null,"client_id":null,"partner_id":null,"thumbprint":null,"ip":"2001:db8:1:2::/64","siren":null,"dataset":null,"year":null,"decision":"denied","control":null,"code":null,"status":0,"latency_us":0,"detail":"12 more requests refused before identification in this minute, summarised (60 traced one by one before them)","admin":null,"actor":{"kind":"node","id":"node-a"},"action":{"kind":"refusals_summarised","target":"2001:db8:1:2::/64"},"summary":{"minute":"2026-12-07T01:40:00.000Z","refused":72,"summarised":12,"codes":{"910100":10,"invalid_client":2},"statuses":{"401":12}}}"#;

/// A listed record, as `GET /admin/v1/trace` answers (cluster: with node).
const LISTED: &str = r#"{"seq":1849,"node":"node-a","time":"2026-11-23T19:12:04.551Z","plane":"sandbox","correlation_id":"3f1c9a2e-8d4b-4e0f-9a6d-2b7c5e1f0a93","client_id":"6739b7c7-f441-4a8a-b34c-0f7659949424","partner_id":"62390381-dc92-4c6b-8389-cb0fdd79c113","thumbprint":"UmAcZd8GNgvxHSxCjKJEkzx2bNtcLU4NSBwbwWJUsn4","ip":"127.0.0.1","method":"GET","path":"/opale/v1/entreprises/732829320/declarations","siren":"732829320","dataset":"declarations","year":2019,"decision":"denied","control":"rights","code":"910500","status":403,"latency_us":412,"detail":"year 2019 is not covered by the declarations grant (2022, 2023)","admin":null}"#;

fn read(text: &str) -> TraceEvent {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("{e}: {text}"))
}

#[test]
fn records_in_the_current_format_are_written_back_byte_for_byte() {
    for text in [
        DATA_CALL,
        TOKEN_REFUSED,
        ADMIN_BEFORE_ACTOR,
        ADMIN_REFUSED,
        NOTICE_SENT,
        RELOAD_FAILED,
        SUMMARY,
    ] {
        let written = serde_json::to_string(&read(text)).unwrap();
        assert_eq!(written, text);
    }
    let listed: TraceRecord = serde_json::from_str(LISTED).unwrap();
    assert_eq!(serde_json::to_string(&listed).unwrap(), LISTED);
}

#[test]
fn the_fields_read_back_typed() {
    let data = read(DATA_CALL);
    assert_eq!(data.at, parse_time("2026-12-07T02:59:09.891Z").unwrap());
    assert_eq!(data.plane, Plane::Env(Environment::Sandbox));
    assert_eq!(data.ip, Some(Address::Ip("127.0.0.1".parse().unwrap())));
    assert_eq!(data.method, Some(Method::GET));
    assert_eq!(data.siren, Siren::parse("732829320").ok());
    assert_eq!(data.dataset, Some(Dataset::ComptesBancaires));
    let client = data.client_id.as_ref().map(|c| c.as_str());
    assert_eq!(client, Some("6739b7c7-f441-4a8a-b34c-0f7659949424"));

    let token = read(TOKEN_REFUSED);
    assert_eq!(token.code, Some(Code::OAuth(ErrorCode::InvalidClient)));
    assert_eq!(token.control, Some(Control::TokenEndpoint));
    assert_eq!(token.decision, Decision::Denied);

    let admin = read(ADMIN_BEFORE_ACTOR);
    assert_eq!(admin.actor, None);
    assert_eq!(admin.actor_name(), "O=opale-apim (dev PKI), CN=opale-admin");
    assert_eq!(read(ADMIN_REFUSED).code, Some(Code::Status(404)));

    let notice = read(NOTICE_SENT);
    assert_eq!(
        (notice.ip, notice.method, notice.path.as_str()),
        (None, None, "")
    );
    assert_eq!(notice.actor, Some(Actor::Notifier));
    let kind = notice.action.map(|a| a.kind);
    assert_eq!(kind, Some(ActionKind::NoticeSent));

    let summary = read(SUMMARY);
    let prefix = "2001:db8:1:2::".parse().unwrap();
    assert_eq!(summary.ip, Some(Address::Ipv6Prefix64(prefix)));
    assert_eq!(summary.summary.map(|s| s.minute), Some(summary.at));
}

/// Records written before system actions were typed (invented methods,
/// empty method and path, `actor_thumbprint` always present), with a
/// timestamp of any RFC 3339 precision and a code this build does not
/// know: they read; the fields written empty are left out when listed,
/// as they were before the record became typed.
#[test]
fn records_of_older_formats_still_read() {
    let notify = r#"{"time":"2026-12-06T23:00:00.000Z","plane":"admin","correlation_id":null,"client_id":null,"partner_id":null,"thumbprint":null,"ip":"","method":"NOTIFY","path":"/notify/certificate/abc","siren":null,"dataset":null,"year":null,"decision":"admitted","control":null,"code":null,"status":200,"latency_us":0,"detail":null,"admin":{"actor_subject":"notify","actor_thumbprint":"","before":null,"after":null}}"#;
    let e = read(notify);
    assert_eq!(e.method.as_ref().map(Method::as_str), Some("NOTIFY"));
    assert_eq!(e.actor_name(), "notify");
    let written = serde_json::to_string(&e).unwrap();
    assert_eq!(written, notify.replace(r#""actor_thumbprint":"","#, ""));

    let summary = r#"{"time":"2026-12-06T22:41:00.000Z","plane":"sandbox","correlation_id":null,"client_id":null,"partner_id":null,"thumbprint":null,"ip":"*","method":"","path":"","siren":null,"dataset":null,"year":null,"decision":"denied","control":null,"code":null,"status":0,"latency_us":0,"detail":"3 more","admin":null,"summary":{"minute":"2026-12-06T22:41:00.000Z","refused":603,"summarised":3,"codes":{"910100":3},"statuses":{"401":3}}}"#;
    let e = read(summary);
    assert_eq!((e.ip, e.method.clone()), (Some(Address::Others), None));
    let written = serde_json::to_string(&e).unwrap();
    assert_eq!(written, summary.replace(r#""method":"","path":"","#, ""));

    let precise = DATA_CALL.replace("02:59:09.891Z", "03:59:09.891234567+01:00");
    assert_eq!(read(&precise).at, read(DATA_CALL).at);
    let retired = DATA_CALL.replace(r#""code":null"#, r#""code":"910603""#);
    assert_eq!(read(&retired).code, Some(Code::Unknown("910603".into())));
    assert_eq!(Reason::from_code(910603), None);
}

#[test]
fn a_new_record_holds_what_it_writes() {
    let now = time::OffsetDateTime::now_utc();
    let e = TraceEvent::arriving(Plane::Admin, now, &Method::GET, "/");
    assert_eq!(e.at, millis(now));
    let back = read(&serde_json::to_string(&e).unwrap());
    assert_eq!(back, e);
}
