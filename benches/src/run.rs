//! A whole load run: connect every client (channel creators first), let the senders send
//! for the set duration, drain, stop every client, and build the [`Report`].
//!
//! [`run`] is the testable entry point behind `loadgen` (which only parses flags and adds
//! a process-wide watchdog). Every phase has a time bound, so a run ends even when the
//! server hangs; every client loop ends when the phase becomes [`Phase::Done`]. Clients
//! only ever connect to loopback addresses ([`crate::client`] refuses others).
//!
//! Flow control: each sender keeps at most `window` messages in flight (sent and not yet
//! received by every recipient of its channel). "As fast as possible" (rate 0) is this
//! closed loop; a fixed rate is an open loop still capped by the window, so a server that
//! falls behind shows a lower achieved rate and higher latency instead of an unbounded
//! backlog on the client side.

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use futures_util::FutureExt;
use tokio::sync::{mpsc, watch, Semaphore};
use tokio::task::JoinSet;
use tokio::time::{sleep, sleep_until, timeout, Instant};

use crate::client::{Conn, Protocol};
use crate::cpu::CpuReading;
use crate::payload::{self, Stamp};
use crate::receive::{Received, TAKE_AT_ONCE};
use crate::report::{Memory, Percentiles, Report};
use crate::rss;
use crate::stalled::Stalled;
use crate::track::{SenderSlot, Tracker, MAX_WINDOW};
use crate::Error;

/// What to run. Durations bound each phase; see `loadgen --help` for the meaning of each.
#[derive(Debug, Clone)]
pub struct Config {
    /// A label for the report's row (e.g. `s1 ours-ws`).
    pub label: String,
    /// The protocol every client speaks.
    pub protocol: Protocol,
    /// The server (a loopback address).
    pub addr: SocketAddr,
    /// More nodes of the same chat (loopback addresses): client `i` connects to
    /// `[addr, also...][i % n]`, so a cross-node run spreads every channel over all nodes.
    pub also: Vec<SocketAddr>,
    /// Clients in total, spread round-robin over the channels (client `i` joins channel
    /// `i % channels`).
    pub clients: usize,
    /// Channels (at least 1).
    pub channels: usize,
    /// Senders: clients `0..senders` send, so they are spread over the channels too.
    pub senders: usize,
    /// Messages per second per sender; 0 means as fast as the window allows.
    pub rate: f64,
    /// Most messages in flight per sender (1..=`track::MAX_WINDOW`).
    pub window: u32,
    /// How long the senders send.
    pub duration: Duration,
    /// How long to wait after sending for messages still in flight.
    pub drain: Duration,
    /// Bytes of each message text (at least the stamp's length).
    pub size: usize,
    /// Connections being set up at once.
    pub connect_concurrency: usize,
    /// Longest setup (connect, login, create, join) of one client.
    pub connect_timeout: Duration,
    /// Longest connect phase in total.
    pub setup_budget: Duration,
    /// Pause between the connect phase and sending (and the memory reading).
    pub settle: Duration,
    /// Messages per sender at most (0: unlimited). With it, a run has an exact expected
    /// delivery count.
    pub max_messages: u64,
    /// The server's pid, to read its memory.
    pub server_pid: Option<u32>,
    /// Prefix of user and channel names, unique per run so that runs against the same
    /// server never collide (names are held by our engine after logout).
    pub run_id: String,
    /// Also measure when deliveries reached their sockets, by the kernel's clock
    /// ([`crate::arrival`]; WebSocket protocols only), for every `arrival_every`-th
    /// client (0: none). A sample is enough, and stamping every read of every client
    /// costs the loadgen's core enough to change what it measures.
    pub arrival_every: usize,
    /// Members of channel 0 that never read their sockets ([`crate::stalled`]); not
    /// counted as recipients.
    pub stalled: usize,
}

impl Config {
    /// Whether a sender may send its message `seq` under `max_messages`.
    fn allows(&self, seq: u64) -> bool {
        self.max_messages == 0 || seq < self.max_messages
    }
}

