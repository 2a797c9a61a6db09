//! Property tests of the parsers that read untrusted input through the
//! public API: SIREN, `annee`, `X-Correlation-ID`, the token request form,
//! access tokens, `Accept`, the admin API's JSON bodies and queries, CSR and
//! certificate PEM, and the TOML configuration. Each property states that
//! the parser never panics and either round-trips what a valid input means
//! or refuses with the error that names the fault.
//!
//! The default case count keeps the file fast in `cargo test`; run longer
//! with `PROPTEST_CASES=100000 cargo test --release --test parsers_prop`
//! (docs/testing.md).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use hyper::HeaderMap;
use hyper::header::{ACCEPT, HeaderValue};
use opale_apim::admin::parse_json;
use opale_apim::admin::types::{ApplicationQuery, CertificateRequest, PurgeRequest, TraceQuery};
use opale_apim::chain::hygiene::{self, CORRELATION_HEADER, Correlation};
use opale_apim::chain::{Reason, accepts_problem_json};
use opale_apim::config::{Config, ConfigError};
use opale_apim::domain::{Environment, Siren, SirenError, Thumbprint};
use opale_apim::oauth::{FormError, Keyring, MAX_FORM_BODY, TokenAuthority, parse_form};
use opale_apim::pki::{CertInfo, IssuingCa, PkiFiles, parse_certificate_chain};
use opale_apim::registry::ops::{NewApplication, NewPartner, PartnerPatch};
use proptest::prelude::*;
use proptest::test_runner::TestCaseError;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use std::path::Path;
use std::sync::OnceLock;

const FORM: Option<&str> = Some("application/x-www-form-urlencoded");

/// 1024 cases by default (the file runs in about a second in release); `PROPTEST_CASES`
/// overrides it.
fn config() -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(1024);
    ProptestConfig {
        // Failures print their minimal input; nothing is written beside the tests.
        failure_persistence: None,
        ..ProptestConfig::with_cases(cases)
    }
}

/// Text without U+FFFD, which the form parser reads as a decoding failure
/// (form_urlencoded's replacement for bad UTF-8).
fn text(max: usize) -> impl Strategy<Value = String> {
    proptest::string::string_regex(&format!("\\PC{{1,{max}}}"))
        .unwrap()
        .prop_map(|s| s.replace('\u{FFFD}', "?"))
}

/// Appends the Luhn check digit to eight digits.
fn with_luhn(body: [u8; 8]) -> String {
    let sum: u32 = body
        .iter()
        .rev()
        .enumerate()
        .map(|(i, d)| {
            let v = u32::from(*d);
            // From the right of the full number the check digit is undoubled,
            // so the body's rightmost digit is doubled.
            if i % 2 == 0 {
                let dbl = v * 2;
                if dbl > 9 { dbl - 9 } else { dbl }
            } else {
                v
            }
        })
        .sum();
    let check = (10 - sum % 10) % 10;
    body.iter()
        .map(|d| char::from(b'0' + d))
        .chain([char::from(b'0' + check as u8)])
        .collect()
}

