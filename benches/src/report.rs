//! The result of one load run ([`Report`]) and its two renderings: a human table
//! ([`Report::table`]) and JSON (serde; the field names are what `run-all.sh` reads).
//!
//! Built by [`crate::run::run`]; printed by `loadgen`. Latencies are milliseconds,
//! memory KiB unless the field name says otherwise.

use hdrhistogram::Histogram;
use serde::Serialize;

use crate::client::Protocol;
use crate::stalled::StalledReport;

/// Latency percentiles of one histogram, in milliseconds.
#[derive(Debug, Clone, Copy, Default, Serialize, PartialEq)]
pub struct Percentiles {
    /// Samples recorded.
    pub count: u64,
    /// Median.
    pub p50: f64,
    /// 90th percentile.
    pub p90: f64,
    /// 99th percentile.
    pub p99: f64,
    /// 99.9th percentile.
    pub p999: f64,
    /// Largest sample.
    pub max: f64,
}

impl Percentiles {
    /// The percentiles of a histogram of nanoseconds.
    pub fn of(h: &Histogram<u64>) -> Self {
        if h.is_empty() {
            return Percentiles::default();
        }
        let ms = |ns: u64| ns as f64 / 1e6;
        Percentiles {
            count: h.len(),
            p50: ms(h.value_at_quantile(0.5)),
            p90: ms(h.value_at_quantile(0.9)),
            p99: ms(h.value_at_quantile(0.99)),
            p999: ms(h.value_at_quantile(0.999)),
            max: ms(h.max()),
        }
    }
}

/// The server's memory during a run, from `/proc/PID/status`.
#[derive(Debug, Clone, Copy, Default, Serialize, PartialEq)]
pub struct Memory {
    /// Resident memory before any client connected, KiB.
    pub before_kib: u64,
    /// Resident memory with every client connected and joined, KiB.
    pub connected_kib: u64,
    /// Peak resident memory seen (sampled every 100 ms, and `VmHWM`), KiB.
    pub peak_kib: u64,
    /// (connected - before) / connected clients, bytes.
    pub per_connection_bytes: u64,
}

/// How busy each side was during the sending phase. A side well below one core was not
/// what limited the run; the server's CPU per delivery is its cost whichever side was.
#[derive(Debug, Clone, Copy, Default, Serialize, PartialEq)]
pub struct CpuUse {
    /// The server's CPU time over the sending phase, as a fraction of one core (when its
    /// pid was given).
    pub server_busy: Option<f64>,
    /// The server's CPU time per delivery made during the sending phase, microseconds.
    pub server_us_per_delivery: Option<f64>,
    /// The loadgen's own CPU time over the sending phase, as a fraction of one core.
    pub loadgen_busy: Option<f64>,
}

/// Everything one run measured.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// The row's label.
    pub label: String,
    /// Protocol spoken.
    pub protocol: Protocol,
    /// Server address.
    pub addr: String,
    /// Clients asked for.
    pub clients: usize,
    /// Channels.
    pub channels: usize,
    /// Senders.
    pub senders: usize,
    /// Offered messages per second per sender (0: as fast as possible).
    pub rate_per_sender: f64,
    /// Messages in flight per sender at most.
    pub window: u32,
    /// Message text size, bytes.
    pub size: usize,
    /// Sending time asked for, seconds.
    pub duration_s: f64,
    /// Clients that connected, logged in and joined.
    pub connected: usize,
    /// Clients that did not.
    pub connect_failures: usize,
    /// Length of the connect phase, seconds.
    pub connect_secs: f64,
    /// Connected clients per second of the connect phase.
    pub connects_per_sec: f64,
    /// Messages sent, all senders.
    pub sent: u64,
    /// Messages sent per second of the sending phase.
    pub messages_per_sec: f64,
    /// Sum over messages of their recipients.
    pub expected_deliveries: u64,
    /// Unique deliveries received.
    pub deliveries: u64,
    /// Unique deliveries per second, from the start of sending to the last delivery.
    pub deliveries_per_sec: f64,
    /// Expected deliveries that never arrived (must be 0).
    pub lost: u64,
    /// Deliveries of something a recipient already had (must be 0).
    pub duplicates: u64,
    /// Copies of their own messages senders got back (ignored).
    pub echoes_ignored: u64,
    /// Deliveries matching no pending message (must be 0).
    pub untracked: u64,
    /// Clients whose connection ended before the run did.
    pub dropped_connections: u64,
    /// The first reasons for failures and drops.
    pub errors: Vec<String>,
    /// End-to-end latency of each delivery (send to one recipient), ms.
    pub latency_ms: Percentiles,
    /// Time until each delivery had reached its recipient's socket, ms (by the kernel's
    /// receive stamp: the loadgen's own wait to read is not in it), over the clients
    /// `--arrival-every` picks; absent without it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub arrival_ms: Option<Percentiles>,
    /// Time until the last recipient of a message had it, ms.
    pub until_last_ms: Percentiles,
    /// The server's memory, when its pid was given.
    pub server_memory: Option<Memory>,
    /// CPU used by the server and the loadgen while sending.
    pub cpu: CpuUse,
    /// The members that never read (`--stalled`), and how many the server cut.
    pub stalled: Option<StalledReport>,
}

