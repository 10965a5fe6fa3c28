//! The command line of `demo-web`: every flag, its environment fallback and its default.
//!
//! Owns the mapping from flags to [`chat_core::Limits`] and the transports' configs (one
//! flag per field, named after it), the check that refuses a bad value at start-up naming
//! its flag, and the parsers for durations (`2s`, `500ms`, `7d`) and rates (`20/5`).
//! Called by `main.rs` only; it must not bind, log or start anything.
//!
//! The defaults written here repeat `Limits::default()`; the unit test
//! `defaults_match_chat_core` fails if the two drift apart.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use chat_core::{InvalidLimit, Limits, Rate};
use clap::Parser;
use transport_irc::IrcConfig;
use transport_tcp::TcpConfig;
use transport_ws::WsConfig;

/// The Flack chat demo server: a web front end and a WebSocket endpoint on one address,
/// the line protocol for `nc`/`telnet` on another and IRC on a third, sharing one chat
/// engine.
///
/// Every flag can also be set through the environment variable shown with it.
/// Durations are written like `500ms`, `20s`, `5m`, `2h` or `7d`; rates as
/// `BURST/PER_SECOND`, e.g. `20/5` (bursts of 20, refilled at 5 per second).
#[derive(Debug, Clone, Parser)]
#[command(name = "demo-web", version, about, long_about)]
pub struct Cli {
    /// Address of the web server (front end, `/ws`, `/healthz`), as IP:PORT. Port 0 picks
    /// a free port; the real one is printed as `listening on http://ADDR`.
    #[arg(long, env = "FLACK_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,

    /// Address of the TCP line-protocol listener, as IP:PORT, or `off` to disable it. The
    /// real address is printed as `tcp listening on ADDR`.
    #[arg(long, env = "FLACK_TCP", default_value = "127.0.0.1:7878")]
    pub tcp: Listen,

    /// Address of the IRC listener (irssi, WeeChat, HexChat), as IP:PORT, or `off` to
    /// disable it. The real address is printed as `irc listening on ADDR`.
    #[arg(long, env = "FLACK_IRC", default_value = "127.0.0.1:6667")]
    pub irc: Listen,

    /// A browser origin allowed to open the WebSocket (e.g. `https://chat.example.com`);
    /// repeat the flag for several, or separate them with commas in the variable. None
    /// means only the server's own origin.
    #[arg(
        long = "allowed-origin",
        env = "FLACK_ALLOWED_ORIGINS",
        value_delimiter = ','
    )]
    pub allowed_origins: Vec<String>,

    /// A host name this server answers for, with an optional port (e.g.
    /// `chat.example.com`); repeat the flag for several, or separate them with commas in
    /// the variable. A request whose `Host` names anything else gets HTTP 421, so a page
    /// cannot reach the server by making its own domain resolve here (DNS rebinding).
    /// `localhost`, the loopback addresses and the listen address are always served;
    /// behind a reverse proxy that passes the browser's `Host` on, give the public name.
    #[arg(
        long = "public-host",
        env = "FLACK_PUBLIC_HOSTS",
        value_delimiter = ','
    )]
    pub public_hosts: Vec<String>,

    /// Where the server keeps its users, channels and messages across restarts: a
    /// directory (created if missing) holding one SQLite file, `flack.sqlite3`. `none`
    /// keeps everything in memory only, as `--in-memory` does. Not used with `--redis`.
    #[arg(
        long,
        env = "FLACK_DATA_DIR",
        default_value = "./flack-data",
        conflicts_with_all = ["redis", "in_memory"]
    )]
    pub data_dir: DataDir,

    /// Keep everything in memory only: a restart starts from nothing (the same as
    /// `--data-dir none`).
    #[arg(long, env = "FLACK_IN_MEMORY", conflicts_with = "redis")]
    pub in_memory: bool,

    /// Share channels, users and history with other nodes through this Redis
    /// (`redis://HOST:PORT`), which is then the store: what it keeps across its own
    /// restarts depends on its persistence settings (a warning is logged when it keeps
    /// nothing on disk).
    #[arg(long, env = "FLACK_REDIS")]
    pub redis: Option<String>,

    /// A channel to create at start-up if it does not exist yet (e.g. `general`); repeat
    /// the flag for several, or separate them with commas in the variable.
    #[arg(long = "channel", env = "FLACK_CHANNELS", value_delimiter = ',')]
    pub channels: Vec<String>,

    /// Log level of the Flack crates when `RUST_LOG` is not set (`RUST_LOG` takes any
    /// tracing filter and wins over this flag).
    #[arg(long, env = "FLACK_LOG_LEVEL", default_value = "info")]
    pub log_level: tracing::Level,

    /// Longest wait on SIGINT/SIGTERM for clients to be closed and the engine to stop
    /// before the process exits anyway.
    #[arg(long, env = "FLACK_SHUTDOWN_TIMEOUT", default_value = "10s", value_parser = parse_duration)]
    pub shutdown_timeout: Duration,

    /// The engine's limits.
    #[command(flatten)]
    pub limits: LimitFlags,

    /// The transports' settings.
    #[command(flatten)]
    pub transport: TransportFlags,
}

