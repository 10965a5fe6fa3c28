//! `loadgen`: the load generator's command line. Parses flags (clap), builds the tokio
//! runtime, arms a watchdog that ends the process at a hard deadline even if the server
//! or the runtime hangs, runs [`benches::run::run`] and prints the report (a table, or
//! JSON with `--json`). All measuring logic lives in the library; this file must not grow
//! any.

use std::error::Error;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use benches::client::Protocol;
use benches::run::{self, Config};
use benches::storm::{self, StormConfig};
use clap::Parser;

/// Simulates chat users on loopback and measures a chat server: deliveries per second,
/// end-to-end latency percentiles, connection setup rate, loss, duplication and the
/// server's memory; or, with `--join-storm`, how fast a crowd fills one channel (and,
/// with `--reconnect-storm`, comes back into it).
#[derive(Debug, Parser)]
#[command(name = "loadgen", version, about)]
struct Args {
    /// Protocol: ws (ours, also raw-ws), tcp (our line protocol), socketio, irc.
    #[arg(long, value_enum, default_value = "ws")]
    protocol: Protocol,
    /// Server address (loopback only), IP:PORT.
    #[arg(long, default_value = "127.0.0.1:8080")]
    addr: SocketAddr,
    /// Another node of the same chat (repeatable): clients are spread round-robin over
    /// `--addr` and these, for cross-node runs.
    #[arg(long)]
    also: Vec<SocketAddr>,
    /// Clients in total (client i joins channel i % channels).
    #[arg(long, default_value_t = 100)]
    clients: usize,
    /// Channels.
    #[arg(long, default_value_t = 1)]
    channels: usize,
    /// Senders (clients 0..senders send).
    #[arg(long, default_value_t = 1)]
    senders: usize,
    /// Messages per second per sender; 0 = as fast as the window allows.
    #[arg(long, default_value_t = 0.0)]
    rate: f64,
    /// Messages in flight per sender at most (sent, not yet received by all recipients).
    #[arg(long, default_value_t = 64)]
    window: u32,
    /// Seconds of sending.
    #[arg(long, default_value_t = 5.0)]
    duration: f64,
    /// Seconds to wait for messages in flight after sending stops.
    #[arg(long, default_value_t = 5.0)]
    drain: f64,
    /// Bytes per message text.
    #[arg(long, default_value_t = 64)]
    size: usize,
    /// Messages per sender at most (0 = unlimited).
    #[arg(long, default_value_t = 0)]
    max_messages: u64,
    /// Connections set up at once.
    #[arg(long, default_value_t = 128)]
    connect_concurrency: usize,
    /// Seconds one client's setup may take.
    #[arg(long, default_value_t = 15.0)]
    connect_timeout: f64,
    /// Seconds the whole connect phase may take.
    #[arg(long, default_value_t = 120.0)]
    setup_budget: f64,
    /// Seconds to wait after connecting, before sending and the memory reading.
    #[arg(long, default_value_t = 0.5)]
    settle: f64,
    /// The server's pid, to report its memory (VmRSS/VmHWM).
    #[arg(long)]
    server_pid: Option<u32>,
    /// Prefix for user and channel names (letters and digits; default from the clock).
    #[arg(long)]
    run_id: Option<String>,
    /// Label of the report row.
    #[arg(long, default_value = "run")]
    label: String,
    /// Runtime worker threads (1 suits a loadgen pinned to one core).
    #[arg(long, default_value_t = 1)]
    threads: usize,
    /// Print the report as JSON instead of a table.
    #[arg(long)]
    json: bool,
    /// A join storm instead of the message run: N clients connect, log in and join one
    /// channel as fast as `--connect-concurrency` allows; reports joins per second and
    /// the server's CPU time per join (with `--server-pid`). Our WebSocket protocol only.
    #[arg(long, value_name = "N")]
    join_storm: Option<usize>,
    /// After the join storm, every client's socket is reset at once and every client
    /// comes straight back (its token, `after` = its last id) while `--storm-posts`
    /// messages are posted: reports the time until all are back and any message lost or
    /// repeated.
    #[arg(long, requires = "join_storm")]
    reconnect_storm: bool,
    /// Messages posted while the reconnect storm's clients are away (0 for a server
    /// that keeps no history, such as raw-ws).
    #[arg(long, default_value_t = 10)]
    storm_posts: u64,
    /// Also report when deliveries reached their sockets, by the kernel's receive stamp
    /// (without the loadgen's own wait to read them; WebSocket protocols only), for every
    /// N-th client (0: none).
    #[arg(long, value_name = "N", default_value_t = 0)]
    arrival_every: usize,
    /// Members of channel 0 that connect, log in and join, then never read their
    /// sockets: reports how many the server cut (and, with `--server-pid`, what they
    /// cost its memory meanwhile).
    #[arg(long, value_name = "N", default_value_t = 0)]
    stalled: usize,
}

