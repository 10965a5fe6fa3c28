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

use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Serialize;
use serde_json::{json, Value};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, watch, Semaphore};
use tokio::task::JoinSet;
use tokio::time::{sleep, timeout, timeout_at, Instant};

use crate::ws::WsClient;
use crate::{cpu, rss, Error};

/// Longest frame a storm client accepts.
const MAX_INPUT: usize = 1 << 20;
/// Frames a request reads at most while waiting for its reply.
const MAX_READS: usize = 100_000;
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

/// The result of a storm run.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct StormReport {
    /// The row's label.
    pub label: String,
    /// The server.
    pub addr: String,
    /// Clients asked for.
    pub clients: usize,
    /// Clients that connected, logged in and joined.
    pub joined: usize,
    /// Clients that did not (see `errors`).
    pub join_failures: usize,
    /// From the first connect to the last join's reply, seconds.
    pub join_secs: f64,
    /// `joined / join_secs`.
    pub joins_per_sec: f64,
    /// The server's CPU time during the join phase per join, microseconds.
    pub server_us_per_join: Option<f64>,
    /// The server's CPU time during the join phase over its wall time (1.0: one core).
    pub server_busy: Option<f64>,
    /// The loadgen's own, likewise.
    pub loadgen_busy: Option<f64>,
    /// The server's resident memory once everyone had joined, KiB.
    pub server_rss_kib: Option<u64>,
    /// The reconnect storm, when run.
    pub reconnect: Option<ReconnectReport>,
    /// The first errors, for a look.
    pub errors: Vec<String>,
}

/// The reconnect storm's part of a [`StormReport`].
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ReconnectReport {
    /// Clients that came back (logged in with their token and joined again).
    pub back: usize,
    /// Clients that did not.
    pub failures: usize,
    /// From the reset of every socket to the last client's join reply, seconds.
    pub secs: f64,
    /// `back / secs`.
    pub per_sec: f64,
    /// The server's CPU time from the resets until everyone was back, per client back,
    /// microseconds (the departures are part of it).
    pub server_us_per_reconnect: Option<f64>,
    /// The server's CPU time in that phase over its wall time.
    pub server_busy: Option<f64>,
    /// Messages posted while the clients were away.
    pub posted: u64,
    /// Posted messages some client that came back never got (summed over clients).
    pub lost: u64,
    /// Messages some client got twice (summed over clients).
    pub duplicates: u64,
    /// Clients whose join reply said `gap` (what they missed was no longer kept).
    pub gaps: u64,
}

impl StormReport {
    /// True when every client joined (and came back), and nothing was lost or repeated.
    pub fn is_clean(&self) -> bool {
        let back_clean = self
            .reconnect
            .as_ref()
            .is_none_or(|r| r.failures == 0 && r.lost == 0 && r.duplicates == 0 && r.gaps == 0);
        self.join_failures == 0 && back_clean
    }

