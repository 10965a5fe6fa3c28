//! `IrcConfig`: every bound and name the IRC transport itself uses, with documented
//! defaults.
//!
//! Built by the embedder (`demo-web` from its flags, tests and the example in code) and
//! handed to [`serve`](crate::serve), which checks it once with [`IrcConfig::validate`]
//! and passes it to the listener and to each connection. The engine's limits (history,
//! message size, rates, session queue) are not here: they stay in [`chat_core::Limits`].
//! The protocol's own line limits are constants ([`MAX_LINE_BYTES`], [`MAX_TAGS_BYTES`]):
//! they are what IRC clients are written for, not a setting.

use std::time::Duration;

use chat_core::{InvalidLimit, Rate};

/// Longest IRC line a client may send, tags excluded, counting the final `\r\n`
/// (RFC 1459 and the modern IRC documents).
pub const MAX_LINE_BYTES: usize = 512;

/// Longest tags section a client may send, counting its leading `@` and trailing space
/// (IRCv3 message-tags).
pub const MAX_TAGS_BYTES: usize = 8191;

/// The IRC transport's own limits, timeouts and names.
///
/// `#[non_exhaustive]`: build it from [`IrcConfig::default`] and set the fields you need.
///
/// ```
/// let mut config = transport_irc::IrcConfig::default();
/// config.server_name = "irc.example.com".into();
/// assert!(config.validate().is_ok());
/// ```
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct IrcConfig {
    /// Most open connections, registered or not. A permit is taken before `accept`, so
    /// further clients wait in the listen backlog. Default 100,000.
    pub max_connections: usize,
    /// Most open connections from one client address (an IPv6 address counts by its
    /// /64); one more gets `ERROR :Closing link: too_many_connections`. Default 64.
    pub max_connections_per_address: usize,
    /// Rate of new connections from one client address; a faster one gets
    /// `ERROR :Closing link: rate_limited`. Default 20 at once, then 5 per second.
    pub connect_rate_per_address: Rate,
    /// The server's name: the source of every numeric and server notice. It must contain a
    /// dot, which no nick can (the name mapping escapes it), so a nick never passes for
    /// the server. Default `flack.irc`.
    pub server_name: String,
    /// The network's name in `RPL_ISUPPORT` (`NETWORK=`), one word. Default `Flack`.
    pub network_name: String,
    /// Message of the day, one entry per line; empty sends `422` (no MOTD).
    pub motd: Vec<String>,
    /// A registered connection that sends nothing for this long gets a `PING`.
    /// Default 90 s.
    pub ping_interval: Duration,
    /// After our `PING`, a connection that sends nothing for this long is closed with
    /// `ERROR` (`ping_timeout`): this reaps half-open connections. Default 60 s.
    pub ping_timeout: Duration,
    /// A connection that has not registered (NICK, USER, CAP END) within this long is
    /// closed. Default 60 s.
    pub registration_timeout: Duration,
    /// Longest time one write to a client may take before the connection is dropped; the
    /// engine drops a client sooner if its event queue fills meanwhile. Default 10 s.
    pub write_timeout: Duration,
    /// Where the files messages carry are served: a URL prefix the file's id is appended
    /// to (`http://chat.example.com/files/`), on the `[file]` line that follows such a
    /// message. `None` (the default): the line shows the id alone.
    pub files_url: Option<String>,
}

impl Default for IrcConfig {
    fn default() -> Self {
        IrcConfig {
            max_connections: 100_000,
            max_connections_per_address: 64,
            connect_rate_per_address: Rate::new(20, 5.0),
            server_name: "flack.irc".into(),
            network_name: "Flack".into(),
            motd: vec![
                "Welcome to Flack over IRC: the same users, channels and history as the web."
                    .into(),
                "Display names with spaces or other characters a nick cannot hold show as \\xx escapes (Ann\\20Lee)."
                    .into(),
                "Come back as the same user with your resume token as the server password (PASS)."
                    .into(),
            ],
            ping_interval: Duration::from_secs(90),
            ping_timeout: Duration::from_secs(60),
            registration_timeout: Duration::from_secs(60),
            write_timeout: Duration::from_secs(10),
            files_url: None,
        }
    }
}

impl IrcConfig {
    /// Refuses a value the transport cannot work with, naming its field: a zero count or
    /// duration, a server name that is not one word with a dot, a network name that is not
    /// one word, a MOTD line with a line break.
    pub fn validate(&self) -> Result<(), InvalidLimit> {
        InvalidLimit::nonzero("max_connections", self.max_connections)?;
        InvalidLimit::nonzero(
            "max_connections_per_address",
            self.max_connections_per_address,
        )?;
        self.connect_rate_per_address
            .validate("connect_rate_per_address")?;
        InvalidLimit::nonzero("ping_interval", self.ping_interval)?;
        InvalidLimit::nonzero("ping_timeout", self.ping_timeout)?;
        InvalidLimit::nonzero("registration_timeout", self.registration_timeout)?;
        InvalidLimit::nonzero("write_timeout", self.write_timeout)?;
        let word = |s: &str| {
            !s.is_empty()
                && s.len() <= 63
                && s.bytes()
                    .all(|b| b.is_ascii_graphic() && b != b':' && b != b'!' && b != b'@')
        };
        if !word(&self.server_name) || !self.server_name.contains('.') {
            return Err(InvalidLimit::new(
                "server_name",
                format!(
                    "{:?} must be one word of printable ASCII with a dot, like flack.irc",
                    self.server_name
                ),
            ));
        }
        if !word(&self.network_name) {
            return Err(InvalidLimit::new(
                "network_name",
                format!(
                    "{:?} must be one word of printable ASCII",
                    self.network_name
                ),
            ));
        }
        if self.motd.iter().any(|l| l.contains(['\r', '\n', '\0'])) {
            return Err(InvalidLimit::new(
                "motd",
                "a MOTD line may not contain a line break",
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_defaults_are_valid() {
        assert_eq!(IrcConfig::default().validate(), Ok(()));
    }

    fn refused(config: IrcConfig, field: &str) {
        let error = config.validate().expect_err(field);
        assert_eq!(error.name, field);
        assert!(error.to_string().starts_with(field), "{error}");
    }

    #[test]
    fn a_bad_value_is_refused_naming_its_field() {
        let d = IrcConfig::default;
        refused(
            IrcConfig {
                max_connections: 0,
                ..d()
            },
            "max_connections",
        );
        refused(
            IrcConfig {
                ping_interval: Duration::ZERO,
                ..d()
            },
            "ping_interval",
        );
        refused(
            IrcConfig {
                ping_timeout: Duration::ZERO,
                ..d()
            },
            "ping_timeout",
        );
        refused(
            IrcConfig {
                registration_timeout: Duration::ZERO,
                ..d()
            },
            "registration_timeout",
        );
        refused(
            IrcConfig {
                write_timeout: Duration::ZERO,
                ..d()
            },
            "write_timeout",
        );
        for name in ["", "flack", "a b.c", "x:y.z"] {
            refused(
                IrcConfig {
                    server_name: name.into(),
                    ..d()
                },
                "server_name",
            );
        }
        refused(
            IrcConfig {
                network_name: "Two Words".into(),
                ..d()
            },
            "network_name",
        );
        refused(
            IrcConfig {
                motd: vec!["a\r\nQUIT".into()],
                ..d()
            },
            "motd",
        );
    }
}