fn eight_digits() -> impl Strategy<Value = [u8; 8]> {
    proptest::array::uniform8(0u8..10)
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn siren_with_a_luhn_digit_parses_back_to_its_digits(body in eight_digits()) {
        let s = with_luhn(body);
        let siren = Siren::parse(&s).unwrap();
        prop_assert_eq!(siren.as_str(), s.as_str());
        prop_assert_eq!(hygiene::siren(&s).unwrap(), siren);
    }

    #[test]
    fn siren_with_a_wrong_check_digit_is_a_checksum_error(body in eight_digits(), shift in 1u8..10) {
        let good = with_luhn(body);
        let last = good.as_bytes()[8] - b'0';
        let bad = format!("{}{}", &good[..8], (last + shift) % 10);
        prop_assert_eq!(Siren::parse(&bad), Err(SirenError::Checksum));
        prop_assert_eq!(hygiene::siren(&bad).unwrap_err().reason, Reason::SirenMalformed);
    }

    #[test]
    fn siren_refuses_any_other_text_by_its_fault(s in "\\PC{0,12}") {
        match Siren::parse(&s) {
            Ok(siren) => prop_assert_eq!(siren.as_str(), s.as_str()),
            Err(SirenError::Length(n)) => {
                prop_assert_eq!(n, s.chars().count());
                prop_assert_ne!(n, 9);
            }
            Err(SirenError::NotDigits) => prop_assert!(!s.bytes().all(|b| b.is_ascii_digit())),
            Err(SirenError::Checksum) => prop_assert!(s.bytes().all(|b| b.is_ascii_digit())),
        }
    }

    #[test]
    fn annee_of_four_digits_round_trips(year in 0i32..10000, before in "[a-z]{0,5}", after in "[a-z]{0,5}") {
        let q = format!("{before}=1&annee={year:04}&{after}=2");
        prop_assert_eq!(hygiene::annee(Some(&q), 2025), Ok(year));
    }

    #[test]
    fn annee_never_panics_and_refuses_with_its_code(q in "\\PC{0,40}") {
        if let Err(d) = hygiene::annee(Some(&q), 2025) {
            prop_assert_eq!(d.reason, Reason::AnneeMalformed);
        }
    }

    #[test]
    fn annee_other_than_four_digits_is_refused(v in "[0-9a-z]{0,8}") {
        prop_assume!(!(v.len() == 4 && v.bytes().all(|b| b.is_ascii_digit())));
        let d = hygiene::annee(Some(&format!("annee={v}")), 2025).unwrap_err();
        prop_assert_eq!(d.reason, Reason::AnneeMalformed);
    }

    #[test]
    fn correlation_id_accepts_a_uuid_formatted_any_way(n in any::<u128>(), form in 0usize..4, upper in any::<bool>(), pad in " {0,2}") {
        let id = uuid::Uuid::from_u128(n);
        let text = match form {
            0 => id.hyphenated().to_string(),
            1 => id.simple().to_string(),
            2 => id.braced().to_string(),
            _ => id.urn().to_string(),
        };
        let text = if upper { text.to_uppercase().replace("URN:UUID:", "urn:uuid:") } else { text };
        let mut h = HeaderMap::new();
        h.insert(CORRELATION_HEADER, HeaderValue::from_str(&format!("{pad}{text}{pad}")).unwrap());
        let read = Correlation::read(&h);
        prop_assert_eq!(read.require(), Ok(text.as_str()));
        prop_assert_eq!(read.echo(), text);
    }

    #[test]
    fn correlation_id_of_arbitrary_bytes_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..120)) {
        let Ok(value) = HeaderValue::from_bytes(&bytes) else { return Ok(()) };
        let mut h = HeaderMap::new();
        h.insert(CORRELATION_HEADER, value);
        let read = Correlation::read(&h);
        match &read {
            Correlation::Valid(id) => prop_assert!(uuid::Uuid::try_parse(id).is_ok()),
            Correlation::Malformed(shown) => {
                prop_assert!(shown.chars().count() <= 64);
                prop_assert_eq!(read.require().unwrap_err().reason, Reason::CorrelationId);
            }
            Correlation::Missing => prop_assert!(false, "the header is present"),
        }
    }

    #[test]
    fn token_form_round_trips_distinct_parameters(
        params in proptest::collection::btree_map("[a-z_]{1,12}", text(20), 0..6)
    ) {
        let body: String = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(params.iter())
            .finish();
        prop_assume!(body.len() <= MAX_FORM_BODY);
        prop_assert_eq!(parse_form(FORM, body.as_bytes()).unwrap(), params);
    }

    #[test]
    fn token_form_of_arbitrary_bytes_never_panics(body in proptest::collection::vec(any::<u8>(), 0..200), ct in "\\PC{0,40}") {
        match parse_form(Some(&ct), &body) {
            Ok(params) => prop_assert!(params.values().all(|v| !v.is_empty())),
            Err(FormError::ContentType) => {
                prop_assert_ne!(ct.split(';').next().unwrap().trim().to_ascii_lowercase(), "application/x-www-form-urlencoded");
            }
            Err(_) => {}
        }
        if std::str::from_utf8(&body).is_err() {
            prop_assert_eq!(parse_form(FORM, &body), Err(FormError::NotUtf8));
        }
    }

    #[test]
    fn accept_finds_problem_json_among_any_media(others in proptest::collection::vec("[a-z]{1,8}/[a-z+.]{1,10}(;q=0\\.[0-9])?", 0..4), at in 0usize..5, case in any::<bool>()) {
        let mut media = others.clone();
        let problem = if case { "APPLICATION/Problem+JSON; q=1" } else { "application/problem+json" };
        media.insert(at.min(media.len()), problem.to_owned());
        let mut h = HeaderMap::new();
        h.insert(ACCEPT, HeaderValue::from_str(&media.join(" , ")).unwrap());
        prop_assert!(accepts_problem_json(&h));
    }

    #[test]
    fn accept_of_arbitrary_bytes_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..80)) {
        let Ok(value) = HeaderValue::from_bytes(&bytes) else { return Ok(()) };
        let mut h = HeaderMap::new();
        h.insert(ACCEPT, value);
        let found = accepts_problem_json(&h);
        let text = String::from_utf8_lossy(&bytes).to_ascii_lowercase();
        prop_assert!(!found || text.contains("application/problem+json"));
    }

    #[test]
    fn access_token_of_arbitrary_text_is_refused_without_panic(token in "\\PC{0,300}", parts in proptest::collection::vec("[A-Za-z0-9_-]{0,60}", 3)) {
        let authority = authority();
        prop_assert!(authority.decode(&token, 1_800_000_000).is_err());
        prop_assert!(authority.decode(&parts.join("."), 1_800_000_000).is_err());
    }

    #[test]
    fn access_token_round_trips_and_a_changed_byte_is_refused(client in "[a-z0-9-]{1,36}", at in any::<prop::sample::Index>(), by in 1u8..26) {
        let authority = authority();
        let thumbprint = Thumbprint::of_der(client.as_bytes());
        let (token, claims) = authority.mint(&client, "declarations", &thumbprint, 1_800_000_000).unwrap();
        let back = authority.decode(&token, 1_800_000_001).unwrap();
        prop_assert_eq!(&back.client_id, &client);
        prop_assert_eq!(back.jti, claims.jti);
        let mut bytes = token.into_bytes();
        let i = at.index(bytes.len());
        let c = bytes[i];
        prop_assume!(c.is_ascii_alphanumeric());
        bytes[i] = if c.is_ascii_digit() { b'0' + (c - b'0' + by) % 10 } else { b'a' + (c.to_ascii_lowercase() - b'a' + by) % 26 };
        prop_assume!(bytes[i] != c);
        let forged = String::from_utf8(bytes).unwrap();
        prop_assert!(authority.decode(&forged, 1_800_000_001).is_err(), "{forged}");
    }

    #[test]
    fn admin_json_bodies_parse_back_or_name_their_fault(
        bytes in proptest::collection::vec(any::<u8>(), 0..200),
        text in "\\PC{0,200}",
        object in json_object(),
    ) {
        for input in [bytes.as_slice(), text.as_bytes(), object.as_slice()] {
            admin_body::<NewPartner>(input, &["siren", "name", "contacts"])?;
            admin_body::<PartnerPatch>(input, &["status", "name", "contacts"])?;
            admin_body::<NewApplication>(input, APPLICATION_FIELDS)?;
            admin_body::<PurgeRequest>(input, &["before"])?;
            admin_body::<CertificateRequest>(input, &["csr", "certificate"])?;
        }
    }

    #[test]
    fn admin_queries_round_trip(partner in proptest::option::of("\\PC{0,20}"), code in proptest::option::of("\\PC{0,20}"), from in proptest::option::of("\\PC{0,30}")) {
        let q = TraceQuery { partner_id: partner.clone(), code, from, ..TraceQuery::default() };
        prop_assert_eq!(TraceQuery::parse(&q.to_query()), q);
        let a = ApplicationQuery { partner_id: partner };
        prop_assert_eq!(ApplicationQuery::parse(&a.to_query()), a);
    }

    #[test]
    fn csr_and_certificate_pem_of_arbitrary_text_are_refused(text in "\\PC{0,400}", b64 in "[A-Za-z0-9+/]{0,200}={0,2}") {
        let ca = issuing_ca();
        let now = time::OffsetDateTime::now_utc();
        let wrapped_csr = format!("-----BEGIN CERTIFICATE REQUEST-----\n{b64}\n-----END CERTIFICATE REQUEST-----\n");
        let wrapped_cert = format!("-----BEGIN CERTIFICATE-----\n{b64}\n-----END CERTIFICATE-----\n");
        for input in [&text, &wrapped_csr] {
            prop_assert!(ca.issue(input, now).is_err());
        }
        for input in [&text, &wrapped_cert] {
            prop_assert!(parse_certificate_chain(input).map(|c| c.is_empty()).unwrap_or(true));
        }
    }

    #[test]
    fn a_valid_csr_is_issued_with_its_subject_and_the_pem_round_trips(cn in "[A-Za-z0-9]([A-Za-z0-9 ._-]{0,38}[A-Za-z0-9])?") {
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params.distinguished_name.push(rcgen::DnType::CommonName, cn.clone());
        let csr = params.serialize_request(&key).unwrap().pem().unwrap();
        let der = issuing_ca().issue(&csr, time::OffsetDateTime::now_utc()).unwrap();
        let info = CertInfo::from_der(&der).unwrap();
        prop_assert_eq!(info.subject, format!("CN={cn}"));
        let chain = parse_certificate_chain(&opale_apim::pki::pem_encode(&der)).unwrap();
        prop_assert_eq!(chain[0].as_ref(), der.as_ref());
    }

    #[test]
    fn config_parses_to_what_it_says_or_names_key_and_line(text in "\\PC{0,300}", doc in toml_document()) {
        config_text(&text)?;
        config_text(&doc)?;
    }

    #[test]
    fn config_with_valid_listeners_parses_them(a in 1024u16..20000, b in 20000u16..40000, c in 40000u16..65535) {
        let text = format!(
            "data_dir = \"d\"\ncerts_dir = \"c\"\n[sandbox]\nlisten = \"127.0.0.1:{a}\"\n[production]\nlisten = \"127.0.0.1:{b}\"\nupstream = \"http://127.0.0.1:9\"\n[admin]\nlisten = \"127.0.0.1:{c}\"\n"
        );
        let config = Config::parse(&text, Path::new("prop.toml")).unwrap();
        prop_assert_eq!(config.sandbox.listen.port(), a);
        prop_assert_eq!(config.admin.listen.port(), c);
    }
}

