//! [`WsConfig`]: every setting of the WebSocket transport, with its default and its
//! check.
//!
//! The embedder builds one and hands it to [`crate::WsChat::new`], which refuses an
//! invalid one; the upgrade and every connection read their settings from it and from
//! nowhere else (the engine's `Limits` hold the engine's own limits only). This file
//! does no I/O and knows nothing of sockets: it only says what a valid configuration is.

use std::time::Duration;

use chat_core::{InvalidLimit, Rate};

use crate::{forwarded, host};

/// How the WebSocket transport treats its clients: who may connect, how many, how large
/// their frames may be, and how long they may stay silent or slow.
///
/// Build it from [`WsConfig::default`] and set the fields that differ (it is
/// `#[non_exhaustive]`, so a struct literal cannot name every field from outside).
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct WsConfig {
    /// Origins (`scheme://host[:port]`) whose pages may open a socket. Empty: the
    /// server's own origin only (see [`crate::origin::is_allowed`]). Default empty.
    pub allowed_origins: Vec<String>,
    /// Host names, with or without a port (`chat.example.com`, `chat.example.com:8443`),
    /// that this server answers for besides its built-in ones: `localhost`, the loopback
    /// addresses and the listen address (for a listener on `0.0.0.0` or `[::]`, the
    /// address each connection arrived at). Any request, upgrade or not, whose `Host`
    /// names something else gets HTTP 421, so a page whose domain is made to resolve to
    /// this server (DNS rebinding) cannot reach it. Behind a reverse proxy that passes the
    /// browser's `Host` on, list the public name here. Case and a trailing dot do not
    /// matter; an entry without a port matches any port (`docs/protocol.md`, "Connecting",
    /// has the whole rule). Default empty: the built-in names only.
    pub public_hosts: Vec<String>,
    /// Most open sockets, logged in or not; one more upgrade gets HTTP 503. Default
    /// 100,000.
    pub max_connections: usize,
    /// Most sockets open at once from one client address (an IPv6 address counts by its
    /// /64); one more upgrade gets HTTP 429, so one address cannot take the slots of
    /// `max_connections`. Default 64: a dozen people behind one NAT with a few tabs each.
    pub max_connections_per_address: usize,
    /// Rate of upgrades from one client address, as a token bucket; one over it gets
    /// HTTP 429 with `Retry-After`. Default: bursts of 20, 5 per second (a page that
    /// reconnects with backoff never meets it; a script in a loop is slowed to it).
    pub connect_rate_per_address: Rate,
    /// Reverse proxies whose word on the client's address is taken: addresses or CIDR
    /// networks (`127.0.0.1`, `10.0.0.0/8`, `fd00::/8`). When a connection comes from one
    /// of them, the client's address is the right-most hop of `forwarded_header` that is
    /// not itself a trusted proxy; from anyone else, the header is ignored and the
    /// socket's peer is the client. The per-address limits (and the engine's new users per
    /// address) count clients by that address. Behind a proxy that is not listed, every
    /// client shares the proxy's address. Default empty: no header is believed.
    pub trusted_proxies: Vec<String>,
    /// The header trusted proxies report the client's address in: `X-Forwarded-For` (a
    /// list of addresses, each proxy appending the one it received the request from),
    /// `Forwarded` (RFC 7239, its `for=` parameters) or another list like the first
    /// (`X-Real-IP`). Read only from `trusted_proxies`. Default `X-Forwarded-For`.
    pub forwarded_header: String,
    /// Largest frame (or message reassembled from fragments) a client may send, in bytes;
    /// a larger one closes the socket with 1009. Announced in `hello`. Default 64 KiB.
    pub max_frame_bytes: usize,
    /// A socket from which nothing arrived for this long (no frame, not even a pong) is
    /// closed with 1008. Default 60 s.
    pub idle_timeout: Duration,
    /// Interval between the server's pings. A client answers each with a pong (browsers
    /// do it by themselves), which keeps it inside `idle_timeout`, so it must be shorter.
    /// Default 20 s.
    pub heartbeat_interval: Duration,
    /// Longest time one write may take; a client that stops reading for longer is
    /// dropped, so it never holds the server. Default 10 s.
    pub write_timeout: Duration,
    /// After its close frame the server reads on (discarding) until the client closes its
    /// side, at most this long: closing a socket with unread data resets it, and the reset
    /// can destroy the close frame before the client reads it. Zero: do not wait.
    /// Default 1 s.
    pub close_linger: Duration,
}

impl Default for WsConfig {
    fn default() -> Self {
        WsConfig {
            allowed_origins: Vec::new(),
            public_hosts: Vec::new(),
            max_connections: 100_000,
            max_connections_per_address: 64,
            connect_rate_per_address: Rate::new(20, 5.0),
            trusted_proxies: Vec::new(),
            forwarded_header: "X-Forwarded-For".to_owned(),
            max_frame_bytes: 64 * 1024,
            idle_timeout: Duration::from_secs(60),
            heartbeat_interval: Duration::from_secs(20),
            write_timeout: Duration::from_secs(10),
            close_linger: Duration::from_secs(1),
        }
    }
}

