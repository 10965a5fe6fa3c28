//! What one simulated client does with what it receives: deliveries counted once (its
//! own echoes and duplicates apart) with their latency, pings answered, and the server's
//! end of its session recorded as a dropped connection.

use std::sync::atomic::Ordering;

use crate::client::{Conn, Incoming};
use crate::track::{Samples, Seen, Tracker};
use crate::Error;

/// What one client keeps of what it receives.
pub struct Received<'a> {
    tracker: &'a Tracker,
    /// The client's own sender index: its echoes are not deliveries.
    me: Option<u32>,
    /// The client's name, in what is recorded of a drop.
    name: &'a str,
    seen: Seen,
    /// Latencies not yet added to the run's histograms.
    latencies: Samples,
}

impl<'a> Received<'a> {
    /// What client `name` (sender `me`, if it sends) of the run `tracker` receives.
    pub fn new(tracker: &'a Tracker, me: Option<u32>, name: &'a str) -> Self {
        Received {
            tracker,
            me,
            name,
            seen: Seen::default(),
            latencies: Samples::default(),
        }
    }

    /// Adds the latencies kept so far to the run's histograms (when the client ends).
    pub fn flush(&mut self) {
        self.tracker.flush(&mut self.latencies);
    }

    /// Accounts for one thing the client received; whether the client goes on. An error
    /// once the run is done (`run_done`) is the end of the run, not a dropped client.
    pub async fn take(
        &mut self,
        incoming: Result<Incoming, Error>,
        conn: &mut Conn,
        run_done: bool,
    ) -> bool {
        let (tracker, name) = (self.tracker, self.name);
        match incoming {
            Ok(Incoming::Delivery(stamp)) => {
                if Some(stamp.sender) == self.me {
                    tracker.echoes.fetch_add(1, Ordering::Relaxed);
                } else if self.seen.insert(stamp.sender, stamp.seq) {
                    let now = conn
                        .read_at()
                        .map_or_else(|| tracker.now_ns(), |at| tracker.ns_at(at));
                    let arrived = conn.arrived_unix_ns();
                    tracker.delivered(stamp, now, arrived, &mut self.latencies);
                } else {
                    tracker.duplicates.fetch_add(1, Ordering::Relaxed);
                }
                true
            }
            Ok(Incoming::Ping(token)) => match conn.pong(token).await {
                Ok(()) => true,
                Err(e) => {
                    tracker.record_drop(format!("{name}: {e}"));
                    false
                }
            },
            Ok(Incoming::Closed(why)) => {
                tracker.record_drop(format!("{name}: {why}"));
                false
            }
            Ok(Incoming::Other) => true,
            Err(e) => {
                if !run_done {
                    tracker.record_drop(format!("{name}: {e}"));
                }
                false
            }
        }
    }
}

/// Most frames a client takes from what it has read before it looks at the phase (and,
/// for a sender, at its send timer) again.
pub const TAKE_AT_ONCE: usize = 64;