    /// The report as a human table.
    pub fn table(&self) -> String {
        let opt = |v: Option<f64>, digits: usize| {
            v.map_or_else(|| "-".to_owned(), |v| format!("{v:.digits$}"))
        };
        let mut out = format!(
            "{}: {} clients into one channel at {}\n\
             joined            {} ({} failed) in {:.2} s: {:.0} joins/s\n\
             server CPU/join   {} us (server busy {}, loadgen busy {})\n\
             server memory     {} KiB\n",
            self.label,
            self.clients,
            self.addr,
            self.joined,
            self.join_failures,
            self.join_secs,
            self.joins_per_sec,
            opt(self.server_us_per_join, 1),
            opt(self.server_busy, 2),
            opt(self.loadgen_busy, 2),
            self.server_rss_kib
                .map_or_else(|| "-".to_owned(), |k| k.to_string()),
        );
        if let Some(r) = &self.reconnect {
            out.push_str(&format!(
                "reconnect storm   {} back ({} failed) in {:.2} s: {:.0}/s; server CPU {} us each (busy {})\n\
                 missed messages   {} posted meanwhile: {} lost, {} duplicated, {} gaps\n",
                r.back,
                r.failures,
                r.secs,
                r.per_sec,
                opt(r.server_us_per_reconnect, 1),
                opt(r.server_busy, 2),
                r.posted,
                r.lost,
                r.duplicates,
                r.gaps,
            ));
        }
        for e in &self.errors {
            out.push_str(&format!("error             {e}\n"));
        }
        out
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

/// One storm client: joins, reads until the drop, resets its socket and comes back, then
/// reads until done, noting every message id it gets.
async fn client(
    index: usize,
    shared: Arc<Shared>,
    mut phase: watch::Receiver<Phase>,
    notes: mpsc::Sender<Note>,
) -> Outcome {
    let config = &shared.config;
    let name = format!("{}u{index}", config.run_id);
    let setup = |login: Value, after: Option<u64>| {
        let shared = shared.clone();
        async move {
            let _permit = shared.slots.acquire().await?;
            timeout(
                shared.config.connect_timeout,
                StormClient::open(&shared, login, after),
            )
            .await
            .map_err(|_| Error::from("timed out"))?
        }
    };
    let (mut conn, token, mut last_id) = match setup(json!({ "name": name }), None).await {
        Ok(opened) => opened,
        Err(e) => {
            shared.error(format!("join of {name}: {e}"));
            let _ = notes.send(Note::Joined(false)).await;
            return Outcome::default();
        }
    };
    let _ = notes.send(Note::Joined(true)).await;

    // Read until told to drop. Messages may arrive before the drop is seen (the poster
    // starts at once): they were received, and the return asks only for what follows.
    let mut seen = HashSet::new();
    loop {
        tokio::select! {
            changed = phase.changed() => {
                if changed.is_err() || *phase.borrow() == Phase::Done {
                    return Outcome::default();
                }
                if *phase.borrow() == Phase::Drop {
                    break;
                }
            }
            frame = conn.ws.next_text() => match frame {
                Ok(text) => {
                    if let Some(id) = message_id(text) {
                        last_id = Some(last_id.unwrap_or(0).max(id));
                        seen.insert(id);
                    }
                }
                Err(e) => {
                    shared.error(format!("{name} before the drop: {e}"));
                    let _ = notes.send(Note::Back(false)).await;
                    return Outcome::default();
                }
            }
        }
    }

    // The drop, and straight back: by token where the server gave one.
    conn.ws.abort();
    let mut outcome_duplicates = 0;
    let login = match &token {
        Some(token) => json!({ "token": token }),
        None => json!({ "name": name }),
    };
    let mut conn = match setup(login, last_id).await {
        Ok((conn, _, _)) => {
            for id in &conn.replayed {
                if !seen.insert(*id) {
                    outcome_duplicates += 1;
                }
            }
            conn
        }
        Err(e) => {
            shared.error(format!("return of {name}: {e}"));
            let _ = notes.send(Note::Back(false)).await;
            return Outcome::default();
        }
    };
    let _ = notes.send(Note::Back(true)).await;
    let mut outcome = Outcome {
        gap: conn.gap,
        duplicates: outcome_duplicates,
        ..Outcome::default()
    };
    let mut posted = shared.posted.clone();
    let mut complete = false;
    // Bounded: ends at Phase::Done (or when the run drops the phase sender).
    loop {
        if !complete {
            if let Some(ids) = posted.borrow().as_ref() {
                if ids.iter().all(|id| seen.contains(id)) {
                    complete = true;
                    shared.complete.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
        tokio::select! {
            changed = phase.changed() => {
                if changed.is_err() || *phase.borrow() == Phase::Done {
                    break;
                }
            }
            _ = posted.changed(), if !complete => {}
            frame = conn.ws.next_text() => match frame {
                Ok(text) => {
                    if let Some(id) = message_id(text) {
                        if !seen.insert(id) {
                            outcome.duplicates += 1;
                        }
                    }
                }
                Err(e) => {
                    if *phase.borrow() != Phase::Done {
                        shared.error(format!("{name} after coming back: {e}"));
                    }
                    break;
                }
            }
        }
    }
    outcome.duplicates += conn.replay_duplicates;
    if let Some(ids) = posted.borrow().as_ref() {
        outcome.lost = ids.iter().filter(|id| !seen.contains(id)).count() as u64;
    }
    let _ = timeout(Duration::from_secs(1), conn.ws.close()).await;
    outcome
}

/// The id of a `message` event's message, without parsing other frames.
fn message_id(frame: &str) -> Option<u64> {
    if !frame.starts_with(r#"{"type":"message""#) {
        return None;
    }
    let value: Value = serde_json::from_str(frame).ok()?;
    value["message"]["id"].as_u64()
}

/// One connection speaking the JSON protocol.
struct StormClient {
    ws: WsClient,
    next_id: u64,
    /// Ids of the messages the last join replied with.
    replayed: HashSet<u64>,
    /// Ids the last join replied with twice.
    replay_duplicates: u64,
    /// Whether the last join said `gap`.
    gap: bool,
}

impl StormClient {
    async fn connect(addr: SocketAddr) -> Result<StormClient, Error> {
        if !addr.ip().is_loopback() {
            return Err(format!("{addr} is not a loopback address").into());
        }
        let stream = TcpStream::connect(addr).await?;
        stream.set_nodelay(true)?;
        Ok(StormClient {
            ws: WsClient::connect(stream, addr, "/ws", MAX_INPUT).await?,
            next_id: 1,
            replayed: HashSet::new(),
            replay_duplicates: 0,
            gap: false,
        })
    }

    /// Connects, logs in with `login` (`{"name"}` or `{"token"}`) and joins the storm's
    /// channel, after `after` when given. Returns the connection, the resume token (when
    /// the server gave one) and the room's last id (likewise).
    async fn open(
        shared: &Shared,
        login: Value,
        after: Option<u64>,
    ) -> Result<(StormClient, Option<String>, Option<u64>), Error> {
        let mut conn = StormClient::connect(shared.config.addr).await?;
        let reply = conn.login(login).await?;
        let token = reply["result"]["token"].as_str().map(str::to_owned);
        let mut join = json!({"type": "join", "room": shared.channel});
        if let Some(after) = after {
            join["after"] = after.into();
        }
        let reply = conn.request(join, false).await?;
        let result = &reply["result"];
        for m in result["messages"].as_array().into_iter().flatten() {
            if let Some(id) = m["id"].as_u64() {
                if !conn.replayed.insert(id) {
                    conn.replay_duplicates += 1;
                }
            }
        }
        conn.gap = result["gap"].as_bool().unwrap_or(false) && after.is_some();
        Ok((conn, token, result["last_id"].as_u64()))
    }

    async fn login(&mut self, mut login: Value) -> Result<Value, Error> {
        login["type"] = "login".into();
        self.request(login, false).await
    }

    /// Sends `frame` with a fresh id and returns its `ok` reply (with `taken_ok`, an
    /// `error` reply is fine too: the channel exists already).
    async fn request(&mut self, mut frame: Value, taken_ok: bool) -> Result<Value, Error> {
        let id = self.next_id;
        self.next_id += 1;
        frame["id"] = id.into();
        self.ws.send_texts(&[frame.to_string()]).await?;
        let id_field = format!(r#""id":{id}"#);
        for _ in 0..MAX_READS {
            let text = self.ws.next_text().await?;
            // Events (presence, counts) are skipped without parsing.
            if !(text.starts_with(r#"{"type":"ok""#) || text.starts_with(r#"{"type":"error""#))
                || !text.contains(&id_field)
            {
                continue;
            }
            let reply: Value = serde_json::from_str(text)?;
            if reply["id"] != id {
                continue;
            }
            return match reply["type"].as_str() {
                Some("ok") => Ok(reply),
                Some("error") if taken_ok => Ok(reply),
                _ => Err(format!("{frame} failed: {reply}").into()),
            };
        }
        Err(format!("no reply to {frame}").into())
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_message_events_have_ids() {
        assert_eq!(
            message_id(r#"{"type":"message","room":"c","message":{"id":7,"text":"x"}}"#),
            Some(7)
        );
        assert_eq!(
            message_id(r#"{"type":"ok","id":3,"result":{"message":{"id":7}}}"#),
            None
        );
        assert_eq!(
            message_id(r#"{"type":"counts","room":"c","members":3,"online":2}"#),
            None
        );
    }

    #[test]
    fn a_report_is_clean_only_without_failures_loss_or_repeats() {
        let mut report = StormReport {
            label: "t".into(),
            addr: "127.0.0.1:1".into(),
            clients: 2,
            joined: 2,
            join_failures: 0,
            join_secs: 1.0,
            joins_per_sec: 2.0,
            server_us_per_join: None,
            server_busy: None,
            loadgen_busy: None,
            server_rss_kib: None,
            reconnect: None,
            errors: Vec::new(),
        };
        assert!(report.is_clean());
        report.reconnect = Some(ReconnectReport {
            back: 2,
            failures: 0,
            secs: 1.0,
            per_sec: 2.0,
            server_us_per_reconnect: None,
            server_busy: None,
            posted: 3,
            lost: 0,
            duplicates: 1,
            gaps: 0,
        });
        assert!(!report.is_clean());
        assert!(report.table().contains("1 duplicated"));
    }
}