/// One sandbox token authority for the whole file (key generation is slow).
fn authority() -> &'static TokenAuthority {
    static AUTHORITY: OnceLock<(tempfile::TempDir, TokenAuthority)> = OnceLock::new();
    &AUTHORITY
        .get_or_init(|| {
            let dir = tempfile::tempdir().unwrap();
            let store = opale_apim::store::SledStore::open(&dir.path().join("sled")).unwrap();
            let now = time::OffsetDateTime::now_utc();
            // The store is async; this is the one call made to it here.
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            let keys = rt.block_on(Keyring::open(
                std::sync::Arc::new(store),
                &dir.path().join("keys"),
                "node-1",
                600,
                now,
            ));
            let a = TokenAuthority::new(
                Environment::Sandbox,
                "https://localhost:8443".into(),
                600,
                std::sync::Arc::new(keys.unwrap()),
            );
            (dir, a)
        })
        .1
}

/// The sandbox issuing CA of a PKI generated once for the file.
fn issuing_ca() -> &'static IssuingCa {
    static CA: OnceLock<(tempfile::TempDir, IssuingCa)> = OnceLock::new();
    &CA.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let files = PkiFiles::new(dir.path());
        opale_apim::pki::init(&files, false).unwrap();
        let ca = IssuingCa::load(&files, Environment::Sandbox).unwrap();
        (dir, ca)
    })
    .1
}

