//! The `Host` check that stops DNS rebinding: the server answers only for the names it is
//! known by.
//!
//! A page on any site can make its own domain resolve to an address on the user's
//! machine or private network. Its requests then reach this server carrying the page's
//! name in `Host` and, for a WebSocket, the same name in `Origin`, so the same-origin
//! check (`origin.rs`) alone lets them through. The name is the one part such a page
//! cannot choose, so it is what is checked, before anything else.
//!
//! Called by `lib.rs` for every ordinary HTTP request (before the embedder's `App`), by
//! `upgrade.rs` for every upgrade (before the origin check) and by `config.rs` to check
//! `WsConfig::public_hosts`. It only decides: it does no I/O and never answers a request.
//!
//! A listener serves:
//! - `localhost` and every loopback literal (`127.0.0.0/8`, `[::1]`);
//! - its listen address's IP and, when it binds every address (`0.0.0.0`, `[::]`), the
//!   address each connection arrived at: the IP a browser put in the URL;
//! - every entry of `WsConfig::public_hosts`.
//!
//! None of the built-in names can come from a rebinding page: its `Host` is its own
//! domain, and an IP literal in the URL makes the IP the page's origin. They match any
//! port, as does a configured entry without one: the port is in the page's URL, so a
//! rebinding page picks this server's port anyway, and a proxy on another port (a TLS
//! terminator on the same machine, a test's TCP relay) passes on the `Host` it received.
//! An entry with a port matches that port; a `Host` without one is the scheme's default,
//! which a browser leaves out, so it matches an entry with port 80 or 443.
//!
//! Names compare without ASCII case and without a trailing dot (`LocalHost.` is
//! `localhost`), IP literals as addresses (`[0:0::1]` is `[::1]`, and an IPv4 connection to
//! a dual-stack listener arrives at `::ffff:a.b.c.d`, which is `a.b.c.d`).

use std::net::{IpAddr, Ipv6Addr, SocketAddr};

use actix_http::header::{self, HeaderMap};
use actix_http::{StatusCode, Uri, Version};

/// Why a request is not answered: the status and the line of text it gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refused {
    /// HTTP/1.1 and later require a `Host` (RFC 9112 section 3.2): 400.
    Missing,
    /// More than one `Host` header: 400 (RFC 9112 section 3.2).
    Duplicate,
    /// A `Host` (or request-target authority) that is not a host name with an optional
    /// port: 400.
    Malformed,
    /// A name this listener does not serve: 421 Misdirected Request.
    Misdirected,
}

impl Refused {
    /// The HTTP status of the answer.
    pub(crate) fn status(self) -> StatusCode {
        match self {
            Refused::Misdirected => StatusCode::MISDIRECTED_REQUEST,
            Refused::Missing | Refused::Duplicate | Refused::Malformed => StatusCode::BAD_REQUEST,
        }
    }

    /// The plain-text body of the answer.
    pub(crate) fn reason(self) -> &'static str {
        match self {
            Refused::Missing => "a Host header is required",
            Refused::Duplicate => "more than one Host header",
            Refused::Malformed => "the Host header is not a host name with an optional port",
            Refused::Misdirected => "this server does not answer for that host name",
        }
    }
}

/// What a listener that binds every address records about each connection: the address
/// it arrived at (`lib.rs` stores it in the connection's data, the checks read it back).
#[derive(Debug, Clone, Copy)]
pub(crate) struct ArrivedAt(pub(crate) IpAddr);

/// The names one listener answers for.
#[derive(Debug)]
pub(crate) struct Served {
    /// `WsConfig::public_hosts`, parsed.
    public: Vec<Authority>,
    /// The listen address's IP, canonical (an IPv4-mapped IPv6 address is IPv4).
    listen: IpAddr,
}

