//! Response building shared by every listener: the body type and JSON helpers.

use bytes::Bytes;
use http_body_util::{BodyExt, Full, combinators::BoxBody};
use hyper::header::{CONTENT_TYPE, HeaderValue};
use hyper::{Response, StatusCode};
use serde::Serialize;

/// The body of every response: a buffer, or a stream proxied from upstream.
pub type Body = BoxBody<Bytes, hyper::Error>;

/// Marks a response after which its connection must close (a certificate
/// found revoked): the server retires the connection when it sees it.
#[derive(Debug, Clone, Copy)]
pub struct CloseConnection;

/// A body from bytes.
pub fn full(bytes: impl Into<Bytes>) -> Body {
    Full::new(bytes.into())
        .map_err(|never| match never {})
        .boxed()
}

/// A response with `content_type` and `bytes`.
pub fn bytes(
    status: StatusCode,
    content_type: &'static str,
    bytes: impl Into<Bytes>,
) -> Response<Body> {
    let mut resp = Response::new(full(bytes));
    *resp.status_mut() = status;
    resp.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    resp
}

/// A JSON response (`application/json`).
pub fn json(status: StatusCode, value: &impl Serialize) -> Response<Body> {
    json_typed(status, "application/json", value)
}

/// A JSON response with a specific media type (e.g. `application/problem+json`).
pub fn json_typed(
    status: StatusCode,
    content_type: &'static str,
    value: &impl Serialize,
) -> Response<Body> {
    match serde_json::to_vec(value) {
        Ok(body) => bytes(status, content_type, body),
        Err(_) => bytes(
            StatusCode::INTERNAL_SERVER_ERROR,
            "application/json",
            &br#"{"error":"response serialization failed"}"#[..],
        ),
    }
}

/// An empty response.
pub fn empty(status: StatusCode) -> Response<Body> {
    let mut resp = Response::new(full(Bytes::new()));
    *resp.status_mut() = status;
    resp
}