impl Default for Config {
    fn default() -> Self {
        Config {
            label: "run".into(),
            protocol: Protocol::Ws,
            addr: SocketAddr::from(([127, 0, 0, 1], 8080)),
            also: Vec::new(),
            clients: 10,
            channels: 1,
            senders: 1,
            rate: 0.0,
            window: 64,
            duration: Duration::from_secs(5),
            drain: Duration::from_secs(5),
            size: 64,
            connect_concurrency: 128,
            connect_timeout: Duration::from_secs(15),
            setup_budget: Duration::from_secs(120),
            settle: Duration::from_millis(500),
            max_messages: 0,
            server_pid: None,
            run_id: default_run_id(),
            arrival_every: 0,
            stalled: 0,
        }
    }
}

/// A short id from the clock (letters and digits only).
pub fn default_run_id() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!("r{:x}", (nanos / 1000) % 0xff_ffff)
}

/// The phases every client follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Clients are connecting; nobody sends.
    Connecting,
    /// Senders send.
    Sending,
    /// Nobody sends; receivers still count.
    Draining,
    /// Everyone disconnects.
    Done,
}

struct Plan {
    index: usize,
    channel: usize,
    sender: Option<u32>,
    creator: bool,
}

struct Shared {
    config: Config,
    tracker: Tracker,
    connect_slots: Arc<Semaphore>,
}

