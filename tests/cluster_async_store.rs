//! A store call waiting for PostgreSQL does not hold its thread (issue 18,
//! "an asynchronous store"): with the `kv` table locked by another
//! session, a read and a write from a current-thread runtime (the shape of
//! a gateway worker) wait for the lock, while another task on the same
//! runtime goes on ticking every 10 ms. The synchronous store this
//! replaced waited for PostgreSQL on a std channel in the calling thread:
//! the ticker stopped for the whole wait (up to the 10 s call timeout).
//!
//! A write whose caller stops waiting before its COMMIT is rolled back,
//! once PostgreSQL gets to it, and leaves no lock behind.
// A test crate: its helpers may unwrap like its #[test] functions.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use opale_apim::store::{Fetched, PgStore, Step, Store, Write};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use support::postgres::Postgres;

/// How long each stalled call is waited for.
const STALL: Duration = Duration::from_secs(2);
/// The ticker's period.
const TICK: Duration = Duration::from_millis(10);
/// The longest gap between two ticks allowed (scheduling noise on a
/// loaded 2-core machine; a blocked thread gives a gap of `STALL`).
const LONGEST_GAP: Duration = Duration::from_millis(250);

fn put(key: &str, value: &str) -> Write {
    Write::Put(key.as_bytes().to_vec(), value.as_bytes().to_vec())
}

/// The instants a task on the current runtime ticked at, until aborted.
fn ticker() -> (Arc<Mutex<Vec<Instant>>>, tokio::task::JoinHandle<()>) {
    let ticks = Arc::new(Mutex::new(Vec::new()));
    let seen = ticks.clone();
    let task = tokio::spawn(async move {
        loop {
            tokio::time::sleep(TICK).await;
            seen.lock().unwrap().push(Instant::now());
        }
    });
    (ticks, task)
}

/// The longest gap between `start`, the ticks and `end`.
fn longest_gap(start: Instant, ticks: &[Instant], end: Instant) -> Duration {
    let mut all = vec![start];
    all.extend(ticks.iter().copied().filter(|t| (start..end).contains(t)));
    all.push(end);
    all.windows(2)
        .map(|w| w[1] - w[0])
        .max()
        .unwrap_or_default()
}

#[tokio::test(flavor = "current_thread")]
async fn a_store_call_stalled_by_postgresql_leaves_its_runtime_running() {
    let pg = Postgres::start().await;
    let store = PgStore::open(&pg.url(), 4, "node-a").await.unwrap();
    store.commit(vec![put("reg/x", "1")]).await.unwrap();

    let locker = pg.session().await;
    locker
        .batch_execute("BEGIN; LOCK TABLE kv IN ACCESS EXCLUSIVE MODE")
        .await
        .unwrap();
    let (ticks, ticking) = ticker();

    let start = Instant::now();
    let read = tokio::time::timeout(STALL, store.get(b"reg/x")).await;
    assert!(read.is_err(), "the read waits for the lock: {read:?}");
    let mut write = |_, _: &Fetched| Step::Commit(vec![put("reg/y", "2")]);
    let written = tokio::time::timeout(STALL, store.transact("reg", &mut write)).await;
    assert!(
        written.is_err(),
        "the write waits for the lock: {written:?}"
    );
    let end = Instant::now();

    let gap = longest_gap(start, &ticks.lock().unwrap(), end);
    assert!(
        gap < LONGEST_GAP,
        "the runtime stopped for {gap:?} while the store waited for PostgreSQL"
    );
    ticking.abort();

    locker.batch_execute("ROLLBACK").await.unwrap();
    assert_eq!(store.get(b"reg/x").await.unwrap(), Some(b"1".to_vec()));
    // The abandoned write was rolled back, and released the area's lock.
    assert_eq!(store.get(b"reg/y").await.unwrap(), None);
    let mut again = |_, _: &Fetched| Step::Commit(vec![put("reg/z", "3")]);
    let locked = tokio::time::timeout(STALL, store.transact("reg", &mut again)).await;
    assert!(matches!(locked, Ok(Ok(Some(_)))), "{locked:?}");
    assert_eq!(store.get(b"reg/z").await.unwrap(), Some(b"3".to_vec()));
}
