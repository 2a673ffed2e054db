//! The client's address behind trusted reverse proxies (R-SEC-5, R-AUTH-4).
//!
//! Behind a load balancer every TCP peer is the balancer, so per-IP rate limits, the
//! login limits per IP, the audit records and the `ip_spread` alert would all see one
//! address. `[limits] trusted_proxies` lists the networks of the proxies whose
//! `X-Forwarded-For` is believed. The header is read from the right (the entry the
//! nearest proxy appended) and every entry that is itself a trusted proxy is skipped;
//! the first one that is not is the client. Entries a client wrote itself are further
//! left and never reached, so the address cannot be spoofed through a trusted proxy.
//! A peer that is not a trusted proxy is the client, whatever headers it sends.
//!
//! An entry that is not an address (`unknown`, an obfuscated RFC 7239 name, garbage)
//! stops the walk at the last trusted hop: the request is counted against that proxy,
//! never against an address it did not come from.

use std::net::{IpAddr, SocketAddr};

use axum::http::HeaderValue;

/// Most `X-Forwarded-For` entries looked at, from the right.
const MAX_HOPS: usize = 32;

pub use crate::config::network::{canonical, Network};

fn trusted(ip: IpAddr, proxies: &[Network]) -> bool {
    proxies.iter().any(|n| n.contains(ip))
}

/// One `X-Forwarded-For` entry: an address, optionally with a port (`1.2.3.4:5`,
/// `[2001:db8::1]:5`), as some balancers write it.
fn entry(text: &str) -> Option<IpAddr> {
    let text = text.trim();
    text.parse::<IpAddr>()
        .ok()
        .or_else(|| text.parse::<SocketAddr>().ok().map(|s| s.ip()))
        .map(canonical)
}

/// The client's address for a request from `peer` carrying the `X-Forwarded-For` header
/// fields `forwarded` (in the order received).
pub fn client_address<'a>(
    peer: IpAddr,
    forwarded: impl DoubleEndedIterator<Item = &'a HeaderValue>,
    proxies: &[Network],
) -> IpAddr {
    let mut current = canonical(peer);
    if !trusted(current, proxies) {
        return current;
    }
    // Later fields continue the list of earlier ones; read from the last.
    let hops = forwarded
        .rev()
        .flat_map(|value| value.to_str().unwrap_or("\u{0}").rsplit(','))
        .take(MAX_HOPS);
    for hop in hops {
        match entry(hop) {
            Some(ip) if trusted(ip, proxies) => current = ip,
            Some(ip) => return ip,
            None => {
                tracing::warn!(proxy = %current, "unusable X-Forwarded-For entry; counted against the proxy");
                return current;
            }
        }
    }
    current
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nets(list: &[&str]) -> Vec<Network> {
        list.iter().map(|n| n.parse().unwrap()).collect()
    }

    fn client(peer: &str, headers: &[&str], proxies: &[&str]) -> String {
        let values: Vec<HeaderValue> = headers.iter().map(|h| HeaderValue::from_str(h).unwrap()).collect();
        client_address(peer.parse().unwrap(), values.iter(), &nets(proxies)).to_string()
    }

    #[test]
    fn r_sec_5_networks_parse_and_match() {
        let n: Network = "10.1.0.0/16".parse().unwrap();
        assert!(n.contains("10.1.255.3".parse().unwrap()));
        assert!(!n.contains("10.2.0.1".parse().unwrap()));
        assert!(n.contains("::ffff:10.1.0.9".parse().unwrap()));
        let one: Network = "192.0.2.7".parse().unwrap();
        assert!(one.contains("192.0.2.7".parse().unwrap()));
        assert!(!one.contains("192.0.2.8".parse().unwrap()));
        let all: Network = "0.0.0.0/0".parse().unwrap();
        assert!(all.contains("203.0.113.1".parse().unwrap()));
        assert!(!all.contains("2001:db8::1".parse().unwrap()));
        let v6: Network = "2001:db8::/32".parse().unwrap();
        assert!(v6.contains("2001:db8:ffff::1".parse().unwrap()));
        assert!(!v6.contains("2001:db9::1".parse().unwrap()));
        for bad in ["10.0.0.0/33", "2001:db8::/129", "10.0.0.0/x", "proxy.example", ""] {
            assert!(bad.parse::<Network>().is_err(), "{bad}");
        }
    }

    #[test]
    fn r_sec_5_forwarded_for_is_believed_only_from_trusted_proxies() {
        let proxies = ["10.0.0.0/8"];
        // A direct client's header is ignored.
        assert_eq!(client("203.0.113.9", &["198.51.100.1"], &proxies), "203.0.113.9");
        // Through one proxy.
        assert_eq!(client("10.0.0.2", &["198.51.100.1"], &proxies), "198.51.100.1");
        // What the client wrote itself is left of what the proxy appended.
        assert_eq!(
            client("10.0.0.2", &["127.0.0.1, 192.0.2.66, 198.51.100.1"], &proxies),
            "198.51.100.1"
        );
        // Through a chain of trusted proxies, across header fields, with ports.
        assert_eq!(
            client(
                "10.0.0.2",
                &["192.0.2.66, 198.51.100.1:4711", "10.9.9.9 ,10.0.0.7"],
                &proxies
            ),
            "198.51.100.1"
        );
        assert_eq!(client("10.0.0.2", &["[2001:db8::5]:443"], &proxies), "2001:db8::5");
        // No header, or only proxies: the leftmost proxy.
        assert_eq!(client("10.0.0.2", &[], &proxies), "10.0.0.2");
        assert_eq!(client("10.0.0.2", &["10.0.0.3"], &proxies), "10.0.0.3");
        // Garbage stops at the last trusted hop.
        assert_eq!(client("10.0.0.2", &["198.51.100.1, unknown"], &proxies), "10.0.0.2");
        assert_eq!(
            client("10.0.0.2", &["198.51.100.1, garbage, 10.0.0.4"], &proxies),
            "10.0.0.4"
        );
        // Nothing trusted: the peer.
        assert_eq!(client("10.0.0.2", &["198.51.100.1"], &[]), "10.0.0.2");
    }
}
