//! Change propagation: one dedicated connection per node LISTENs on
//! `opale_changes` and hands the areas another node changed to the
//! reloader (`crate::cluster`). A `SELECT 1` every second is the liveness
//! round-trip that keeps [`Health`] current (the staleness cut-off reads
//! it). The connection lost: reconnect with backoff, then ask for a reload
//! of everything, since notifications sent meanwhile are gone.

use super::super::{Change, Health};
use super::ops::CHANNEL;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc::UnboundedSender;
use tokio_postgres::{AsyncMessage, NoTls};

/// Time between two liveness round-trips.
const HEARTBEAT: Duration = Duration::from_secs(1);
/// First and largest wait before reconnecting.
const BACKOFF: (Duration, Duration) = (Duration::from_millis(100), Duration::from_secs(5));

/// The LISTEN side of one node.
pub(super) struct Listener {
    pub pg: tokio_postgres::Config,
    pub node_id: String,
    pub health: Arc<Health>,
    pub changes: UnboundedSender<Change>,
}

impl Listener {
    /// Listens until the reloader goes away, reconnecting as needed.
    pub async fn run(self) {
        let mut backoff = BACKOFF.0;
        loop {
            match self.session(&mut backoff).await {
                Ok(()) => return,
                Err(e) => self.health.failure(&e),
            }
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(BACKOFF.1);
        }
    }

    /// One connection: `Ok` when the reloader is gone (stop), `Err` when
    /// the connection failed.
    async fn session(&self, backoff: &mut Duration) -> Result<(), String> {
        let lost = |e: tokio_postgres::Error| format!("LISTEN connection: {e}");
        let (client, conn) = self.pg.connect(NoTls).await.map_err(lost)?;
        let (mut notes, _driver) = drive(conn);
        client
            .batch_execute(&format!("LISTEN {CHANNEL}"))
            .await
            .map_err(lost)?;
        self.health.contact();
        *backoff = BACKOFF.0;
        // Whatever was committed before LISTEN took effect is loaded now.
        if self.changes.send(Change::Everything).is_err() {
            return Ok(());
        }
        let mut tick = tokio::time::interval(HEARTBEAT);
        loop {
            tokio::select! {
                note = notes.recv() => match note {
                    Some(payload) => {
                        if let Some(change) = parse(&self.node_id, &payload)
                            && self.changes.send(change).is_err()
                        {
                            return Ok(());
                        }
                    }
                    None => return Err("LISTEN connection closed".into()),
                },
                _ = tick.tick() => {
                    let ping = tokio::time::timeout(HEARTBEAT * 2, client.simple_query("SELECT 1"));
                    match ping.await {
                        Ok(Ok(_)) => self.health.contact(),
                        Ok(Err(e)) => return Err(lost(e)),
                        Err(_) => return Err("LISTEN connection: no answer to SELECT 1".into()),
                    }
                }
            }
        }
    }
}

/// `<node> <area,…>` from another node: the areas to reload. (A node
/// of the previous version sends `<node> <revision> <area,…>`: the
/// areas are the last field either way, so a rolling upgrade works.)
fn parse(node_id: &str, payload: &str) -> Option<Change> {
    let mut fields = payload.split(' ');
    if fields.next()? == node_id {
        return None;
    }
    let areas: Vec<String> = fields
        .next_back()?
        .split(',')
        .filter(|a| !a.is_empty())
        .map(str::to_owned)
        .collect();
    (!areas.is_empty()).then_some(Change::Areas(areas))
}

/// Drives the connection on its own task; its notifications' payloads
/// come out of the receiver, which closes when the connection ends. The
/// task is aborted when the returned guard is dropped.
fn drive<S, T>(
    mut conn: tokio_postgres::Connection<S, T>,
) -> (tokio::sync::mpsc::UnboundedReceiver<String>, AbortOnDrop)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (notes_tx, notes) = tokio::sync::mpsc::unbounded_channel();
    let driver = tokio::spawn(async move {
        while let Some(Ok(msg)) = std::future::poll_fn(|cx| conn.poll_message(cx)).await {
            if let AsyncMessage::Notification(n) = msg {
                let _ = notes_tx.send(n.payload().to_owned());
            }
        }
    });
    (notes, AbortOnDrop(driver.abort_handle()))
}

struct AbortOnDrop(tokio::task::AbortHandle);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

#[cfg(test)]
mod tests {
    use super::{Change, parse};

    #[test]
    fn a_notification_names_the_areas_of_another_node() {
        let areas = |a: &[&str]| Some(Change::Areas(a.iter().map(|s| s.to_string()).collect()));
        assert_eq!(
            parse("node-a", "node-b reg,oauth"),
            areas(&["reg", "oauth"])
        );
        // A node of the previous version also sends its revision.
        assert_eq!(parse("node-a", "node-b 17 tx,idem"), areas(&["tx", "idem"]));
        assert_eq!(parse("node-a", "node-a reg"), None, "its own changes");
        assert_eq!(parse("node-a", "node-b"), None, "no areas");
        assert_eq!(parse("node-a", "node-b ,"), None);
    }
}