/// One flag per field of [`chat_core::Limits`], named after it.
#[derive(Debug, Clone, clap::Args)]
#[command(next_help_heading = "Limits")]
pub struct LimitFlags {
    /// Messages kept per room (channel or private conversation); a join shows at most
    /// this many.
    #[arg(long, env = "FLACK_HISTORY", default_value_t = 100)]
    pub history: usize,

    /// Largest message text, in bytes of UTF-8.
    #[arg(long, env = "FLACK_MAX_MESSAGE_BYTES", default_value_t = 4096)]
    pub max_message_bytes: usize,

    /// Longest display name, in characters.
    #[arg(long, env = "FLACK_MAX_DISPLAY_NAME_CHARS", default_value_t = 32)]
    pub max_display_name_chars: usize,

    /// Longest channel name, in characters.
    #[arg(long, env = "FLACK_MAX_CHANNEL_NAME_CHARS", default_value_t = 32)]
    pub max_channel_name_chars: usize,

    /// Memory a client's waiting events may keep (a message counts its text and author);
    /// past it the client is disconnected as a slow consumer. Sizes like `16MiB`, `512KiB`
    /// or plain bytes.
    #[arg(long, env = "FLACK_SESSION_QUEUE_HARD_BYTES", default_value = "16MiB", value_parser = parse_bytes)]
    pub session_queue_hard_bytes: usize,

    /// A client whose waiting events stay above this much memory for longer than
    /// `--session-queue-soft-grace` is disconnected as a slow consumer: a burst passes, a
    /// client that stopped reading does not.
    #[arg(long, env = "FLACK_SESSION_QUEUE_SOFT_BYTES", default_value = "4MiB", value_parser = parse_bytes)]
    pub session_queue_soft_bytes: usize,

    /// How long a client may stay above `--session-queue-soft-bytes`.
    #[arg(long, env = "FLACK_SESSION_QUEUE_SOFT_GRACE", default_value = "30s", value_parser = parse_duration)]
    pub session_queue_soft_grace: Duration,

    /// Per-user rate of messages, as BURST/PER_SECOND.
    #[arg(long, env = "FLACK_MESSAGE_RATE", default_value = "20/5", value_parser = parse_rate)]
    pub message_rate: Rate,

    /// Per-user rate of channel creation, as BURST/PER_SECOND.
    #[arg(long, env = "FLACK_CHANNEL_CREATE_RATE", default_value = "5/0.1", value_parser = parse_rate)]
    pub channel_create_rate: Rate,

    /// Shortest interval between two "is typing" notices of one user in one room.
    #[arg(long, env = "FLACK_TYPING_INTERVAL", default_value = "2s", value_parser = parse_duration)]
    pub typing_interval: Duration,

    /// Most channels on the server.
    #[arg(long, env = "FLACK_MAX_CHANNELS", default_value_t = 10_000)]
    pub max_channels: usize,

    /// Most connected clients (WebSocket and TCP together).
    #[arg(long, env = "FLACK_MAX_SESSIONS", default_value_t = 100_000)]
    pub max_sessions: usize,

    /// A room with more members than this is large: its followers see its member and
    /// online counts (once a second at most, less often above 1,000) instead of each
    /// member joining, leaving and coming and going, and load the member list when they
    /// show it. Below it, every join costs a delivery to every member.
    #[arg(long, env = "FLACK_LARGE_ROOM", default_value_t = 1_000)]
    pub large_room: usize,

    /// Most "is typing" notices a large room passes on per `--typing-interval`, from all
    /// its members together.
    #[arg(long, env = "FLACK_LARGE_ROOM_TYPING", default_value_t = 3)]
    pub large_room_typing: usize,

