//! The command line of `demo-web`: every flag, its environment fallback and its default.
//!
//! Owns the mapping from flags to [`chat_core::Limits`] (one flag per field, named after
//! it) and the parsers for durations (`2s`, `500ms`, `7d`) and rates (`20/5`). Called by
//! `main.rs` only; it must not bind, log or start anything.
//!
//! The defaults written here repeat `Limits::default()`; the unit test
//! `defaults_match_chat_core` fails if the two drift apart.

use std::net::SocketAddr;
use std::str::FromStr;
use std::time::Duration;

use chat_core::{Limits, Rate};
use clap::Parser;

/// The Flack chat demo server: a web front end and a WebSocket endpoint on one address,
/// and the line protocol for `nc`/`telnet` on another, sharing one chat engine.
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
    pub tcp: TcpListen,

    /// A browser origin allowed to open the WebSocket (e.g. `https://chat.example.com`);
    /// repeat the flag for several, or separate them with commas in the variable. None
    /// means only the server's own origin.
    #[arg(
        long = "allowed-origin",
        env = "FLACK_ALLOWED_ORIGINS",
        value_delimiter = ','
    )]
    pub allowed_origins: Vec<String>,

    /// Share channels, users and history with other nodes through this Redis
    /// (`redis://HOST:PORT`). Without it everything lives in this process.
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

    /// Events a client may have waiting; one more and it is disconnected as a slow
    /// consumer.
    #[arg(long, env = "FLACK_SESSION_QUEUE", default_value_t = 1024)]
    pub session_queue: usize,

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

    /// How long a display name stays reserved for a user who left, and how long their
    /// resume token stays valid.
    #[arg(long, env = "FLACK_NAME_HOLD", default_value = "7d", value_parser = parse_duration)]
    pub name_hold: Duration,

    /// Threads the channel actors are spread over; they run nothing else. 0: the rooms
    /// share the connection workers (no hand-over between threads, higher latency under
    /// load) [default: half the cores, at least 1].
    #[arg(long, env = "FLACK_CHANNEL_WORKERS")]
    pub channel_workers: Option<usize>,

    /// Threads that run the WebSocket and TCP connections [default: the number of cores].
    #[arg(long, env = "FLACK_CONNECTION_WORKERS")]
    pub connection_workers: Option<usize>,

    /// Run the worker threads as batch threads (Linux SCHED_BATCH): a woken worker does
    /// not preempt the thread on its core, so bursts of posts are fanned out together.
    #[arg(long, env = "FLACK_BATCH_SCHEDULING", default_value_t = true, action = clap::ArgAction::Set)]
    pub batch_scheduling: bool,

    /// A worker thread with nothing left to run that last slept less than this long ago
    /// yields its core once before it sleeps again, so the other workers on that core can
    /// hand it work first (0 never yields).
    #[arg(long, env = "FLACK_PARK_YIELD_WINDOW", default_value = "200us", value_parser = parse_duration)]
    pub park_yield_window: Duration,

    /// After a connection hands posts to a room, its thread yields its core so the room
    /// fans them out now; at most once per this interval per thread.
    #[arg(long, env = "FLACK_POST_YIELD_INTERVAL", default_value = "250us", value_parser = parse_duration)]
    pub post_yield_interval: Duration,

    /// Yield (see --post-yield-interval) only while connections take fewer than this many
    /// events per turn on average (more: the server is behind and batches serve it
    /// better); 0 never yields.
    #[arg(long, env = "FLACK_POST_YIELD_BACKLOG", default_value_t = 24)]
    pub post_yield_backlog: usize,

    /// Most open connections per listener (WebSocket and TCP each), counting those not
    /// logged in yet; more wait in the TCP backlog or get HTTP 503.
    #[arg(long, env = "FLACK_MAX_CONNECTIONS", default_value_t = 100_000)]
    pub max_connections: usize,

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
}

impl LimitFlags {
    /// The engine's limits as these flags set them.
    pub fn to_limits(&self) -> Limits {
        let defaults = Limits::default();
        // No `..defaults`: a field added to `Limits` must fail to compile here until it
        // has its flag.
        Limits {
            history: self.history,
            max_message_bytes: self.max_message_bytes,
            max_display_name_chars: self.max_display_name_chars,
            max_channel_name_chars: self.max_channel_name_chars,
            session_queue: self.session_queue,
            message_rate: self.message_rate,
            channel_create_rate: self.channel_create_rate,
            typing_interval: self.typing_interval,
            max_channels: self.max_channels,
            max_sessions: self.max_sessions,
            name_hold: self.name_hold,
            channel_workers: self.channel_workers.unwrap_or(defaults.channel_workers),
            connection_workers: self
                .connection_workers
                .unwrap_or(defaults.connection_workers),
            batch_scheduling: self.batch_scheduling,
            park_yield_window: self.park_yield_window,
            post_yield_interval: self.post_yield_interval,
            post_yield_backlog: self.post_yield_backlog,
            max_connections: self.max_connections,
            max_frame_bytes: self.max_frame_bytes,
            max_line_bytes: self.max_line_bytes,
            idle_timeout: self.idle_timeout,
            tcp_idle_timeout: self.tcp_idle_timeout,
            heartbeat_interval: self.heartbeat_interval,
            write_timeout: self.write_timeout,
            close_linger: self.close_linger,
        }
    }
}

/// Where the TCP listener binds, or nowhere (`off`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TcpListen(pub Option<SocketAddr>);

impl FromStr for TcpListen {
    type Err = String;

    fn from_str(raw: &str) -> Result<Self, Self::Err> {
        if raw.trim().eq_ignore_ascii_case("off") {
            return Ok(TcpListen(None));
        }
        raw.trim()
            .parse()
            .map(|addr| TcpListen(Some(addr)))
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
    Ok(Rate { burst, per_second })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_match_chat_core() {
        let cli = Cli::try_parse_from(["demo-web"]).expect("defaults parse");
        assert_eq!(cli.limits.to_limits(), Limits::default());
        assert_eq!(cli.listen, "127.0.0.1:8080".parse().expect("address"));
        assert_eq!(
            cli.tcp,
            TcpListen(Some("127.0.0.1:7878".parse().expect("address")))
        );
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
            "--tcp",
            "off",
            "--allowed-origin",
            "http://a.example",
            "--allowed-origin",
            "http://b.example",
            "--connection-workers",
            "3",
            "--post-yield-interval",
            "100us",
            "--post-yield-backlog",
            "0",
            "--park-yield-window",
            "0s",
        ])
        .expect("flags parse");
        let limits = cli.limits.to_limits();
        assert_eq!(limits.history, 7);
        assert_eq!(limits.connection_workers, 3);
        assert_eq!(limits.post_yield_interval, Duration::from_micros(100));
        assert_eq!(limits.post_yield_backlog, 0);
        assert_eq!(limits.park_yield_window, Duration::ZERO);
        assert_eq!(
            limits.message_rate,
            Rate {
                burst: 1000,
                per_second: 500.0
            }
        );
        assert_eq!(limits.idle_timeout, Duration::from_millis(1500));
        assert_eq!(cli.tcp, TcpListen(None));
        assert_eq!(
            cli.allowed_origins,
            ["http://a.example", "http://b.example"]
        );
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
        assert!(parse_rate("0/1").is_err());
        assert!(parse_rate("5/0").is_err());
        assert!(parse_rate("5").is_err());
        assert_eq!(
            parse_rate("5/0.1"),
            Ok(Rate {
                burst: 5,
                per_second: 0.1
            })
        );
    }
}
