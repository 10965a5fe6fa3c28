//! The `Origin` check that stops cross-site WebSocket hijacking: a page on another site
//! must not be able to open a socket that rides on this site's users.
//!
//! Called by `upgrade.rs` before the upgrade is answered; it only decides, it never
//! answers the request itself. Browsers always send `Origin` on WebSocket upgrades, so a
//! request without one comes from a non-browser client (a CLI, a test) and is allowed:
//! such a client could forge any header anyway.

/// Whether a WebSocket upgrade with these headers may proceed.
///
/// - `origin`: the request's `Origin` header (`None` when absent).
/// - `host`: the request's `Host` header (`None` when absent).
/// - `allowed`: the allow-list of origins, e.g. `http://localhost:8080`. Empty means
///   "same origin only": the origin's `host[:port]` must equal the `Host` header.
///
/// Comparison ignores ASCII case, a trailing `/`, and a port that is the scheme's default
/// (`http://a:80` is `http://a`). The opaque origin `null` is refused unless listed.
pub fn is_allowed(origin: Option<&str>, host: Option<&str>, allowed: &[String]) -> bool {
    let Some(origin) = origin else {
        return true;
    };
    let Some(origin) = Origin::parse(origin) else {
        // Unparsable (or `null`): only an exact entry in the list lets it through.
        return allowed.iter().any(|a| a.trim() == origin.trim());
    };
    if allowed.is_empty() {
        return host.is_some_and(|host| origin.authority() == normalize_host(host, &origin.scheme));
    }
    allowed
        .iter()
        .filter_map(|a| Origin::parse(a))
        .any(|a| a == origin)
}

/// A parsed `scheme://host[:port]`, lower-cased, default port removed.
#[derive(Debug, PartialEq, Eq)]
struct Origin {
    scheme: String,
    host: String,
    port: Option<u16>,
}

impl Origin {
    fn parse(raw: &str) -> Option<Origin> {
        let raw = raw.trim().trim_end_matches('/').to_ascii_lowercase();
        let (scheme, rest) = raw.split_once("://")?;
        if scheme.is_empty() || rest.is_empty() || rest.contains(['/', '?', '#', '@']) {
            return None;
        }
        let (host, port) = split_port(rest)?;
        let port = port.filter(|&p| Some(p) != default_port(scheme));
        Some(Origin {
            scheme: scheme.to_owned(),
            host: host.to_owned(),
            port,
        })
    }

    /// `host[:port]`, as a `Host` header would carry it.
    fn authority(&self) -> String {
        match self.port {
            Some(port) => format!("{}:{port}", self.host),
            None => self.host.clone(),
        }
    }
}

/// `example.com:8080` → (`example.com`, Some(8080)); IPv6 literals keep their brackets.
fn split_port(authority: &str) -> Option<(&str, Option<u16>)> {
    let colon = match authority.rfind(':') {
        Some(i) if !authority[i..].contains(']') => i,
        _ => return Some((authority, None)),
    };
    let port = authority[colon + 1..].parse().ok()?;
    Some((&authority[..colon], Some(port)))
}

fn default_port(scheme: &str) -> Option<u16> {
    match scheme {
        "http" | "ws" => Some(80),
        "https" | "wss" => Some(443),
        _ => None,
    }
}

/// The `Host` header, lower-cased, without the default port of `scheme`.
fn normalize_host(host: &str, scheme: &str) -> String {
    let host = host.trim().to_ascii_lowercase();
    match split_port(&host) {
        Some((name, Some(port))) if Some(port) == default_port(scheme) => name.to_owned(),
        _ => host,
    }
}

#[cfg(test)]
mod tests {
    use super::is_allowed;

    fn list(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn no_origin_is_a_non_browser_client() {
        assert!(is_allowed(None, Some("chat.example"), &[]));
        assert!(is_allowed(None, None, &list(&["https://chat.example"])));
    }

    #[test]
    fn empty_list_means_same_origin() {
        let host = Some("127.0.0.1:8080");
        assert!(is_allowed(Some("http://127.0.0.1:8080"), host, &[]));
        assert!(!is_allowed(Some("http://evil.example"), host, &[]));
        assert!(!is_allowed(Some("http://127.0.0.1:9999"), host, &[]));
        assert!(!is_allowed(Some("http://127.0.0.1:8080"), None, &[]));
        assert!(is_allowed(
            Some("https://Chat.Example"),
            Some("chat.example:443"),
            &[]
        ));
        assert!(is_allowed(
            Some("http://chat.example:80"),
            Some("chat.example"),
            &[]
        ));
    }

    #[test]
    fn list_matches_exactly_up_to_case_slash_and_default_port() {
        let allowed = list(&["http://localhost:8080", "https://chat.example/"]);
        assert!(is_allowed(Some("http://localhost:8080"), None, &allowed));
        assert!(is_allowed(Some("HTTP://LOCALHOST:8080"), None, &allowed));
        assert!(is_allowed(Some("https://chat.example:443"), None, &allowed));
        assert!(!is_allowed(Some("https://localhost:8080"), None, &allowed));
        assert!(!is_allowed(Some("http://localhost:8081"), None, &allowed));
        assert!(!is_allowed(
            Some("https://chat.example.evil"),
            None,
            &allowed
        ));
        // A listed origin does not make the request's own host acceptable.
        assert!(!is_allowed(
            Some("http://other:1"),
            Some("other:1"),
            &allowed
        ));
    }

    #[test]
    fn opaque_and_malformed_origins_are_refused_unless_listed() {
        assert!(!is_allowed(Some("null"), Some("a"), &[]));
        assert!(!is_allowed(Some("null"), None, &list(&["http://a"])));
        assert!(is_allowed(Some("null"), None, &list(&["null"])));
        assert!(!is_allowed(Some("http://a/path"), Some("a"), &[]));
        assert!(!is_allowed(
            Some("http://a:notaport"),
            Some("a:notaport"),
            &[]
        ));
    }

    #[test]
    fn ipv6_hosts() {
        assert!(is_allowed(
            Some("http://[::1]:8080"),
            Some("[::1]:8080"),
            &[]
        ));
        assert!(!is_allowed(
            Some("http://[::1]:8080"),
            Some("[::1]:8081"),
            &[]
        ));
    }
}
