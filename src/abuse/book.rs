//! What the detector keeps in the store: open events under
//! `abuse/event/{id}` (JSON) and each application's known addresses
//! under `abuse/addr/{client_id}/{ip}` (the unix day last seen), so that a
//! restart neither loses an open event nor makes every address "new".

use super::AbuseError;
use super::event::{EVENT_PREFIX, SecurityEvent};
use super::window::AddressChange;
use crate::domain::ClientId;
use crate::store::{Store, Write};
use std::collections::HashMap;
use std::net::IpAddr;

/// Key prefix of the address books.
const ADDRESS_PREFIX: &str = "abuse/addr/";

/// Addresses by application, as stored.
pub type AddressBooks = HashMap<ClientId, Vec<(IpAddr, i64)>>;

/// Every open event (undecodable entries are logged and skipped).
pub async fn load_events(store: &dyn Store) -> Result<Vec<SecurityEvent>, AbuseError> {
    let mut events = Vec::new();
    for (key, value) in store.scan_prefix(EVENT_PREFIX.as_bytes()).await? {
        match serde_json::from_slice(&value) {
            Ok(e) => events.push(e),
            Err(e) => tracing::warn!(
                key = %String::from_utf8_lossy(&key), error = %e,
                "security event not readable; skipped"
            ),
        }
    }
    Ok(events)
}

/// Every application's known addresses, at most `max` each (the most
/// recently seen).
pub async fn load_addresses(store: &dyn Store, max: usize) -> Result<AddressBooks, AbuseError> {
    let mut books = AddressBooks::new();
    for (key, value) in store.scan_prefix(ADDRESS_PREFIX.as_bytes()).await? {
        let key = String::from_utf8_lossy(&key[ADDRESS_PREFIX.len()..]).into_owned();
        let parsed = key.split_once('/').and_then(|(client, ip)| {
            let ip = ip.parse::<IpAddr>().ok()?;
            let day = std::str::from_utf8(&value).ok()?.parse::<i64>().ok()?;
            Some((ClientId::new(client), ip, day))
        });
        if let Some((client, ip, day)) = parsed {
            books.entry(client).or_default().push((ip, day));
        }
    }
    for book in books.values_mut() {
        book.sort_by_key(|&(_, day)| std::cmp::Reverse(day));
        book.truncate(max);
    }
    Ok(books)
}

/// The store write of an address-book change.
pub fn address_write(client: &ClientId, change: AddressChange) -> Write {
    let key = |ip: IpAddr| format!("{ADDRESS_PREFIX}{client}/{ip}").into_bytes();
    match change {
        AddressChange::Seen(ip, day) => Write::Put(key(ip), day.to_string().into_bytes()),
        AddressChange::Forgotten(ip) => Write::Delete(key(ip)),
    }
}

/// The store write of an open event.
pub fn event_write(event: &SecurityEvent) -> Result<Write, AbuseError> {
    let value = serde_json::to_vec(event).map_err(AbuseError::Encode)?;
    Ok(Write::Put(event.key(), value))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::SledStore;

    #[tokio::test]
    async fn address_books_round_trip_and_keep_the_most_recent() {
        let dir = tempfile::tempdir().unwrap();
        let store = SledStore::open(dir.path()).unwrap();
        let client = ClientId::new("c1");
        let ips: Vec<IpAddr> = ["127.0.0.1", "::1", "10.0.0.1"]
            .iter()
            .map(|s| s.parse().unwrap())
            .collect();
        let writes = ips
            .iter()
            .enumerate()
            .map(|(i, ip)| address_write(&client, AddressChange::Seen(*ip, 100 + i as i64)))
            .collect();
        store.commit(writes).await.unwrap();
        let books = load_addresses(&store, 2).await.unwrap();
        assert_eq!(books[&client], [(ips[2], 102), (ips[1], 101)]);
        store
            .commit(vec![address_write(
                &client,
                AddressChange::Forgotten(ips[2]),
            )])
            .await
            .unwrap();
        assert_eq!(load_addresses(&store, 5).await.unwrap()[&client].len(), 2);
    }
}