    /// A room (channel or private conversation) nobody has followed for this long is
    /// unloaded from memory; the next visitor loads it again from the store.
    #[arg(long, env = "FLACK_ROOM_IDLE", default_value = "5m", value_parser = parse_duration)]
    pub room_idle: Duration,

    /// How long a display name stays reserved for a user who left, and how long their
    /// resume token stays valid.
    #[arg(long, env = "FLACK_NAME_HOLD", default_value = "7d", value_parser = parse_duration)]
    pub name_hold: Duration,

    /// Rate of new users (new display names) from one client address, as
    /// BURST/PER_SECOND; a faster one is refused with `rate_limited`. Resuming with a
    /// token is not counted. An IPv6 address counts by its /64.
    #[arg(long, env = "FLACK_LOGIN_RATE_PER_ADDRESS", default_value = "20/0.2", value_parser = parse_rate)]
    pub login_rate_per_address: Rate,

    /// Most users kept, online or holding their name (about 750 bytes each); past it a
    /// new name forgets the user whose hold expired longest ago, or is refused with
    /// `server_full` when every hold is live.
    #[arg(long, env = "FLACK_MAX_USERS", default_value_t = 1_000_000)]
    pub max_users: usize,
}

/// The transports' settings: [`transport_ws::WsConfig`] and [`transport_tcp::TcpConfig`].
#[derive(Debug, Clone, clap::Args)]
#[command(next_help_heading = "Connections")]
pub struct TransportFlags {
    /// Most open connections per listener (WebSocket and TCP each), counting those not
    /// logged in yet; more wait in the TCP backlog or get HTTP 503.
    #[arg(long, env = "FLACK_MAX_CONNECTIONS", default_value_t = 100_000)]
    pub max_connections: usize,

    /// Most open connections from one client address, per listener (an IPv6 address
    /// counts by its /64); one more gets HTTP 429 or `! closed too_many_connections`.
    #[arg(long, env = "FLACK_MAX_CONNECTIONS_PER_ADDRESS", default_value_t = 64)]
    pub max_connections_per_address: usize,

    /// Rate of new connections from one client address, per listener, as
    /// BURST/PER_SECOND; a faster one gets HTTP 429 or `! closed rate_limited`.
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

impl LimitFlags {
    /// The engine's limits as these flags set them.
    pub fn to_limits(&self) -> Limits {
        let mut limits = Limits::default();
        limits.history = self.history;
        limits.max_message_bytes = self.max_message_bytes;
        limits.max_display_name_chars = self.max_display_name_chars;
        limits.max_channel_name_chars = self.max_channel_name_chars;
        limits.session_queue_hard_bytes = self.session_queue_hard_bytes;
        limits.session_queue_soft_bytes = self.session_queue_soft_bytes;
        limits.session_queue_soft_grace = self.session_queue_soft_grace;
        limits.message_rate = self.message_rate;
        limits.channel_create_rate = self.channel_create_rate;
        limits.typing_interval = self.typing_interval;
        limits.large_room = self.large_room;
        limits.large_room_typing = self.large_room_typing;
        limits.room_idle = self.room_idle;
        limits.max_channels = self.max_channels;
        limits.max_sessions = self.max_sessions;
        limits.name_hold = self.name_hold;
        limits.login_rate_per_address = self.login_rate_per_address;
        limits.max_users = self.max_users;
        limits
    }
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
        config.server_name = self.irc_server_name.clone();
        config.ping_interval = self.irc_ping_interval;
        config.ping_timeout = self.irc_ping_timeout;
        config.write_timeout = self.write_timeout;
        config
    }
}

/// Everything the flags configure, checked: what `main` starts the server with.
#[derive(Debug, Clone)]
pub struct Checked {
    /// The engine's limits.
    pub limits: Limits,
    /// The WebSocket transport's settings.
    pub ws: WsConfig,
    /// The line transport's settings.
    pub tcp: TcpConfig,
    /// The IRC transport's settings.
    pub irc: IrcConfig,
}

impl Cli {
    /// Builds and checks every setting, so that a value the server cannot work with (a
    /// zero interval, an empty queue) stops the start with an error naming its flag,
    /// never a failure later.
    pub fn check(&self) -> Result<Checked, clap::Error> {
        let limits = self.limits.to_limits();
        let ws = self
            .transport
            .ws_config(&self.allowed_origins, &self.public_hosts);
        let tcp = self.transport.tcp_config();
        let irc = self.transport.irc_config();
        limits.validate().map_err(|e| invalid(&e, ""))?;
        ws.validate().map_err(|e| invalid(&e, ""))?;
        tcp.validate().map_err(|e| invalid(&e, "tcp"))?;
        irc.validate().map_err(|e| invalid(&e, "irc"))?;
        Ok(Checked {
            limits,
            ws,
            tcp,
            irc,
        })
    }
}