impl Served {
    /// The names a listener on `listen` serves, given `WsConfig::public_hosts` (checked
    /// by `WsConfig::validate`: an entry that does not parse would match nothing).
    pub(crate) fn new(public_hosts: &[String], listen: SocketAddr) -> Served {
        Served {
            public: public_hosts
                .iter()
                .filter_map(|entry| Authority::parse(entry))
                .collect(),
            listen: listen.ip().to_canonical(),
        }
    }

    /// Whether the listener binds every address, so only each connection knows the
    /// address it arrived at (then `lib.rs` records an [`ArrivedAt`] per connection).
    pub(crate) fn binds_any(&self) -> bool {
        self.listen.is_unspecified()
    }

    /// Whether a request with these parts may be answered. Every name it gives is checked:
    /// the `Host` header and the authority of an absolute request-target (which HTTP/1.1
    /// says wins over `Host`, and HTTP/2 sends instead of it). HTTP/1.0 did not require
    /// `Host`; a request without a name there comes from a non-browser client and passes.
    pub(crate) fn check(
        &self,
        headers: &HeaderMap,
        uri: &Uri,
        version: Version,
        arrived: Option<ArrivedAt>,
    ) -> Result<(), Refused> {
        let mut hosts = headers.get_all(header::HOST);
        let host = hosts.next();
        if hosts.next().is_some() {
            return Err(Refused::Duplicate);
        }
        let host = match host {
            Some(value) => Some(value.to_str().map_err(|_| Refused::Malformed)?),
            None => None,
        };
        let target = uri.authority().map(|a| a.as_str());
        if host.is_none() && target.is_none() {
            if version >= Version::HTTP_11 {
                return Err(Refused::Missing);
            }
            return Ok(());
        }
        for name in [host, target].into_iter().flatten() {
            let authority = Authority::parse(name).ok_or(Refused::Malformed)?;
            if !self.serves(&authority, arrived) {
                return Err(Refused::Misdirected);
            }
        }
        Ok(())
    }

    /// Whether `host` is one of this listener's names (see the module doc).
    fn serves(&self, host: &Authority, arrived: Option<ArrivedAt>) -> bool {
        let built_in = match host.name {
            Name::Domain(ref name) => name == "localhost",
            Name::Ip(ip) => {
                ip.is_loopback()
                    || ip == self.listen
                    || arrived.is_some_and(|ArrivedAt(at)| at.to_canonical() == ip)
            }
        };
        built_in
            || self.public.iter().any(|entry| {
                entry.name == host.name
                    && match (entry.port, host.port) {
                        (None, _) => true,
                        (Some(wanted), Some(port)) => wanted == port,
                        (Some(wanted), None) => wanted == 80 || wanted == 443,
                    }
            })
    }
}

/// Checks one entry of `WsConfig::public_hosts`, saying what is wrong with it.
pub(crate) fn check_public_host(entry: &str) -> Result<(), String> {
    match Authority::parse(entry) {
        Some(_) => Ok(()),
        None => Err(format!(
            "{entry:?} is not a host name with an optional port, like chat.example.com or \
             chat.example.com:8443 (no scheme, no path)"
        )),
    }
}

/// A host name and its port, as `Host` carries them.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Authority {
    name: Name,
    port: Option<u16>,
}

/// A host name as compared.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Name {
    /// An IP literal, canonical: IPv4-mapped IPv6 addresses are IPv4.
    Ip(IpAddr),
    /// A registered name: lower case, no trailing dot, only letters, digits, `-` and `_`
    /// in non-empty labels (browsers send international names in their ASCII form).
    Domain(String),
}

impl Authority {
    /// `name[:port]` or `[ipv6][:port]`; `None` for anything else (a scheme, a path,
    /// user info, an empty or non-numeric port, a character no host name has).
    fn parse(raw: &str) -> Option<Authority> {
        let raw = raw.trim();
        let (name, rest) = match raw.strip_prefix('[') {
            Some(bracketed) => {
                let (literal, rest) = bracketed.split_once(']')?;
                let ip: Ipv6Addr = literal.parse().ok()?;
                (Name::Ip(IpAddr::V6(ip).to_canonical()), rest)
            }
            None => {
                let (name, rest) = raw.split_at(raw.find(':').unwrap_or(raw.len()));
                (Name::parse(name)?, rest)
            }
        };
        let port = match rest {
            "" => None,
            _ => {
                let digits = rest.strip_prefix(':')?;
                if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
                    return None;
                }
                Some(digits.parse().ok()?)
            }
        };
        Some(Authority { name, port })
    }
}