/// Runs one load test as configured. Errors only for a bad configuration; a server that
/// fails shows as failures and losses in the report.
pub async fn run(config: Config) -> Result<Report, Error> {
    validate(&config)?;
    let shared = Arc::new(Shared {
        tracker: Tracker::new(config.senders.min(config.clients)),
        connect_slots: Arc::new(Semaphore::new(config.connect_concurrency)),
        config,
    });
    let config = &shared.config;
    let (phase_tx, phase_rx) = watch::channel(Phase::Connecting);
    let (ready_tx, mut ready_rx) = mpsc::channel::<(usize, bool)>(config.clients.max(1));

    let pid = config.server_pid;
    let before = pid.and_then(rss::read);
    let sampler = pid.map(|pid| tokio::spawn(sample_peak(pid, phase_rx.clone())));

    // Connect: one creator per channel first, then everyone else.
    let connect_start = Instant::now();
    let deadline = connect_start + config.setup_budget;
    let mut tasks = JoinSet::new();
    let mut connected = vec![false; config.clients];
    let groups = [
        0..config.channels.min(config.clients),
        config.channels.min(config.clients)..config.clients,
    ];
    for group in groups {
        let expected = group.len();
        for index in group {
            let plan = Plan {
                index,
                channel: index % config.channels,
                sender: (index < config.senders).then_some(index as u32),
                creator: index < config.channels,
            };
            tasks.spawn(client(
                plan,
                shared.clone(),
                phase_rx.clone(),
                ready_tx.clone(),
            ));
        }
        for _ in 0..expected {
            match tokio::time::timeout_at(deadline, ready_rx.recv()).await {
                Ok(Some((index, ok))) => connected[index] = ok,
                _ => break,
            }
        }
    }
    let connect_secs = connect_start.elapsed().as_secs_f64();
    let connected_count = connected.iter().filter(|c| **c).count();

    // Who receives each sender's messages: the other connected members of its channel.
    let mut members = vec![0u32; config.channels];
    for (i, ok) in connected.iter().enumerate() {
        if *ok {
            members[i % config.channels] += 1;
        }
    }
    for (k, slot) in shared.tracker.senders.iter().enumerate() {
        let recipients = members[k % config.channels].saturating_sub(u32::from(connected[k]));
        slot.recipients.store(recipients, Ordering::Relaxed);
    }

    let stalled = match config.stalled {
        0 => None,
        count => Some(
            Stalled::connect(
                config.protocol,
                config.addr,
                &config.run_id,
                &format!("{}c0", config.run_id),
                count,
                config.connect_timeout,
            )
            .await,
        ),
    };

    sleep(config.settle).await;
    let at_connected = pid.and_then(rss::read);

    // Send.
    let tracker = &shared.tracker;
    let send_start_ns = tracker.now_ns();
    let cpu_start = CpuReading::take(pid, tracker.unique.load(Ordering::Relaxed));
    // An error means every client has ended already; the run still finishes.
    let _ = phase_tx.send(Phase::Sending);
    let send_deadline = Instant::now() + config.duration;
    while Instant::now() < send_deadline {
        let all_sent = config.max_messages > 0
            && tracker
                .senders
                .iter()
                .all(|s| s.sent.load(Ordering::Relaxed) >= config.max_messages);
        if all_sent || tasks.is_empty() {
            break;
        }
        sleep(Duration::from_millis(5).min(config.duration)).await;
    }
    let send_end_ns = tracker.now_ns();
    let cpu = CpuReading::take(pid, tracker.unique.load(Ordering::Relaxed))
        .since(&cpu_start, send_end_ns - send_start_ns);
    let _ = phase_tx.send(Phase::Draining);

    // Drain: wait for what is in flight.
    let drain_deadline = Instant::now() + config.drain;
    while tracker.outstanding.load(Ordering::Relaxed) > 0 && Instant::now() < drain_deadline {
        sleep(Duration::from_millis(5)).await;
    }
    // Late duplicates would show up right after the last copy: give them a moment.
    sleep(Duration::from_millis(100)).await;
    let _ = phase_tx.send(Phase::Done);
    let peak_sampled = match sampler {
        Some(task) => timeout(Duration::from_secs(2), task)
            .await
            .ok()
            .and_then(|r| r.ok())
            .unwrap_or(0),
        None => 0,
    };
    let after = pid.and_then(rss::read);
    let stalled = match stalled {
        Some(stalled) => Some(stalled.verdict().await),
        None => None,
    };
    let stop_deadline = Instant::now() + Duration::from_secs(5);
    while tokio::time::timeout_at(stop_deadline, tasks.join_next())
        .await
        .is_ok_and(|t| t.is_some())
    {}
    tasks.abort_all();

    let sent: u64 = tracker
        .senders
        .iter()
        .map(|s| s.sent.load(Ordering::Relaxed))
        .sum();
    let expected: u64 = tracker
        .senders
        .iter()
        .map(|s| s.sent.load(Ordering::Relaxed) * u64::from(s.recipients.load(Ordering::Relaxed)))
        .sum();
    let unique = tracker.unique.load(Ordering::Relaxed);
    let last_ns = tracker.last_delivery_ns.load(Ordering::Relaxed);
    let deliver_secs = (last_ns.saturating_sub(send_start_ns)) as f64 / 1e9;
    let send_secs = (send_end_ns - send_start_ns) as f64 / 1e9;

    let memory = pid.map(|_| {
        let before_kib = before.map_or(0, |m| m.rss_kib);
        let connected_kib = at_connected.map_or(0, |m| m.rss_kib);
        let peak_kib = [after.map_or(0, |m| m.hwm_kib), peak_sampled, connected_kib]
            .into_iter()
            .max()
            .unwrap_or(0);
        Memory {
            before_kib,
            connected_kib,
            peak_kib,
            per_connection_bytes: (connected_kib.saturating_sub(before_kib) * 1024)
                .checked_div(connected_count as u64)
                .unwrap_or(0),
        }
    });
    let errors = tracker.errors.lock().map(|e| e.clone()).unwrap_or_default();
    Ok(Report {
        label: config.label.clone(),
        protocol: config.protocol,
        addr: config.addr.to_string(),
        clients: config.clients,
        channels: config.channels,
        senders: tracker.senders.len(),
        rate_per_sender: config.rate,
        window: config.window,
        size: config.size,
        duration_s: config.duration.as_secs_f64(),
        connected: connected_count,
        connect_failures: config.clients - connected_count,
        connect_secs,
        connects_per_sec: rate(connected_count as u64, connect_secs),
        sent,
        messages_per_sec: rate(sent, send_secs),
        expected_deliveries: expected,
        deliveries: unique,
        deliveries_per_sec: rate(unique, deliver_secs),
        lost: expected.saturating_sub(unique),
        duplicates: tracker.duplicates.load(Ordering::Relaxed),
        echoes_ignored: tracker.echoes.load(Ordering::Relaxed),
        untracked: tracker.untracked.load(Ordering::Relaxed),
        dropped_connections: tracker.dropped.load(Ordering::Relaxed),
        errors,
        latency_ms: Percentiles::of(&tracker.latency()),
        arrival_ms: (config.arrival_every > 0).then(|| Percentiles::of(&tracker.arrival())),
        until_last_ms: Percentiles::of(&tracker.until_last()),
        server_memory: memory,
        cpu,
        stalled,
    })
}

