//! `Limits`: every bound the engine and its transports enforce, in one documented
//! struct with defaults. `demo-web` maps each field to a flag and an environment
//! variable; embedders build it in code.
//!
//! Transports read their own fields (frame and line sizes, timeouts) from here too, so
//! that one struct names every limit of a running server.

use std::time::Duration;

/// A limit set to a value the engine or a transport cannot work with, found when the
/// configuration is checked (at start-up), never later.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{name}: {reason}")]
#[non_exhaustive]
pub struct InvalidLimit {
    /// The limit's name, as its config field is called (`heartbeat_interval`).
    pub name: &'static str,
    /// What is wrong with its value.
    pub reason: String,
}

impl InvalidLimit {
    /// `name` is wrong because of `reason`.
    pub fn new(name: &'static str, reason: impl Into<String>) -> InvalidLimit {
        InvalidLimit {
            name,
            reason: reason.into(),
        }
    }

    /// Refuses a zero `value` of the limit `name`.
    pub fn nonzero<T: PartialEq + Default>(
        name: &'static str,
        value: T,
    ) -> Result<(), InvalidLimit> {
        if value == T::default() {
            Err(InvalidLimit::new(name, "must be greater than zero"))
        } else {
            Ok(())
        }
    }
}

/// A token bucket: `burst` actions at once, refilled at `per_second`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rate {
    /// How many actions may happen back to back (the bucket's size). At least 1.
    pub burst: u32,
    /// How many actions per second the bucket refills (may be fractional, > 0).
    pub per_second: f64,
}

impl Rate {
    /// A bucket of `burst` actions refilled at `per_second`.
    pub fn new(burst: u32, per_second: f64) -> Rate {
        Rate { burst, per_second }
    }
}

