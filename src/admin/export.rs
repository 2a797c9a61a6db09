//! The trace export as a stream: a scan of the trail on the blocking pool
//! writes JSON Lines into chunks of about [`CHUNK_BYTES`], handed through a
//! bounded channel to the response body, so memory stays at a few chunks
//! whatever the trail's size and a slow reader slows the scan down (and a
//! reader that hangs up stops it).
//!
//! The status is chosen once the first chunk, the end or an error is
//! known: a trail that cannot be read from the start is a 500 (503 while the cluster's PostgreSQL does not answer). An error
//! later, once the 200 is sent, can only end the body early; it is logged.

use super::Admin;
use super::api::{Answer, interrupted};
use super::trace::trail_error;
use crate::audit::AuditError;
use crate::audit::query::{self, Filter};
use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::body::Frame;
use hyper::header::{CONTENT_TYPE, HeaderValue};
use hyper::{Response, StatusCode};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};
use tokio::sync::mpsc;

/// Size at which a chunk of JSON Lines is handed to the body (bytes).
const CHUNK_BYTES: usize = 64 * 1024;
/// Chunks the scan may run ahead of the reader.
const CHANNEL_DEPTH: usize = 4;

/// A piece of the export, or the error that ended the scan.
type Chunk = Result<Bytes, AuditError>;

/// Streams the records matching `filter`, newest first, as JSON Lines.
pub(super) async fn stream(admin: Arc<Admin>, filter: Filter) -> Answer {
    let (tx, mut rx) = mpsc::channel(CHANNEL_DEPTH);
    let scan = tokio::task::spawn_blocking(move || produce(&admin, &filter, &tx));
    let first = match rx.recv().await {
        Some(Ok(bytes)) => Some(bytes),
        Some(Err(e)) => return Err(trail_error(e)),
        None => {
            // Nothing was sent: the scan found nothing, or it panicked.
            scan.await.map_err(|_| interrupted())?;
            None
        }
    };
    let mut resp = Response::new(ChannelBody { first, rx }.boxed());
    *resp.status_mut() = StatusCode::OK;
    resp.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("application/x-ndjson"),
    );
    Ok(resp)
}

/// The scan (blocking): fills chunks and sends each when full, then the
/// rest or the error. Stops when the body is dropped.
fn produce(admin: &Admin, filter: &Filter, tx: &mpsc::Sender<Chunk>) {
    let mut buf = Vec::with_capacity(CHUNK_BYTES);
    let scanned = query::for_each_matching(&admin.audit, filter, |r| {
        if serde_json::to_writer(&mut buf, &r).is_ok() {
            buf.push(b'\n');
        }
        if buf.len() < CHUNK_BYTES {
            return true;
        }
        let full = std::mem::replace(&mut buf, Vec::with_capacity(CHUNK_BYTES));
        tx.blocking_send(Ok(Bytes::from(full))).is_ok()
    });
    let last = match scanned {
        Ok(()) if buf.is_empty() => return,
        Ok(()) => Ok(Bytes::from(buf)),
        Err(e) => Err(e),
    };
    // The reader may be gone already; then nobody needs the rest.
    let _ = tx.blocking_send(last);
}

/// A response body fed by the scan through the channel.
struct ChannelBody {
    /// The chunk received before the status was chosen.
    first: Option<Bytes>,
    rx: mpsc::Receiver<Chunk>,
}

impl hyper::body::Body for ChannelBody {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        if let Some(bytes) = self.first.take() {
            return Poll::Ready(Some(Ok(Frame::data(bytes))));
        }
        match ready!(self.rx.poll_recv(cx)) {
            Some(Ok(bytes)) => Poll::Ready(Some(Ok(Frame::data(bytes)))),
            Some(Err(e)) => {
                tracing::error!(error = %e, "trace export cut short: the trail could not be read");
                Poll::Ready(None)
            }
            None => Poll::Ready(None),
        }
    }
}
