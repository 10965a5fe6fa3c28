//! Storms: many clients at once into one room, and all of them back at once.
//!
//! - **Join storm** (`loadgen --join-storm N`): N clients connect, log in and join one
//!   channel as fast as `connect_concurrency` allows. Reports joins per second and the
//!   server's CPU time per join (from `/proc`, with `--server-pid`): a join that costs the
//!   same in a room of 15,000 as in one of 1,000 shows as the same microseconds.
//! - **Reconnect storm** (`--reconnect-storm`, after the joins): every client's socket is
//!   reset at once, and every client comes straight back, logging in with its token and
//!   joining with `after` = the last id it had, while another connection posts
//!   `posts` messages. Reports the time until every client is back, and checks that each
//!   one got every message posted meanwhile exactly once (from its join reply or live).
//!
//! The testable entry point behind `loadgen`'s storm flags, as [`crate::run`] is for the
//! others; it only speaks our WebSocket protocol (and `raw-ws`'s imitation of it: there is
//! no token or history there, so a client comes back by name and `posts` should be 0).
//! Every phase is bounded; clients only connect to loopback addresses.
//!
//! # Layout
//! - this file: [`StormConfig`] and [`run`], the phases and what the clients share;
//! - `client`: one simulated client, and its connection speaking the JSON protocol;
//! - `report`: [`StormReport`], its table and JSON.

mod client;
mod report;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::json;
use tokio::sync::{mpsc, watch, Semaphore};
use tokio::task::JoinSet;
use tokio::time::{sleep, timeout, timeout_at, Instant};

use crate::{cpu, rss, Error};
use client::{client, StormClient};
pub use report::{ReconnectReport, StormReport};

/// Errors kept for the report, at most.
const ERRORS_KEPT: usize = 10;

/// What to run.
#[derive(Debug, Clone)]
pub struct StormConfig {
    /// The report row's label.
    pub label: String,
    /// The server (a loopback address).
    pub addr: SocketAddr,
    /// Clients joining the one channel.
    pub clients: usize,
    /// Clients connecting (or reconnecting) at once, at most.
    pub connect_concurrency: usize,
    /// Longest setup of one client (connect, login, join).
    pub connect_timeout: Duration,
    /// Longest join phase, and longest reconnect phase.
    pub setup_budget: Duration,
    /// Whether to run the reconnect storm after the joins.
    pub reconnect: bool,
    /// Messages posted while the clients are away (0 for a server without history).
    pub posts: u64,
    /// How long to wait, once everyone is back, for the messages posted meanwhile.
    pub drain: Duration,
    /// The server's pid, for its CPU time and memory.
    pub server_pid: Option<u32>,
    /// Prefix of user and channel names (letters and digits).
    pub run_id: String,
}

impl Default for StormConfig {
    fn default() -> Self {
        StormConfig {
            label: "storm".into(),
            addr: SocketAddr::from(([127, 0, 0, 1], 8080)),
            clients: 100,
            connect_concurrency: 128,
            connect_timeout: Duration::from_secs(15),
            setup_budget: Duration::from_secs(120),
            reconnect: false,
            posts: 10,
            drain: Duration::from_secs(10),
            server_pid: None,
            run_id: crate::run::default_run_id(),
        }
    }
}

/// Where the clients are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Joining, then reading.
    Joined,
    /// Reset the socket and come back.
    Drop,
    /// Stop.
    Done,
}

/// What a client reports on the way.
enum Note {
    /// Joined (or failed to): whether it did.
    Joined(bool),
    /// Came back after the drop (or failed to).
    Back(bool),
}

/// What every client shares.
struct Shared {
    config: StormConfig,
    slots: Semaphore,
    channel: String,
    errors: Mutex<Vec<String>>,
    /// Ids the poster got for the messages it posted while the clients were away; set
    /// once it is done.
    posted: watch::Receiver<Option<Arc<Vec<u64>>>>,
    /// Clients back that have every posted message.
    complete: AtomicU64,
}

