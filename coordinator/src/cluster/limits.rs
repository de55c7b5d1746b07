//! How many connections the coordinator holds, by peer address: a pure counter, checked before
//! any TLS handshake is done for a new connection.
//!
//! Anybody who can reach the coordinator's port can open connections; before one authenticates,
//! it costs the coordinator a handshake, a task and a little memory, and a stranger could open
//! them by the thousand. So connections are capped per address and in all, with a tighter cap
//! on those that have not authenticated yet.

use std::collections::HashMap;
use std::net::IpAddr;

/// Connections from one address that have not authenticated yet.
pub const ANONYMOUS_PER_ADDRESS: u32 = 16;
/// Connections from one address.
pub const PER_ADDRESS: u32 = 256;
/// Connections in all.
pub const TOTAL: u32 = 4096;

#[derive(Debug, Default, Clone, Copy)]
struct Count {
    all: u32,
    anonymous: u32,
}

/// Open connections by peer address.
#[derive(Debug, Default)]
pub struct ConnectionLimits {
    by_address: HashMap<IpAddr, Count>,
    total: u32,
}

impl ConnectionLimits {
    /// A new connection from `ip` (not authenticated yet): whether to accept it.
    pub fn admit(&mut self, ip: IpAddr) -> bool {
        let count = self.by_address.entry(ip).or_default();
        if self.total >= TOTAL
            || count.all >= PER_ADDRESS
            || count.anonymous >= ANONYMOUS_PER_ADDRESS
        {
            if count.all == 0 {
                self.by_address.remove(&ip);
            }
            return false;
        }
        count.all += 1;
        count.anonymous += 1;
        self.total += 1;
        true
    }

    /// A connection from `ip` authenticated (it no longer counts as anonymous).
    pub fn authenticated(&mut self, ip: IpAddr) {
        if let Some(count) = self.by_address.get_mut(&ip) {
            count.anonymous = count.anonymous.saturating_sub(1);
        }
    }

    /// A connection from `ip` closed; `anonymous` if it never authenticated.
    pub fn closed(&mut self, ip: IpAddr, anonymous: bool) {
        if let Some(count) = self.by_address.get_mut(&ip) {
            count.all = count.all.saturating_sub(1);
            if anonymous {
                count.anonymous = count.anonymous.saturating_sub(1);
            }
            if count.all == 0 {
                self.by_address.remove(&ip);
            }
        }
        self.total = self.total.saturating_sub(1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strangers_are_capped_per_address_and_authenticated_peers_are_not_held_back_by_them() {
        let (a, b): (IpAddr, IpAddr) = ("10.0.0.1".parse().unwrap(), "10.0.0.2".parse().unwrap());
        let mut limits = ConnectionLimits::default();
        for _ in 0..ANONYMOUS_PER_ADDRESS {
            assert!(limits.admit(a));
        }
        assert!(!limits.admit(a), "one address cannot hold more anonymous connections");
        assert!(limits.admit(b), "another address is not affected");
        // Once some authenticate, the address may open more.
        limits.authenticated(a);
        assert!(limits.admit(a));
        assert!(!limits.admit(a));
        limits.closed(a, true);
        assert!(limits.admit(a), "a closed connection frees its place");
    }
}