/// The start-up error for an invalid setting, naming the flag that sets it: the field's
/// name in kebab case, prefixed for the TCP-only and IRC-only settings whose flag says
/// `tcp` or `irc`, singular for the lists whose flag is repeated once per entry.
fn invalid(error: &InvalidLimit, section: &str) -> clap::Error {
    let name = error.name.replace('_', "-");
    let flag = match (section, name.as_str()) {
        ("tcp", "idle-timeout") => format!("--{section}-{name}"),
        ("irc", "server-name" | "ping-interval" | "ping-timeout") => format!("--{section}-{name}"),
        ("", "public-hosts") => "--public-host".to_owned(),
        ("", "trusted-proxies") => "--trusted-proxy".to_owned(),
        _ => format!("--{name}"),
    };
    clap::Error::raw(
        clap::error::ErrorKind::ValueValidation,
        format!("{flag}: {}\n", error.reason),
    )
}

/// Where the server keeps its data, as the flags choose it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreChoice {
    /// In memory only: gone when the process ends.
    Memory,
    /// The SQLite file in this data directory.
    DataDir(PathBuf),
    /// The Redis at this URL.
    Redis(String),
}

impl Cli {
    /// The store the flags ask for: `--redis`, else memory (`--in-memory`,
    /// `--data-dir none`), else the data directory.
    pub fn store(&self) -> StoreChoice {
        match (&self.redis, &self.data_dir.0) {
            (Some(url), _) => StoreChoice::Redis(url.clone()),
            (None, _) if self.in_memory => StoreChoice::Memory,
            (None, None) => StoreChoice::Memory,
            (None, Some(dir)) => StoreChoice::DataDir(dir.clone()),
        }
    }
}

/// A data directory, or none (`none`: in memory only).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataDir(pub Option<PathBuf>);

impl FromStr for DataDir {
    type Err = String;

    fn from_str(raw: &str) -> Result<Self, Self::Err> {
        match raw.trim() {
            "" => Err("expected a directory, or `none`".to_owned()),
            none if none.eq_ignore_ascii_case("none") => Ok(DataDir(None)),
            dir => Ok(DataDir(Some(PathBuf::from(dir)))),
        }
    }
}

/// Where a listener (the TCP line protocol, IRC) binds, or nowhere (`off`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Listen(pub Option<SocketAddr>);

impl FromStr for Listen {
    type Err = String;

    fn from_str(raw: &str) -> Result<Self, Self::Err> {
        if raw.trim().eq_ignore_ascii_case("off") {
            return Ok(Listen(None));
        }
        raw.trim()
            .parse()
            .map(|addr| Listen(Some(addr)))
            .map_err(|e| format!("expected IP:PORT or `off`: {e}"))
    }
}

/// Parses `500ms`, `20s`, `5m`, `2h`, `7d`; a bare number is seconds. Fractions are
/// allowed (`1.5s`).
pub fn parse_duration(raw: &str) -> Result<Duration, String> {
    let raw = raw.trim();
    let split = raw
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(raw.len());
    let (number, unit) = raw.split_at(split);
    let value: f64 = number
        .parse()
        .map_err(|_| format!("{raw:?} is not a duration like 250us, 500ms, 20s, 5m, 2h or 7d"))?;
    let seconds_per_unit = match unit.trim() {
        "us" | "µs" => 0.000_001,
        "ms" => 0.001,
        "" | "s" => 1.0,
        "m" => 60.0,
        "h" => 3600.0,
        "d" => 86_400.0,
        other => {
            return Err(format!(
                "unknown duration unit {other:?} (use us, ms, s, m, h or d)"
            ))
        }
    };
    Duration::try_from_secs_f64(value * seconds_per_unit).map_err(|e| format!("{raw:?}: {e}"))
}