/// The fields of `NewApplication`, the largest admin body.
const APPLICATION_FIELDS: &[&str] = &[
    "partner_id",
    "name",
    "environment",
    "grants",
    "valid_from",
    "valid_until",
    "ip_allowlist",
    "quota_per_minute",
];

/// Field names of the admin bodies (nested ones too) and a few others:
/// generated objects then parse now and then, and fail by any fault.
const JSON_KEYS: &[&str] = &[
    "siren",
    "name",
    "contacts",
    "status",
    "partner_id",
    "environment",
    "grants",
    "valid_from",
    "valid_until",
    "ip_allowlist",
    "quota_per_minute",
    "before",
    "csr",
    "certificate",
    "nom",
    "email",
    "telephone",
    "scope",
    "years",
    "x",
    "Name",
    "?",
    "",
];

/// A JSON value of any type, a few levels deep, with strings that look
/// like what the fields hold (SIREN, dates, years, CIDR).
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        (1990i64..2100).prop_map(Value::from),
        "[0-9]{9}|20[0-9]{2}-0[1-9]-[0-2][1-9]|N(-[1-3])?(\\.\\.N)?|127\\.0\\.0\\.1/32|[a-z ]{0,10}"
            .prop_map(Value::from),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..3).prop_map(Value::Array),
            proptest::collection::btree_map(json_key(), inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

fn json_key() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => proptest::sample::select(JSON_KEYS).prop_map(str::to_owned),
        1 => "[a-z_]{1,8}",
    ]
}