/// Every limit of the engine and its transports, with documented defaults.
#[derive(Debug, Clone, PartialEq)]
pub struct Limits {
    /// Messages kept per room (channel or private conversation); the next one evicts the
    /// oldest. Default 100.
    pub history: usize,
    /// Largest message text, in bytes of UTF-8. Default 4096.
    pub max_message_bytes: usize,
    /// Longest display name, in characters (the shortest is 1). Default 32.
    pub max_display_name_chars: usize,
    /// Longest channel name, in characters (the shortest is 1). Default 32.
    pub max_channel_name_chars: usize,
    /// Events a session may have waiting for its transport to take them; one more and the
    /// session is disconnected as a slow consumer. A transport takes everything waiting in
    /// one go, so a session holds at most twice this. Default 1024.
    pub session_queue: usize,
    /// Per-user rate of messages (channels and private messages together).
    /// Default: bursts of 20, 5 per second.
    pub message_rate: Rate,
    /// Per-user rate of channel creation. Default: bursts of 5, one per 10 seconds.
    pub channel_create_rate: Rate,
    /// Shortest interval between two typing notices of one user in one room; the ones in
    /// between are dropped. Default 2 s.
    pub typing_interval: Duration,
    /// Most channels on the server. Default 10,000.
    pub max_channels: usize,
    /// Most connected sessions on the server. Default 100,000.
    pub max_sessions: usize,
    /// How long a display name stays reserved for a user who has left, and how long their
    /// resume token stays valid. Default 7 days.
    pub name_hold: Duration,
    /// Threads (actix arbiters) the channel actors are spread over. They run nothing
    /// else (but a Redis broker's tasks), so a room never waits behind connections' socket
    /// writes for its turn to fan a post out. 0: the rooms share the connection workers instead, which saves the
    /// hand-over between threads (with the server on one core, channel workers of their
    /// own sometimes fall into a slower state at full load: `docs/performance.md`, change
    /// 27) at the cost of latency under load. Default: half the cores, at least 1.
    pub channel_workers: usize,
    /// Threads (actix arbiters) that run the transports' connection tasks
    /// ([`crate::Engine::spawn`]). Default: the number of cores.
    pub connection_workers: usize,
    /// Whether the worker threads (channel and connection) run as batch threads (Linux
    /// `SCHED_BATCH`): they do not preempt the thread running on their core when they are
    /// woken, so a channel worker fans out bursts of posts together rather than one by
    /// one. Default true.
    pub batch_scheduling: bool,
    /// A worker thread (channel or connection) with nothing left to run that last slept
    /// less than this long ago yields its core (`sched_yield`) once before it sleeps
    /// again. The other worker sharing the core then runs first and usually hands it work,
    /// so it does not sleep only to be woken at once. Without it, a busy server could fall
    /// into a state where its two kinds of workers woke each other tens of thousands of
    /// times a second, each time with a few events, and delivered a third less; a worker
    /// that sleeps less often (between bursts) is not delayed (`docs/performance.md`,
    /// change 28). Zero: never yield before sleeping. Default 200 µs.
    pub park_yield_window: Duration,
    /// After a connection's turn that handed posts to a room, its worker thread yields its
    /// core (`sched_yield`), so that a channel worker waiting for that core fans the posts
    /// out now instead of at the end of the connection worker's time slice: the rest of
    /// the connections then take the new messages in the same pass. At most once per this
    /// interval per worker. Default 250 µs.
    pub post_yield_interval: Duration,
    /// Yield as `post_yield_interval` says only while the worker's connections take fewer
    /// than this many events per turn on average. More means the worker has fallen behind,
    /// and then fewer, larger batches (one socket write for more events) serve it better
    /// than prompt fan-outs. 0: never yield. Default 24.
    pub post_yield_backlog: usize,
    /// Transports: most open connections per listener, counting those that have not
    /// logged in yet; more wait in the listen backlog (TCP) or get HTTP 503 (WebSocket).
    /// Default 100,000.
    pub max_connections: usize,
    /// Transports: largest WebSocket frame, in bytes. Default 64 KiB.
    pub max_frame_bytes: usize,
    /// Transports: longest TCP line, in bytes, before the rest of it is discarded.
    /// Default 8 KiB.
    pub max_line_bytes: usize,
    /// Transports: a WebSocket silent for this long (no frame, no pong) is closed; pings
    /// every `heartbeat_interval` keep a live browser well inside it. Default 60 s.
    pub idle_timeout: Duration,
    /// Transports: a TCP connection that sends no line for this long is closed. Longer than
    /// `idle_timeout`, because a terminal user who only reads has nothing to answer pings
    /// with; it also reaps half-open connections. Default 30 minutes.
    pub tcp_idle_timeout: Duration,
    /// Transports: interval between WebSocket pings. Default 20 s.
    pub heartbeat_interval: Duration,
    /// Transports: longest time one write to a client may take before it is disconnected as
    /// a slow consumer. Default 10 s.
    pub write_timeout: Duration,
    /// Transports: after the server's WebSocket close frame, how long it keeps reading
    /// (and discarding) until the client closes its side. Closing a socket with unread
    /// data resets it, and the reset can destroy the close frame before the client reads
    /// it. Default 1 s.
    pub close_linger: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            history: 100,
            max_message_bytes: 4096,
            max_display_name_chars: 32,
            max_channel_name_chars: 32,
            session_queue: 1024,
            message_rate: Rate {
                burst: 20,
                per_second: 5.0,
            },
            channel_create_rate: Rate {
                burst: 5,
                per_second: 0.1,
            },
            typing_interval: Duration::from_secs(2),
            max_channels: 10_000,
            max_sessions: 100_000,
            name_hold: Duration::from_secs(7 * 24 * 3600),
            channel_workers: cores().div_ceil(2),
            connection_workers: cores(),
            batch_scheduling: true,
            park_yield_window: Duration::from_micros(200),
            post_yield_interval: Duration::from_micros(250),
            post_yield_backlog: 24,
            max_connections: 100_000,
            max_frame_bytes: 64 * 1024,
            max_line_bytes: 8 * 1024,
            idle_timeout: Duration::from_secs(60),
            tcp_idle_timeout: Duration::from_secs(30 * 60),
            heartbeat_interval: Duration::from_secs(20),
            write_timeout: Duration::from_secs(10),
            close_linger: Duration::from_secs(1),
        }
    }
}

/// The cores this process may run on (2 if that cannot be told).
fn cores() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(2)
}

impl Limits {
    /// Clamps values that would make the engine unusable (a zero history, a bucket that
    /// never refills) to their smallest working value.
    pub fn sanitized(mut self) -> Self {
        self.history = self.history.max(1);
        self.session_queue = self.session_queue.max(1);
        self.connection_workers = self.connection_workers.max(1);
        self.max_connections = self.max_connections.max(1);
        self.max_display_name_chars = self.max_display_name_chars.max(1);
        self.max_channel_name_chars = self.max_channel_name_chars.max(1);
        for rate in [&mut self.message_rate, &mut self.channel_create_rate] {
            rate.burst = rate.burst.max(1);
            if rate.per_second.is_nan() || rate.per_second <= 0.0 {
                rate.per_second = f64::MIN_POSITIVE;
            }
        }
        self
    }
}
