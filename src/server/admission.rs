//! Connection admission (docs/contract.md §8): per listener, at most
//! `max_connections` open connections and `max_connections_per_ip` from
//! one address, counted at accept time, before TLS and authentication.
//! A connection over either cap is closed at once. The table is shared by
//! every worker thread; a [`Ticket`] gives its place back when dropped.
//!
//! A connection from a trusted load balancer (`proxy_protocol_from`) is
//! counted against the listener at accept but against its caller's address
//! only once its PROXY header names that caller ([`Ticket::key`]): keyed by
//! the balancer's address, every client behind it would share one cap.

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
    /// The caller address counted, once known.
    ip: Option<IpAddr>,
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
        self.has_room()?;
        self.count(&mut per_ip, ip)?;
        self.total.fetch_add(1, Ordering::Relaxed);
        Ok(Ticket {
            table: self.clone(),
            ip: Some(ip),
        })
    }

    /// Takes a listener place for a connection whose caller is not known
    /// yet (behind a PROXY header); [`Ticket::key`] counts the caller.
    pub fn admit_unkeyed(self: &Arc<Self>) -> Result<Ticket, Refusal> {
        let _per_ip = self.per_ip.lock().unwrap_or_else(|p| p.into_inner());
        self.has_room()?;
        self.total.fetch_add(1, Ordering::Relaxed);
        Ok(Ticket {
            table: self.clone(),
            ip: None,
        })
    }

    /// Whether the listener cap leaves room (checked under the table's lock).
    fn has_room(&self) -> Result<(), Refusal> {
        if self.total.load(Ordering::Relaxed) >= self.max_total.load(Ordering::Relaxed) {
            return Err(Refusal::Listener);
        }
        Ok(())
    }

    /// Counts one more connection of `ip` (canonical) unless its cap is reached.
    fn count(&self, per_ip: &mut HashMap<IpAddr, usize>, ip: IpAddr) -> Result<(), Refusal> {
        let held = per_ip.entry(ip).or_insert(0);
        if *held >= self.max_per_ip.load(Ordering::Relaxed) {
            return Err(Refusal::PerIp);
        }
        *held += 1;
        Ok(())
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

impl Ticket {
    /// Counts an unkeyed ticket against `ip` (canonical), or says the
    /// per-address cap refuses it; a keyed ticket is left as it is.
    pub fn key(&mut self, ip: IpAddr) -> Result<(), Refusal> {
        if self.ip.is_some() {
            return Ok(());
        }
        let ip = ip.to_canonical();
        let mut per_ip = self.table.per_ip.lock().unwrap_or_else(|p| p.into_inner());
        self.table.count(&mut per_ip, ip)?;
        self.ip = Some(ip);
        Ok(())
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        let mut per_ip = self.table.per_ip.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(ip) = self.ip
            && let Some(held) = per_ip.get_mut(&ip)
        {
            *held -= 1;
            if *held == 0 {
                per_ip.remove(&ip);
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
    fn an_unkeyed_ticket_counts_its_caller_once_keyed() {
        let table = Admission::new(3, 1);
        let caller: IpAddr = "203.0.113.7".parse().unwrap();
        let mut first = table.admit_unkeyed().unwrap();
        let mut second = table.admit_unkeyed().unwrap();
        assert_eq!(table.open(), 2);
        first.key("::ffff:203.0.113.7".parse().unwrap()).unwrap();
        assert_eq!(second.key(caller), Err(Refusal::PerIp));
        assert_eq!(table.admit(caller).unwrap_err(), Refusal::PerIp);
        drop(second);
        assert_eq!(table.open(), 1);
        drop(first);
        assert!(table.per_ip.lock().unwrap().is_empty());
        let _third = table.admit_unkeyed().unwrap();
        let _fourth = table.admit_unkeyed().unwrap();
        let _fifth = table.admit(caller).unwrap();
        assert_eq!(table.admit_unkeyed().unwrap_err(), Refusal::Listener);
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