/// A JSON object shaped like one of the admin bodies: each of its fields
/// with a plausible value (or any value), now and then left out, plus now
/// and then a key from elsewhere. Serialised.
fn json_object() -> impl Strategy<Value = Vec<u8>> {
    let text = || "[a-zA-Z0-9 .:/-]{0,12}".prop_map(Value::from);
    let contact = (text(), text(), proptest::option::of(text())).prop_map(|(n, e, t)| {
        let mut c = serde_json::json!({"nom": n, "email": e});
        if let Some(t) = t {
            c["telephone"] = t;
        }
        c
    });
    let contacts = proptest::collection::btree_map("[a-z]{1,9}", contact, 0..3)
        .prop_map(|m| Value::Object(m.into_iter().collect()));
    let years = proptest::collection::vec(
        prop_oneof![
            (1990i64..2100).prop_map(Value::from),
            "20[0-9]{2}(\\.\\.20[0-9]{2})?|N(-[1-3])?(\\.\\.N)?".prop_map(Value::from),
        ],
        0..3,
    );
    let grant = (text(), years).prop_map(|(s, y)| serde_json::json!({"scope": s, "years": y}));
    let template: Vec<(&'static str, BoxedStrategy<Value>)> = vec![
        ("siren", "[0-9]{9}".prop_map(Value::from).boxed()),
        ("name", text().boxed()),
        ("contacts", contacts.boxed()),
        ("status", "active|suspended|x".prop_map(Value::from).boxed()),
        ("partner_id", text().boxed()),
        (
            "environment",
            "sandbox|production".prop_map(Value::from).boxed(),
        ),
        (
            "grants",
            proptest::collection::vec(grant, 0..3)
                .prop_map(Value::from)
                .boxed(),
        ),
        (
            "valid_from",
            "20[0-9]{2}-0[1-9]-[0-2][1-9]".prop_map(Value::from).boxed(),
        ),
        (
            "valid_until",
            "20[0-9]{2}-0[1-9]-[0-2][1-9]".prop_map(Value::from).boxed(),
        ),
        (
            "ip_allowlist",
            proptest::collection::vec(text(), 0..2)
                .prop_map(Value::from)
                .boxed(),
        ),
        (
            "quota_per_minute",
            (0u32..2_000_000).prop_map(Value::from).boxed(),
        ),
        ("before", text().boxed()),
        ("csr", text().boxed()),
        ("certificate", text().boxed()),
    ];
    let bodies: [&[&str]; 5] = [
        &["siren", "name", "contacts"],
        &["status", "name", "contacts"],
        APPLICATION_FIELDS,
        &["before"],
        &["csr", "certificate"],
    ];
    let one_field = move |name: &'static str| {
        let plausible = template
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, s)| s.clone());
        let value =
            prop_oneof![8 => plausible.unwrap_or_else(|| json_value().boxed()), 1 => json_value()];
        (proptest::bool::weighted(0.9), value).prop_map(move |(keep, v)| keep.then_some((name, v)))
    };
    proptest::sample::select(bodies.to_vec())
        .prop_flat_map(move |fields| {
            let fields: Vec<_> = fields.iter().map(|f| one_field(f)).collect();
            let extra = proptest::option::weighted(0.1, (json_key(), json_value()));
            (fields, extra)
        })
        .prop_map(|(fields, extra)| {
            let mut object: serde_json::Map<String, Value> = fields
                .into_iter()
                .flatten()
                .map(|(k, v)| (k.to_owned(), v))
                .collect();
            if let Some((k, v)) = extra {
                object.insert(k, v);
            }
            serde_json::to_vec(&Value::Object(object)).unwrap()
        })
}

