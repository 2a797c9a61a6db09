//! How a listener answers a connection attempt, told apart: a TLS alert
//! (the handshake refused), an HTTP status, a close with neither, or
//! nothing at all within the limit. A hang is never a refusal: a test
//! expecting a refusal asserts the alert (or the status) it expects.

use rustls::{AlertDescription, ClientConfig};
use rustls_pki_types::ServerName;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// What came back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The server sent this TLS alert.
    Alert(AlertDescription),
    /// The handshake finished and a request got this HTTP status.
    Status(u16),
    /// The connection ended with neither (the error or "EOF").
    Closed(String),
    /// Nothing within the limit.
    Hung,
}

/// Connects to `addr` with `config` (server name `localhost`), sends one
/// `GET /` and reports what came back within `limit`. Over TLS 1.3 the
/// client's side of the handshake ends before the server judges its
/// certificate, so a refusal may arrive only when reading: both are read.
pub async fn attempt(addr: SocketAddr, config: Arc<ClientConfig>, limit: Duration) -> Outcome {
    tokio::time::timeout(limit, exchange(addr, config))
        .await
        .unwrap_or(Outcome::Hung)
}

async fn exchange(addr: SocketAddr, config: Arc<ClientConfig>) -> Outcome {
    let tcp = match TcpStream::connect(addr).await {
        Ok(tcp) => tcp,
        Err(e) => return Outcome::Closed(e.to_string()),
    };
    let name = ServerName::try_from("localhost").unwrap();
    let mut tls = match tokio_rustls::TlsConnector::from(config)
        .connect(name, tcp)
        .await
    {
        Ok(tls) => tls,
        Err(e) => return of_error(&e),
    };
    let request = b"GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n";
    if let Err(e) = tls.write_all(request).await {
        return of_error(&e);
    }
    let mut read = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match tls.read(&mut buf).await {
            Ok(0) => return status(&read).unwrap_or_else(|| Outcome::Closed("EOF".into())),
            Ok(n) => read.extend_from_slice(&buf[..n]),
            Err(e) => return status(&read).unwrap_or_else(|| of_error(&e)),
        }
        if let Some(status) = status(&read) {
            return status;
        }
    }
}

/// The status of a response whose status line has arrived.
fn status(read: &[u8]) -> Option<Outcome> {
    let text = std::str::from_utf8(read).ok()?;
    let line = text.split_once("\r\n")?.0;
    let code = line.strip_prefix("HTTP/1.1 ")?.get(..3)?;
    code.parse().ok().map(Outcome::Status)
}

/// The alert an I/O error carries, if it is one.
fn of_error(e: &std::io::Error) -> Outcome {
    match e
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>())
    {
        Some(rustls::Error::AlertReceived(alert)) => Outcome::Alert(*alert),
        _ => Outcome::Closed(e.to_string()),
    }
}
