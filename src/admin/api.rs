//! Routing of `/admin/v1/...` and `/metrics`: a `matchit` path tree whose
//! leaves hold one handler per method, each handler one operation of
//! `docs/openapi-admin.yaml`. An unknown path or method is a 404 naming
//! the call. Also the request-body readers the handlers share.

use super::Admin;
use super::{ApiError, certs, environments, notices, partners, reload, security, tokens, trace};
use crate::registry::RegistryError;
use crate::respond::{self, Body};
use crate::server::{BodyError, RequestBody};
use hyper::header::CONTENT_TYPE;
use hyper::{Method, Request, Response, StatusCode};
use matchit::Router;
use percent_encoding::percent_decode_str;
use serde::de::DeserializeOwned;
use serde_path_to_error::Segment;
use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, LazyLock};

/// Largest admin request body accepted (bytes).
pub const MAX_BODY: usize = 64 * 1024;

/// What a handler answers.
pub(super) type Answer = Result<Response<Body>, ApiError>;

/// One admin operation.
type Handler = fn(Call) -> Pin<Box<dyn Future<Output = Answer> + Send>>;

/// A routed request: the admin plane, the request and its path parameters
/// (percent-decoded).
pub(super) struct Call {
    /// The application state.
    pub admin: Arc<Admin>,
    /// The request (its body not yet read).
    pub req: Request<RequestBody>,
    params: Vec<(String, String)>,
}

impl Call {
    /// The path parameter `name` (`{id}` in the route); empty if the route
    /// has none of that name.
    pub fn param(&self, name: &str) -> &str {
        self.params
            .iter()
            .find(|(k, _)| k == name)
            .map_or("", |(_, v)| v.as_str())
    }

    /// The raw query string (empty if none).
    pub fn query(&self) -> &str {
        self.req.uri().query().unwrap_or("")
    }
}

/// A handler of the table: `op!(module::function)` where the function is
/// `async fn(Call) -> Answer`.
macro_rules! op {
    ($f:path) => {
        |c| Box::pin($f(c))
    };
}

/// Every operation: path, method, handler (a table: one line each).
#[rustfmt::skip]
const ROUTES: &[(&str, Method, Handler)] = &[
    ("/admin/v1/partners",                                           Method::GET,    op!(partners::list_partners)),
    ("/admin/v1/partners",                                           Method::POST,   op!(partners::create_partner)),
    ("/admin/v1/partners/{id}",                                      Method::GET,    op!(partners::show_partner)),
    ("/admin/v1/partners/{id}",                                      Method::PATCH,  op!(partners::update_partner)),
    ("/admin/v1/applications",                                       Method::GET,    op!(partners::list_applications)),
    ("/admin/v1/applications",                                       Method::POST,   op!(partners::create_application)),
    ("/admin/v1/applications/{client_id}",                           Method::GET,    op!(partners::show_application)),
    ("/admin/v1/applications/{client_id}",                           Method::PATCH,  op!(partners::update_application)),
    ("/admin/v1/applications/{client_id}/certificates",              Method::GET,    op!(certs::list)),
    ("/admin/v1/applications/{client_id}/certificates",              Method::POST,   op!(certs::add)),
    ("/admin/v1/applications/{client_id}/certificates/{thumbprint}", Method::DELETE, op!(certs::revoke)),
    ("/admin/v1/applications/{client_id}/secret",                    Method::POST,   op!(tokens::rotate_secret)),
    ("/admin/v1/admins",                                             Method::GET,    op!(partners::list_admins)),
    ("/admin/v1/admins",                                             Method::POST,   op!(certs::add_admin)),
    ("/admin/v1/tokens/introspect",                                  Method::POST,   op!(tokens::introspect)),
    ("/admin/v1/tokens/revoke",                                      Method::POST,   op!(tokens::revoke)),
    ("/admin/v1/environments",                                       Method::GET,    op!(environments::list)),
    ("/admin/v1/environments/{environment}/maintenance",             Method::PUT,    op!(environments::close)),
    ("/admin/v1/environments/{environment}/maintenance",             Method::DELETE, op!(environments::open)),
    ("/admin/v1/trace",                                              Method::GET,    op!(trace::list)),
    ("/admin/v1/trace/export",                                       Method::GET,    op!(trace::export)),
    ("/admin/v1/trace/verify",                                       Method::POST,   op!(trace::verify)),
    ("/admin/v1/trace/checkpoint",                                   Method::GET,    op!(trace::checkpoint)),
    ("/admin/v1/trace/purge",                                        Method::POST,   op!(trace::purge)),
    ("/admin/v1/notices",                                            Method::GET,    op!(notices::list)),
    ("/admin/v1/stats",                                              Method::GET,    op!(trace::stats)),
    ("/admin/v1/reload",                                             Method::POST,   op!(reload::reload)),
    ("/admin/v1/security-events",                                    Method::GET,    op!(security::list)),
    ("/admin/v1/security-events/{id}/clear",                         Method::POST,   op!(security::clear)),
    ("/metrics",                                                     Method::GET,    op!(metrics)),
];

