//! The admin listener's one route table: every path of the admin API
//! (`/admin/v1/...`, `/metrics`, each an operation of
//! `docs/openapi-admin.yaml`), of the dashboards and of the DataPass
//! webhook, with what each leads to and so who may call it ([`Target`]).
//! A `matchit` path tree serves the listener; the command line builds its
//! calls from the same rows ([`call`]). An unknown API path or method is a
//! 404 naming the call. Also the request-body readers the handlers share.

use super::Admin;
use super::trace;
use super::{
    ApiError, certs, environments, keys, notices, partners, reload, security, status, tokens,
};
use crate::admin::types::encode;
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

/// Every route of the admin listener, by the name the command line and
/// the code use for it (one per row of [`ROUTES`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// `GET /admin/v1/partners`.
    ListPartners,
    /// `POST /admin/v1/partners`.
    CreatePartner,
    /// `GET /admin/v1/partners/{id}`.
    ShowPartner,
    /// `PATCH /admin/v1/partners/{id}`.
    UpdatePartner,
    /// `GET /admin/v1/applications`.
    ListApplications,
    /// `POST /admin/v1/applications`.
    CreateApplication,
    /// `GET /admin/v1/applications/{client_id}`.
    ShowApplication,
    /// `PATCH /admin/v1/applications/{client_id}`.
    UpdateApplication,
    /// `GET /admin/v1/applications/{client_id}/certificates`.
    ListCertificates,
    /// `POST /admin/v1/applications/{client_id}/certificates`.
    AddCertificate,
    /// `DELETE /admin/v1/applications/{client_id}/certificates/{thumbprint}`.
    RevokeCertificate,
    /// `POST /admin/v1/applications/{client_id}/secret`.
    RotateSecret,
    /// `GET /admin/v1/admins`.
    ListAdmins,
    /// `POST /admin/v1/admins`.
    AddAdmin,
    /// `POST /admin/v1/tokens/introspect`.
    IntrospectToken,
    /// `POST /admin/v1/tokens/revoke`.
    RevokeToken,
    /// `GET /admin/v1/keys`.
    ListKeys,
    /// `POST /admin/v1/keys/rotate`.
    RotateKeys,
    /// `GET /admin/v1/environments`.
    ListEnvironments,
    /// `PUT /admin/v1/environments/{environment}/maintenance`.
    CloseEnvironment,
    /// `DELETE /admin/v1/environments/{environment}/maintenance`.
    OpenEnvironment,
    /// `GET /admin/v1/incidents`.
    ListIncidents,
    /// `POST /admin/v1/incidents`.
    OpenIncident,
    /// `POST /admin/v1/incidents/{id}/updates`.
    UpdateIncident,
    /// `GET /admin/v1/maintenances`.
    ListMaintenances,
    /// `POST /admin/v1/maintenances`.
    ScheduleMaintenance,
    /// `DELETE /admin/v1/maintenances/{id}`.
    CancelMaintenance,
    /// `GET /admin/v1/trace`.
    ListTrace,
    /// `GET /admin/v1/trace/export`.
    ExportTrace,
    /// `POST /admin/v1/trace/verify`.
    VerifyTrace,
    /// `GET /admin/v1/trace/checkpoint`.
    TraceCheckpoint,
    /// `POST /admin/v1/trace/purge`.
    PurgeTrace,
    /// `GET /admin/v1/notices`.
    ListNotices,
    /// `GET /admin/v1/stats`.
    Stats,
    /// `POST /admin/v1/reload`.
    Reload,
    /// `GET /admin/v1/security-events`.
    ListSecurityEvents,
    /// `POST /admin/v1/security-events/{id}/clear`.
    ClearSecurityEvent,
    /// `GET /metrics`.
    Metrics,
    /// `GET /dashboard`.
    DashboardPage,
    /// `GET /dashboard/usage`.
    UsagePage,
    /// `GET /dashboard/usage.csv`.
    UsageCsv,
    /// `POST /dashboard/partners/{id}/suspend`.
    SuspendPartnerPage,
    /// `POST /dashboard/partners/{id}/resume`.
    ResumePartnerPage,
    /// `GET /dashboard/partners/{id}/contacts`.
    ContactsPage,
    /// `POST /dashboard/partners/{id}/contacts`.
    SaveContactsPage,
    /// `GET /dashboard/applications/{client_id}`.
    ApplicationPage,
    /// `POST /dashboard/applications/{client_id}/secret`.
    RotateSecretPage,
    /// `POST /dashboard/applications/{client_id}/certificates`.
    IssueCertificatePage,
    /// `POST /dashboard/applications/{client_id}/certificates/{thumbprint}/revoke`.
    RevokeCertificatePage,
    /// `POST /datapass/webhook`.
    DatapassWebhook,
}

