//! A minimal admin API client over mTLS (one HTTP/1.1 connection per call),
//! used by `opale-apim admin …` and by tests.

use crate::tls::{self, TlsError};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::header::{CONTENT_TYPE, HOST};
use hyper::{Method, Request, StatusCode};
use hyper_util::rt::TokioIo;
use rustls::ClientConfig;
use rustls_pki_types::ServerName;
use serde_json::Value;
use std::path::Path;
use std::sync::Arc;
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

/// Why a call could not be made (an API error is not one of these).
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// Certificates or keys could not be loaded.
    #[error(transparent)]
    Tls(#[from] TlsError),
    /// The URL is not `https://host:port`.
    #[error("bad admin URL {0:?}: expected https://HOST:PORT")]
    BadUrl(String),
    /// TCP connect or TLS handshake failed.
    #[error("cannot reach the admin listener at {addr}: {source}")]
    Connect {
        /// host:port.
        addr: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The HTTP exchange failed.
    #[error("admin API exchange failed: {0}")]
    Http(#[from] hyper::Error),
    /// The JSON body could not be encoded.
    #[error("bad request: {0}")]
    Encode(#[source] serde_json::Error),
    /// The request could not be built.
    #[error("bad request: {0}")]
    Request(#[source] hyper::http::Error),
    /// The response was not JSON.
    #[error("the admin API answered {status} with a non-JSON body")]
    NotJson {
        /// HTTP status.
        status: StatusCode,
    },
}

/// An admin API endpoint and the identity to present to it.
#[derive(Clone)]
pub struct AdminClient {
    host: String,
    port: u16,
    server_name: ServerName<'static>,
    tls: Arc<ClientConfig>,
}

impl AdminClient {
    /// A client of `url` (`https://host:port`) trusting `ca` and presenting
    /// `cert`/`key`.
    pub fn new(url: &str, ca: &Path, cert: &Path, key: &Path) -> Result<Self, ClientError> {
        let uri: hyper::Uri = url.parse().map_err(|_| ClientError::BadUrl(url.into()))?;
        let (Some("https"), Some(host)) = (uri.scheme_str(), uri.host()) else {
            return Err(ClientError::BadUrl(url.into()));
        };
        let host = host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned();
        let server_name =
            ServerName::try_from(host.clone()).map_err(|_| ClientError::BadUrl(url.into()))?;
        Ok(AdminClient {
            port: uri.port_u16().unwrap_or(443),
            host,
            server_name,
            tls: tls::client_config(ca, cert, key)?,
        })
    }

    /// Sends one call with a JSON body; returns the status and the JSON
    /// body of the answer (`null` if empty). A POST without arguments sends
    /// `{}` as `application/json`: the API refuses a POST of any other
    /// content type (docs/contract.md §8).
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<(StatusCode, Value), ClientError> {
        let no_arguments = Value::Object(serde_json::Map::new());
        let body = body.or((method == Method::POST).then_some(&no_arguments));
        let body = match body {
            Some(v) => Some((
                "application/json",
                Bytes::from(serde_json::to_vec(v).map_err(ClientError::Encode)?),
            )),
            None => None,
        };
        self.call_raw(method, path, body).await
    }

    /// Sends one call with a form body (`application/x-www-form-urlencoded`).
    pub async fn call_form(
        &self,
        path: &str,
        params: &[(&str, &str)],
    ) -> Result<(StatusCode, Value), ClientError> {
        let body = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(params)
            .finish();
        let body = Some(("application/x-www-form-urlencoded", Bytes::from(body)));
        self.call_raw(Method::POST, path, body).await
    }

    /// A GET whose answer is text (e.g. JSON Lines).
    pub async fn get_text(&self, path: &str) -> Result<(StatusCode, String), ClientError> {
        let (status, bytes) = self.exchange(Method::GET, path, None).await?;
        Ok((status, String::from_utf8_lossy(&bytes).into_owned()))
    }

    async fn exchange(
        &self,
        method: Method,
        path: &str,
        body: Option<(&'static str, Bytes)>,
    ) -> Result<(StatusCode, Bytes), ClientError> {
        let addr = format!("{}:{}", self.host, self.port);
        let connect_err = |source| ClientError::Connect {
            addr: addr.clone(),
            source,
        };
        let tcp = TcpStream::connect((self.host.as_str(), self.port))
            .await
            .map_err(connect_err)?;
        let stream = TlsConnector::from(self.tls.clone())
            .connect(self.server_name.clone(), tcp)
            .await
            .map_err(connect_err)?;
        let (mut sender, conn) =
            hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
        tokio::spawn(conn);
        let mut req = Request::builder()
            .method(method)
            .uri(path)
            .header(HOST, &addr);
        let bytes = match body {
            Some((content_type, bytes)) => {
                req = req.header(CONTENT_TYPE, content_type);
                bytes
            }
            None => Bytes::new(),
        };
        let req = req.body(Full::new(bytes)).map_err(ClientError::Request)?;
        let resp = sender.send_request(req).await?;
        let status = resp.status();
        Ok((status, resp.into_body().collect().await?.to_bytes()))
    }

    async fn call_raw(
        &self,
        method: Method,
        path: &str,
        body: Option<(&'static str, Bytes)>,
    ) -> Result<(StatusCode, Value), ClientError> {
        let (status, bytes) = self.exchange(method, path, body).await?;
        if bytes.is_empty() {
            return Ok((status, Value::Null));
        }
        let value = serde_json::from_slice(&bytes).map_err(|_| ClientError::NotJson { status })?;
        Ok((status, value))
    }
}
