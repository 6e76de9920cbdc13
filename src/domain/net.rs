//! Network addresses as the configuration names them: an address or a CIDR block
//! (`[server] trusted_proxies`), and the block a client is counted by when limiting it.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::InvalidInput;

/// An IPv4 or IPv6 block: `10.0.0.0/8`, `2001:db8::/32`, or one address (`192.0.2.7`,
/// `::1`), which is the block of just that address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IpNet {
    /// The first address of the block (the bits past the prefix are zero).
    base: IpAddr,
    prefix: u8,
}

impl IpNet {
    /// Reads `text`; the error says what is wrong with it (the caller names the key).
    pub fn parse(text: &str) -> Result<IpNet, InvalidInput> {
        let field = "address";
        let text = text.trim();
        let (addr, prefix) = match text.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (text, None),
        };
        let addr: IpAddr = addr.parse().map_err(|_| {
            InvalidInput::new(
                field,
                format!("{text:?} is not an IP address or a CIDR block (like 10.0.0.0/8 or 2001:db8::/32)"),
            )
        })?;
        let addr = canonical(addr);
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => max,
            Some(p) => match p.parse::<u8>() {
                Ok(n) if n <= max => n,
                _ => {
                    return Err(InvalidInput::new(
                        field,
                        format!(
                            "{text:?}: the prefix length after / must be a number from 0 to {max}"
                        ),
                    ));
                }
            },
        };
        let base = mask(addr, prefix);
        if base != addr {
            return Err(InvalidInput::new(
                field,
                format!(
                    "{text:?} has bits set past its prefix; the block starts at {base}/{prefix}"
                ),
            ));
        }
        Ok(IpNet { base, prefix })
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = canonical(ip);
        ip.is_ipv4() == self.base.is_ipv4() && mask(ip, self.prefix) == self.base
    }
}

impl fmt::Display for IpNet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.base, self.prefix)
    }
}

/// An IPv4 address written as IPv6 (`::ffff:192.0.2.7`, what a dual-stack socket reports) is
/// the IPv4 address: one client, one count.
pub fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => ip,
        },
        v4 => v4,
    }
}

/// What a limit counts a client by: its IPv4 address, or its IPv6 /64. A single IPv6
/// customer is given a /64 (often more), so counting each address apart would give them
/// 2^64 tries.
pub fn limit_key(ip: IpAddr) -> IpAddr {
    match canonical(ip) {
        IpAddr::V6(_) => mask(ip, 64),
        v4 => v4,
    }
}

/// `ip` with every bit past the first `prefix` set to zero.
fn mask(ip: IpAddr, prefix: u8) -> IpAddr {
    match canonical(ip) {
        IpAddr::V4(v4) => {
            let bits = u32::from(v4);
            let kept = if prefix == 0 {
                0
            } else {
                bits & (u32::MAX << (32 - u32::from(prefix.min(32))))
            };
            IpAddr::V4(Ipv4Addr::from(kept))
        }
        IpAddr::V6(v6) => {
            let bits = u128::from(v6);
            let kept = if prefix == 0 {
                0
            } else {
                bits & (u128::MAX << (128 - u32::from(prefix.min(128))))
            };
            IpAddr::V6(Ipv6Addr::from(kept))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn blocks_and_single_addresses_contain_what_they_should() {
        let net = IpNet::parse("10.0.0.0/8").unwrap();
        assert!(net.contains(ip("10.200.3.4")));
        assert!(!net.contains(ip("11.0.0.1")));
        assert!(
            !net.contains(ip("::a00:1")),
            "an IPv6 address is not in an IPv4 block"
        );
        let one = IpNet::parse("192.0.2.7").unwrap();
        assert_eq!(one.to_string(), "192.0.2.7/32");
        assert!(one.contains(ip("192.0.2.7")));
        assert!(
            one.contains(ip("::ffff:192.0.2.7")),
            "the mapped form is the same client"
        );
        assert!(!one.contains(ip("192.0.2.8")));
        let v6 = IpNet::parse("2001:db8::/32").unwrap();
        assert!(v6.contains(ip("2001:db8:ffff::1")));
        assert!(!v6.contains(ip("2001:db9::1")));
        assert!(IpNet::parse("::1").unwrap().contains(ip("::1")));
        assert!(
            IpNet::parse("0.0.0.0/0")
                .unwrap()
                .contains(ip("203.0.113.9"))
        );
    }

    #[test]
    fn bad_blocks_say_what_is_wrong() {
        for (text, says) in [
            ("proxy.example.org", "not an IP address"),
            ("10.0.0.0/33", "from 0 to 32"),
            ("2001:db8::/129", "from 0 to 128"),
            ("10.0.0.0/x", "prefix length"),
            ("10.0.0.1/8", "starts at 10.0.0.0/8"),
            ("", "not an IP address"),
        ] {
            let e = IpNet::parse(text).unwrap_err().to_string();
            assert!(e.contains(says), "{text}: {e}");
        }
    }

    #[test]
    fn ipv6_clients_are_counted_by_their_64_and_ipv4_ones_by_address() {
        assert_eq!(
            limit_key(ip("2001:db8:1:2:aaaa:bbbb:cccc:dddd")),
            ip("2001:db8:1:2::")
        );
        assert_eq!(
            limit_key(ip("2001:db8:1:2::1")),
            limit_key(ip("2001:db8:1:2:ffff::9"))
        );
        assert_ne!(
            limit_key(ip("2001:db8:1:2::1")),
            limit_key(ip("2001:db8:1:3::1"))
        );
        assert_eq!(limit_key(ip("192.0.2.7")), ip("192.0.2.7"));
        assert_eq!(limit_key(ip("::ffff:192.0.2.7")), ip("192.0.2.7"));
    }
}
