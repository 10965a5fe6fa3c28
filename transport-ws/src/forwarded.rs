//! Where a client really connects from: the socket's peer, or, when that peer is a
//! reverse proxy the embedder trusts (`WsConfig::trusted_proxies`), the address the
//! proxies report in `WsConfig::forwarded_header`.
//!
//! The per-address limits (`upgrade.rs`, and the engine's new users per address) count
//! clients by this address, so it must not be something a client can choose. A client can
//! write any header it likes, and a proxy appends the address it received the request
//! from to what the client sent. So the header is read only from a trusted peer, from the
//! right: the right-most hop that is not itself a trusted proxy is the client. Everything
//! left of it was written by the client or proxies we know nothing of, and is ignored.
//!
//! Called by `upgrade.rs` for every upgrade and by `config.rs` to check the settings. It
//! only reads headers: it does no I/O and refuses nothing.

use std::net::{IpAddr, SocketAddr};

use actix_http::header::{HeaderMap, HeaderName};

/// A trusted proxy: one address, or a network in CIDR notation (`10.0.0.0/8`,
/// `fd00::/8`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Network {
    /// The network's address, its host bits cleared.
    base: IpAddr,
    /// How many leading bits must match.
    prefix: u8,
}

impl Network {
    /// Parses `10.1.2.3`, `10.0.0.0/8`, `::1` or `fd00::/8`; says why not otherwise.
    pub(crate) fn parse(raw: &str) -> Result<Network, String> {
        let raw = raw.trim();
        let (addr, prefix) = match raw.split_once('/') {
            Some((addr, prefix)) => (addr, Some(prefix)),
            None => (raw, None),
        };
        let addr: IpAddr = addr.parse().map_err(|_| {
            format!("{raw:?} is not an IP address or network (like 10.0.0.1 or 10.0.0.0/8)")
        })?;
        let addr = addr.to_canonical();
        let bits = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => bits,
            Some(p) => p
                .parse::<u8>()
                .ok()
                .filter(|p| *p <= bits)
                .ok_or_else(|| format!("{raw:?}: the prefix length must be 0 to {bits}"))?,
        };
        Ok(Network {
            base: mask(addr, prefix),
            prefix,
        })
    }

    /// Whether `ip` is in this network (an IPv4-mapped IPv6 address as its IPv4 address).
    pub(crate) fn contains(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        ip.is_ipv4() == self.base.is_ipv4() && mask(ip, self.prefix) == self.base
    }
}

/// `ip` with all but its first `prefix` bits cleared.
fn mask(ip: IpAddr, prefix: u8) -> IpAddr {
    match ip {
        IpAddr::V4(v4) => {
            let keep = u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0);
            IpAddr::V4((u32::from(v4) & keep).into())
        }
        IpAddr::V6(v6) => {
            let keep = u128::MAX.checked_shl(128 - u32::from(prefix)).unwrap_or(0);
            IpAddr::V6((u128::from(v6) & keep).into())
        }
    }
}

/// The proxies a listener trusts and the header they report clients in.
#[derive(Debug)]
pub(crate) struct Proxies {
    trusted: Vec<Network>,
    header: HeaderName,
    /// The header is RFC 7239's `Forwarded` (`for=` parameters), not a plain list of
    /// addresses like `X-Forwarded-For`.
    rfc7239: bool,
}

impl Proxies {
    /// The proxies of `WsConfig::trusted_proxies` reporting in `forwarded_header` (both
    /// checked by `WsConfig::validate`; an entry that does not parse trusts nothing).
    pub(crate) fn new(trusted: &[String], forwarded_header: &str) -> Proxies {
        let header = HeaderName::from_bytes(forwarded_header.trim().as_bytes())
            .unwrap_or(HeaderName::from_static("x-forwarded-for"));
        Proxies {
            trusted: trusted
                .iter()
                .filter_map(|t| Network::parse(t).ok())
                .collect(),
            rfc7239: header == actix_http::header::FORWARDED,
            header,
        }
    }

    fn trusts(&self, ip: IpAddr) -> bool {
        self.trusted.iter().any(|n| n.contains(ip))
    }

    /// The address the client connected from: `peer` itself unless it is a trusted
    /// proxy; then the right-most hop of the header that is not a trusted proxy. When
    /// every hop is trusted, the left-most one; when a hop cannot be read (`unknown`, an
    /// obfuscated name, garbage), the trusted hop right of it, which is the most we know.
    pub(crate) fn client(&self, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
        let peer = peer.to_canonical();
        if !self.trusts(peer) {
            return peer;
        }
        // Several header lines are one list, in order (RFC 9110 section 5.3).
        let hops: Vec<&str> = headers
            .get_all(&self.header)
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .collect();
        let mut client = peer;
        for hop in hops.iter().rev() {
            let address = if self.rfc7239 {
                forwarded_for(hop)
            } else {
                address(hop)
            };
            let Some(ip) = address else {
                break;
            };
            client = ip.to_canonical();
            if !self.trusts(client) {
                break;
            }
        }
        client
    }
}