/// The node client `index` connects to: round-robin over `addr` and `also`.
fn node_of(config: &Config, index: usize) -> SocketAddr {
    let n = 1 + config.also.len();
    match index % n {
        0 => config.addr,
        i => config.also[i - 1],
    }
}

fn rate(count: u64, secs: f64) -> f64 {
    if secs > 0.0 {
        count as f64 / secs
    } else {
        0.0
    }
}

fn validate(c: &Config) -> Result<(), Error> {
    if let Some(addr) = std::iter::once(&c.addr)
        .chain(&c.also)
        .find(|a| !a.ip().is_loopback())
    {
        return Err(format!("{addr} is not on loopback: loadgen only targets 127.0.0.0/8").into());
    }
    if c.clients == 0 || c.channels == 0 || c.channels > c.clients {
        return Err("need 1 <= channels <= clients".into());
    }
    if c.window == 0 || c.window > MAX_WINDOW {
        return Err(format!("window must be 1..={MAX_WINDOW}").into());
    }
    if c.rate < 0.0 || !c.rate.is_finite() {
        return Err("rate must be >= 0".into());
    }
    if c.connect_concurrency == 0 {
        return Err("connect concurrency must be at least 1".into());
    }
    if !c.run_id.bytes().all(|b| b.is_ascii_alphanumeric())
        || c.run_id.is_empty()
        || c.run_id.len() > 12
    {
        return Err("run id: 1 to 12 letters or digits".into());
    }
    Ok(())
}

/// Samples the server's `VmRSS` every 100 ms until the run is done; returns the peak KiB.
async fn sample_peak(pid: u32, mut phase: watch::Receiver<Phase>) -> u64 {
    let mut peak = 0;
    // Bounded by the run: it ends at `Phase::Done` (or when the run is dropped).
    while *phase.borrow() != Phase::Done {
        if let Some(m) = rss::read(pid) {
            peak = peak.max(m.rss_kib).max(m.hwm_kib);
        }
        let _ = timeout(Duration::from_millis(100), phase.changed()).await;
        if phase.has_changed().is_err() {
            break;
        }
    }
    peak
}

/// The texts of every message `sender` may send now, from `seq` on (at least one; the
/// caller has waited for that), each begun in the tracker. They leave in one write, so the
/// server gets the sender's burst at once whether or not it answers posts: reading a
/// server's replies between sends used to trickle a burst out one post at a time, and
/// only to servers that reply.
fn burst(
    tracker: &Tracker,
    slot: &SenderSlot,
    sender: u32,
    seq: &mut u64,
    send_start: Option<Instant>,
    config: &Config,
) -> Vec<String> {
    let mut texts = Vec::new();
    loop {
        let stamp = Stamp {
            sender,
            seq: *seq,
            sent_ns: tracker.now_ns(),
        };
        tracker.begin(sender, *seq);
        texts.push(payload::encode(stamp, config.size));
        *seq += 1;
        let window_open = slot.in_flight.load(Ordering::Relaxed) < config.window;
        let due_now =
            send_start.is_none_or(|start| due(start, sender, *seq, config) <= Instant::now());
        if !(window_open && config.allows(*seq) && due_now) {
            return texts;
        }
    }
}

/// When message `seq` of `sender` is due at a fixed rate (at `start` when there is none).
/// Senders are staggered over one period so they do not fire in step.
fn due(start: Instant, sender: u32, seq: u64, config: &Config) -> Instant {
    if config.rate <= 0.0 {
        return start;
    }
    let offset = f64::from(sender) / config.senders.max(1) as f64;
    start + Duration::from_secs_f64((seq as f64 + offset) / config.rate)
}

