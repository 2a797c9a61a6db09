//! Routing of `/admin/v1/...` and the partner and application calls.

use super::{ApiError, certs, tokens, trace};
use crate::app::App;
use crate::registry::ops::{ApplicationPatch, NewApplication, NewPartner, PartnerPatch};
use crate::registry::{Application, RegistryError};
use crate::respond::{self, Body};
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use hyper::header::CONTENT_TYPE;
use hyper::{Method, Request, Response, StatusCode};
use serde::de::DeserializeOwned;
use serde_json::Value;
use std::sync::Arc;
use time::OffsetDateTime;

/// Largest admin request body accepted (bytes).
pub const MAX_BODY: usize = 64 * 1024;

/// Dispatches an authenticated admin request.
pub async fn route(app: &Arc<App>, req: Request<Incoming>) -> Result<Response<Body>, ApiError> {
    let method = req.method().clone();
    let path = req.uri().path().to_owned();
    let query = req.uri().query().unwrap_or("").to_owned();
    let segs: Vec<&str> = path.trim_end_matches('/').split('/').skip(1).collect();
    let snap = || app.registry.snapshot();
    match (&method, segs.as_slice()) {
        (&Method::GET, ["admin", "v1", "partners"]) => {
            let s = snap();
            let mut list: Vec<_> = s.partners.values().collect();
            list.sort_by_key(|a| a.created_at);
            Ok(respond::json(StatusCode::OK, &list))
        }
        (&Method::POST, ["admin", "v1", "partners"]) => {
            let input: NewPartner = read_json(req).await?;
            let now = OffsetDateTime::now_utc();
            let p = blocking(app, move |app| app.registry.create_partner(input, now)).await?;
            Ok(respond::json(StatusCode::CREATED, &p))
        }
        (&Method::GET, ["admin", "v1", "partners", id]) => {
            let s = snap();
            let partner = s.partner("id", id)?;
            let mut apps: Vec<&Application> = s
                .applications
                .values()
                .filter(|a| a.partner_id == partner.id)
                .collect();
            apps.sort_by_key(|a| a.created_at);
            let mut body = to_value(partner);
            body["applications"] = to_value(&apps);
            Ok(respond::json(StatusCode::OK, &body))
        }
        (&Method::PATCH, ["admin", "v1", "partners", id]) => {
            let id = (*id).to_owned();
            let patch: PartnerPatch = read_json(req).await?;
            let p = blocking(app, move |app| app.registry.update_partner(&id, patch)).await?;
            Ok(respond::json(StatusCode::OK, &p))
        }
        (&Method::GET, ["admin", "v1", "applications"]) => {
            let s = snap();
            let partner = query_param(&query, "partner_id");
            let mut list: Vec<&Application> = s
                .applications
                .values()
                .filter(|a| {
                    partner
                        .as_deref()
                        .is_none_or(|p| a.partner_id.as_str() == p)
                })
                .collect();
            list.sort_by_key(|a| a.created_at);
            Ok(respond::json(StatusCode::OK, &list))
        }
        (&Method::POST, ["admin", "v1", "applications"]) => {
            let input: NewApplication = read_json(req).await?;
            let now = OffsetDateTime::now_utc();
            let created =
                blocking(app, move |app| app.registry.create_application(input, now)).await?;
            let mut body = to_value(&created.application);
            body["client_secret"] = Value::String(created.client_secret);
            Ok(respond::json(StatusCode::CREATED, &body))
        }
        (&Method::GET, ["admin", "v1", "applications", id]) => {
            let s = snap();
            let app_rec = s.application("client_id", id)?;
            let mut body = to_value(app_rec);
            body["certificates"] = to_value(&s.certificates_of(&app_rec.client_id));
            Ok(respond::json(StatusCode::OK, &body))
        }
        (&Method::PATCH, ["admin", "v1", "applications", id]) => {
            let id = (*id).to_owned();
            let patch: ApplicationPatch = read_json(req).await?;
            let a = blocking(app, move |app| app.registry.update_application(&id, patch)).await?;
            Ok(respond::json(StatusCode::OK, &a))
        }
        (&Method::GET, ["admin", "v1", "applications", id, "certificates"]) => {
            let s = snap();
            let app_rec = s.application("client_id", id)?;
            Ok(respond::json(
                StatusCode::OK,
                &s.certificates_of(&app_rec.client_id),
            ))
        }
        (&Method::POST, ["admin", "v1", "applications", id, "certificates"]) => {
            let id = (*id).to_owned();
            let input = read_json(req).await?;
            certs::add(app, &id, input).await
        }
        (&Method::DELETE, ["admin", "v1", "applications", id, "certificates", thumb]) => {
            let (id, thumb) = ((*id).to_owned(), (*thumb).to_owned());
            let now = OffsetDateTime::now_utc();
            blocking(app, move |app| {
                app.registry.revoke_certificate(&id, &thumb, now)
            })
            .await?;
            Ok(respond::empty(StatusCode::NO_CONTENT))
        }
        (&Method::POST, ["admin", "v1", "applications", id, "secret"]) => {
            tokens::rotate_secret(app, (*id).to_owned()).await
        }
        (&Method::POST, ["admin", "v1", "tokens", action @ ("introspect" | "revoke")]) => {
            let action = *action;
            let content_type = req
                .headers()
                .get(CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned);
            let body = read_limited(req, crate::oauth::MAX_FORM_BODY).await?;
            let result = if action == "introspect" {
                tokens::introspect(app, content_type.as_deref(), &body)
            } else {
                tokens::revoke(app, content_type.as_deref(), &body).await
            };
            result.or_else(|e| {
                if e.status == StatusCode::BAD_REQUEST {
                    Ok(respond::json(e.status, &tokens::oauth_error_body(&e)))
                } else {
                    Err(e)
                }
            })
        }
        (&Method::GET, ["admin", "v1", "environments"]) => {
            let state: Vec<_> = crate::domain::Environment::ALL
                .iter()
                .map(|e| serde_json::json!({"environment": e, "maintenance": app.availability.maintenance(*e).as_deref()}))
                .collect();
            Ok(respond::json(StatusCode::OK, &state))
        }
        (
            method @ (&Method::PUT | &Method::DELETE),
            ["admin", "v1", "environments", env, "maintenance"],
        ) => {
            let env = crate::domain::Environment::parse(env).ok_or_else(|| {
                ApiError::new(
                    StatusCode::NOT_FOUND,
                    Some("environment"),
                    format!("no environment {env}"),
                )
            })?;
            let m: Option<crate::availability::Maintenance> = if method == Method::PUT {
                let m: crate::availability::Maintenance = read_json(req).await?;
                if !(1..=86_400).contains(&m.retry_after) {
                    return Err(ApiError::bad_request(
                        "retry_after",
                        "between 1 and 86400 seconds",
                    ));
                }
                Some(m)
            } else {
                None
            };
            let app2 = app.clone();
            tokio::task::spawn_blocking(move || app2.availability.set(env, m))
                .await
                .map_err(|_| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, None, "interrupted"))?
                .map_err(|e| {
                    ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, None, e.to_string())
                })?;
            Ok(respond::empty(StatusCode::NO_CONTENT))
        }
        (&Method::GET, ["metrics"]) => Ok(respond::bytes(
            StatusCode::OK,
            "text/plain; version=0.0.4; charset=utf-8",
            app.metrics
                .render(app.audit.stats(), &app.registry.snapshot()),
        )),
        (&Method::GET, ["admin", "v1", "trace"]) => trace::list(app, &query),
        (&Method::GET, ["admin", "v1", "trace", "export"]) => trace::export(app, &query),
        (&Method::POST, ["admin", "v1", "trace", "verify"]) => trace::verify(app).await,
        (&Method::POST, ["admin", "v1", "trace", "purge"]) => {
            let input: trace::PurgeInput = read_json(req).await?;
            trace::purge(app, input).await
        }
        (&Method::GET, ["admin", "v1", "stats"]) => trace::stats(app, &query),
        (&Method::GET, ["admin", "v1", "admins"]) => {
            let s = snap();
            let mut list: Vec<_> = s.admins.values().collect();
            list.sort_by_key(|a| a.registered_at);
            Ok(respond::json(StatusCode::OK, &list))
        }
        (&Method::POST, ["admin", "v1", "admins"]) => {
            let input = read_json(req).await?;
            certs::add_admin(app, input).await
        }
        (_, ["admin", "v1", ..]) => Err(ApiError::new(
            StatusCode::NOT_FOUND,
            None,
            format!("no admin call {method} {path}"),
        )),
        _ => Err(ApiError::new(
            StatusCode::NOT_FOUND,
            None,
            format!("no route for {path}"),
        )),
    }
}

