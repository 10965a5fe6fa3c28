//! `TcpConfig`: every bound the TCP transport itself enforces, with documented defaults.
//!
//! Built by the embedder (`demo-web` from its flags, tests and the example in code) and
//! handed to [`serve`](crate::serve), which checks it once with [`TcpConfig::validate`]
//! and passes it to the listener and to each connection. The engine's limits (history,
//! message size, rates, session queue) are not here: they stay in
//! [`chat_core::Limits`], and this struct must not repeat them.

use std::time::Duration;

use chat_core::{InvalidLimit, Rate};

/// The TCP transport's own limits and timeouts.
///
/// `#[non_exhaustive]`: build it from [`TcpConfig::default`] and set the fields you need,
/// so that a new field is not a breaking change.
///
/// ```
/// let mut config = transport_tcp::TcpConfig::default();
/// config.max_line_bytes = 1024;
/// assert!(config.validate().is_ok());
/// ```
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct TcpConfig {
    /// Most open TCP connections, counting those that have not logged in yet. A permit is
    /// taken before `accept`, so further clients wait in the listen backlog instead of
    /// costing a task and buffers each; logged-in users across transports are capped
    /// separately by the engine (`Limits::max_sessions`). Default 100,000.
    pub max_connections: usize,
    /// Longest input line, in bytes, without its line end. A longer line gets
    /// `! error line_too_long` and the rest of it is discarded, which bounds what one
    /// client can make the server buffer. Default 8 KiB (twice the engine's default
    /// `max_message_bytes`, so the longest message fits with a command in front).
    pub max_line_bytes: usize,
    /// A connection that sends no complete line for this long is told
    /// `! closed idle_timeout` and closed. It also reaps half-open connections, which TCP
    /// alone never notices. Long, because a terminal user who only reads has no pings to
    /// answer: an empty line (just Enter) keeps the connection. Default 30 minutes.
    pub idle_timeout: Duration,
    /// Longest time one write to a client may take before the connection is dropped: a
    /// client that stops reading must not hold its task (and its buffers) forever. The
    /// engine drops it sooner if its event queue fills meanwhile. Default 10 s.
    pub write_timeout: Duration,
    /// Most connections open at once from one client address (an IPv6 address counts by
    /// its /64). One more gets `! closed too_many_connections: ...` and is closed at
    /// once, so one address cannot take the slots of `max_connections`. Default 64: a
    /// dozen people behind one NAT with a few terminals each.
    pub max_connections_per_address: usize,
    /// Rate of new connections from one client address, as a token bucket; one over it
    /// gets `! closed rate_limited: ... try again in N ms` and is closed at once, before
    /// it costs a task. Default: bursts of 20, 5 per second (a script reconnecting in a
    /// loop is slowed to a trickle; people never notice).
    pub connect_rate_per_address: Rate,
    /// Where IRC clients should connect (`HOST:PORT`), told to an IRC client that knocks
    /// on this port instead: its first line (`CAP LS 302`, `NICK dave`, ...) gets
    /// `ERROR :this is the plain-text port; IRC clients connect to HOST:PORT` and the
    /// connection is closed. `None` (the default): the server has no IRC port to name.
    pub irc_address: Option<String>,
    /// Where the files messages carry are served: a URL prefix the file's id is appended
    /// to (`http://chat.example.com/files/`), shown on each file's `% ` line. `None` (the
    /// default): the line shows the id alone.
    pub files_url: Option<String>,
}

impl Default for TcpConfig {
    fn default() -> Self {
        TcpConfig {
            max_connections: 100_000,
            max_line_bytes: 8 * 1024,
            idle_timeout: Duration::from_secs(30 * 60),
            write_timeout: Duration::from_secs(10),
            max_connections_per_address: 64,
            connect_rate_per_address: Rate::new(20, 5.0),
            irc_address: None,
            files_url: None,
        }
    }
}

impl TcpConfig {
    /// Refuses a value the transport cannot work with, naming its field: a zero anything
    /// (no connection could be served, every line would be too long, every connection
    /// would idle out or time out at once), and a connection rate with no burst or no
    /// refill.
    pub fn validate(&self) -> Result<(), InvalidLimit> {
        InvalidLimit::nonzero("max_connections", self.max_connections)?;
        InvalidLimit::nonzero("max_line_bytes", self.max_line_bytes)?;
        InvalidLimit::nonzero("idle_timeout", self.idle_timeout)?;
        InvalidLimit::nonzero("write_timeout", self.write_timeout)?;
        InvalidLimit::nonzero(
            "max_connections_per_address",
            self.max_connections_per_address,
        )?;
        self.connect_rate_per_address
            .validate("connect_rate_per_address")?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_defaults_are_valid() {
        assert_eq!(TcpConfig::default().validate(), Ok(()));
    }

    /// Asserts that `config` is refused because of `field`, and that the error says so.
    fn refused(config: TcpConfig, field: &str) {
        let error = config.validate().expect_err(field);
        assert_eq!(error.name, field);
        assert!(error.to_string().starts_with(field), "{error}");
    }

    #[test]
    fn a_zero_value_is_refused_naming_its_field() {
        refused(
            TcpConfig {
                max_connections: 0,
                ..TcpConfig::default()
            },
            "max_connections",
        );

        refused(
            TcpConfig {
                max_line_bytes: 0,
                ..TcpConfig::default()
            },
            "max_line_bytes",
        );

        refused(
            TcpConfig {
                idle_timeout: Duration::ZERO,
                ..TcpConfig::default()
            },
            "idle_timeout",
        );

        refused(
            TcpConfig {
                write_timeout: Duration::ZERO,
                ..TcpConfig::default()
            },
            "write_timeout",
        );

        refused(
            TcpConfig {
                max_connections_per_address: 0,
                ..TcpConfig::default()
            },
            "max_connections_per_address",
        );

        refused(
            TcpConfig {
                connect_rate_per_address: Rate::new(0, 1.0),
                ..TcpConfig::default()
            },
            "connect_rate_per_address",
        );
    }
}