/// The storms: `--join-storm N` and `--reconnect-storm`.
fn storm_main(args: Args, clients: usize) -> Result<ExitCode, Box<dyn Error>> {
    if args.protocol != Protocol::Ws {
        return Err("the storms speak our WebSocket protocol only (--protocol ws)".into());
    }
    let config = StormConfig {
        label: args.label,
        addr: args.addr,
        clients,
        connect_concurrency: args.connect_concurrency,
        connect_timeout: secs(args.connect_timeout)?,
        setup_budget: secs(args.setup_budget)?,
        reconnect: args.reconnect_storm,
        posts: args.storm_posts,
        drain: secs(args.drain)?,
        server_pid: args.server_pid,
        run_id: args.run_id.unwrap_or_else(run::default_run_id),
    };
    // The watchdog: joins, reconnects and the drain are each bounded; so is the process.
    let hard = config.setup_budget * 2 + config.drain + Duration::from_secs(30);
    std::thread::spawn(move || {
        std::thread::sleep(hard);
        eprintln!("loadgen: hard deadline of {hard:?} reached, exiting");
        std::process::exit(3);
    });
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(args.threads.max(1))
        .enable_all()
        .build()?;
    let report = runtime
        .block_on(storm::run(config))
        .map_err(|e| -> Box<dyn Error> { e })?;
    if args.json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        print!("{}", report.table());
    }
    runtime.shutdown_timeout(Duration::from_secs(1));
    Ok(if report.is_clean() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

fn secs(s: f64) -> Result<Duration, Box<dyn Error>> {
    Duration::try_from_secs_f64(s).map_err(|e| format!("bad duration {s}: {e}").into())
}

fn main() -> ExitCode {
    match real_main() {
        Ok(code) => code,
        Err(e) => {
            eprintln!("loadgen: {e}");
            ExitCode::from(2)
        }
    }
}

fn real_main() -> Result<ExitCode, Box<dyn Error>> {
    let args = Args::parse();
    if let Some(clients) = args.join_storm {
        return storm_main(args, clients);
    }
    let config = Config {
        label: args.label,
        protocol: args.protocol,
        addr: args.addr,
        also: args.also,
        clients: args.clients,
        channels: args.channels,
        senders: args.senders,
        rate: args.rate,
        window: args.window,
        duration: secs(args.duration)?,
        drain: secs(args.drain)?,
        size: args.size,
        connect_concurrency: args.connect_concurrency,
        connect_timeout: secs(args.connect_timeout)?,
        setup_budget: secs(args.setup_budget)?,
        settle: secs(args.settle)?,
        max_messages: args.max_messages,
        server_pid: args.server_pid,
        run_id: args.run_id.unwrap_or_else(run::default_run_id),
        arrival_every: args.arrival_every,
        stalled: args.stalled,
    };
    // The watchdog: every phase is bounded, this bounds the process too.
    let hard = config.setup_budget + config.settle + config.duration + config.drain;
    let hard = hard + Duration::from_secs(20);
    std::thread::spawn(move || {
        std::thread::sleep(hard);
        eprintln!("loadgen: hard deadline of {hard:?} reached, exiting");
        std::process::exit(3);
    });
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(args.threads.max(1))
        .enable_all()
        .build()?;
    let report = runtime
        .block_on(run::run(config))
        .map_err(|e| -> Box<dyn Error> { e })?;
    if args.json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        print!("{}", report.table());
    }
    // Do not wait for client tasks stuck on a hung server.
    runtime.shutdown_timeout(Duration::from_secs(1));
    Ok(if report.is_clean() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