impl WsConfig {
    /// Refuses values the transport cannot work with, naming the field: a zero
    /// `max_connections`, `max_frame_bytes`, `idle_timeout`, `heartbeat_interval` or
    /// `write_timeout`, and a `heartbeat_interval` not shorter than `idle_timeout` (every
    /// quiet client would be closed between two pings), a `public_hosts` entry that is
    /// not a host name with an optional port (a URL, say), a zero
    /// `max_connections_per_address`, a `connect_rate_per_address` with no burst or no
    /// refill, a `trusted_proxies` entry that is not an address or network, and a
    /// `forwarded_header` that is not a header name.
    pub fn validate(&self) -> Result<(), InvalidLimit> {
        InvalidLimit::nonzero("max_connections", self.max_connections)?;
        InvalidLimit::nonzero(
            "max_connections_per_address",
            self.max_connections_per_address,
        )?;
        self.connect_rate_per_address
            .validate("connect_rate_per_address")?;
        for entry in &self.trusted_proxies {
            forwarded::Network::parse(entry)
                .map_err(|e| InvalidLimit::new("trusted_proxies", e))?;
        }
        forwarded::check_header(&self.forwarded_header)
            .map_err(|e| InvalidLimit::new("forwarded_header", e))?;
        InvalidLimit::nonzero("max_frame_bytes", self.max_frame_bytes)?;
        InvalidLimit::nonzero("idle_timeout", self.idle_timeout)?;
        InvalidLimit::nonzero("heartbeat_interval", self.heartbeat_interval)?;
        InvalidLimit::nonzero("write_timeout", self.write_timeout)?;
        if self.heartbeat_interval >= self.idle_timeout {
            return Err(InvalidLimit::new(
                "heartbeat_interval",
                format!(
                    "must be shorter than idle_timeout ({} ms), or quiet clients are closed \
                     between two pings",
                    self.idle_timeout.as_millis()
                ),
            ));
        }
        for entry in &self.public_hosts {
            host::check_public_host(entry).map_err(|e| InvalidLimit::new("public_hosts", e))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::WsConfig;
    use std::time::Duration;

    #[test]
    fn the_defaults_are_valid() {
        assert_eq!(WsConfig::default().validate(), Ok(()));
    }

    /// A zero heartbeat would ping every socket in a busy loop right after `hello` (and
    /// panicked a tokio interval, when each socket had one): it is refused here, by name,
    /// before any socket exists.
    #[test]
    fn zero_values_are_refused_by_name() {
        type Set = fn(&mut WsConfig);
        let cases: [(&str, Set); 5] = [
            ("max_connections", |c| c.max_connections = 0),
            ("max_frame_bytes", |c| c.max_frame_bytes = 0),
            ("idle_timeout", |c| c.idle_timeout = Duration::ZERO),
            ("heartbeat_interval", |c| {
                c.heartbeat_interval = Duration::ZERO
            }),
            ("write_timeout", |c| c.write_timeout = Duration::ZERO),
        ];
        for (name, set) in cases {
            let mut config = WsConfig::default();
            set(&mut config);
            let refused = config.validate().expect_err(name);
            assert_eq!(refused.name, name);
        }
        let config = WsConfig {
            close_linger: Duration::ZERO,
            ..WsConfig::default()
        };
        assert_eq!(config.validate(), Ok(()), "no linger is a valid choice");
    }

    #[test]
    fn the_heartbeat_must_come_before_the_idle_timeout() {
        let mut config = WsConfig {
            idle_timeout: Duration::from_secs(20),
            ..WsConfig::default()
        };
        let refused = config.validate().expect_err("equal to idle_timeout");
        assert_eq!(refused.name, "heartbeat_interval");
        config.heartbeat_interval = Duration::from_secs(19);
        assert_eq!(config.validate(), Ok(()));
    }

    #[test]
    fn per_address_settings_are_checked_by_name() {
        let refused = |config: WsConfig| config.validate().expect_err("invalid").name;
        let d = WsConfig::default;
        let no_slots = WsConfig {
            max_connections_per_address: 0,
            ..d()
        };
        assert_eq!(refused(no_slots), "max_connections_per_address");
        let no_refill = WsConfig {
            connect_rate_per_address: chat_core::Rate::new(5, 0.0),
            ..d()
        };
        assert_eq!(refused(no_refill), "connect_rate_per_address");
        let a_name = WsConfig {
            trusted_proxies: vec!["10.0.0.0/8".into(), "proxy.internal".into()],
            ..d()
        };
        assert_eq!(refused(a_name), "trusted_proxies");
        let not_a_header = WsConfig {
            forwarded_header: "X Forwarded".into(),
            ..d()
        };
        assert_eq!(refused(not_a_header), "forwarded_header");
        let proxied = WsConfig {
            trusted_proxies: vec!["10.0.0.0/8".into(), "::1".into()],
            forwarded_header: "Forwarded".into(),
            ..d()
        };
        assert_eq!(proxied.validate(), Ok(()));
    }

    #[test]
    fn public_hosts_must_be_host_names() {
        let mut config = WsConfig {
            public_hosts: vec!["chat.example.com".into(), "[::1]:8443".into()],
            ..WsConfig::default()
        };
        assert_eq!(config.validate(), Ok(()));
        config.public_hosts.push("https://chat.example.com".into());
        let refused = config.validate().expect_err("a URL is not a host name");
        assert_eq!(refused.name, "public_hosts");
        assert!(
            refused.reason.contains("https://chat.example.com"),
            "{refused:?}"
        );
    }
}
