//! Per-connection deadlines after the handshake (docs/contract.md §8), one
//! for every state a connection can be in:
//!
//! - **head**: an HTTP/1 request head must arrive whole within
//!   `header_read_timeout` of its first byte (slowloris);
//! - **body**: enforced on the body itself (`server/body.rs`), which
//!   [`Activity::retire`]s the connection when it times out;
//! - **response**: a response must keep moving — the socket must take
//!   bytes, and while responses are being sent one of them must produce a
//!   frame — at least once every `send_timeout` (an unread socket, an
//!   HTTP/2 zero window). The second is judged per connection: a stream
//!   kept closed beside streams that flow lives until the connection's age;
//! - **idle**: a connection with no exchange in flight is closed after
//!   `idle_timeout` (including one that never sends anything);
//! - **age**: after `max_connection_age` the connection is asked to close
//!   gracefully (HTTP/2: GOAWAY; HTTP/1: `Connection: close` on its next
//!   response, so that no request races the close), and is dropped if it
//!   still lives `grace` later — as it is when it is retired (a
//!   certificate re-judged as revoked, a body timed out).
//!
//! hyper's own header timeout needs a timer, does not cover the protocol
//! sniffing of `auto` connections, and restarts per request, so the
//! connection's IO is wrapped ([`WatchedIo`]) to see bytes arrive and
//! leave, each exchange is marked from its head to the end of its response
//! body ([`Activity::begin`], [`InFlight::answered`], [`Sending`]), and
//! [`Activity::expired`] resolves when a deadline passes: the caller then
//! drops the connection.

use bytes::Bytes;
use hyper::body::{Body, Frame, SizeHint};
use pin_project_lite::pin_project;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::Notify;

/// Which deadline passed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expiry {
    /// A request head took too long.
    HeaderRead,
    /// No request for too long.
    Idle,
    /// A response did not move for `send_timeout`.
    Send,
    /// Asked to close (age or retirement) and still open after the grace.
    Closing,
}

impl Expiry {
    /// The metric label.
    pub fn as_str(self) -> &'static str {
        match self {
            Expiry::HeaderRead => "header_read",
            Expiry::Idle => "idle",
            Expiry::Send => "send",
            Expiry::Closing => "close_grace",
        }
    }
}

/// The deadlines of one connection, from `[limits]` at its accept.
#[derive(Debug, Clone, Copy)]
pub struct Deadlines {
    /// Whole request head from its first byte.
    pub header: Duration,
    /// No exchange in flight.
    pub idle: Duration,
    /// A response that does not move.
    pub send: Duration,
    /// Age at which the connection is asked to close.
    pub age: Duration,
    /// How long a connection asked to close (age, retirement) may take to
    /// finish the exchanges it holds before it is dropped.
    pub grace: Duration,
}

/// What the watchdog knows of one connection (times in ms since it opened).
#[derive(Debug)]
pub struct Activity {
    opened: Instant,
    deadlines: Deadlines,
    /// HTTP/1 (heads are timed); HTTP/2 frames such as PING are not heads.
    http1: bool,
    /// Exchanges from their head to the end of their response body.
    in_flight: AtomicU32,
    /// Of those, the ones whose response is being sent.
    sending: AtomicU32,
    /// End of the last response (or the handshake).
    last_ms: AtomicU64,
    /// First byte of a head being read, plus one (0 = none).
    head_ms: AtomicU64,
    /// Last time a response moved (a frame produced, bytes written).
    moved_ms: AtomicU64,
    /// Since when the socket refuses bytes, plus one (0 = it takes them).
    blocked_ms: AtomicU64,
    /// Asked to close, plus one (0 = not asked).
    closing_ms: AtomicU64,
    /// Wakes the connection when it is asked to close.
    close: Notify,
    /// Set once the connection is dropped for a deadline.
    expired: AtomicBool,
}

