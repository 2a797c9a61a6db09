//! The `opale-pg` runtime: a current-thread tokio runtime on a thread of
//! its own, alive as long as the store. It drives what must outlive the
//! task that started it: each pooled connection's socket and connection
//! task, the LISTEN session, the COMMIT of a write whose caller stopped
//! waiting (`fate.rs`) and the ROLLBACK of a transaction dropped midway
//! (`ops::Open`). Store calls themselves run in their caller's task.
//!
//! Why connections are made here: deadpool creates a connection in the
//! task that asked the pool for one, and tokio binds a socket and a
//! spawned task to the runtime current there. The callers' runtimes do
//! not all live as long as the pool: the CLI's, a test's, a gateway
//! worker's during shutdown. A connection made there would die with its
//! runtime while the pool kept handing it out. [`OnRuntime`] polls the
//! connect with this runtime entered, so that the socket, its timers and
//! the connection task belong to `opale-pg`; the caller's task is still
//! the one waiting (and woken), across runtimes.

use deadpool_postgres::Connect;
use std::future::Future;
use std::pin::Pin;
use std::sync::mpsc::sync_channel;
use std::task::{Context, Poll};
use tokio::runtime::Handle;
use tokio::task::JoinHandle;
use tokio_postgres::NoTls;

use super::super::StoreError;

/// Starts the `opale-pg` thread and its runtime; the runtime stops when
/// the returned sender is dropped.
pub(super) fn start() -> Result<(Handle, tokio::sync::oneshot::Sender<()>), StoreError> {
    let (handle_tx, handle_rx) = sync_channel(1);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    std::thread::Builder::new()
        .name("opale-pg".into())
        .spawn(move || {
            let rt = match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(rt) => rt,
                Err(e) => {
                    let _ = handle_tx.send(Err(e));
                    return;
                }
            };
            let _ = handle_tx.send(Ok(rt.handle().clone()));
            rt.block_on(async {
                let _ = stopped.await;
            });
            rt.shutdown_background();
        })
        .map_err(|e| StoreError::backend_in("cannot start the PostgreSQL thread", e))?;
    match handle_rx.recv() {
        Ok(Ok(handle)) => Ok((handle, stop)),
        Ok(Err(e)) => Err(StoreError::backend(e)),
        Err(_) => Err(StoreError::broken("the PostgreSQL thread died")),
    }
}

/// deadpool's connector, making each connection on the `opale-pg`
/// runtime (module docs).
pub(super) struct OnRuntime(pub Handle);

impl Connect for OnRuntime {
    fn connect(
        &self,
        pg: &tokio_postgres::Config,
    ) -> Pin<
        Box<
            dyn Future<
                    Output = Result<
                        (tokio_postgres::Client, JoinHandle<()>),
                        tokio_postgres::Error,
                    >,
                > + Send
                + '_,
        >,
    > {
        let pg = pg.clone();
        Box::pin(Entered {
            runtime: self.0.clone(),
            inner: Box::pin(async move {
                let (client, connection) = pg.connect(NoTls).await?;
                let task = tokio::spawn(async move {
                    if let Err(e) = connection.await {
                        tracing::warn!(error = %e, "PostgreSQL connection ended");
                    }
                });
                Ok((client, task))
            }),
        })
    }
}

/// A future polled with `runtime` entered: what it registers (sockets,
/// timers) and spawns belongs to that runtime.
struct Entered<F> {
    runtime: Handle,
    inner: Pin<Box<F>>,
}

impl<F: Future> Future for Entered<F> {
    type Output = F::Output;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = &mut *self;
        let _entered = this.runtime.enter();
        this.inner.as_mut().poll(cx)
    }
}
