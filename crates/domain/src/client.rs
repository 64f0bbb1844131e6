//! The client a request comes from, as the protections that count per client see it.

use std::net::{IpAddr, Ipv6Addr};

/// The subject that per-client limits count for an address: an IPv4 address, or the /64
/// network of an IPv6 one (one subscriber usually holds a whole /64: counting single addresses
/// would give an attacker 2^64 buckets). IPv4-mapped IPv6 addresses count as their IPv4 address.
pub fn network_subject(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => format!("ip:{v4}"),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => format!("ip:{v4}"),
            None => {
                let s = v6.segments();
                format!("ip:{}/64", Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
            }
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipv6_clients_are_counted_by_their_64_network() {
        let subject = |ip: &str| network_subject(ip.parse().unwrap());
        assert_eq!(subject("203.0.113.7"), "ip:203.0.113.7");
        assert_eq!(subject("2001:db8:1:2:aaaa::1"), "ip:2001:db8:1:2::/64");
        assert_eq!(subject("2001:db8:1:2:ffff:ffff:ffff:ffff"), subject("2001:db8:1:2::9"));
        assert_ne!(subject("2001:db8:1:3::1"), subject("2001:db8:1:2::1"));
        assert_eq!(subject("::ffff:203.0.113.7"), "ip:203.0.113.7");
    }
}