impl Report {
    /// True when nothing was lost, duplicated or unmatched and every client stayed.
    pub fn is_clean(&self) -> bool {
        self.lost == 0
            && self.duplicates == 0
            && self.untracked == 0
            && self.connect_failures == 0
            && self.dropped_connections == 0
    }

    /// A human-readable summary, one fact per line.
    pub fn table(&self) -> String {
        let mut out = String::new();
        let mut row = |k: &str, v: String| out.push_str(&format!("{k:<24} {v}\n"));
        row(
            "run",
            format!("{} ({:?} on {})", self.label, self.protocol, self.addr),
        );
        row(
            "shape",
            format!(
                "{} clients, {} channels, {} senders at {}, window {}, {} B texts, {} s",
                self.clients,
                self.channels,
                self.senders,
                if self.rate_per_sender > 0.0 {
                    format!("{}/s each", self.rate_per_sender)
                } else {
                    "full speed".into()
                },
                self.window,
                self.size,
                self.duration_s
            ),
        );
        row(
            "connections",
            format!(
                "{} ok, {} failed, {:.2} s ({:.0}/s), {} dropped later",
                self.connected,
                self.connect_failures,
                self.connect_secs,
                self.connects_per_sec,
                self.dropped_connections
            ),
        );
        row(
            "messages sent",
            format!("{} ({:.0}/s)", self.sent, self.messages_per_sec),
        );
        row(
            "deliveries",
            format!(
                "{} of {} expected ({:.0}/s)",
                self.deliveries, self.expected_deliveries, self.deliveries_per_sec
            ),
        );
        row(
            "lost / dup / unmatched",
            format!("{} / {} / {}", self.lost, self.duplicates, self.untracked),
        );
        let arrival = self.arrival_ms.map(|p| ("at the socket ms (each)", p));
        let rows = [
            Some(("latency ms (each)", self.latency_ms)),
            arrival,
            Some(("latency ms (last rcpt)", self.until_last_ms)),
        ];
        for (name, p) in rows.into_iter().flatten() {
            row(
                name,
                format!(
                    "p50 {:.3}  p90 {:.3}  p99 {:.3}  p99.9 {:.3}  max {:.3}  (n={})",
                    p.p50, p.p90, p.p99, p.p999, p.max, p.count
                ),
            );
        }
        if let Some(m) = self.server_memory {
            row(
                "server memory",
                format!(
                    "{} KiB before, {} KiB connected, {} KiB peak, {} B per connection",
                    m.before_kib, m.connected_kib, m.peak_kib, m.per_connection_bytes
                ),
            );
        }
        let percent = |v: Option<f64>| v.map_or("n/a".into(), |v| format!("{:.0} %", v * 100.0));
        row(
            "cpu while sending",
            format!(
                "server {} of a core ({} µs per delivery), loadgen {}",
                percent(self.cpu.server_busy),
                self.cpu
                    .server_us_per_delivery
                    .map_or("n/a".into(), |v| format!("{v:.3}")),
                percent(self.cpu.loadgen_busy)
            ),
        );
        if let Some(stalled) = self.stalled {
            row(
                "stalled members",
                format!(
                    "{} of {} set up, {} cut by the server",
                    stalled.connected, stalled.clients, stalled.cut
                ),
            );
        }
        for e in &self.errors {
            row("error", e.clone());
        }
        row("clean", self.is_clean().to_string());
        out
    }
}