/// Waits until the sender may send: a window slot is free and (with a rate) the send
/// time has come. Cancelled by the caller's `select!` when the phase changes.
async fn ready_to_send(slot: Option<&SenderSlot>, window: u32, at: Option<Instant>) {
    let Some(slot) = slot else {
        return std::future::pending().await;
    };
    while slot.in_flight.load(Ordering::Relaxed) >= window {
        // The timeout only guards against a missed wake-up; completions notify.
        let _ = timeout(Duration::from_millis(20), slot.notify.notified()).await;
    }
    if let Some(at) = at {
        sleep_until(at).await;
    }
}

/// One simulated user: set up, report readiness, then receive (and send, for a sender)
/// until the run is done.
async fn client(
    plan: Plan,
    shared: Arc<Shared>,
    mut phase: watch::Receiver<Phase>,
    ready: mpsc::Sender<(usize, bool)>,
) {
    let config = &shared.config;
    let tracker = &shared.tracker;
    let name = format!("{}u{}", config.run_id, plan.index);
    let channel = format!("{}c{}", config.run_id, plan.channel);
    let opened = {
        let Ok(_permit) = shared.connect_slots.acquire().await else {
            return;
        };
        timeout(
            config.connect_timeout,
            Conn::open(
                config.protocol,
                node_of(config, plan.index),
                &name,
                &channel,
                plan.creator,
            ),
        )
        .await
    };
    let mut conn = match opened {
        Ok(Ok(mut conn)) => {
            if config.arrival_every > 0 && plan.index.is_multiple_of(config.arrival_every) {
                if let Err(e) = conn.stamp_arrivals() {
                    tracker.record_drop(format!("setup of {name}: arrival stamps: {e}"));
                    let _ = ready.send((plan.index, false)).await;
                    return;
                }
            }
            conn
        }
        Ok(Err(e)) => {
            tracker.record_drop(format!("setup of {name}: {e}"));
            let _ = ready.send((plan.index, false)).await;
            return;
        }
        Err(_) => {
            tracker.record_drop(format!("setup of {name}: timed out"));
            let _ = ready.send((plan.index, false)).await;
            return;
        }
    };
    let _ = ready.send((plan.index, true)).await;
    drop(ready);

    let mut received = Received::new(tracker, plan.sender, &name);
    let mut seq: u64 = 0;
    let mut send_start: Option<Instant> = None;
    let slot = plan.sender.map(|s| &tracker.senders[s as usize]);
    // Bounded: ends at Phase::Done, when the run drops the phase sender, or on an error.
    'client: loop {
        let now_phase = *phase.borrow();
        if now_phase == Phase::Done {
            break;
        }
        let sending = now_phase == Phase::Sending && slot.is_some() && config.allows(seq);
        if sending && send_start.is_none() {
            send_start = Some(Instant::now());
        }
        let at = match (send_start, plan.sender) {
            (Some(start), Some(sender)) if config.rate > 0.0 => {
                Some(due(start, sender, seq, config))
            }
            _ => None,
        };
        tokio::select! {
            changed = phase.changed() => {
                if changed.is_err() {
                    break;
                }
            }
            incoming = conn.recv() => {
                // Frames already read need no wait: they are taken here, up to a bound,
                // rather than each in a `select!` of its own (which made a new wait on the
                // phase every time, a visible share of the loadgen's core).
                let mut next = Some(incoming);
                let mut taken = 0;
                while let Some(incoming) = next.take() {
                    let run_done = *phase.borrow() == Phase::Done;
                    if !received.take(incoming, &mut conn, run_done).await {
                        break 'client;
                    }
                    taken += 1;
                    if taken < TAKE_AT_ONCE {
                        next = conn.recv().now_or_never();
                    }
                }
            }
            () = ready_to_send(slot, config.window, at), if sending => {
                let (Some(sender), Some(slot)) = (plan.sender, slot) else { continue };
                let texts = burst(tracker, slot, sender, &mut seq, send_start, config);
                if let Err(e) = conn.post_all(&texts).await {
                    tracker.record_drop(format!("{name}: {e}"));
                    break;
                }
            }
        }
    }
    received.flush();
    let _ = timeout(Duration::from_secs(1), conn.close()).await;
}