impl Shared {
    fn error(&self, e: String) {
        let mut errors = self.errors.lock().unwrap_or_else(|p| p.into_inner());
        if errors.len() < ERRORS_KEPT {
            errors.push(e);
        }
    }
}

/// What one client found after coming back.
#[derive(Default)]
struct Outcome {
    lost: u64,
    duplicates: u64,
    gap: bool,
}

/// Runs the storms as configured. Errors only for a bad configuration; a server that
/// fails shows as failures in the report.
pub async fn run(config: StormConfig) -> Result<StormReport, Error> {
    validate(&config)?;
    let pid = config.server_pid;
    let channel = format!("{}storm", config.run_id);

    // The poster creates the channel, and posts while the others are away.
    let mut poster = StormClient::connect(config.addr).await?;
    poster
        .login(json!({"name": format!("{}poster", config.run_id)}))
        .await?;
    poster
        .request(json!({"type": "create_channel", "name": channel}), true)
        .await?;
    poster
        .request(json!({"type": "join", "room": channel}), false)
        .await?;

    let (posted_tx, posted_rx) = watch::channel(None);
    let shared = Arc::new(Shared {
        slots: Semaphore::new(config.connect_concurrency),
        channel,
        errors: Mutex::new(Vec::new()),
        posted: posted_rx,
        complete: AtomicU64::new(0),
        config,
    });
    let config = &shared.config;
    let (phase_tx, phase_rx) = watch::channel(Phase::Joined);
    let (note_tx, mut notes) = mpsc::channel(config.clients);

    // The join storm.
    let start = Instant::now();
    let cpu_start = Cpu::take(pid);
    let mut tasks = JoinSet::new();
    for index in 0..config.clients {
        tasks.spawn(client(
            index,
            shared.clone(),
            phase_rx.clone(),
            note_tx.clone(),
        ));
    }
    drop(note_tx);
    let deadline = start + config.setup_budget;
    let (mut answered, mut joined, mut back_answered, mut back) = (0, 0, 0, 0);
    while answered < config.clients {
        match timeout_at(deadline, notes.recv()).await {
            Ok(Some(Note::Joined(ok))) => {
                answered += 1;
                joined += usize::from(ok);
            }
            // A client whose connection failed after it joined.
            Ok(Some(Note::Back(ok))) => {
                back_answered += 1;
                back += usize::from(ok);
            }
            _ => break,
        }
    }
    let join_secs = start.elapsed().as_secs_f64();
    let cpu = Cpu::take(pid).since(&cpu_start, joined);
    let server_rss_kib = pid.and_then(rss::read).map(|m| m.rss_kib);

    let mut report = StormReport {
        label: config.label.clone(),
        addr: config.addr.to_string(),
        clients: config.clients,
        joined,
        join_failures: config.clients - joined,
        join_secs,
        joins_per_sec: rate(joined, join_secs),
        server_us_per_join: cpu.server_us_per_item,
        server_busy: cpu.server_busy,
        loadgen_busy: cpu.loadgen_busy,
        server_rss_kib,
        reconnect: None,
        errors: Vec::new(),
    };

    if config.reconnect && joined > 0 {
        // Let the room settle (its counts, the last presence), then drop everyone.
        sleep(Duration::from_secs(1)).await;
        let start = Instant::now();
        let cpu_start = Cpu::take(pid);
        let _ = phase_tx.send(Phase::Drop);
        let posting = async {
            let mut ids = Vec::new();
            for n in 0..config.posts {
                let text = format!("missed {n}");
                let reply = poster
                    .request(
                        json!({"type": "post", "room": shared.channel, "text": text}),
                        false,
                    )
                    .await?;
                if let Some(id) = reply["result"]["message"]["id"].as_u64() {
                    ids.push(id);
                }
            }
            Ok::<_, Error>(ids)
        };
        let deadline = start + config.setup_budget;
        let (posted, back) = tokio::join!(posting, async {
            while back_answered < joined {
                match timeout_at(deadline, notes.recv()).await {
                    Ok(Some(Note::Back(ok))) => {
                        back_answered += 1;
                        back += usize::from(ok);
                    }
                    Ok(Some(Note::Joined(_))) => {}
                    _ => break,
                }
            }
            back
        });
        let secs = start.elapsed().as_secs_f64();
        let cpu = Cpu::take(pid).since(&cpu_start, back);
        let posted = posted.unwrap_or_else(|e| {
            shared.error(format!("poster: {e}"));
            Vec::new()
        });
        let count = posted.len() as u64;
        let _ = posted_tx.send(Some(Arc::new(posted)));
        // Wait until every client back has every posted message, or the drain ends.
        let drain_end = Instant::now() + config.drain;
        while (shared.complete.load(Ordering::Relaxed) as usize) < back
            && Instant::now() < drain_end
        {
            sleep(Duration::from_millis(20)).await;
        }
        report.reconnect = Some(ReconnectReport {
            back,
            failures: joined - back,
            secs,
            per_sec: rate(back, secs),
            server_us_per_reconnect: cpu.server_us_per_item,
            server_busy: cpu.server_busy,
            posted: count,
            lost: 0,
            duplicates: 0,
            gaps: 0,
        });
    }

    let _ = phase_tx.send(Phase::Done);
    let stop = Instant::now() + Duration::from_secs(10);
    while let Ok(Some(done)) = timeout_at(stop, tasks.join_next()).await {
        if let (Ok(outcome), Some(r)) = (done, report.reconnect.as_mut()) {
            r.lost += outcome.lost;
            r.duplicates += outcome.duplicates;
            r.gaps += u64::from(outcome.gap);
        }
    }
    tasks.abort_all();
    let _ = timeout(Duration::from_secs(1), poster.ws.close()).await;
    report.errors = shared.errors.lock().map(|e| e.clone()).unwrap_or_default();
    Ok(report)
}

