//! Plain-HTTP upstream connections, kept per worker thread: each worker
//! (one current-thread runtime) holds a stack of idle HTTP/1.1 connections
//! to an `http://` upstream and sends on them directly
//! (`hyper::client::conn::http1`), without the pooled client's dispatch
//! task, its locks and its per-call URI parsing. `https://` upstreams keep
//! the pooled client (`upstream.rs`), which handles TLS and h2.
//!
//! A connection has no task of its own: the request that uses it drives
//! its state machine (hyper's `Connection` future) while it waits for the
//! answer, so the socket's readiness wakes the request itself instead of a
//! connection task that then wakes the request (two task hops per call).
//! A body too large to buffer is streamed, and only then does the
//! connection get its own task, until that body ends. An idle connection is
//! polled again when it is next taken: one the upstream closed in between
//! is seen closed there and replaced.

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper::body::Incoming;
use hyper::client::conn::http1::{self, Connection, SendRequest};
use hyper::header::{CONTENT_LENGTH, HeaderValue};
use hyper::http::response::Parts;
use hyper::{Request, Response, Uri};
use hyper_util::rt::TokioIo;
use std::cell::RefCell;
use std::collections::{HashMap, VecDeque};
use std::future::{Future, poll_fn};
use std::pin::{Pin, pin};
use std::task::Poll;
use std::time::{Duration, Instant};
use tokio::net::TcpStream;

/// Idle connections kept per worker and upstream.
const MAX_IDLE: usize = 256;
/// An idle connection unused for this long is closed (the pooled client's
/// `pool_idle_timeout`).
const IDLE_TIMEOUT: Duration = Duration::from_secs(60);

type Driver = Connection<TokioIo<TcpStream>, Empty<Bytes>>;

/// One upstream connection: the handle that sends on it, and the state
/// machine that reads and writes its socket when polled.
struct Conn {
    sender: SendRequest<Empty<Bytes>>,
    /// Boxed: hyper's connection state is ~700 bytes, and every future
    /// that holds a `Conn` (up to the request's own, which hyper moves per
    /// request) would otherwise be that much larger.
    driver: Option<Pin<Box<Driver>>>,
    idle_since: Instant,
}

thread_local! {
    /// Newest last; the oldest are closed first once past `IDLE_TIMEOUT`.
    static IDLE: RefCell<HashMap<usize, VecDeque<Conn>>> = RefCell::new(HashMap::new());
}

/// Why a direct exchange failed.
#[derive(Debug, thiserror::Error)]
pub enum DirectError {
    /// No connection within the connect timeout.
    #[error("connect timeout")]
    ConnectTimeout,
    /// Connecting or exchanging failed.
    #[error("{0}")]
    Failed(String),
}

impl From<hyper::Error> for DirectError {
    fn from(e: hyper::Error) -> Self {
        DirectError::Failed(e.to_string())
    }
}

/// An upstream's answer.
pub enum Answer {
    /// Status and headers with the whole body (its `Content-Length` was at
    /// most the limit given to [`Direct::exchange`]).
    Whole(Parts, Bytes),
    /// A larger or unsized body, streamed as the upstream sends it.
    Streamed(Response<Incoming>),
}

/// An `http://` upstream: where to connect and what to put in `Host`.
#[derive(Debug, Clone)]
pub struct Direct {
    id: usize,
    /// `host:port` to connect to.
    addr: String,
    /// The `Host` header.
    host: HeaderValue,
    /// The base path, without a trailing `/`.
    prefix: String,
    connect_timeout: Duration,
}

impl Direct {
    /// For an `http://` base URI; `None` for any other scheme.
    pub fn new(id: usize, base: &Uri, connect_timeout: Duration) -> Option<Self> {
        if base.scheme_str() != Some("http") {
            return None;
        }
        let authority = base.authority()?;
        let port = authority.port_u16().unwrap_or(80);
        Some(Direct {
            id,
            addr: format!("{}:{port}", authority.host()),
            host: HeaderValue::from_str(authority.as_str()).ok()?,
            prefix: base.path().trim_end_matches('/').to_owned(),
            connect_timeout,
        })
    }