/// Parses a size: plain bytes, or a number with `KiB`, `MiB` or `GiB` (`16MiB`).
pub fn parse_bytes(raw: &str) -> Result<usize, String> {
    let raw = raw.trim();
    let split = raw.find(|c: char| !c.is_ascii_digit()).unwrap_or(raw.len());
    let (number, unit) = raw.split_at(split);
    let value: usize = number
        .parse()
        .map_err(|_| format!("{raw:?} is not a size like 4096, 512KiB or 16MiB"))?;
    let scale: usize = match unit.trim() {
        "" | "B" => 1,
        "KiB" => 1 << 10,
        "MiB" => 1 << 20,
        "GiB" => 1 << 30,
        other => return Err(format!("unknown size unit {other:?} (use KiB, MiB or GiB)")),
    };
    value
        .checked_mul(scale)
        .ok_or_else(|| format!("{raw:?} is too large"))
}

/// Parses `BURST/PER_SECOND`, e.g. `20/5` or `5/0.1`.
pub fn parse_rate(raw: &str) -> Result<Rate, String> {
    let (burst, per_second) = raw
        .trim()
        .split_once('/')
        .ok_or_else(|| format!("{raw:?} is not a rate like 20/5 (BURST/PER_SECOND)"))?;
    let burst: u32 = burst
        .trim()
        .parse()
        .map_err(|e| format!("burst {burst:?}: {e}"))?;
    let per_second: f64 = per_second
        .trim()
        .parse()
        .map_err(|e| format!("per second {per_second:?}: {e}"))?;
    if burst == 0 || !per_second.is_finite() || per_second <= 0.0 {
        return Err(format!(
            "{raw:?}: the burst must be at least 1 and the rate positive"
        ));
    }
    Ok(Rate::new(burst, per_second))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_match_chat_core() {
        let cli = Cli::try_parse_from(["demo-web"]).expect("defaults parse");
        let checked = cli.check().expect("the defaults are valid");
        assert_eq!(checked.limits, Limits::default());
        assert_eq!(checked.ws, WsConfig::default());
        assert_eq!(checked.tcp, TcpConfig::default());
        assert_eq!(checked.irc, IrcConfig::default());
        assert_eq!(cli.listen, "127.0.0.1:8080".parse().expect("address"));
        assert_eq!(
            cli.tcp,
            Listen(Some("127.0.0.1:7878".parse().expect("address")))
        );
        assert_eq!(
            cli.irc,
            Listen(Some("127.0.0.1:6667".parse().expect("address")))
        );
        assert_eq!(
            cli.store(),
            StoreChoice::DataDir(PathBuf::from("./flack-data"))
        );
    }

    #[test]
    fn the_store_is_the_data_dir_memory_or_redis() {
        let store = |args: &[&str]| {
            let cli = Cli::try_parse_from(std::iter::once("demo-web").chain(args.iter().copied()));
            cli.map(|cli| cli.store())
        };
        assert_eq!(
            store(&["--data-dir", "/var/lib/flack"]).expect("parses"),
            StoreChoice::DataDir(PathBuf::from("/var/lib/flack"))
        );
        assert_eq!(
            store(&["--data-dir", "none"]).expect("parses"),
            StoreChoice::Memory
        );
        assert_eq!(
            store(&["--in-memory"]).expect("parses"),
            StoreChoice::Memory
        );
        assert_eq!(
            store(&["--redis", "redis://127.0.0.1:6379"]).expect("parses"),
            StoreChoice::Redis("redis://127.0.0.1:6379".into())
        );
        // Two stores at once is a mistake worth stopping for.
        assert!(store(&["--redis", "redis://x", "--data-dir", "d"]).is_err());
        assert!(store(&["--in-memory", "--data-dir", "d"]).is_err());
        assert!(store(&["--in-memory", "--redis", "redis://x"]).is_err());
    }

    #[test]
    fn flags_set_limits() {
        let cli = Cli::try_parse_from([
            "demo-web",
            "--history",
            "7",
            "--message-rate",
            "1000/500",
            "--idle-timeout",
            "1500ms",
            "--heartbeat-interval",
            "500ms",
            "--tcp-idle-timeout",
            "2m",
            "--room-idle",
            "30s",
            "--tcp",
            "off",
            "--irc",
            "off",
            "--irc-ping-interval",
            "30s",
            "--allowed-origin",
            "http://a.example",
            "--allowed-origin",
            "http://b.example",
            "--public-host",
            "chat.example.com",
            "--public-host",
            "chat.example.net:8443",
            "--login-rate-per-address",
            "3/0.5",
            "--max-users",
            "5000",
            "--max-connections-per-address",
            "8",
            "--connect-rate-per-address",
            "4/2",
            "--trusted-proxy",
            "10.0.0.0/8",
            "--trusted-proxy",
            "::1",
            "--forwarded-header",
            "Forwarded",
        ])
        .expect("flags parse");
        let checked = cli.check().expect("valid");
        assert_eq!(checked.limits.history, 7);
        assert_eq!(checked.limits.room_idle, Duration::from_secs(30));
        assert_eq!(checked.limits.message_rate, Rate::new(1000, 500.0));
        assert_eq!(checked.ws.idle_timeout, Duration::from_millis(1500));
        assert_eq!(checked.ws.heartbeat_interval, Duration::from_millis(500));
        assert_eq!(checked.tcp.idle_timeout, Duration::from_secs(120));
        assert_eq!(cli.tcp, Listen(None));
        assert_eq!(cli.irc, Listen(None));
        assert_eq!(checked.irc.ping_interval, Duration::from_secs(30));
        assert_eq!(
            checked.ws.allowed_origins,
            ["http://a.example", "http://b.example"]
        );
        assert_eq!(
            checked.ws.public_hosts,
            ["chat.example.com", "chat.example.net:8443"]
        );
        assert_eq!(checked.limits.login_rate_per_address, Rate::new(3, 0.5));
        assert_eq!(checked.limits.max_users, 5000);
        assert_eq!(checked.ws.max_connections_per_address, 8);
        assert_eq!(checked.tcp.max_connections_per_address, 8);
        assert_eq!(checked.ws.connect_rate_per_address, Rate::new(4, 2.0));
        assert_eq!(checked.tcp.connect_rate_per_address, Rate::new(4, 2.0));
        assert_eq!(checked.ws.trusted_proxies, ["10.0.0.0/8", "::1"]);
        assert_eq!(checked.ws.forwarded_header, "Forwarded");
    }

    #[test]
    fn a_zero_setting_stops_the_start_naming_its_flag() {
        for (flag, value) in [
            ("--heartbeat-interval", "0s"),
            ("--idle-timeout", "0s"),
            ("--tcp-idle-timeout", "0s"),
            ("--write-timeout", "0ms"),
            ("--max-frame-bytes", "0"),
            ("--max-line-bytes", "0"),
            ("--history", "0"),
            ("--session-queue-hard-bytes", "0"),
            ("--room-idle", "0s"),
            ("--max-users", "0"),
            ("--max-connections-per-address", "0"),
            ("--trusted-proxy", "proxy.internal"),
            ("--forwarded-header", "X Forwarded For"),
            ("--irc-ping-interval", "0s"),
            ("--irc-ping-timeout", "0s"),
            ("--irc-server-name", "nodot"),
        ] {
            let cli = Cli::try_parse_from(["demo-web", flag, value]).expect("parses");
            let error = cli.check().expect_err(flag).to_string();
            assert!(error.contains(flag), "{flag}: {error}");
        }
    }

    /// `public_hosts` is checked by its field name; the error names the flag, which is
    /// singular.
    #[test]
    fn a_url_as_public_host_stops_the_start_naming_its_flag() {
        let cli = Cli::try_parse_from(["demo-web", "--public-host", "https://chat.example.com"])
            .expect("parses");
        let error = cli.check().expect_err("a URL").to_string();
        assert!(error.contains("--public-host:"), "{error}");
        assert!(error.contains("https://chat.example.com"), "{error}");
    }

    #[test]
    fn durations_and_rates() {
        assert_eq!(parse_duration("7d"), Ok(Duration::from_secs(7 * 86_400)));
        assert_eq!(parse_duration("2"), Ok(Duration::from_secs(2)));
        assert_eq!(parse_duration("0.5s"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("250us"), Ok(Duration::from_micros(250)));
        assert_eq!(parse_duration("40µs"), Ok(Duration::from_micros(40)));
        assert!(parse_duration("soon").is_err());
        assert!(parse_duration("3 fortnights").is_err());
        assert_eq!(parse_bytes("16MiB"), Ok(16 << 20));
        assert_eq!(parse_bytes("512KiB"), Ok(512 << 10));
        assert_eq!(parse_bytes("4096"), Ok(4096));
        assert!(parse_bytes("4 MB").is_err());
        assert!(parse_bytes("many").is_err());
        assert!(parse_rate("0/1").is_err());
        assert!(parse_rate("5/0").is_err());
        assert!(parse_rate("5").is_err());
        assert_eq!(parse_rate("5/0.1"), Ok(Rate::new(5, 0.1)));
    }
}