fn validate(c: &StormConfig) -> Result<(), Error> {
    if !c.addr.ip().is_loopback() {
        return Err(format!(
            "{} is not on loopback: loadgen only targets 127.0.0.0/8",
            c.addr
        )
        .into());
    }
    if c.clients == 0 || c.connect_concurrency == 0 {
        return Err("a storm needs at least one client and a connect concurrency of 1".into());
    }
    if c.run_id.is_empty()
        || c.run_id.len() > 12
        || !c.run_id.bytes().all(|b| b.is_ascii_alphanumeric())
    {
        return Err("run id: 1 to 12 letters or digits".into());
    }
    Ok(())
}

fn rate(count: usize, secs: f64) -> f64 {
    if secs > 0.0 {
        count as f64 / secs
    } else {
        0.0
    }
}

/// CPU time of both sides at one instant.
struct Cpu {
    at: Instant,
    server_ns: Option<u64>,
    loadgen_ns: Option<u64>,
}

/// What was used between two readings.
struct CpuUse {
    server_us_per_item: Option<f64>,
    server_busy: Option<f64>,
    loadgen_busy: Option<f64>,
}

impl Cpu {
    fn take(server: Option<u32>) -> Cpu {
        Cpu {
            at: Instant::now(),
            server_ns: server.and_then(cpu::used_ns),
            loadgen_ns: cpu::used_ns(std::process::id()),
        }
    }

    /// What was used since `start`, and per item for `items` items.
    fn since(&self, start: &Cpu, items: usize) -> CpuUse {
        let wall = self.at.duration_since(start.at).as_nanos() as f64;
        let used = |end: Option<u64>, begin: Option<u64>| Some(end?.checked_sub(begin?)? as f64);
        let server = used(self.server_ns, start.server_ns);
        let busy = |ns: Option<f64>| ns.filter(|_| wall > 0.0).map(|ns| ns / wall);
        CpuUse {
            server_us_per_item: server
                .filter(|_| items > 0)
                .map(|ns| ns / 1e3 / items as f64),
            server_busy: busy(server),
            loadgen_busy: busy(used(self.loadgen_ns, start.loadgen_ns)),
        }
    }
}
