//! Bookkeeping shared by every client of one run: what each sender has in flight, how
//! many recipients each message still waits for, the latency histograms and the counters
//! that say whether anything was lost or duplicated.
//!
//! Owned by [`crate::run`] (one [`Tracker`] per run, behind an `Arc`); senders call
//! [`Tracker::begin`], receivers call [`Tracker::delivered`] after their own duplicate
//! check ([`Seen`]). Locks are std mutexes held for a few instructions, never across an
//! await. It must not do I/O.

use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::atomic::{AtomicI64, AtomicU32, AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::Instant;

use hdrhistogram::Histogram;
use tokio::sync::Notify;

use crate::payload::Stamp;

/// Messages a sender's ring remembers; the send window is capped well below it.
pub const RING: usize = 8192;
/// Largest allowed send window (messages in flight per sender).
pub const MAX_WINDOW: u32 = (RING / 2) as u32;
/// Highest latency the histograms hold: 10 minutes, in ns (larger values are clamped).
const MAX_NS: u64 = 600_000_000_000;
/// Latency samples a receiver buffers before taking the shared histogram's lock.
const FLUSH_EVERY: usize = 256;

#[derive(Clone, Copy)]
struct Pending {
    /// Sequence number this slot tracks; `u64::MAX` when empty.
    seq: u64,
    /// Recipients that still have to receive it.
    remaining: u32,
}

/// One sender's state: its window and the messages it is waiting on.
pub struct SenderSlot {
    /// Recipients each message of this sender should reach (its channel's other members
    /// that connected). Set before sending starts.
    pub recipients: AtomicU32,
    /// Messages sent.
    pub sent: AtomicU64,
    /// Messages sent and not yet received by every recipient.
    pub in_flight: AtomicU32,
    /// Woken when one of this sender's messages completes (frees a window slot).
    pub notify: Notify,
    ring: Mutex<Vec<Pending>>,
}

impl SenderSlot {
    fn new() -> Self {
        SenderSlot {
            recipients: AtomicU32::new(0),
            sent: AtomicU64::new(0),
            in_flight: AtomicU32::new(0),
            notify: Notify::new(),
            ring: Mutex::new(vec![
                Pending {
                    seq: u64::MAX,
                    remaining: 0
                };
                RING
            ]),
        }
    }
}

/// Counters and histograms of one run.
pub struct Tracker {
    /// The shared start instant every timestamp is relative to.
    pub start: Instant,
    /// The same moment in ns since the Unix epoch, for the kernel's arrival stamps.
    pub start_unix_ns: u64,
    /// One slot per sender, by sender index.
    pub senders: Vec<SenderSlot>,
    /// Unique deliveries (a message reaching one recipient, counted once).
    pub unique: AtomicU64,
    /// Deliveries of a message a recipient had already received.
    pub duplicates: AtomicU64,
    /// Copies of its own message a sender got back (ignored: not a delivery).
    pub echoes: AtomicU64,
    /// Deliveries that could not be matched to a pending message (sender unknown, or the
    /// message fell out of its sender's ring). Zero in a sound run.
    pub untracked: AtomicU64,
    /// Messages given up on by their sender's ring while still incomplete.
    pub abandoned: AtomicU64,
    /// Messages of all senders not yet complete (for the drain phase).
    pub outstanding: AtomicI64,
    /// Time of the last delivery, ns since `start`.
    pub last_delivery_ns: AtomicU64,
    /// Clients that lost their connection (or got a disconnect event) before the end.
    pub dropped: AtomicU64,
    /// The first few reasons for dropped connections, for the report.
    pub errors: Mutex<Vec<String>>,
    latency: Mutex<Histogram<u64>>,
    arrival: Mutex<Histogram<u64>>,
    last: Mutex<Histogram<u64>>,
}

/// One receiver's latency samples (ns), moved to the shared histograms now and then.
#[derive(Default)]
pub struct Samples {
    latency: Vec<u64>,
    arrival: Vec<u64>,
}

fn histogram() -> Histogram<u64> {
    // unwrap: the bounds are constants that hdrhistogram accepts (1 <= low, 3 digits).
    Histogram::new_with_bounds(1, MAX_NS, 3).unwrap()
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Tracker {
    /// A tracker for `senders` senders, its clock starting now.
    pub fn new(senders: usize) -> Self {
        Tracker {
            start: Instant::now(),
            start_unix_ns: crate::arrival::unix_now_ns(),
            senders: (0..senders).map(|_| SenderSlot::new()).collect(),
            unique: AtomicU64::new(0),
            duplicates: AtomicU64::new(0),
            echoes: AtomicU64::new(0),
            untracked: AtomicU64::new(0),
            abandoned: AtomicU64::new(0),
            outstanding: AtomicI64::new(0),
            last_delivery_ns: AtomicU64::new(0),
            dropped: AtomicU64::new(0),
            errors: Mutex::new(Vec::new()),
            latency: Mutex::new(histogram()),
            arrival: Mutex::new(histogram()),
            last: Mutex::new(histogram()),
        }
    }

    /// Nanoseconds since the start instant.
    pub fn now_ns(&self) -> u64 {
        self.start.elapsed().as_nanos() as u64
    }

    /// Nanoseconds from the start instant to `at`.
    pub fn ns_at(&self, at: Instant) -> u64 {
        at.saturating_duration_since(self.start).as_nanos() as u64
    }

    /// Registers message `seq` of `sender` as sent, before it is written to the socket.
    pub fn begin(&self, sender: u32, seq: u64) {
        let slot = &self.senders[sender as usize];
        let recipients = slot.recipients.load(Ordering::Relaxed);
        slot.sent.fetch_add(1, Ordering::Relaxed);
        if recipients == 0 {
            return;
        }
        let mut ring = lock(&slot.ring);
        let pending = &mut ring[(seq % RING as u64) as usize];
        if pending.seq != u64::MAX && pending.remaining > 0 {
            // An old message that never completed: give up on it to reuse its slot. The
            // final count shows it as lost.
            self.abandoned.fetch_add(1, Ordering::Relaxed);
            slot.in_flight.fetch_sub(1, Ordering::Relaxed);
            self.outstanding.fetch_sub(1, Ordering::Relaxed);
        }
        *pending = Pending {
            seq,
            remaining: recipients,
        };
        slot.in_flight.fetch_add(1, Ordering::Relaxed);
        self.outstanding.fetch_add(1, Ordering::Relaxed);
    }

    /// Records a first-time delivery of `stamp` to one recipient, read at `now_ns` and
    /// (if stamped) arrived at its socket at `arrived_unix_ns`, and its latencies (into
    /// `samples`, flushed to the shared histograms now and then).
    pub fn delivered(
        &self,
        stamp: Stamp,
        now_ns: u64,
        arrived_unix_ns: Option<u64>,
        samples: &mut Samples,
    ) {
        self.unique.fetch_add(1, Ordering::Relaxed);
        self.last_delivery_ns.fetch_max(now_ns, Ordering::Relaxed);
        let latency = now_ns.saturating_sub(stamp.sent_ns).clamp(1, MAX_NS);
        samples.latency.push(latency);
        if let Some(arrived) = arrived_unix_ns {
            let arrived_ns = arrived.saturating_sub(self.start_unix_ns);
            let arrival = arrived_ns.saturating_sub(stamp.sent_ns).clamp(1, MAX_NS);
            samples.arrival.push(arrival);
        }
        if samples.latency.len() >= FLUSH_EVERY {
            self.flush(samples);
        }
        let Some(slot) = self.senders.get(stamp.sender as usize) else {
            self.untracked.fetch_add(1, Ordering::Relaxed);
            return;
        };
        let completed = {
            let mut ring = lock(&slot.ring);
            let pending = &mut ring[(stamp.seq % RING as u64) as usize];
            if pending.seq != stamp.seq || pending.remaining == 0 {
                self.untracked.fetch_add(1, Ordering::Relaxed);
                return;
            }
            pending.remaining -= 1;
            pending.remaining == 0
        };
        if completed {
            slot.in_flight.fetch_sub(1, Ordering::Relaxed);
            self.outstanding.fetch_sub(1, Ordering::Relaxed);
            // Recording errors only happen for out-of-range values, which are clamped.
            let _ = lock(&self.last).record(latency);
            slot.notify.notify_one();
        }
    }

    /// Moves buffered latency samples into the shared histograms.
    pub fn flush(&self, samples: &mut Samples) {
        for (buffer, histogram) in [
            (&mut samples.latency, &self.latency),
            (&mut samples.arrival, &self.arrival),
        ] {
            if buffer.is_empty() {
                continue;
            }
            let mut h = lock(histogram);
            for &v in buffer.iter() {
                // Recording errors only happen for out-of-range values, which are clamped.
                let _ = h.record(v);
            }
            buffer.clear();
        }
    }

    /// Records that a client's connection ended early, and why (the first 10 reasons kept).
    pub fn record_drop(&self, why: String) {
        self.dropped.fetch_add(1, Ordering::Relaxed);
        let mut errors = lock(&self.errors);
        if errors.len() < 10 {
            errors.push(why);
        }
    }

    /// Per-recipient latency histogram (ns), a copy.
    pub fn latency(&self) -> Histogram<u64> {
        lock(&self.latency).clone()
    }

    /// Per-recipient arrival latency histogram (ns, empty unless stamped), a copy.
    pub fn arrival(&self) -> Histogram<u64> {
        lock(&self.arrival).clone()
    }

    /// Time-until-last-recipient histogram (ns) of completed messages, a copy.
    pub fn until_last(&self) -> Histogram<u64> {
        lock(&self.last).clone()
    }
}

/// One receiver's memory of what it has seen, per sender: everything below `next`, plus
/// the out-of-order sequence numbers above it. Detects duplicates even when a server
/// reorders messages.
#[derive(Default)]
pub struct Seen {
    per_sender: HashMap<u32, SeqSet, BuildHasherDefault<SenderHasher>>,
}

/// Hashes a sender index with one multiplication: the map is looked up once per delivery,
/// its keys are small integers chosen by the loadgen itself, and the default SipHash was
/// a visible share of the loadgen's core.
#[derive(Default)]
struct SenderHasher(u64);

impl Hasher for SenderHasher {
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 << 8 | u64::from(b)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        }
    }

    fn write_u32(&mut self, n: u32) {
        // Fibonacci hashing: the high bits, which the map uses, depend on every key bit.
        self.0 = u64::from(n).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

#[derive(Default)]
struct SeqSet {
    next: u64,
    ahead: HashSet<u64>,
}

impl Seen {
    /// True the first time `(sender, seq)` is seen, false for a duplicate.
    pub fn insert(&mut self, sender: u32, seq: u64) -> bool {
        let set = self.per_sender.entry(sender).or_default();
        if seq < set.next {
            return false;
        }
        if seq == set.next {
            set.next += 1;
            // Checked first: removing from a set hashes the key even when the set is empty,
            // and in order (the usual case) it is.
            while !set.ahead.is_empty() && set.ahead.remove(&set.next) {
                set.next += 1;
            }
            return true;
        }
        set.ahead.insert(seq)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seen_detects_duplicates_in_any_order() {
        let mut seen = Seen::default();
        assert!(seen.insert(1, 0));
        assert!(seen.insert(1, 2));
        assert!(!seen.insert(1, 2));
        assert!(seen.insert(1, 1));
        assert!(!seen.insert(1, 0));
        assert!(!seen.insert(1, 1));
        assert!(seen.insert(2, 0));
        assert!(seen.insert(1, 3));
    }

    #[test]
    fn a_message_completes_when_every_recipient_has_it() {
        let t = Tracker::new(1);
        t.senders[0].recipients.store(2, Ordering::Relaxed);
        t.begin(0, 0);
        assert_eq!(t.outstanding.load(Ordering::Relaxed), 1);
        let stamp = Stamp {
            sender: 0,
            seq: 0,
            sent_ns: 0,
        };
        let mut buf = Samples::default();
        t.delivered(stamp, 10, None, &mut buf);
        assert_eq!(t.senders[0].in_flight.load(Ordering::Relaxed), 1);
        // Arrived at its socket 5 ns after the start, read 20 ns after.
        t.delivered(stamp, 20, Some(t.start_unix_ns + 5), &mut buf);
        assert_eq!(t.senders[0].in_flight.load(Ordering::Relaxed), 0);
        assert_eq!(t.outstanding.load(Ordering::Relaxed), 0);
        // A third copy cannot match anything any more.
        t.delivered(stamp, 30, None, &mut buf);
        assert_eq!(t.untracked.load(Ordering::Relaxed), 1);
        t.flush(&mut buf);
        assert_eq!(t.latency().len(), 3);
        assert_eq!((t.arrival().len(), t.arrival().max()), (1, 5));
        assert_eq!(t.until_last().max(), 20);
    }
}
