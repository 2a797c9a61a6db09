//! Connection admission (DESIGN §8): per listener, at most
//! `max_connections` open connections and `max_connections_per_ip` from
//! one address, counted at accept time, before TLS and authentication.
//! A connection over either cap is closed at once. The table is shared by
//! every worker thread; a [`Ticket`] gives its place back when dropped.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

/// Why a connection was refused at accept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// The listener holds `max_connections` already.
    Listener,
    /// This address holds `max_connections_per_ip` already.
    PerIp,
}

impl Refusal {
    /// The metric label.
    pub fn as_str(self) -> &'static str {
        match self {
            Refusal::Listener => "max_connections",
            Refusal::PerIp => "max_connections_per_ip",
        }
    }
}

/// Open connections of one listener.
#[derive(Debug)]
pub struct Admission {
    max_total: AtomicUsize,
    max_per_ip: AtomicUsize,
    total: AtomicUsize,
    per_ip: Mutex<HashMap<IpAddr, usize>>,
}

/// A place in the table, released on drop.
#[derive(Debug)]
pub struct Ticket {
    table: Arc<Admission>,
    ip: IpAddr,
}

impl Admission {
    /// An empty table with these caps.
    pub fn new(max_total: usize, max_per_ip: usize) -> Arc<Self> {
        Arc::new(Admission {
            max_total: AtomicUsize::new(max_total),
            max_per_ip: AtomicUsize::new(max_per_ip),
            total: AtomicUsize::new(0),
            per_ip: Mutex::new(HashMap::new()),
        })
    }

    /// Takes a place for a connection from `ip` (IPv4-mapped addresses
    /// count as their IPv4 address), or says which cap refused it.
    pub fn admit(self: &Arc<Self>, ip: IpAddr) -> Result<Ticket, Refusal> {
        let ip = ip.to_canonical();
        let mut per_ip = self.per_ip.lock().unwrap_or_else(|p| p.into_inner());
        if self.total.load(Ordering::Relaxed) >= self.max_total.load(Ordering::Relaxed) {
            return Err(Refusal::Listener);
        }
        let held = per_ip.entry(ip).or_insert(0);
        if *held >= self.max_per_ip.load(Ordering::Relaxed) {
            return Err(Refusal::PerIp);
        }
        *held += 1;
        self.total.fetch_add(1, Ordering::Relaxed);
        Ok(Ticket {
            table: self.clone(),
            ip,
        })
    }

    /// New caps (reload); connections over them already open stay open.
    pub fn set_caps(&self, max_total: usize, max_per_ip: usize) {
        self.max_total.store(max_total, Ordering::Relaxed);
        self.max_per_ip.store(max_per_ip, Ordering::Relaxed);
    }

    /// Connections open now.
    pub fn open(&self) -> usize {
        self.total.load(Ordering::Relaxed)
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        let mut per_ip = self.table.per_ip.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(held) = per_ip.get_mut(&self.ip) {
            *held -= 1;
            if *held == 0 {
                per_ip.remove(&self.ip);
            }
        }
        self.table.total.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Lets a warning through at most once per second, and says how many
/// were held back since: refusals and timeouts under attack must not
/// flood the log.
#[derive(Debug, Default)]
pub struct LogGate {
    last_second: AtomicU64,
    held_back: AtomicU64,
}

impl LogGate {
    /// `Some(held back since the last one)` if a line may be logged now.
    pub fn pass(&self) -> Option<u64> {
        let now = time::OffsetDateTime::now_utc().unix_timestamp() as u64;
        let last = self.last_second.load(Ordering::Relaxed);
        let won = now > last
            && self
                .last_second
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok();
        if won {
            Some(self.held_back.swap(0, Ordering::Relaxed))
        } else {
            self.held_back.fetch_add(1, Ordering::Relaxed);
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caps_per_ip_and_per_listener_and_release_on_drop() {
        let table = Admission::new(3, 2);
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let mapped: IpAddr = "::ffff:10.0.0.1".parse().unwrap();
        let b: IpAddr = "10.0.0.2".parse().unwrap();
        let t1 = table.admit(a).unwrap();
        let _t2 = table.admit(mapped).unwrap();
        assert_eq!(table.admit(a).unwrap_err(), Refusal::PerIp);
        let _t3 = table.admit(b).unwrap();
        assert_eq!(table.admit(b).unwrap_err(), Refusal::Listener);
        drop(t1);
        assert_eq!(table.open(), 2);
        assert!(table.admit(a).is_ok());
    }

    #[test]
    fn new_caps_apply_to_new_connections_and_open_ones_keep_their_places() {
        let table = Admission::new(10, 2);
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let _t1 = table.admit(a).unwrap();
        let _t2 = table.admit(a).unwrap();
        table.set_caps(10, 1);
        assert_eq!(table.admit(a).unwrap_err(), Refusal::PerIp);
        assert_eq!(table.open(), 2, "open connections kept");
        table.set_caps(10, 3);
        assert!(table.admit(a).is_ok());
        table.set_caps(1, 3);
        assert_eq!(table.admit(a).unwrap_err(), Refusal::Listener);
    }

    #[test]
    fn the_log_gate_lets_one_line_a_second_through() {
        let gate = LogGate::default();
        assert_eq!(gate.pass(), Some(0));
        assert_eq!(gate.pass(), None);
        assert_eq!(gate.pass(), None);
        assert_eq!(gate.held_back.load(Ordering::Relaxed), 2);
    }
}