impl Name {
    /// A registered name or an IPv4 literal (IPv6 literals come in brackets).
    fn parse(raw: &str) -> Option<Name> {
        let name = raw.strip_suffix('.').unwrap_or(raw).to_ascii_lowercase();
        let valid = !name.is_empty()
            && name.split('.').all(|label| {
                !label.is_empty()
                    && label
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            });
        if !valid {
            return None;
        }
        Some(match name.parse() {
            Ok(ip) => Name::Ip(IpAddr::V4(ip)),
            Err(_) => Name::Domain(name),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use actix_http::header::HeaderValue;

    const LISTEN: &str = "127.0.0.1:8080";

    fn served(public: &[&str], listen: &str) -> Served {
        let public: Vec<String> = public.iter().map(|s| s.to_string()).collect();
        Served::new(&public, listen.parse().expect("an address"))
    }

    /// The check of an origin-form HTTP/1.1 request with these `Host` headers.
    fn check(served: &Served, hosts: &[&str], arrived: Option<&str>) -> Result<(), Refused> {
        let mut headers = HeaderMap::new();
        for host in hosts {
            headers.append(header::HOST, HeaderValue::from_str(host).expect("a value"));
        }
        let arrived = arrived.map(|ip| ArrivedAt(ip.parse().expect("an IP")));
        served.check(&headers, &Uri::from_static("/"), Version::HTTP_11, arrived)
    }

    fn serves(served: &Served, host: &str) -> bool {
        check(served, &[host], None) == Ok(())
    }

    #[test]
    fn loopback_names_and_the_listen_address_are_served_on_any_port() {
        let own = served(&[], "192.168.1.5:8080");
        for host in [
            "localhost:8080",
            "127.0.0.1:8080",
            "[::1]:8080",
            "192.168.1.5:8080",
            "localhost",
            "127.0.0.2:9000",
            "[::1]:9000",
            "192.168.1.5:9000",
        ] {
            assert!(serves(&own, host), "{host}");
        }
    }

    /// The reproduction: a rebinding page names its own domain, with or without our port.
    #[test]
    fn other_names_are_misdirected() {
        let own = served(&[], LISTEN);
        for host in [
            "evil.example",
            "evil.example:8080",
            "localhost.evil.example:8080",
            "127.0.0.1.evil.example",
            "192.168.1.5:8080",
            "[::2]:8080",
        ] {
            assert_eq!(
                check(&own, &[host], None),
                Err(Refused::Misdirected),
                "{host}"
            );
        }
    }

    #[test]
    fn case_and_a_trailing_dot_do_not_matter() {
        let own = served(&["Chat.Example.COM"], LISTEN);
        for host in [
            "LOCALHOST:8080",
            "localhost.:8080",
            "chat.example.com",
            "CHAT.example.com.:8443",
            "[0:0::1]:8080",
        ] {
            assert!(serves(&own, host), "{host}");
        }
    }

    #[test]
    fn a_configured_port_must_match_and_no_port_is_80_or_443() {
        let own = served(&["a.example:8443", "b.example:443", "c.example:80"], LISTEN);
        assert!(serves(&own, "a.example:8443"));
        assert!(!serves(&own, "a.example:8444"));
        assert!(!serves(&own, "a.example"));
        assert!(serves(&own, "b.example"));
        assert!(serves(&own, "b.example:443"));
        assert!(!serves(&own, "b.example:8443"));
        assert!(serves(&own, "c.example"));
        let any = served(&["d.example"], LISTEN);
        assert!(serves(&any, "d.example:1"));
        assert!(serves(&any, "d.example"));
        assert!(!serves(&any, "sub.d.example"));
    }

    #[test]
    fn configured_names_add_to_the_built_in_ones() {
        let own = served(&["chat.example.com"], LISTEN);
        assert!(serves(&own, "127.0.0.1:8080"), "health probes by IP");
        assert!(serves(&own, "localhost:8080"));
        assert!(!serves(&own, "evil.example"));
    }

    /// Bound to every address, the server serves the address a connection arrived at
    /// (the IP in the browser's URL), but no other address and no other name.
    #[test]
    fn a_wildcard_listener_serves_the_address_a_connection_arrived_at() {
        for listen in ["0.0.0.0:8080", "[::]:8080"] {
            let any = served(&[], listen);
            assert!(any.binds_any());
            let lan = Some("192.168.1.5");
            assert_eq!(check(&any, &["192.168.1.5:8080"], lan), Ok(()));
            assert_eq!(check(&any, &["localhost:8080"], lan), Ok(()));
            assert_eq!(
                check(&any, &["192.168.1.5:8080"], Some("::ffff:192.168.1.5")),
                Ok(())
            );
            assert_eq!(
                check(&any, &["192.168.1.6:8080"], lan),
                Err(Refused::Misdirected)
            );
            assert_eq!(
                check(&any, &["evil.example:8080"], lan),
                Err(Refused::Misdirected)
            );
        }
        assert!(!served(&[], LISTEN).binds_any());
    }

    #[test]
    fn a_missing_duplicate_or_malformed_host_is_a_bad_request() {
        let own = served(&[], LISTEN);
        assert_eq!(check(&own, &[], None), Err(Refused::Missing));
        assert_eq!(
            own.check(
                &HeaderMap::new(),
                &Uri::from_static("/"),
                Version::HTTP_10,
                None
            ),
            Ok(()),
            "HTTP/1.0 did not require Host"
        );
        assert_eq!(
            check(&own, &["localhost", "localhost"], None),
            Err(Refused::Duplicate)
        );
        for host in [
            "",
            "localhost:",
            "localhost:http",
            "localhost:+80",
            "localhost:99999",
            "http://localhost",
            "user@localhost",
            "local host",
            "a..b",
            ".",
            "::1",
            "[::1",
            "[fe80::1%eth0]",
            "*.example",
        ] {
            assert_eq!(
                check(&own, &[host], None),
                Err(Refused::Malformed),
                "{host:?}"
            );
        }
        assert_eq!(Refused::Misdirected.status().as_u16(), 421);
        assert_eq!(Refused::Malformed.status().as_u16(), 400);
    }

    /// An absolute request-target names the host too; both names must be served.
    #[test]
    fn the_authority_of_an_absolute_target_is_checked() {
        let own = served(&[], LISTEN);
        let mut headers = HeaderMap::new();
        headers.insert(header::HOST, HeaderValue::from_static("localhost:8080"));
        let evil = Uri::from_static("http://evil.example:8080/");
        assert_eq!(
            own.check(&headers, &evil, Version::HTTP_11, None),
            Err(Refused::Misdirected)
        );
        let ours = Uri::from_static("http://127.0.0.1:8080/");
        assert_eq!(own.check(&headers, &ours, Version::HTTP_11, None), Ok(()));
        assert_eq!(
            own.check(&HeaderMap::new(), &ours, Version::HTTP_2, None),
            Ok(())
        );
    }

    #[test]
    fn public_host_entries_are_host_names() {
        for good in [
            "chat.example.com",
            "chat.example.com:8443",
            "[::1]",
            "10.0.0.1:80",
        ] {
            assert_eq!(check_public_host(good), Ok(()), "{good}");
        }
        for bad in [
            "",
            "https://chat.example.com",
            "chat.example.com/",
            "*.example.com",
        ] {
            let reason = check_public_host(bad).expect_err(bad);
            assert!(reason.contains("no scheme"), "{reason}");
        }
    }
}
