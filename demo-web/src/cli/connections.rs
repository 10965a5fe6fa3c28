//! The flags that set the transports' configs: [`transport_ws::WsConfig`],
//! [`transport_tcp::TcpConfig`] and [`transport_irc::IrcConfig`].

use std::time::Duration;

use chat_core::Rate;
use transport_irc::IrcConfig;
use transport_tcp::TcpConfig;
use transport_ws::WsConfig;

use super::values::{parse_duration, parse_rate};

/// The transports' settings: [`transport_ws::WsConfig`], [`transport_tcp::TcpConfig`] and
/// [`transport_irc::IrcConfig`].
#[derive(Debug, Clone, clap::Args)]
#[command(next_help_heading = "Connections")]
pub struct TransportFlags {
    /// Most open connections per listener (WebSocket and TCP each), counting those not
    /// logged in yet; more wait in the TCP backlog or get HTTP 503.
    #[arg(long, env = "FLACK_MAX_CONNECTIONS", default_value_t = 100_000)]
    pub max_connections: usize,

    /// Most open connections from one client address, per listener (an IPv6 address
    /// counts by its /64); one more gets HTTP 429, `! closed too_many_connections` or IRC's
    /// `ERROR :Closing link: too_many_connections`.
    #[arg(long, env = "FLACK_MAX_CONNECTIONS_PER_ADDRESS", default_value_t = 64)]
    pub max_connections_per_address: usize,

    /// Rate of new connections from one client address, per listener, as
    /// BURST/PER_SECOND; a faster one gets HTTP 429, `! closed rate_limited` or IRC's
    /// `ERROR :Closing link: rate_limited`.
    #[arg(long, env = "FLACK_CONNECT_RATE_PER_ADDRESS", default_value = "20/5", value_parser = parse_rate)]
    pub connect_rate_per_address: Rate,

    /// A reverse proxy (an address, or a network like `10.0.0.0/8`) whose
    /// `--forwarded-header` gives the WebSocket client's address; repeat the flag for
    /// several, or separate them with commas in the variable. From anyone else the header
    /// is ignored. None: every client is the socket's peer.
    #[arg(
        long = "trusted-proxy",
        env = "FLACK_TRUSTED_PROXIES",
        value_delimiter = ','
    )]
    pub trusted_proxies: Vec<String>,

    /// The header trusted proxies put the client's address in: `X-Forwarded-For`,
    /// `Forwarded` (RFC 7239) or another list like the first.
    #[arg(
        long,
        env = "FLACK_FORWARDED_HEADER",
        default_value = "X-Forwarded-For"
    )]
    pub forwarded_header: String,

    /// Largest WebSocket frame, in bytes; a bigger one closes the socket with 1009.
    #[arg(long, env = "FLACK_MAX_FRAME_BYTES", default_value_t = 64 * 1024)]
    pub max_frame_bytes: usize,

    /// Longest TCP line, in bytes; the rest of a longer one is discarded.
    #[arg(long, env = "FLACK_MAX_LINE_BYTES", default_value_t = 8 * 1024)]
    pub max_line_bytes: usize,

    /// A WebSocket silent this long (no frame, no pong) is closed.
    #[arg(long, env = "FLACK_IDLE_TIMEOUT", default_value = "60s", value_parser = parse_duration)]
    pub idle_timeout: Duration,

    /// A TCP connection that sends no line for this long is closed (longer than
    /// `--idle-timeout`: a terminal user who only reads has no pings to answer).
    #[arg(long, env = "FLACK_TCP_IDLE_TIMEOUT", default_value = "30m", value_parser = parse_duration)]
    pub tcp_idle_timeout: Duration,

    /// Interval between WebSocket pings.
    #[arg(long, env = "FLACK_HEARTBEAT_INTERVAL", default_value = "20s", value_parser = parse_duration)]
    pub heartbeat_interval: Duration,

    /// Longest time one write to a client may take before it is disconnected as a slow
    /// consumer.
    #[arg(long, env = "FLACK_WRITE_TIMEOUT", default_value = "10s", value_parser = parse_duration)]
    pub write_timeout: Duration,

    /// After a WebSocket close frame, how long the server waits for the client to close
    /// its side before it drops the connection.
    #[arg(long, env = "FLACK_CLOSE_LINGER", default_value = "1s", value_parser = parse_duration)]
    pub close_linger: Duration,

    /// The IRC server's name, the source of its replies: one word with a dot.
    #[arg(long, env = "FLACK_IRC_SERVER_NAME", default_value = "flack.irc")]
    pub irc_server_name: String,

    /// An IRC client that sends nothing for this long gets a PING.
    #[arg(long, env = "FLACK_IRC_PING_INTERVAL", default_value = "90s", value_parser = parse_duration)]
    pub irc_ping_interval: Duration,

    /// An IRC client that does not answer a PING within this long is disconnected.
    #[arg(long, env = "FLACK_IRC_PING_TIMEOUT", default_value = "60s", value_parser = parse_duration)]
    pub irc_ping_timeout: Duration,
}

impl TransportFlags {
    /// The WebSocket transport's settings, for pages from `allowed_origins`, answering for
    /// `public_hosts`.
    pub fn ws_config(&self, allowed_origins: &[String], public_hosts: &[String]) -> WsConfig {
        let mut config = WsConfig::default();
        config.allowed_origins = allowed_origins.to_vec();
        config.public_hosts = public_hosts.to_vec();
        config.max_connections = self.max_connections;
        config.max_connections_per_address = self.max_connections_per_address;
        config.connect_rate_per_address = self.connect_rate_per_address;
        config.trusted_proxies = self.trusted_proxies.clone();
        config.forwarded_header = self.forwarded_header.clone();
        config.max_frame_bytes = self.max_frame_bytes;
        config.idle_timeout = self.idle_timeout;
        config.heartbeat_interval = self.heartbeat_interval;
        config.write_timeout = self.write_timeout;
        config.close_linger = self.close_linger;
        config
    }

    /// The line transport's settings.
    pub fn tcp_config(&self) -> TcpConfig {
        let mut config = TcpConfig::default();
        config.max_connections = self.max_connections;
        config.max_connections_per_address = self.max_connections_per_address;
        config.connect_rate_per_address = self.connect_rate_per_address;
        config.max_line_bytes = self.max_line_bytes;
        config.idle_timeout = self.tcp_idle_timeout;
        config.write_timeout = self.write_timeout;
        config
    }

    /// The IRC transport's settings.
    pub fn irc_config(&self) -> IrcConfig {
        let mut config = IrcConfig::default();
        config.max_connections = self.max_connections;
        config.max_connections_per_address = self.max_connections_per_address;
        config.connect_rate_per_address = self.connect_rate_per_address;
        config.server_name = self.irc_server_name.clone();
        config.ping_interval = self.irc_ping_interval;
        config.ping_timeout = self.irc_ping_timeout;
        config.write_timeout = self.write_timeout;
        config
    }
}