    /// The origin-form target for `path` (which starts with `/`).
    pub fn target(&self, path: &str) -> String {
        format!("{}{path}", self.prefix)
    }

    /// Sends `req` (origin-form URI, `Host` added here) on an idle
    /// connection of this worker, or a new one, and reads the answer: whole
    /// when its `Content-Length` is at most `buffer_up_to` bytes (the
    /// connection then goes back to this worker's idle stack), else
    /// streamed. The caller bounds the whole exchange in time; dropping it
    /// closes the connection.
    pub async fn exchange(
        &self,
        mut req: Request<Empty<Bytes>>,
        buffer_up_to: u64,
    ) -> Result<Answer, DirectError> {
        req.headers_mut()
            .insert(hyper::header::HOST, self.host.clone());
        let mut conn = self.ready_connection().await?;
        let (answer, open) = {
            let sender = &mut conn.sender;
            let work = pin!(async {
                let resp = sender.send_request(req).await?;
                if !fits(&resp, buffer_up_to) {
                    return Ok::<_, DirectError>(Answer::Streamed(resp));
                }
                let (parts, body) = resp.into_parts();
                Ok(Answer::Whole(parts, body.collect().await?.to_bytes()))
            });
            driving(&mut conn.driver, work).await
        };
        let answer = answer?;
        match &answer {
            Answer::Whole(..) if open => self.release(conn),
            Answer::Whole(..) => {}
            Answer::Streamed(_) => conn.hand_over(),
        }
        Ok(answer)
    }

    /// Keeps `conn` for the next call on this worker.
    fn release(&self, mut conn: Conn) {
        if conn.sender.is_closed() {
            return;
        }
        let now = Instant::now();
        conn.idle_since = now;
        IDLE.with(|idle| {
            let mut idle = idle.borrow_mut();
            let stack = idle.entry(self.id).or_default();
            while stack
                .front()
                .is_some_and(|c| now.duration_since(c.idle_since) > IDLE_TIMEOUT)
            {
                stack.pop_front();
            }
            if stack.len() < MAX_IDLE {
                stack.push_back(conn);
            }
        });
    }

    /// An idle connection that is still usable, else a new one.
    async fn ready_connection(&self) -> Result<Conn, DirectError> {
        while let Some(mut conn) = self.take_idle() {
            if conn.idle_since.elapsed() > IDLE_TIMEOUT {
                continue;
            }
            let (ready, open) = {
                let ready = pin!(conn.sender.ready());
                driving(&mut conn.driver, ready).await
            };
            if ready.is_ok() && open {
                return Ok(conn);
            }
        }
        // Boxed: rare, and the connect and handshake futures are large.
        Box::pin(self.connect()).await
    }

    fn take_idle(&self) -> Option<Conn> {
        IDLE.with(|idle| {
            idle.borrow_mut()
                .get_mut(&self.id)
                .and_then(VecDeque::pop_back)
        })
    }

    async fn connect(&self) -> Result<Conn, DirectError> {
        let tcp = tokio::time::timeout(self.connect_timeout, TcpStream::connect(&self.addr))
            .await
            .map_err(|_| DirectError::ConnectTimeout)?
            .map_err(|e| DirectError::Failed(format!("connect {}: {e}", self.addr)))?;
        let _ = tcp.set_nodelay(true);
        let (sender, driver) = http1::handshake(TokioIo::new(tcp)).await?;
        Ok(Conn {
            sender,
            driver: Some(Box::pin(driver)),
            idle_since: Instant::now(),
        })
    }
}

impl Conn {
    /// A streamed body still needs its connection driven after the call
    /// returns: a task of its own does it until the body ends; the
    /// connection then closes (its sender is dropped here).
    fn hand_over(self) {
        if let Some(driver) = self.driver {
            tokio::spawn(async move {
                if let Err(e) = driver.await {
                    tracing::debug!(error = %e, "upstream connection ended");
                }
            });
        }
    }
}

/// Whether `resp` declares a body of at most `limit` bytes.
fn fits(resp: &Response<Incoming>, limit: u64) -> bool {
    resp.headers()
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
        .is_some_and(|n| n <= limit)
}