/// The contract of `admin::parse_json` (docs/contract.md §6, the admin API's
/// error body) for one body type with top-level `fields`: a body it accepts
/// is a JSON object of known fields whose value re-serialises to what was
/// sent and parses back to itself; a body it refuses is a 400 whose `field`
/// is `body` or a path starting at a field the object holds (or, for a
/// missing field, names it), with a message saying what is wrong.
fn admin_body<T: DeserializeOwned + Serialize>(
    input: &[u8],
    fields: &[&str],
) -> Result<(), TestCaseError> {
    let sent = serde_json::from_slice::<Value>(input).ok();
    match parse_json::<T>(input) {
        Ok(parsed) => {
            let Some(Value::Object(sent)) = sent else {
                return Err(TestCaseError::fail(
                    "a body that is not a JSON object was accepted",
                ));
            };
            let out = serde_json::to_value(&parsed).unwrap();
            for (key, value) in &sent {
                prop_assert!(
                    fields.contains(&key.as_str()),
                    "unknown field {key:?} accepted"
                );
                // Scalars come back as sent; nested values are normalised
                // (a year "2023" is written 2023), so they are checked below.
                if value.is_string() || value.is_number() || value.is_boolean() {
                    prop_assert_eq!(&out[key], value, "field {}", key);
                }
            }
            let again = parse_json::<T>(&serde_json::to_vec(&out).unwrap());
            let again = again.map_err(|e| TestCaseError::fail(format!("{out} refused: {e:?}")))?;
            prop_assert_eq!(serde_json::to_value(&again).unwrap(), out);
        }
        Err(e) => {
            prop_assert_eq!(e.status, hyper::StatusCode::BAD_REQUEST);
            prop_assert!(!e.message.is_empty());
            let field = e.field.clone().unwrap_or_default();
            let head = field.split(['.', '[']).next().unwrap_or_default();
            // serde's messages: "missing field `X` at line ..." and "unknown
            // field `X`, expected ..." (X may itself hold a backquote).
            let missing = e
                .message
                .strip_prefix("missing field `")
                .and_then(|m| m.rsplit_once("` at line "))
                .map(|(name, _)| name);
            let unknown = e
                .message
                .strip_prefix("unknown field `")
                .and_then(|m| m.rsplit_once("`, expected "))
                .map(|(name, _)| name);
            let object = sent.as_ref().and_then(Value::as_object);
            if field == "body" {
                // Not an object, or a fault of the whole document (an
                // unknown field named "" has no path of its own).
                prop_assert!(
                    missing.is_none() && unknown.is_none_or(str::is_empty),
                    "{:?}",
                    e
                );
                return Ok(());
            }
            let Some(object) = object else {
                // Not JSON: the fault is located in the text, and the path
                // starts at a field whose name was sent.
                prop_assert!(sent.is_none() && e.message.contains(" at line "), "{:?}", e);
                let named = |name: &str| input.windows(name.len()).any(|w| w == name.as_bytes());
                match missing.or(unknown) {
                    Some(name) => {
                        let at = format!(".{name}");
                        prop_assert!(field == name || field.ends_with(&at), "{:?}", e);
                    }
                    None => prop_assert!(fields.contains(&head) && named(head), "{:?}", e),
                }
                return Ok(());
            };
            let top = !field.contains(['.', '[']);
            match (missing, unknown) {
                // Missing: named by the field; at the top, indeed not sent.
                (Some(name), _) if top => {
                    prop_assert!(field == name && !object.contains_key(name), "{:?}", e)
                }
                (Some(name), _) => prop_assert!(field.ends_with(&format!(".{name}")), "{:?}", e),
                // Unknown: named by the field; at the top, sent and not a field.
                (_, Some(name)) if top => {
                    prop_assert!(
                        field == name && object.contains_key(name) && !fields.contains(&name),
                        "{:?}",
                        e
                    );
                }
                (_, Some(name)) => prop_assert!(field.ends_with(&format!(".{name}")), "{:?}", e),
                // A wrong value: the path starts at a field that was sent.
                _ => prop_assert!(
                    fields.contains(&head) && object.contains_key(head),
                    "{:?}",
                    e
                ),
            }
            if !top {
                prop_assert!(
                    fields.contains(&head) && object.contains_key(head),
                    "{:?}",
                    e
                );
            }
        }
    }
    Ok(())
}

/// The top-level tables and keys of the configuration.
const CONFIG_SECTIONS: &[&str] = &[
    "data_dir",
    "certs_dir",
    "tls",
    "sandbox",
    "production",
    "admin",
    "oauth",
    "audit",
    "log",
    "limits",
    "datapass",
    "quota",
    "abuse",
    "store",
    "cluster",
    "notify",
    "status",
];

