//! What sets a reload off besides the admin API: `SIGHUP` (a full reload,
//! traced as an admin action with actor `SIGHUP`), and a task that polls
//! the CRL files every [`CRL_POLL_INTERVAL`] and re-reads them when one
//! changed on disk, so a revocation published as a new CRL takes effect on
//! new connections within about a second with no action.

use super::{ReloadError, Reloaded, Reloader, Stamp, reload, reload_crls_if_changed};
use crate::audit::{ActionKind, Actor, AdminAction, Code, TraceEvent};
use crate::chain::Control;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tracing::{error, info};

/// How often the CRL files' modification time and size are checked.
pub const CRL_POLL_INTERVAL: Duration = Duration::from_secs(1);

/// Polls the CRL files until the task is dropped. A changed file that
/// cannot be used is logged once (until it changes again); the CRLs
/// loaded before stay in force.
pub async fn watch_crls(reloader: Arc<Reloader>) {
    let mut tick = tokio::time::interval(CRL_POLL_INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut failed: Option<Vec<Stamp>> = None;
    loop {
        tick.tick().await;
        let reloader = reloader.clone();
        let polled = tokio::task::spawn_blocking(move || poll(&reloader, failed)).await;
        failed = polled.unwrap_or(None);
    }
}

/// One look at the files; returns the stamps of a refused change.
fn poll(reloader: &Reloader, failed: Option<Vec<Stamp>>) -> Option<Vec<Stamp>> {
    let trust = reloader.trust();
    let now: Vec<Stamp> = [&trust.sandbox, &trust.production]
        .iter()
        .flat_map(|env| env.crls.stamps_now())
        .collect();
    if failed.as_ref() == Some(&now) {
        return failed;
    }
    match reload_crls_if_changed(reloader) {
        Ok(None) => None,
        Ok(Some(total)) => {
            info!(crls = total, "a CRL file changed: CRLs re-read");
            None
        }
        Err(e) => {
            error!(file = %e.file().display(), error = %e.message(),
                "a CRL file changed but cannot be used; the previous CRLs are kept");
            Some(now)
        }
    }
}

/// Registers for `SIGHUP` now (so that one arriving before the returned
/// future runs does not kill the process) and returns the loop that
/// reloads on each.
#[cfg(unix)]
pub fn hangups(reloader: Arc<Reloader>) -> std::io::Result<impl Future<Output = ()>> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut hup = signal(SignalKind::hangup())?;
    Ok(async move {
        while hup.recv().await.is_some() {
            info!("SIGHUP: reloading");
            let r = reloader.clone();
            match tokio::task::spawn_blocking(move || reload(&r)).await {
                Ok(result) => trace_signal(&reloader, &result).await,
                Err(e) => error!(error = %e, "reload interrupted"),
            }
        }
    })
}

/// Appends the admin action of a reload by signal to the trail.
async fn trace_signal(reloader: &Reloader, result: &Result<Reloaded, ReloadError>) {
    let now = time::OffsetDateTime::now_utc();
    let signal = Actor::Signal {
        name: "SIGHUP".into(),
    };
    let file = super::attached_file(reloader)
        .map(|p| p.display().to_string())
        .unwrap_or_default();
    let mut event = TraceEvent::system(now, signal, ActionKind::Reloaded, file);
    let after = match result {
        Ok(r) => serde_json::to_value(r).unwrap_or_default(),
        Err(e) => {
            event.refuse_with(Control::Admin, Code::Status(400), &e.to_string());
            serde_json::Value::Null
        }
    };
    event.admin = Some(AdminAction::change(serde_json::Value::Null, after));
    if let Err(e) = reloader.audit().record(&event).await {
        error!(error = %e, "the reload could not be traced");
    }
}