/// The path tree, built once: each path leads to its methods' handlers.
static ROUTER: LazyLock<Router<Vec<(Method, Handler)>>> = LazyLock::new(|| {
    let mut by_path: BTreeMap<&str, Vec<(Method, Handler)>> = BTreeMap::new();
    for (path, method, handler) in ROUTES {
        by_path
            .entry(path)
            .or_default()
            .push((method.clone(), *handler));
    }
    let mut router = Router::new();
    for (path, methods) in by_path {
        // ROUTES is a constant table, checked by a unit test (every entry
        // routed exactly once): no input reaches this. Were it ever wrong,
        // the path would answer 404 and say why in the log.
        if let Err(e) = router.insert(path, methods) {
            tracing::error!(path, error = %e, "admin route not registered");
        }
    }
    router
});

/// Dispatches an authenticated admin request to its operation.
pub async fn route(admin: &Arc<Admin>, req: Request<RequestBody>) -> Answer {
    let path = req.uri().path().trim_end_matches('/').to_owned();
    let found = ROUTER.at(&path).ok().and_then(|m| {
        let (_, handler) = m.value.iter().find(|(method, _)| method == req.method())?;
        let params = m
            .params
            .iter()
            .map(|(k, v)| {
                (
                    k.to_owned(),
                    percent_decode_str(v).decode_utf8_lossy().into_owned(),
                )
            })
            .collect();
        Some((*handler, params))
    });
    match found {
        Some((handler, params)) => {
            let admin = admin.clone();
            handler(Call { admin, req, params }).await
        }
        None => Err(not_found(req.method(), req.uri().path(), &path)),
    }
}

/// The 404 of an unknown path, or of a method the path does not have.
fn not_found(method: &Method, path: &str, trimmed: &str) -> ApiError {
    let message = if trimmed == "/admin/v1" || trimmed.starts_with("/admin/v1/") {
        format!("no admin call {method} {path}")
    } else {
        format!("no route for {path}")
    };
    ApiError::new(StatusCode::NOT_FOUND, None, message)
}

/// `GET /metrics`: Prometheus text exposition.
async fn metrics(c: Call) -> Answer {
    Ok(respond::bytes(
        StatusCode::OK,
        "text/plain; version=0.0.4; charset=utf-8",
        with_store_metrics(
            c.admin.metrics.render(
                (c.admin.audit.stats(), c.admin.audit.intact()),
                &c.admin.registry.snapshot(),
            ),
            &c.admin.cluster,
            &c.admin.audit,
        ),
    ))
}

/// Adds the store's series (docs/contract.md §10) before the closing `# EOF`.
fn with_store_metrics(
    mut text: String,
    cluster: &crate::cluster::Cluster,
    audit: &crate::audit::Auditor,
) -> String {
    let extra = cluster.metrics_text() + &audit.shipping_metrics();
    match text.rfind("# EOF") {
        Some(at) => text.insert_str(at, &extra),
        None => text.push_str(&extra),
    }
    text
}

/// Runs a registry operation (which flushes to disk) off the async threads.
pub(super) async fn blocking<T: Send + 'static>(
    admin: &Arc<Admin>,
    op: impl FnOnce(&Admin) -> Result<T, RegistryError> + Send + 'static,
) -> Result<T, ApiError> {
    let admin = admin.clone();
    tokio::task::spawn_blocking(move || op(&admin))
        .await
        .map_err(|_| interrupted())?
        .map_err(ApiError::from)
}

