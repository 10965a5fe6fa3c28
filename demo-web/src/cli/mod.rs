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
use std::time::Duration;

use chat_core::{InvalidLimit, Limits};
use clap::Parser;
use transport_irc::IrcConfig;
use transport_tcp::TcpConfig;
use transport_ws::WsConfig;

mod connections;
mod limits;
mod values;

pub use connections::TransportFlags;
pub use limits::LimitFlags;
pub use values::{parse_bytes, parse_duration, parse_rate, DataDir, Listen, LogFormat, MetricsAt};

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
    /// Address of the web server (front end, `/ws`, `/healthz`, `/readyz`, `/metrics`),
    /// as IP:PORT. Port 0 picks a free port; the real one is printed as `listening on
    /// http://ADDR`.
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

    /// The address people reach the web app at (e.g. `https://chat.example.com`): the
    /// line and IRC ports show a message's files as links under it (`URL/files/ID`).
    /// Default: `http://` and the listen address.
    #[arg(long, env = "FLACK_PUBLIC_URL")]
    pub public_url: Option<String>,

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

    /// How logs are written to standard error: `text` for people, `json` (one object a
    /// line) for log shippers.
    #[arg(long, env = "FLACK_LOG_FORMAT", value_enum, default_value = "text")]
    pub log_format: LogFormat,

    /// Where Prometheus metrics are served: `main` at `/metrics` on the web listener, an
    /// IP:PORT of their own (printed as `metrics listening on http://ADDR`), or `off`
    /// (nothing is recorded at all).
    #[arg(long, env = "FLACK_METRICS", default_value = "main")]
    pub metrics: MetricsAt,

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
#[cfg(test)]
mod tests {
    use super::*;
    use chat_core::Rate;

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
            "--node-heartbeat",
            "1s",
            "--node-expiry",
            "4s",
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
        assert_eq!(checked.limits.node_heartbeat, Duration::from_secs(1));
        assert_eq!(checked.limits.node_expiry, Duration::from_secs(4));
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
            ("--node-heartbeat", "0s"),
            ("--node-expiry", "1s"),
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
    fn metrics_and_log_format() {
        let parse = |args: &[&str]| {
            Cli::try_parse_from(std::iter::once("demo-web").chain(args.iter().copied()))
        };
        let cli = parse(&[]).expect("defaults parse");
        assert_eq!(cli.metrics, MetricsAt::Main);
        assert_eq!(cli.log_format, LogFormat::Text);
        let cli = parse(&["--metrics", "127.0.0.1:9464", "--log-format", "json"]).expect("parses");
        assert_eq!(
            cli.metrics,
            MetricsAt::Own("127.0.0.1:9464".parse().expect("address"))
        );
        assert_eq!(cli.log_format, LogFormat::Json);
        assert_eq!(
            parse(&["--metrics", "OFF"]).expect("parses").metrics,
            MetricsAt::Off
        );
        assert!(parse(&["--metrics", "prometheus"]).is_err());
        assert!(parse(&["--log-format", "yaml"]).is_err());
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