/// Polls `work` to its end while driving the connection `driver`, in this
/// task; also tells whether the connection is still open. A connection
/// that ends is dropped at once, which closes the channels `work` may be
/// waiting on.
async fn driving<F: Future>(
    driver: &mut Option<Pin<Box<Driver>>>,
    mut work: Pin<&mut F>,
) -> (F::Output, bool) {
    let out = poll_fn(|cx| {
        // The connection first (an idle one reads the upstream's close
        // here, before a request is put on it), then the work (it hands the
        // request over), then the connection again (it writes it, or reads
        // the answer) and the work again (it takes what was just read
        // without another wake-up).
        for _ in 0..2 {
            if let Some(d) = driver.as_mut()
                && let Poll::Ready(ended) = d.as_mut().poll(cx)
            {
                if let Err(e) = ended {
                    tracing::debug!(error = %e, "upstream connection ended");
                }
                *driver = None;
            }
            if let Poll::Ready(out) = work.as_mut().poll(cx) {
                return Poll::Ready(out);
            }
        }
        Poll::Pending
    })
    .await;
    (out, driver.is_some())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::SocketAddr;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
    use tokio::net::TcpListener;

    /// An HTTP/1.1 upstream answering every request with `body_len` bytes;
    /// it closes its first connection after one answer when `close_first`.
    /// Counts the connections it accepted.
    async fn upstream(body_len: usize, close_first: bool) -> (SocketAddr, Arc<AtomicUsize>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let accepted = Arc::new(AtomicUsize::new(0));
        let count = accepted.clone();
        tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                let first = count.fetch_add(1, Ordering::SeqCst) == 0;
                tokio::spawn(answer_all(tcp, body_len, first && close_first));
            }
        });
        (addr, accepted)
    }

    async fn answer_all(tcp: TcpStream, body_len: usize, once: bool) {
        let mut io = BufReader::new(tcp);
        let mut line = String::new();
        loop {
            line.clear();
            match io.read_line(&mut line).await {
                Ok(0) | Err(_) => return,
                Ok(_) if line != "\r\n" => continue,
                Ok(_) => {}
            }
            let head = format!("HTTP/1.1 200 OK\r\ncontent-length: {body_len}\r\n\r\n");
            let body = vec![b'x'; body_len];
            io.get_mut().write_all(head.as_bytes()).await.unwrap();
            io.get_mut().write_all(&body).await.unwrap();
            if once {
                return;
            }
        }
    }

    fn direct(id: usize, addr: SocketAddr) -> Direct {
        let base: Uri = format!("http://{addr}").parse().unwrap();
        Direct::new(id, &base, Duration::from_secs(1)).unwrap()
    }

    async fn get(d: &Direct) -> Answer {
        let req = Request::get(d.target("/x")).body(Empty::new()).unwrap();
        d.exchange(req, 1024).await.unwrap()
    }

    #[tokio::test]
    async fn reuses_its_connection_and_replaces_one_the_upstream_closed() {
        let (addr, accepted) = upstream(5, true).await;
        let d = direct(9001, addr);
        let Answer::Whole(parts, body) = get(&d).await else {
            panic!("a 5-byte body is read whole");
        };
        assert_eq!((parts.status.as_u16(), &body[..]), (200, &b"xxxxx"[..]));
        // The upstream closed that connection: the next call sees it closed
        // when it takes it, and opens another instead of failing.
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(matches!(get(&d).await, Answer::Whole(..)));
        for _ in 0..3 {
            assert!(matches!(get(&d).await, Answer::Whole(..)));
        }
        assert_eq!(accepted.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn streams_a_large_body_on_a_connection_of_its_own() {
        let (addr, accepted) = upstream(100_000, false).await;
        let d = direct(9002, addr);
        let Answer::Streamed(resp) = get(&d).await else {
            panic!("a 100 kB body is streamed");
        };
        let body = resp.into_body().collect().await.unwrap().to_bytes();
        assert_eq!(body.len(), 100_000);
        // That connection was not given back for reuse while streaming.
        assert!(matches!(get(&d).await, Answer::Streamed(_)));
        assert_eq!(accepted.load(Ordering::SeqCst), 2);
    }
}