/// Runs a registry operation (which flushes to disk) off the async threads.
pub(super) async fn blocking<T: Send + 'static>(
    app: &Arc<App>,
    op: impl FnOnce(&App) -> Result<T, RegistryError> + Send + 'static,
) -> Result<T, ApiError> {
    let app = app.clone();
    tokio::task::spawn_blocking(move || op(&app))
        .await
        .map_err(|_| {
            ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                None,
                "the operation was interrupted",
            )
        })?
        .map_err(ApiError::from)
}

/// Reads a JSON body (at most [`MAX_BODY`] bytes) into `T`; errors name the
/// field (`grants[0].years`) where serde can tell which.
async fn read_json<T: DeserializeOwned>(req: Request<Incoming>) -> Result<T, ApiError> {
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
    let mut de = serde_json::Deserializer::from_slice(&bytes);
    let value: T = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        let message = e.into_inner().to_string();
        ApiError::bad_request(&error_field(&path, &message), message)
    })?;
    de.end()
        .map_err(|e| ApiError::bad_request("body", format!("trailing data after JSON: {e}")))?;
    Ok(value)
}

/// Reads a body of at most `limit` bytes.
async fn read_limited(req: Request<Incoming>, limit: usize) -> Result<bytes::Bytes, ApiError> {
    Ok(Limited::new(req.into_body(), limit)
        .collect()
        .await
        .map_err(|_| {
            ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                None,
                format!("the body is larger than {limit} bytes or was cut off"),
            )
        })?
        .to_bytes())
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

fn to_value<T: serde::Serialize + ?Sized>(v: &T) -> Value {
    serde_json::to_value(v).unwrap_or(Value::Null)
}

/// The value of `name` in a query string (percent-decoded).
pub(super) fn query_param(query: &str, name: &str) -> Option<String> {
    form_urlencoded::parse(query.as_bytes())
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}
