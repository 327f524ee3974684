//! Whose share of the request memory a call's bytes come from.
//!
//! Behind a service mesh sidecar or an ingress every caller arrives from one address, so a share
//! keyed by address alone lets one caller's flood refuse everybody. A share is therefore keyed by
//! who calls:
//!
//! - a caller known by its API key or certificate (settled on the headers, before the body is
//!   read) has its own share, wherever it connects from;
//! - an anonymous call from a trusted proxy (`limits.trusted_proxies`) is keyed by the client
//!   address the proxy forwards (`x-forwarded-for`, else `forwarded`);
//! - any other anonymous call is keyed by its connection's remote address.
//!
//! Within a share, one connection may hold at most the share less one largest message, so a
//! second connection of the same caller always has room for one.

use std::{
    collections::HashMap,
    net::IpAddr,
    sync::{Arc, Mutex, PoisonError, Weak},
};

use http::{HeaderMap, Request};
use ipnet::IpNet;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::{
    auth::{ANONYMOUS, Caller},
    limits::LimitsConfig,
    transport::ConnectionInfo,
};

/// What a share is keyed by, as metrics label it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Keyed {
    Caller,
    ForwardedAddress,
    Address,
}

/// One caller's or client's part of the request memory.
pub struct Share {
    bytes: Arc<Semaphore>,
    /// Its part of the small calls' allowance, so that one client's small calls cannot take it
    /// all either.
    small: Arc<Semaphore>,
    /// Bytes of it each connection holds now, by connection id.
    by_connection: Mutex<HashMap<u64, usize>>,
    connection_cap: usize,
}

impl Share {
    fn new(bytes: usize, connection_cap: usize) -> Arc<Self> {
        Arc::new(Self {
            bytes: Arc::new(Semaphore::new(bytes)),
            small: Arc::new(Semaphore::new(SMALL_SHARE)),
            by_connection: Mutex::new(HashMap::new()),
            connection_cap,
        })
    }

    /// `n` bytes for a call on `connection`, or `None` when the share, or the connection's part
    /// of it, has not that much left.
    pub fn take(self: &Arc<Self>, connection: u64, n: usize) -> Option<SharePermit> {
        let mut held = self
            .by_connection
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let on_connection = held.get(&connection).copied().unwrap_or(0);
        if on_connection + n > self.connection_cap {
            return None;
        }
        let permit = Arc::clone(&self.bytes)
            .try_acquire_many_owned(u32::try_from(n).ok()?)
            .ok()?;
        held.insert(connection, on_connection + n);
        Some(SharePermit {
            share: Arc::clone(self),
            connection,
            bytes: n,
            _permit: permit,
        })
    }

    /// `n` bytes of the share's part of the small calls' allowance.
    pub fn take_small(&self, n: usize) -> Option<OwnedSemaphorePermit> {
        Arc::clone(&self.small)
            .try_acquire_many_owned(u32::try_from(n).ok()?)
            .ok()
    }
}

/// A share's part of the small calls' allowance: an eighth of it.
const SMALL_SHARE: usize = super::intake::SMALL_ALLOWANCE / 8;

/// Bytes a call holds of a share, given back when it is dropped.
pub struct SharePermit {
    share: Arc<Share>,
    connection: u64,
    bytes: usize,
    _permit: OwnedSemaphorePermit,
}

impl Drop for SharePermit {
    fn drop(&mut self) {
        let mut held = self
            .share
            .by_connection
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(on_connection) = held.get_mut(&self.connection) {
            *on_connection -= self.bytes.min(*on_connection);
            if *on_connection == 0 {
                held.remove(&self.connection);
            }
        }
    }
}

/// Every share, found by who calls.
pub struct Shares {
    bytes: usize,
    connection_cap: usize,
    trusted_proxies: Arc<[IpNet]>,
    /// Known callers' shares: as many as the configuration names.
    callers: Mutex<HashMap<String, Arc<Share>>>,
    /// Anonymous clients' shares, by address: kept while a call holds them.
    addresses: Mutex<HashMap<IpAddr, Weak<Share>>>,
}

/// Addresses kept before the map is swept of those no call holds any more.
const SWEEP_AT: usize = 4096;

impl Shares {
    pub fn new(limits: &LimitsConfig) -> Self {
        let bytes = limits.request_memory_per_client_bytes();
        let largest = limits.max_message_bytes() + super::intake::PREFIX_BYTES;
        Self {
            bytes,
            connection_cap: bytes.saturating_sub(largest).max(largest.min(bytes)),
            trusted_proxies: limits.trusted_proxies.clone().into(),
            callers: Mutex::new(HashMap::new()),
            addresses: Mutex::new(HashMap::new()),
        }
    }

    /// The share `request`'s bytes come from, and what chose it; `None` off a real connection.
    pub fn of<B>(&self, request: &Request<B>) -> Option<(Arc<Share>, Keyed)> {
        if let Some(caller) = request.extensions().get::<Arc<Caller>>()
            && caller.name != ANONYMOUS
        {
            let mut callers = self.callers.lock().unwrap_or_else(PoisonError::into_inner);
            let share = callers
                .entry(caller.name.clone())
                .or_insert_with(|| Share::new(self.bytes, self.connection_cap));
            return Some((Arc::clone(share), Keyed::Caller));
        }
        let remote = request.extensions().get::<ConnectionInfo>()?.remote?.ip();
        let (address, keyed) = if self.trusts(remote) {
            match forwarded_client(request.headers(), &self.trusted_proxies) {
                Some(client) => (client, Keyed::ForwardedAddress),
                None => (remote, Keyed::Address),
            }
        } else {
            (remote, Keyed::Address)
        };
        Some((self.of_address(address), keyed))
    }

