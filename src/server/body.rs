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

use super::watchdog::Activity;
use bytes::{Bytes, BytesMut};
use http_body_util::BodyExt;
use hyper::body::{Body, Frame, Incoming, SizeHint};
use pin_project_lite::pin_project;
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

pin_project! {
    /// A request body that must be complete by its deadline.
    #[derive(Debug)]
    pub struct RequestBody {
        #[pin]
        inner: Incoming,
        deadline: Instant,
        timeout: Duration,
        timer: Option<Pin<Box<Sleep>>>,
        activity: Option<Arc<Activity>>,
    }
}

impl RequestBody {
    /// `inner`, to be complete within `timeout` from now; a timeout retires
    /// the connection `activity` watches.
    pub fn new(inner: Incoming, timeout: Duration, activity: Arc<Activity>) -> Self {
        RequestBody {
            inner,
            deadline: Instant::now() + timeout,
            timeout,
            timer: None,
            activity: Some(activity),
        }
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
        let this = self.project();
        if let Poll::Ready(frame) = this.inner.poll_frame(cx) {
            return Poll::Ready(frame.map(|f| f.map_err(BodyError::Cut)));
        }
        let deadline = *this.deadline;
        let timer = this
            .timer
            .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
        match timer.as_mut().poll(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(()) => {
                if let Some(activity) = this.activity.take() {
                    activity.retire();
                }
                Poll::Ready(Some(Err(BodyError::TimedOut(*this.timeout))))
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