/// A TOML document of sections and keys of the configuration (and a few
/// it does not have), with values of every type: it parses now and then,
/// and fails by every fault.
fn toml_document() -> impl Strategy<Value = String> {
    let section = prop_oneof![
        4 => proptest::sample::select(&["sandbox", "production", "admin", "tls", "log", "oauth", "limits"][..]),
        1 => proptest::sample::select(&["sandbox2", "x"][..]),
    ];
    let key = proptest::sample::select(
        &[
            "listen",
            "upstream",
            "crls",
            "public_url",
            "reject_at_handshake",
            "filter",
            "token_lifetime_secs",
            "max_body_bytes",
            "format",
            "y",
        ][..],
    );
    let value = prop_oneof![
        "\"127\\.0\\.0\\.1:[0-9]{1,5}\"",
        "\"http://127\\.0\\.0\\.1:9\"",
        "\"[a-z:/. ]{0,10}\"",
        "[0-9]{1,6}",
        "true|false",
        "\\[\\]|\\[\"a\"\\]",
    ];
    let table = (section, proptest::collection::vec((key, value), 0..4));
    proptest::collection::vec(table, 0..4).prop_map(|tables| {
        let mut text = String::new();
        for (section, keys) in tables {
            text.push_str(&format!("[{section}]\n"));
            for (key, value) in keys {
                text.push_str(&format!("{key} = {value}\n"));
            }
        }
        text
    })
}

/// The contract of `Config::parse` (docs/contract.md §6, configuration):
/// text it accepts is TOML of known sections only, and a file with none
/// is the built-in defaults; text it refuses is a syntax error exactly
/// when it is not TOML, and every error names a key (its first part a
/// section the text has, except a syntax error) and, for a parse error, a
/// line of the text.
fn config_text(text: &str) -> Result<(), TestCaseError> {
    let toml = toml::from_str::<toml::Table>(text);
    match Config::parse(text, Path::new("prop.toml")) {
        Ok(config) => {
            let table =
                toml.map_err(|e| TestCaseError::fail(format!("not TOML yet accepted: {e}")))?;
            for key in table.keys() {
                prop_assert!(
                    CONFIG_SECTIONS.contains(&key.as_str()),
                    "unknown {key:?} accepted"
                );
            }
            if table.is_empty() {
                let defaults = Config::parse("", Path::new("prop.toml")).unwrap();
                prop_assert_eq!(format!("{config:?}"), format!("{defaults:?}"));
            }
            if let Some(listen) = table
                .get("sandbox")
                .and_then(|s| s.get("listen"))
                .and_then(|l| l.as_str())
            {
                prop_assert_eq!(Ok(config.sandbox.listen), listen.parse());
            }
        }
        Err(ConfigError::Parse {
            path,
            key,
            line,
            message,
        }) => {
            prop_assert_eq!(path, Path::new("prop.toml"));
            prop_assert!(!message.is_empty());
            prop_assert!(
                (1..=text.matches('\n').count() + 1).contains(&line),
                "line {line} of {text:?}"
            );
            if key == "(syntax)" {
                prop_assert!(toml.is_err(), "TOML refused as a syntax error: {message}");
            } else {
                let table = toml.map_err(|e| {
                    TestCaseError::fail(format!("{key}: {message} for non-TOML: {e}"))
                })?;
                // The key starts at a section the text has (an unknown one
                // is said so), and its line shows the key's last part: the
                // key itself, or the header of a table missing a key.
                let head = key.split(['.', '[']).next().unwrap_or_default();
                prop_assert!(table.contains_key(head), "{key} (line {line}): {message}");
                if !CONFIG_SECTIONS.contains(&head) {
                    prop_assert!(message.starts_with("unknown field"), "{key}: {message}");
                }
                let last = key.rsplit('.').next().unwrap_or_default();
                let shown = text.lines().nth(line - 1).unwrap_or_default();
                prop_assert!(
                    shown.contains(last),
                    "{key} (line {line}: {shown:?}): {message}"
                );
            }
        }
        Err(ConfigError::Invalid { key, message }) => {
            prop_assert!(!message.is_empty());
            let head = key.split('.').next().unwrap_or_default();
            let table = toml
                .map_err(|e| TestCaseError::fail(format!("{key}: {message} for non-TOML: {e}")))?;
            prop_assert!(table.contains_key(head), "{key}: {message}");
        }
        Err(e) => prop_assert!(false, "{e}"),
    }
    Ok(())
}