/// The error of a blocking task that panicked or was cancelled.
pub(super) fn interrupted() -> ApiError {
    ApiError::new(
        StatusCode::INTERNAL_SERVER_ERROR,
        None,
        "the operation was interrupted",
    )
}

/// Reads a JSON body (at most [`MAX_BODY`] bytes) into `T`; errors name the
/// field (`grants[0].years`) where serde can tell which.
pub(super) async fn read_json<T: DeserializeOwned>(
    req: Request<RequestBody>,
) -> Result<T, ApiError> {
    if let Some(ct) = req.headers().get(CONTENT_TYPE) {
        let ct = ct.to_str().unwrap_or("");
        if !ct
            .trim_start()
            .to_ascii_lowercase()
            .starts_with("application/json")
        {
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                None,
                format!("expected Content-Type: application/json, got {ct:?}"),
            ));
        }
    }
    let bytes = read_limited(req, MAX_BODY).await?;
    parse_json(&bytes)
}

/// A JSON document into `T`, the parser of every admin request body: a
/// JSON object, unknown fields refused (the body types deny them); an
/// error is a 400 whose `field` is the path at fault (`grants[0].years`,
/// a missing field's own name) or `body` when serde cannot tell which.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    // Every body is a JSON object (docs/openapi-admin.yaml): serde would
    // also read a struct from an array of its fields in order.
    if bytes.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
        return Err(ApiError::bad_request("body", "expected a JSON object"));
    }
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value: T = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = known_path(e.path());
        let message = e.into_inner().to_string();
        ApiError::bad_request(&error_field(&path, &message), message)
    })?;
    de.end()
        .map_err(|e| ApiError::bad_request("body", format!("trailing data after JSON: {e}")))?;
    Ok(value)
}

/// Reads a body of at most `limit` bytes.
pub(super) async fn read_limited(
    req: Request<RequestBody>,
    limit: usize,
) -> Result<bytes::Bytes, ApiError> {
    req.into_body().read(limit).await.map_err(|e| {
        let status = match e {
            BodyError::TimedOut(_) => StatusCode::REQUEST_TIMEOUT,
            BodyError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            BodyError::Cut(_) => StatusCode::BAD_REQUEST,
        };
        ApiError::new(status, None, e.to_string())
    })
}

/// The path up to the first segment serde could not read (a key the text
/// broke off in, which `serde_path_to_error` shows as `?`): `grants[0].years`,
/// `.` for the document itself.
fn known_path(path: &serde_path_to_error::Path) -> String {
    let mut out = String::new();
    for segment in path {
        match segment {
            Segment::Seq { index } => out.push_str(&format!("[{index}]")),
            Segment::Map { key } | Segment::Enum { variant: key } => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(key);
            }
            Segment::Unknown => break,
        }
    }
    if out.is_empty() { ".".to_owned() } else { out }
}

/// The field a serde error is about: its path, completed with the name of
/// a missing field (serde reports those at the enclosing object).
fn error_field(path: &str, message: &str) -> String {
    let missing = message
        .strip_prefix("missing field `")
        .and_then(|rest| rest.split('`').next());
    match (path, missing) {
        (".", Some(name)) => name.to_owned(),
        (".", None) => "body".to_owned(),
        (p, Some(name)) => format!("{p}.{name}"),
        (p, None) => p.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_operation_is_routed_once() {
        for (path, method, _) in ROUTES {
            let concrete = path.replace('{', "x").replace('}', "");
            let m = ROUTER.at(&concrete).unwrap();
            let handlers = m.value.iter().filter(|(m, _)| m == method).count();
            assert_eq!(handlers, 1, "{method} {path}");
        }
        let m = ROUTER
            .at("/admin/v1/applications/c-1/certificates/t_2")
            .unwrap();
        assert_eq!(m.params.get("client_id"), Some("c-1"));
        assert_eq!(m.params.get("thumbprint"), Some("t_2"));
        assert!(ROUTER.at("/admin/v1/nothing").is_err());
        assert!(ROUTER.at("/admin/v1/partners/a/b").is_err());
    }
}