/// What a route leads to, and so who may call it.
#[derive(Clone, Copy)]
pub(super) enum Target {
    /// An admin API operation: a registered admin certificate, writes from
    /// this listener's own origin only; JSON.
    Api(Handler),
    /// A dashboard page or form: any registered certificate (the viewer
    /// decides what it shows); HTML.
    Dashboard(crate::dashboard::Page),
    /// The DataPass webhook: its HMAC signature, no certificate.
    Datapass,
}

/// Every route: name, path, method, target (a table: one line each). The
/// command line builds its calls from it ([`call`]), so a path is spelt
/// once.
#[rustfmt::skip]
const ROUTES: &[(Op, &str, Method, Target)] = {
    use Op::*;
    use Target::{Api, Dashboard, Datapass};
    use crate::dashboard::Page;
    &[
    (ListPartners,       "/admin/v1/partners",                                           Method::GET,    Api(op!(partners::list_partners))),
    (CreatePartner,      "/admin/v1/partners",                                           Method::POST,   Api(op!(partners::create_partner))),
    (ShowPartner,        "/admin/v1/partners/{id}",                                      Method::GET,    Api(op!(partners::show_partner))),
    (UpdatePartner,      "/admin/v1/partners/{id}",                                      Method::PATCH,  Api(op!(partners::update_partner))),
    (ListApplications,   "/admin/v1/applications",                                       Method::GET,    Api(op!(partners::list_applications))),
    (CreateApplication,  "/admin/v1/applications",                                       Method::POST,   Api(op!(partners::create_application))),
    (ShowApplication,    "/admin/v1/applications/{client_id}",                           Method::GET,    Api(op!(partners::show_application))),
    (UpdateApplication,  "/admin/v1/applications/{client_id}",                           Method::PATCH,  Api(op!(partners::update_application))),
    (ListCertificates,   "/admin/v1/applications/{client_id}/certificates",              Method::GET,    Api(op!(certs::list))),
    (AddCertificate,     "/admin/v1/applications/{client_id}/certificates",              Method::POST,   Api(op!(certs::add))),
    (RevokeCertificate,  "/admin/v1/applications/{client_id}/certificates/{thumbprint}", Method::DELETE, Api(op!(certs::revoke))),
    (RotateSecret,       "/admin/v1/applications/{client_id}/secret",                    Method::POST,   Api(op!(tokens::rotate_secret))),
    (ListAdmins,         "/admin/v1/admins",                                             Method::GET,    Api(op!(partners::list_admins))),
    (AddAdmin,           "/admin/v1/admins",                                             Method::POST,   Api(op!(certs::add_admin))),
    (IntrospectToken,    "/admin/v1/tokens/introspect",                                  Method::POST,   Api(op!(tokens::introspect))),
    (RevokeToken,        "/admin/v1/tokens/revoke",                                      Method::POST,   Api(op!(tokens::revoke))),
    (ListKeys,           "/admin/v1/keys",                                               Method::GET,    Api(op!(keys::list))),
    (RotateKeys,         "/admin/v1/keys/rotate",                                        Method::POST,   Api(op!(keys::rotate))),
    (ListEnvironments,   "/admin/v1/environments",                                       Method::GET,    Api(op!(environments::list))),
    (CloseEnvironment,   "/admin/v1/environments/{environment}/maintenance",             Method::PUT,    Api(op!(environments::close))),
    (OpenEnvironment,    "/admin/v1/environments/{environment}/maintenance",             Method::DELETE, Api(op!(environments::open))),
    (ListIncidents,      "/admin/v1/incidents",                                          Method::GET,    Api(op!(status::list_incidents))),
    (OpenIncident,       "/admin/v1/incidents",                                          Method::POST,   Api(op!(status::open_incident))),
    (UpdateIncident,     "/admin/v1/incidents/{id}/updates",                             Method::POST,   Api(op!(status::update_incident))),
    (ListMaintenances,   "/admin/v1/maintenances",                                       Method::GET,    Api(op!(status::list_maintenances))),
    (ScheduleMaintenance,"/admin/v1/maintenances",                                       Method::POST,   Api(op!(status::schedule))),
    (CancelMaintenance,  "/admin/v1/maintenances/{id}",                                  Method::DELETE, Api(op!(status::cancel))),
    (ListTrace,          "/admin/v1/trace",                                              Method::GET,    Api(op!(trace::list))),
    (ExportTrace,        "/admin/v1/trace/export",                                       Method::GET,    Api(op!(trace::export))),
    (VerifyTrace,        "/admin/v1/trace/verify",                                       Method::POST,   Api(op!(trace::verify))),
    (TraceCheckpoint,    "/admin/v1/trace/checkpoint",                                   Method::GET,    Api(op!(trace::checkpoint))),
    (PurgeTrace,         "/admin/v1/trace/purge",                                        Method::POST,   Api(op!(trace::purge))),
    (ListNotices,        "/admin/v1/notices",                                            Method::GET,    Api(op!(notices::list))),
    (Stats,              "/admin/v1/stats",                                              Method::GET,    Api(op!(trace::stats))),
    (Reload,             "/admin/v1/reload",                                             Method::POST,   Api(op!(reload::reload))),
    (ListSecurityEvents, "/admin/v1/security-events",                                    Method::GET,    Api(op!(security::list))),
    (ClearSecurityEvent, "/admin/v1/security-events/{id}/clear",                         Method::POST,   Api(op!(security::clear))),
    (Metrics,            "/metrics",                                                     Method::GET,    Api(op!(metrics))),
    (DashboardPage,      "/dashboard",                                                   Method::GET,    Dashboard(Page::Home)),
    (UsagePage,          "/dashboard/usage",                                             Method::GET,    Dashboard(Page::Usage)),
    (UsageCsv,           "/dashboard/usage.csv",                                         Method::GET,    Dashboard(Page::UsageCsv)),
    (SuspendPartnerPage, "/dashboard/partners/{id}/suspend",                             Method::POST,   Dashboard(Page::Suspend)),
    (ResumePartnerPage,  "/dashboard/partners/{id}/resume",                              Method::POST,   Dashboard(Page::Resume)),
    (ContactsPage,       "/dashboard/partners/{id}/contacts",                            Method::GET,    Dashboard(Page::Contacts)),
    (SaveContactsPage,   "/dashboard/partners/{id}/contacts",                            Method::POST,   Dashboard(Page::SaveContacts)),
    (ApplicationPage,    "/dashboard/applications/{client_id}",                          Method::GET,    Dashboard(Page::Application)),
    (RotateSecretPage,   "/dashboard/applications/{client_id}/secret",                   Method::POST,   Dashboard(Page::RotateSecret)),
    (IssueCertificatePage, "/dashboard/applications/{client_id}/certificates",           Method::POST,   Dashboard(Page::IssueCertificate)),
    (RevokeCertificatePage, "/dashboard/applications/{client_id}/certificates/{thumbprint}/revoke", Method::POST, Dashboard(Page::RevokeCertificate)),
    (DatapassWebhook,    crate::datapass::PATH,                                          Method::POST,   Datapass),
    ]
};

