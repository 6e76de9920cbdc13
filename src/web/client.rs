//! Who is asking: the one answer every limiter keys on (the sign-up limiter and the admin
//! sign-in limiter alike).
//!
//! The TCP peer is the client, unless the peer is one of `[server] trusted_proxies`. Then
//! `X-Forwarded-For` is read from the right, where the proxy appended the address it saw:
//! the first address there that is not itself a trusted proxy is the client. Whatever a
//! client writes into the header lands to the left of that, so it is never believed; and a
//! header from a peer that is not a trusted proxy is ignored altogether.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::HeaderMap;
use axum::http::request::Parts;

use crate::app::App;
use crate::domain::IpNet;
use crate::domain::net::canonical;

const FORWARDED_FOR: &str = "x-forwarded-for";

/// The client address of a request. `peer` is the TCP peer, None when the router is called
/// without a connection (a test calling it directly): every such request is one client,
/// `0.0.0.0`.
pub(crate) fn client_address(
    peer: Option<IpAddr>,
    headers: &HeaderMap,
    trusted: &[IpNet],
) -> IpAddr {
    let Some(peer) = peer.map(canonical) else {
        return IpAddr::V4(Ipv4Addr::UNSPECIFIED);
    };
    let is_trusted = |ip: IpAddr| trusted.iter().any(|net| net.contains(ip));
    if !is_trusted(peer) {
        return peer;
    }
    // Several X-Forwarded-For lines are one list, in order.
    let hops: Vec<&str> = headers
        .get_all(FORWARDED_FOR)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .collect();
    // The nearest hop a trusted proxy vouches for: every step to the left of it was reported
    // by a trusted proxy too.
    let mut client = peer;
    for hop in hops.iter().rev() {
        let Some(ip) = hop_address(hop) else {
            // Not an address: a proxy that writes something else there, or a client's text
            // reaching us through a proxy that does not append. Stop at the last address a
            // trusted proxy stands for.
            break;
        };
        client = ip;
        if !is_trusted(ip) {
            break;
        }
    }
    client
}

/// One entry of `X-Forwarded-For`: an address, possibly with a port (`192.0.2.7:4711`,
/// `[2001:db8::1]:4711`) as some proxies write it.
fn hop_address(hop: &str) -> Option<IpAddr> {
    if let Ok(ip) = hop.parse::<IpAddr>() {
        return Some(canonical(ip));
    }
    hop.parse::<SocketAddr>().ok().map(|s| canonical(s.ip()))
}

/// The client address, as a handler argument.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ClientAddr(pub IpAddr);

impl FromRequestParts<App> for ClientAddr {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, app: &App) -> Result<Self, Self::Rejection> {
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| c.0.ip());
        Ok(ClientAddr(client_address(
            peer,
            &parts.headers,
            &app.trusted_proxies,
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn headers(lines: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for l in lines {
            h.append(FORWARDED_FOR, l.parse().unwrap());
        }
        h
    }

    fn proxies(list: &[&str]) -> Vec<IpNet> {
        list.iter().map(|p| IpNet::parse(p).unwrap()).collect()
    }

    #[test]
    fn without_trusted_proxies_the_peer_is_the_client_whatever_the_header_says() {
        let h = headers(&["203.0.113.9"]);
        assert_eq!(
            client_address(Some(ip("198.51.100.4")), &h, &[]),
            ip("198.51.100.4")
        );
        let trusted = proxies(&["10.0.0.1"]);
        assert_eq!(
            client_address(Some(ip("198.51.100.4")), &h, &trusted),
            ip("198.51.100.4"),
            "a peer that is not a trusted proxy"
        );
    }

    #[test]
    fn behind_a_trusted_proxy_the_rightmost_untrusted_hop_is_the_client() {
        let trusted = proxies(&["10.0.0.0/8"]);
        let peer = Some(ip("10.0.0.1"));
        // The client claimed 1.2.3.4; the proxy appended what it saw.
        let h = headers(&["1.2.3.4, 203.0.113.9"]);
        assert_eq!(client_address(peer, &h, &trusted), ip("203.0.113.9"));
        // Two proxies of ours in a row, in two header lines.
        let h = headers(&["1.2.3.4, 203.0.113.9", "10.0.0.7"]);
        assert_eq!(client_address(peer, &h, &trusted), ip("203.0.113.9"));
        // With a port, and IPv6, and the IPv4-mapped form.
        let h = headers(&["[2001:db8::5]:4711"]);
        assert_eq!(client_address(peer, &h, &trusted), ip("2001:db8::5"));
        let h = headers(&["203.0.113.9:4711"]);
        assert_eq!(client_address(peer, &h, &trusted), ip("203.0.113.9"));
        assert_eq!(
            client_address(
                Some(ip("::ffff:10.0.0.1")),
                &headers(&["::ffff:203.0.113.9"]),
                &trusted
            ),
            ip("203.0.113.9")
        );
    }

    #[test]
    fn a_missing_or_garbled_header_leaves_the_nearest_address_a_proxy_stands_for() {
        let trusted = proxies(&["10.0.0.0/8"]);
        let peer = Some(ip("10.0.0.1"));
        assert_eq!(
            client_address(peer, &HeaderMap::new(), &trusted),
            ip("10.0.0.1")
        );
        assert_eq!(
            client_address(peer, &headers(&["unknown"]), &trusted),
            ip("10.0.0.1")
        );
        assert_eq!(
            client_address(
                peer,
                &headers(&["203.0.113.9, garbage, 10.0.0.2"]),
                &trusted
            ),
            ip("10.0.0.2")
        );
        // Every hop is ours: the request came from inside; the leftmost is the client.
        assert_eq!(
            client_address(peer, &headers(&["10.0.0.3, 10.0.0.2"]), &trusted),
            ip("10.0.0.3")
        );
    }

    #[test]
    fn no_connection_is_one_client() {
        let h = headers(&["203.0.113.9"]);
        assert_eq!(
            client_address(None, &h, &proxies(&["0.0.0.0/0"])),
            IpAddr::V4(Ipv4Addr::UNSPECIFIED)
        );
    }
}
