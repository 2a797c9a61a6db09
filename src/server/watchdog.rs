//! Per-connection timeouts after the handshake (DESIGN §8):
//!
//! - **header read**: an HTTP/1 request head must arrive whole within
//!   `header_read_timeout` of its first byte (slowloris);
//! - **idle**: a connection with no request in flight is closed after
//!   `idle_timeout` (including one that never sends anything).
//!
//! hyper's own header timeout needs a timer, does not cover the protocol
//! sniffing of `auto` connections, and restarts per request, so the
//! connection's IO is wrapped ([`WatchedIo`]) to see bytes arrive, the
//! service marks requests in and out ([`Activity::begin`]), and
//! [`Activity::expired`] resolves when a deadline passes: the caller then
//! drops the connection.

use pin_project_lite::pin_project;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// Which deadline passed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expiry {
    /// A request head took too long.
    HeaderRead,
    /// No request for too long.
    Idle,
}

impl Expiry {
    /// The metric label.
    pub fn as_str(self) -> &'static str {
        match self {
            Expiry::HeaderRead => "header_read",
            Expiry::Idle => "idle",
        }
    }
}

/// What the watchdog knows of one connection (times in ms since it opened).
#[derive(Debug)]
pub struct Activity {
    opened: Instant,
    header_timeout: Duration,
    idle_timeout: Duration,
    /// HTTP/1 (heads are timed); HTTP/2 frames such as PING are not heads.
    http1: bool,
    in_flight: AtomicU32,
    /// End of the last response (or the handshake).
    last_ms: AtomicU64,
    /// First byte of a head being read, plus one (0 = none).
    head_ms: AtomicU64,
    /// Set once the connection is closing for a deadline.
    expired: AtomicBool,
}

/// Marks one request in flight; dropping it marks the end.
#[derive(Debug)]
pub struct InFlight(Arc<Activity>);

impl Activity {
    /// A connection opened now.
    pub fn new(http1: bool, header_timeout: Duration, idle_timeout: Duration) -> Arc<Self> {
        Arc::new(Activity {
            opened: Instant::now(),
            header_timeout,
            idle_timeout,
            http1,
            in_flight: AtomicU32::new(0),
            last_ms: AtomicU64::new(0),
            head_ms: AtomicU64::new(0),
            expired: AtomicBool::new(false),
        })
    }

    fn now_ms(&self) -> u64 {
        self.opened.elapsed().as_millis() as u64
    }

    /// A request head is complete and handed to the service.
    pub fn begin(self: &Arc<Self>) -> InFlight {
        self.head_ms.store(0, Ordering::Relaxed);
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        InFlight(self.clone())
    }

    /// Bytes arrived from the client.
    fn read_some(&self) {
        let idle = self.in_flight.load(Ordering::Relaxed) == 0;
        if self.http1 && idle && self.head_ms.load(Ordering::Relaxed) == 0 {
            self.head_ms.store(self.now_ms() + 1, Ordering::Relaxed);
        }
    }

    /// The state now: expired, or the time to look again.
    fn verdict(&self) -> Result<Duration, Expiry> {
        let now = self.now_ms();
        let ms = |d: Duration| d.as_millis() as u64;
        if self.in_flight.load(Ordering::Relaxed) > 0 {
            return Ok(self.idle_timeout);
        }
        let head = self.head_ms.load(Ordering::Relaxed);
        if head > 0 {
            let deadline = head - 1 + ms(self.header_timeout);
            return match deadline.checked_sub(now) {
                Some(left) if left > 0 => Ok(Duration::from_millis(left)),
                _ => Err(Expiry::HeaderRead),
            };
        }
        let deadline = self.last_ms.load(Ordering::Relaxed) + ms(self.idle_timeout);
        match deadline.checked_sub(now) {
            // Look again no later than a head could start and expire.
            Some(left) if left > 0 => Ok(Duration::from_millis(left).min(self.header_timeout)),
            _ => Err(Expiry::Idle),
        }
    }

    /// Resolves when a deadline passes.
    pub async fn expired(&self) -> Expiry {
        loop {
            match self.verdict() {
                Ok(wait) => tokio::time::sleep(wait).await,
                Err(expiry) => {
                    self.expired.store(true, Ordering::Relaxed);
                    return expiry;
                }
            }
        }
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        let a = &self.0;
        a.last_ms.store(a.now_ms(), Ordering::Relaxed);
        a.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

pin_project! {
    /// The connection's stream, telling [`Activity`] when bytes arrive.
    pub struct WatchedIo<T> {
        #[pin]
        inner: T,
        activity: Arc<Activity>,
    }
}

impl<T> WatchedIo<T> {
    /// Wraps `inner`.
    pub fn new(inner: T, activity: Arc<Activity>) -> Self {
        WatchedIo { inner, activity }
    }
}

impl<T: AsyncRead> AsyncRead for WatchedIo<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.project();
        let before = buf.filled().len();
        let polled = this.inner.poll_read(cx, buf);
        if buf.filled().len() > before {
            this.activity.read_some();
        }
        polled
    }
}

impl<T: AsyncWrite> AsyncWrite for WatchedIo<T> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.project().inner.poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.project().inner.poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.project().inner.poll_shutdown(cx)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        self.project().inner.poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn activity(http1: bool) -> Arc<Activity> {
        Activity::new(http1, Duration::from_millis(40), Duration::from_millis(100))
    }

    #[tokio::test]
    async fn a_silent_connection_expires_idle() {
        let a = activity(true);
        let started = Instant::now();
        assert_eq!(a.expired().await, Expiry::Idle);
        assert!(started.elapsed() >= Duration::from_millis(100));
    }

    #[tokio::test]
    async fn a_slow_head_expires_at_the_header_deadline() {
        let a = activity(true);
        a.read_some();
        let started = Instant::now();
        assert_eq!(a.expired().await, Expiry::HeaderRead);
        assert!(started.elapsed() < Duration::from_millis(90));
    }

    #[tokio::test]
    async fn nothing_expires_while_a_request_is_in_flight() {
        let a = activity(true);
        let request = a.begin();
        assert!(a.verdict().is_ok());
        tokio::time::sleep(Duration::from_millis(120)).await;
        assert!(a.verdict().is_ok(), "in flight: never idle");
        drop(request);
        assert!(a.verdict().is_ok(), "idle time counts from the response");
    }

    #[test]
    fn http2_frames_are_not_request_heads() {
        let a = activity(false);
        a.read_some();
        assert_eq!(a.head_ms.load(Ordering::Relaxed), 0);
    }
}