/// One path's methods and where each leads.
type Methods = Vec<(Method, Target)>;

/// The path tree, built once: each path leads to its methods' targets.
static ROUTER: LazyLock<Router<Methods>> = LazyLock::new(|| {
    let mut by_path: BTreeMap<&str, Methods> = BTreeMap::new();
    for (_, path, method, target) in ROUTES {
        by_path
            .entry(path)
            .or_default()
            .push((method.clone(), *target));
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

/// Where a request on the admin listener goes.
pub(super) enum Routed {
    /// A route of the table, with its path parameters (percent-decoded).
    Found(Target, Vec<(String, String)>),
    /// A path of the table that has no such method: the DataPass webhook
    /// answers it itself (405); an API path is a 404 naming the call.
    OtherMethod(Target),
    /// No route.
    Unknown,
}

/// Looks `req` up in the one route table.
pub(super) fn routed<B>(req: &Request<B>) -> Routed {
    let path = req.uri().path().trim_end_matches('/');
    let Ok(m) = ROUTER.at(if path.is_empty() { "/" } else { path }) else {
        return Routed::Unknown;
    };
    let Some((_, target)) = m.value.iter().find(|(method, _)| method == req.method()) else {
        return match m.value.first() {
            Some((_, target)) => Routed::OtherMethod(*target),
            None => Routed::Unknown,
        };
    };
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
    Routed::Found(*target, params)
}

/// Runs an admin API operation found by [`routed`].
pub(super) async fn run(
    admin: &Arc<Admin>,
    handler: Handler,
    params: Vec<(String, String)>,
    req: Request<RequestBody>,
) -> Answer {
    let admin = admin.clone();
    handler(Call { admin, req, params }).await
}

/// The method and path of `op` with its path parameters filled in, in
/// order, each percent-encoded (what the command line sends).
pub fn call(op: Op, params: &[&str]) -> (Method, String) {
    let Some((_, pattern, method, _)) = ROUTES.iter().find(|(o, ..)| *o == op) else {
        // Every Op has its row (unit test `every_op_has_one_row`).
        return (Method::GET, String::new());
    };
    let mut values = params.iter();
    let path = pattern
        .split('/')
        .map(|segment| match segment.starts_with('{') {
            true => values.next().map(|v| encode(v)).unwrap_or_default(),
            false => segment.to_owned(),
        })
        .collect::<Vec<_>>()
        .join("/");
    (method.clone(), path)
}

/// The 404 of an API path without the request's method, or of no route.
pub(super) fn not_found<B>(req: &Request<B>) -> ApiError {
    let (method, path) = (req.method(), req.uri().path());
    let trimmed = path.trim_end_matches('/');
    let message = if trimmed == "/admin/v1" || trimmed.starts_with("/admin/v1/") {
        format!("no admin call {method} {path}")
    } else {
        format!("no route for {path}")
    };
    ApiError::new(StatusCode::NOT_FOUND, None, message)
}

/// `GET /metrics`: Prometheus text exposition, encoded once from the one
/// registry (scrape-time series included, `crate::metrics::scrape`).
async fn metrics(c: Call) -> Answer {
    Ok(respond::bytes(
        StatusCode::OK,
        "text/plain; version=0.0.4; charset=utf-8",
        c.admin.metrics.render(),
    ))
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
    fn every_op_has_one_row() {
        for (op, ..) in ROUTES {
            assert_eq!(ROUTES.iter().filter(|(o, ..)| o == op).count(), 1, "{op:?}");
        }
        let (method, path) = call(Op::RevokeCertificate, &["c 1", "t/2"]);
        assert_eq!(method, Method::DELETE);
        assert_eq!(path, "/admin/v1/applications/c%201/certificates/t%2F2");
        assert_eq!(call(Op::ListPartners, &[]).1, "/admin/v1/partners");
    }

    #[test]
    fn every_operation_is_routed_once() {
        for (_, path, method, _) in ROUTES {
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