    fn trusts(&self, address: IpAddr) -> bool {
        trusted(&self.trusted_proxies, address)
    }

    fn of_address(&self, address: IpAddr) -> Arc<Share> {
        let mut addresses = self
            .addresses
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(share) = addresses.get(&address).and_then(Weak::upgrade) {
            return share;
        }
        if addresses.len() >= SWEEP_AT {
            addresses.retain(|_, share| share.strong_count() > 0);
        }
        let share = Share::new(self.bytes, self.connection_cap);
        addresses.insert(address, Arc::downgrade(&share));
        share
    }
}

fn trusted(proxies: &[IpNet], address: IpAddr) -> bool {
    let address = match address {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(address, IpAddr::V4),
        v4 => v4,
    };
    proxies.iter().any(|net| net.contains(&address))
}

/// The client a trusted proxy forwards: of the addresses `x-forwarded-for` (else `forwarded`)
/// lists, the last that is not itself a trusted proxy, since each proxy appends the address it
/// was reached from and only the trusted ones' entries are believed. `None` when the headers
/// name no address.
fn forwarded_client(headers: &HeaderMap, proxies: &[IpNet]) -> Option<IpAddr> {
    let hops: Vec<IpAddr> = if headers.contains_key("x-forwarded-for") {
        headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|value| value.to_str().ok())
            .flat_map(|value| value.split(','))
            .filter_map(|hop| parse_hop(hop.trim()))
            .collect()
    } else {
        headers
            .get_all("forwarded")
            .iter()
            .filter_map(|value| value.to_str().ok())
            .flat_map(|value| value.split([',', ';']))
            .filter_map(|pair| {
                let (key, value) = pair.trim().split_once('=')?;
                key.trim()
                    .eq_ignore_ascii_case("for")
                    .then(|| parse_hop(value.trim().trim_matches('"')))?
            })
            .collect()
    };
    hops.iter()
        .rev()
        .find(|hop| !trusted(proxies, **hop))
        .or(hops.first())
        .copied()
}

/// An address as a hop writes it: `203.0.113.7`, `203.0.113.7:4711`, `[2001:db8::1]:4711`,
/// `2001:db8::1`.
fn parse_hop(hop: &str) -> Option<IpAddr> {
    if let Ok(address) = hop.parse() {
        return Some(address);
    }
    if let Ok(socket) = hop.parse::<std::net::SocketAddr>() {
        return Some(socket.ip());
    }
    hop.strip_prefix('[')
        .and_then(|rest| rest.split_once(']'))
        .and_then(|(address, _)| address.parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn proxies(nets: &[&str]) -> Vec<IpNet> {
        nets.iter().map(|net| net.parse().expect("cidr")).collect()
    }

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for (name, value) in pairs {
            headers.append(
                http::HeaderName::from_bytes(name.as_bytes()).expect("name"),
                value.parse().expect("value"),
            );
        }
        headers
    }

    fn ip(text: &str) -> IpAddr {
        text.parse().expect("address")
    }

    #[test]
    fn the_client_is_the_last_hop_that_is_not_a_trusted_proxy() {
        let trusted = proxies(&["10.0.0.0/8", "127.0.0.1/32"]);
        let forwarded = |pairs| forwarded_client(&headers(pairs), &trusted);
        assert_eq!(
            forwarded(&[("x-forwarded-for", "203.0.113.7, 10.1.2.3")]),
            Some(ip("203.0.113.7"))
        );
        // A client that writes its own header cannot hide behind the proxy's entry.
        assert_eq!(
            forwarded(&[("x-forwarded-for", "198.51.100.1, 203.0.113.7")]),
            Some(ip("203.0.113.7"))
        );
        assert_eq!(
            forwarded(&[
                ("x-forwarded-for", "203.0.113.7:4711"),
                ("x-forwarded-for", "10.0.0.1")
            ]),
            Some(ip("203.0.113.7"))
        );
        assert_eq!(
            forwarded(&[(
                "forwarded",
                r#"for="[2001:db8::1]:4711";proto=https, for=10.0.0.2"#
            )]),
            Some(ip("2001:db8::1"))
        );
        // Only trusted hops: the first is the client.
        assert_eq!(
            forwarded(&[("x-forwarded-for", "10.0.0.9, 10.0.0.1")]),
            Some(ip("10.0.0.9"))
        );
        assert_eq!(forwarded(&[("x-forwarded-for", "unknown, garbage")]), None);
        assert_eq!(forwarded(&[]), None);
    }

    #[test]
    fn an_ipv4_proxy_is_trusted_when_it_connects_over_ipv6_mapped_addresses() {
        let trusted = proxies(&["127.0.0.0/8"]);
        assert!(super::trusted(&trusted, ip("::ffff:127.0.0.1")));
        assert!(!super::trusted(&trusted, ip("::1")));
    }

    #[test]
    fn a_share_takes_at_most_an_eighth_of_the_small_calls_allowance() {
        let share = Share::new(30, 20);
        let most = share.take_small(SMALL_SHARE).expect("its part");
        assert!(share.take_small(1).is_none());
        drop(most);
        assert!(share.take_small(1).is_some());
        assert_eq!(SMALL_SHARE * 8, super::super::intake::SMALL_ALLOWANCE);
    }

    #[test]
    fn one_connection_may_take_a_share_less_one_largest_message() {
        let share = Share::new(30, 20);
        let first = share.take(1, 15).expect("room");
        assert!(share.take(1, 10).is_none(), "the connection's part is 20");
        let second = share.take(2, 10).expect("another connection has room");
        assert!(share.take(3, 10).is_none(), "the share is 30");
        drop(first);
        let again = share.take(1, 20).expect("given back");
        drop((second, again));
        assert!(share.take(4, 20).is_some());
    }
}