/// One exchange in flight; dropping it (or the [`Sending`] body it
/// becomes) marks its end.
#[derive(Debug)]
pub struct InFlight {
    activity: Arc<Activity>,
    answered: bool,
}

impl Activity {
    /// A connection opened now.
    pub fn new(http1: bool, deadlines: Deadlines) -> Arc<Self> {
        Arc::new(Activity {
            opened: Instant::now(),
            deadlines,
            http1,
            in_flight: AtomicU32::new(0),
            sending: AtomicU32::new(0),
            last_ms: AtomicU64::new(0),
            head_ms: AtomicU64::new(0),
            moved_ms: AtomicU64::new(0),
            blocked_ms: AtomicU64::new(0),
            closing_ms: AtomicU64::new(0),
            close: Notify::new(),
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
        InFlight {
            activity: self.clone(),
            answered: false,
        }
    }

    /// Asks the connection to close gracefully (a certificate re-judged as
    /// revoked, a body that timed out); it is dropped if it still lives
    /// `grace` later.
    pub fn retire(&self) {
        let now = self.now_ms() + 1;
        if self
            .closing_ms
            .compare_exchange(0, now, Ordering::Relaxed, Ordering::Relaxed)
            .is_ok()
        {
            self.close.notify_one();
        }
    }

    /// Whether the connection was asked to close (age, retirement).
    pub fn is_closing(&self) -> bool {
        self.closing_ms.load(Ordering::Relaxed) > 0
    }

    /// HTTP/1 (closing means `Connection: close` on the next response).
    pub fn http1(&self) -> bool {
        self.http1
    }

    /// Resolves when the connection should start closing gracefully: it
    /// reached its maximum age, or it was [`retire`](Self::retire)d.
    pub async fn closing(&self) {
        let notified = self.close.notified();
        if self.closing_ms.load(Ordering::Relaxed) > 0 {
            return;
        }
        let age = self.deadlines.age.saturating_sub(self.opened.elapsed());
        tokio::select! {
            _ = notified => {}
            _ = tokio::time::sleep(age) => self.retire(),
        }
    }

    /// Bytes arrived from the client.
    fn read_some(&self) {
        let idle = self.in_flight.load(Ordering::Relaxed) == 0;
        if self.http1 && idle && self.head_ms.load(Ordering::Relaxed) == 0 {
            self.head_ms.store(self.now_ms() + 1, Ordering::Relaxed);
        }
    }

    /// A response moved: its body produced a frame. Socket writes do not
    /// count: on HTTP/2 they also carry PING acks, window updates and other
    /// streams, which a client can keep flowing around a stream whose
    /// window it keeps closed.
    fn moved(&self) {
        self.moved_ms.store(self.now_ms(), Ordering::Relaxed);
    }

    /// The socket refused bytes (`true`) or took some (`false`).
    fn blocked(&self, blocked: bool) {
        if !blocked {
            self.blocked_ms.store(0, Ordering::Relaxed);
        } else if self.blocked_ms.load(Ordering::Relaxed) == 0 {
            self.blocked_ms.store(self.now_ms() + 1, Ordering::Relaxed);
        }
    }

    /// What a write did: refused (blocked) or took bytes (unblocked).
    fn wrote(&self, polled: &Poll<io::Result<usize>>) {
        match polled {
            Poll::Pending => self.blocked(true),
            Poll::Ready(Ok(n)) if *n > 0 => self.blocked(false),
            Poll::Ready(_) => {}
        }
    }

    /// The state now: expired, or the time to look again.
    fn verdict(&self) -> Result<Duration, Expiry> {
        let now = self.now_ms();
        let ms = |d: Duration| d.as_millis() as u64;
        let left = |since: u64, limit: Duration, expiry| match (since + ms(limit)).checked_sub(now)
        {
            Some(left) if left > 0 => Ok(Duration::from_millis(left)),
            _ => Err(expiry),
        };
        let mut wait = self.deadlines.header.min(self.deadlines.send);
        let closing = self.closing_ms.load(Ordering::Relaxed);
        if closing > 0 {
            wait = wait.min(left(closing - 1, self.deadlines.grace, Expiry::Closing)?);
        }
        let blocked = self.blocked_ms.load(Ordering::Relaxed);
        if blocked > 0 {
            wait = wait.min(left(blocked - 1, self.deadlines.send, Expiry::Send)?);
        }
        if self.in_flight.load(Ordering::Relaxed) > 0 {
            // A handler at work is bounded by its own timeouts (body,
            // upstream, store) and by the connection's age.
            if self.sending.load(Ordering::Relaxed) > 0 {
                let moved = self.moved_ms.load(Ordering::Relaxed);
                wait = wait.min(left(moved, self.deadlines.send, Expiry::Send)?);
            }
            return Ok(wait);
        }
        let head = self.head_ms.load(Ordering::Relaxed);
        if head > 0 {
            return left(head - 1, self.deadlines.header, Expiry::HeaderRead).map(|l| l.min(wait));
        }
        let last = self.last_ms.load(Ordering::Relaxed);
        // Look again no later than a head could start and expire.
        left(last, self.deadlines.idle, Expiry::Idle).map(|l| l.min(wait))
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

impl InFlight {
    /// The handler answered: from now on the exchange lasts as long as its
    /// response body, which must keep moving.
    pub fn answered<B>(mut self, body: B) -> Sending<B> {
        let a = &self.activity;
        a.sending.fetch_add(1, Ordering::Relaxed);
        a.moved();
        self.answered = true;
        Sending {
            body,
            in_flight: self,
        }
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        let a = &self.activity;
        a.last_ms.store(a.now_ms(), Ordering::Relaxed);
        if self.answered {
            a.sending.fetch_sub(1, Ordering::Relaxed);
        }
        a.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

pin_project! {
    /// A response body being sent: tells [`Activity`] each frame it
    /// produces, and ends its exchange when it ends or is dropped.
    #[derive(Debug)]
    pub struct Sending<B> {
        #[pin]
        body: B,
        in_flight: InFlight,
    }
}

impl<B: Body<Data = Bytes>> Body for Sending<B> {
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, B::Error>>> {
        let this = self.project();
        let polled = this.body.poll_frame(cx);
        if polled.is_ready() {
            this.in_flight.activity.moved();
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

pin_project! {
    /// The connection's stream, telling [`Activity`] when bytes arrive and
    /// whether the socket takes the bytes written to it.
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
        let this = self.project();
        let polled = this.inner.poll_write(cx, buf);
        this.activity.wrote(&polled);
        polled
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.project();
        let polled = this.inner.poll_flush(cx);
        if polled.is_pending() {
            this.activity.blocked(true);
        }
        polled
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.project().inner.poll_shutdown(cx)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.project();
        let polled = this.inner.poll_write_vectored(cx, bufs);
        this.activity.wrote(&polled);
        polled
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

#[cfg(test)]
mod tests {
    //! Deadlines checked after sleeping past them: expiries are lower
    //! bounds only. A check that a connection is still open is made at
    //! most a few statements after the event it counts from, with hundreds
    //! of milliseconds left: a loaded machine that pauses this thread for
    //! a few tens of milliseconds cannot flake them.
    use super::*;
    use http_body_util::{BodyExt, Full};

    const HEADER: Duration = Duration::from_millis(200);
    const IDLE: Duration = Duration::from_millis(1000);
    const SEND: Duration = Duration::from_millis(200);
    const GRACE: Duration = Duration::from_millis(300);
    /// A little past a deadline.
    const PAST: Duration = Duration::from_millis(10);

    fn deadlines() -> Deadlines {
        Deadlines {
            header: HEADER,
            idle: IDLE,
            send: SEND,
            age: Duration::from_secs(3600),
            grace: GRACE,
        }
    }

    fn activity(http1: bool) -> Arc<Activity> {
        Activity::new(http1, deadlines())
    }

    fn body() -> Full<Bytes> {
        Full::new(Bytes::from_static(b"x"))
    }

    #[tokio::test]
    async fn a_silent_connection_expires_idle() {
        let a = activity(true);
        let started = Instant::now();
        assert_eq!(a.expired().await, Expiry::Idle);
        assert!(started.elapsed() >= IDLE);
    }

    #[test]
    fn a_slow_head_expires_at_the_header_deadline() {
        let a = activity(true);
        a.read_some();
        assert!(a.verdict().is_ok(), "within the header deadline");
        std::thread::sleep(HEADER + PAST);
        assert_eq!(a.verdict(), Err(Expiry::HeaderRead));
    }

    #[test]
    fn a_handler_at_work_has_no_deadline_of_its_own() {
        let a = activity(true);
        let request = a.begin();
        std::thread::sleep(IDLE + PAST);
        assert!(a.verdict().is_ok(), "in flight, not answered: never idle");
        drop(request);
        assert!(a.verdict().is_ok(), "idle time counts from the response");
    }

    #[test]
    fn a_response_that_does_not_move_expires_at_the_send_deadline() {
        let a = activity(false);
        let sending = a.begin().answered(body());
        assert!(a.verdict().is_ok());
        std::thread::sleep(SEND + PAST);
        assert_eq!(
            a.verdict(),
            Err(Expiry::Send),
            "an unpolled body (zero window)"
        );
        drop(sending);
        assert!(a.verdict().is_ok(), "the exchange is over");
    }

    #[tokio::test]
    async fn a_response_that_moves_keeps_its_connection() {
        // Two thirds of the send deadline, twice: past the deadline in
        // all, yet it moved in between, with a third of it to spare.
        let send = Duration::from_millis(900);
        let a = Activity::new(
            false,
            Deadlines {
                send,
                ..deadlines()
            },
        );
        let mut sending = a.begin().answered(body());
        std::thread::sleep(send * 2 / 3);
        assert!(sending.frame().await.is_some());
        std::thread::sleep(send * 2 / 3);
        assert!(
            a.verdict().is_ok(),
            "it moved 600 ms ago, under the 900 ms limit"
        );
    }

    #[test]
    fn a_socket_that_takes_nothing_expires_in_any_state() {
        let a = activity(true);
        a.blocked(true);
        std::thread::sleep(SEND + PAST);
        assert_eq!(a.verdict(), Err(Expiry::Send));
        a.blocked(false);
        assert!(a.verdict().is_ok());
    }

    #[tokio::test]
    async fn an_old_connection_is_asked_to_close_then_dropped() {
        let age = Duration::from_millis(80);
        let a = Activity::new(
            true,
            Deadlines {
                idle: Duration::from_secs(3600),
                age,
                ..deadlines()
            },
        );
        let _request = a.begin();
        let started = Instant::now();
        a.closing().await;
        assert!(started.elapsed() >= age);
        assert!(a.verdict().is_ok(), "within the grace");
        assert_eq!(a.expired().await, Expiry::Closing);
        assert!(started.elapsed() >= age + GRACE);
    }

    #[tokio::test]
    async fn retiring_wakes_the_connection_at_once() {
        let a = activity(true);
        let waiting = {
            let a = a.clone();
            tokio::spawn(async move { a.closing().await })
        };
        tokio::task::yield_now().await;
        a.retire();
        let woke = tokio::time::timeout(Duration::from_secs(5), waiting).await;
        assert!(woke.is_ok(), "closing() resolved");
    }

    #[test]
    fn http2_frames_are_not_request_heads() {
        let a = activity(false);
        a.read_some();
        assert_eq!(a.head_ms.load(Ordering::Relaxed), 0);
    }
}