/// The address of one `Forwarded` element's `for=` parameter, if it is an address.
fn forwarded_for(element: &str) -> Option<IpAddr> {
    element.split(';').find_map(|pair| {
        let (name, value) = pair.split_once('=')?;
        if name.trim().eq_ignore_ascii_case("for") {
            address(value.trim().trim_matches('"'))
        } else {
            None
        }
    })
}

/// An address as proxies write it: `192.0.2.1`, `2001:db8::1`, `[2001:db8::1]`, or any
/// of those with a port.
fn address(raw: &str) -> Option<IpAddr> {
    let raw = raw.trim();
    raw.parse::<IpAddr>()
        .ok()
        .or_else(|| raw.parse::<SocketAddr>().ok().map(|s| s.ip()))
        .or_else(|| {
            raw.strip_prefix('[')
                .and_then(|r| r.strip_suffix(']'))
                .and_then(|r| r.parse().ok())
        })
}

/// Checks `WsConfig::forwarded_header`: a valid header name.
pub(crate) fn check_header(name: &str) -> Result<(), String> {
    HeaderName::from_bytes(name.trim().as_bytes())
        .map(|_| ())
        .map_err(|_| format!("{name:?} is not a header name (like X-Forwarded-For)"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_http::header::HeaderValue;

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("an address")
    }

    fn headers(name: &'static str, values: &[&'static str]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for value in values {
            map.append(
                HeaderName::from_static(name),
                HeaderValue::from_static(value),
            );
        }
        map
    }

    #[test]
    fn networks_parse_and_match() {
        let net = Network::parse("10.0.0.0/8").unwrap();
        assert!(net.contains(ip("10.200.1.1")) && net.contains(ip("::ffff:10.1.1.1")));
        assert!(!net.contains(ip("11.0.0.1")) && !net.contains(ip("::1")));
        let one = Network::parse("192.0.2.7").unwrap();
        assert!(one.contains(ip("192.0.2.7")) && !one.contains(ip("192.0.2.8")));
        let v6 = Network::parse("2001:db8::/32").unwrap();
        assert!(v6.contains(ip("2001:db8:ffff::1")) && !v6.contains(ip("2001:db9::1")));
        assert!(Network::parse("0.0.0.0/0").unwrap().contains(ip("8.8.8.8")));
        for bad in [
            "10.0.0.0/33",
            "fd00::/129",
            "proxy.example",
            "10.0.0.0/x",
            "",
        ] {
            assert!(Network::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn an_untrusted_peer_is_the_client_whatever_it_sends() {
        let proxies = Proxies::new(&["10.0.0.1".into()], "X-Forwarded-For");
        let sent = headers("x-forwarded-for", &["198.51.100.1"]);
        assert_eq!(proxies.client(ip("203.0.113.9"), &sent), ip("203.0.113.9"));
    }

    #[test]
    fn behind_trusted_proxies_the_right_most_untrusted_hop_is_the_client() {
        let proxies = Proxies::new(&["10.0.0.0/8".into()], "X-Forwarded-For");
        let peer = ip("10.0.0.1");
        // The client forged a first hop; the proxies appended what they saw.
        let forged = headers("x-forwarded-for", &["1.2.3.4, 198.51.100.1", "10.0.0.2"]);
        assert_eq!(proxies.client(peer, &forged), ip("198.51.100.1"));
        // No header: the proxy itself.
        assert_eq!(proxies.client(peer, &HeaderMap::new()), peer);
        // Every hop trusted: the left-most.
        let inside = headers("x-forwarded-for", &["10.9.9.9, 10.0.0.2"]);
        assert_eq!(proxies.client(peer, &inside), ip("10.9.9.9"));
        // A hop that is not an address: the trusted hop right of it.
        let garbage = headers("x-forwarded-for", &["unknown, 10.0.0.2"]);
        assert_eq!(proxies.client(peer, &garbage), ip("10.0.0.2"));
        // Ports and brackets are read.
        let ported = headers("x-forwarded-for", &["[2001:db8::1]:443"]);
        assert_eq!(proxies.client(peer, &ported), ip("2001:db8::1"));
    }

    #[test]
    fn the_forwarded_header_is_read_by_its_for_parameters() {
        let proxies = Proxies::new(&["127.0.0.1".into()], "Forwarded");
        let sent = headers(
            "forwarded",
            &[r#"for=192.0.2.60;proto=http;by=203.0.113.43, For="[2001:db8:cafe::17]:4711""#],
        );
        assert_eq!(
            proxies.client(ip("127.0.0.1"), &sent),
            ip("2001:db8:cafe::17")
        );
        let hidden = headers("forwarded", &["for=_hidden"]);
        assert_eq!(proxies.client(ip("127.0.0.1"), &hidden), ip("127.0.0.1"));
    }

    #[test]
    fn header_names_are_checked() {
        assert!(check_header("X-Real-IP").is_ok());
        assert!(check_header("not a header").is_err());
        assert!(check_header("").is_err());
    }
}
