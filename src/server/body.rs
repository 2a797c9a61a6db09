//! The body of a request as every handler receives it: hyper's body with a
//! deadline (docs/contract.md §8, `[limits] body_read_timeout_ms`). The
//! whole body must have arrived within the deadline counted from the end of
//! its head, so a body of the largest allowed size must arrive at
//! `max_body_bytes / body_read_timeout` or faster: that is the minimum
//! rate. A body that misses it ends in [`BodyError::TimedOut`] and asks its
//! connection to close ([`Activity::retire`]), so a client that stalls a
//! body holds nothing past the deadline, on HTTP/1.1 and HTTP/2 alike.
//!
//! The deadline's timer is armed only when a read has to wait, so bodies
//! that are empty or already buffered cost nothing.
//!
//! A handler may answer without reading the whole body (a refusal, a body
//! over its limit). Closing an HTTP/1 connection then, while the client is
//! still sending, makes the kernel reset it (unread data in the socket):
//! the client loses the answer, or sees its TLS stream end without
//! `close_notify`. So an HTTP/1 body dropped before its end is drained in
//! the background first — at most [`LINGER_BYTES`], for at most
//! [`LINGER_TIME`] and never past its deadline — as nginx's lingering
//! close does; then the connection ends or is kept alive as usual.

use super::watchdog::Activity;
use bytes::{Bytes, BytesMut};
use http_body_util::BodyExt;
use hyper::body::{Body, Frame, Incoming, SizeHint};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::time::{Instant, Sleep};

/// Why a body could not be read.
#[derive(Debug, thiserror::Error)]
pub enum BodyError {
    /// The body was not complete within the deadline.
    #[error("the request body was not complete within {} ms", .0.as_millis())]
    TimedOut(Duration),
    /// The body is larger than its handler accepts.
    #[error("the request body is larger than {0} bytes")]
    TooLarge(usize),
    /// The client broke the body off (reset stream, closed connection).
    #[error("the request body was cut off: {0}")]
    Cut(#[source] hyper::Error),
}

/// The media type a request's `Content-Type` value names, lowercased,
/// without parameters (`application/json; charset=utf-8` →
/// `application/json`; empty when absent or unreadable).
pub fn media_type(headers: &hyper::HeaderMap) -> String {
    let value = headers
        .get(hyper::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let essence = value.split(';').next().unwrap_or("");
    essence.trim().to_ascii_lowercase()
}

/// What is drained of a body its handler dropped, at most.
pub const LINGER_BYTES: usize = 1024 * 1024;
/// How long a dropped body is drained, at most.
pub const LINGER_TIME: Duration = Duration::from_secs(2);

/// A request body that must be complete by its deadline.
#[derive(Debug)]
pub struct RequestBody {
    /// `None` once handed to the drain (on drop only).
    inner: Option<Incoming>,
    deadline: Instant,
    timeout: Duration,
    timer: Option<Pin<Box<Sleep>>>,
    activity: Option<Arc<Activity>>,
    /// The body ended (its end, an error or the deadline): nothing to drain.
    over: bool,
    /// Whether a body dropped before its end is drained (HTTP/1; an HTTP/2
    /// stream is reset with NO_ERROR instead).
    linger: bool,
}

impl RequestBody {
    /// `inner`, to be complete within `timeout` from now; a timeout retires
    /// the connection `activity` watches.
    pub fn new(inner: Incoming, timeout: Duration, activity: Arc<Activity>) -> Self {
        RequestBody {
            inner: Some(inner),
            deadline: Instant::now() + timeout,
            timeout,
            timer: None,
            activity: Some(activity),
            over: false,
            linger: false,
        }
    }

    /// Drains this body if it is dropped before its end (see the module's
    /// text): for HTTP/1 requests.
    pub fn lingering(mut self, linger: bool) -> Self {
        self.linger = linger;
        self
    }

    /// Reads the whole body, refusing more than `limit` bytes.
    pub async fn read(self, limit: usize) -> Result<Bytes, BodyError> {
        let mut body = std::pin::pin!(self);
        let mut buf = BytesMut::new();
        while let Some(frame) = body.frame().await {
            let Ok(data) = frame?.into_data() else {
                continue;
            };
            if buf.len() + data.len() > limit {
                return Err(BodyError::TooLarge(limit));
            }
            buf.extend_from_slice(&data);
        }
        Ok(buf.freeze())
    }
}

impl Body for RequestBody {
    type Data = Bytes;
    type Error = BodyError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BodyError>>> {
        let this = self.get_mut();
        let Some(inner) = this.inner.as_mut() else {
            return Poll::Ready(None);
        };
        if let Poll::Ready(frame) = Pin::new(inner).poll_frame(cx) {
            if !matches!(frame, Some(Ok(_))) {
                this.over = true;
            }
            return Poll::Ready(frame.map(|f| f.map_err(BodyError::Cut)));
        }
        let deadline = this.deadline;
        let timer = this
            .timer
            .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
        match timer.as_mut().poll(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(()) => {
                this.over = true;
                if let Some(activity) = this.activity.take() {
                    activity.retire();
                }
                Poll::Ready(Some(Err(BodyError::TimedOut(this.timeout))))
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.as_ref().is_none_or(Body::is_end_stream)
    }

    fn size_hint(&self) -> SizeHint {
        self.inner
            .as_ref()
            .map_or_else(|| SizeHint::with_exact(0), Body::size_hint)
    }
}

impl Drop for RequestBody {
    /// Drains what the client is still sending (see the module's text).
    fn drop(&mut self) {
        let Some(inner) = self.inner.take() else {
            return;
        };
        if !self.linger || self.over || inner.is_end_stream() {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let until = self.deadline.min(Instant::now() + LINGER_TIME);
        runtime.spawn(async move {
            let _ = tokio::time::timeout_at(until, drain(inner, LINGER_BYTES)).await;
        });
    }
}

/// Reads and discards `body` until its end, an error or `limit` bytes.
async fn drain(mut body: Incoming, limit: usize) {
    let mut seen = 0;
    while let Some(Ok(frame)) = body.frame().await {
        seen += frame.data_ref().map_or(0, Bytes::len);
        if seen > limit {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn media_type_is_the_lowercased_essence() {
        let mut headers = hyper::HeaderMap::new();
        assert_eq!(media_type(&headers), "");
        headers.insert(
            hyper::header::CONTENT_TYPE,
            hyper::header::HeaderValue::from_static("Application/JSON; charset=utf-8"),
        );
        assert_eq!(media_type(&headers), "application/json");
    }
}
