//! When a connection pings its client and when it gives the client up as gone: two
//! deadlines that one timer serves.
//!
//! The connection's loop waits on one `Sleep` set to [`Keepalive::deadline`]. A frame
//! from the client only moves the idle deadline here, without touching the timer: with
//! a timer per deadline, every frame re-registered the idle timer with the runtime, and
//! every turn of the loop polled two timers. When the timer fires, [`Keepalive::fire`]
//! says which deadline has come (if the idle one moved meanwhile, neither has), and the
//! loop sets the timer to the next deadline.
//!
//! Used by `connection.rs`; `WsConfig::validate` makes sure the heartbeat comes before
//! the idle timeout, so a client that answers pings never idles out.

use std::time::Duration;

use tokio::time::Instant;

/// What a fired timer found due.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Due {
    /// Time to ping the client.
    Ping,
    /// No frame from the client for the whole idle timeout.
    Idle,
}

/// The ping and idle deadlines of one connection.
#[derive(Debug)]
pub(crate) struct Keepalive {
    heartbeat_interval: Duration,
    idle_timeout: Duration,
    next_ping: Instant,
    idle_at: Instant,
}

impl Keepalive {
    /// Deadlines for a connection whose client was last heard at `now`.
    pub(crate) fn new(now: Instant, heartbeat_interval: Duration, idle_timeout: Duration) -> Self {
        Keepalive {
            heartbeat_interval,
            idle_timeout,
            next_ping: now + heartbeat_interval,
            idle_at: now + idle_timeout,
        }
    }

    /// When the timer must fire next.
    pub(crate) fn deadline(&self) -> Instant {
        self.next_ping.min(self.idle_at)
    }

    /// The client was heard from at `now` (any frame, a pong included).
    pub(crate) fn heard(&mut self, now: Instant) {
        self.idle_at = now + self.idle_timeout;
    }

    /// The timer fired at `now`: what is due, if anything. A ping moves the next one a
    /// whole interval past `now`, so a loop that was held up pings once, not in a burst.
    pub(crate) fn fire(&mut self, now: Instant) -> Option<Due> {
        if now >= self.idle_at {
            return Some(Due::Idle);
        }
        if now >= self.next_ping {
            self.next_ping = now + self.heartbeat_interval;
            return Some(Due::Ping);
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BEAT: Duration = Duration::from_secs(20);
    const IDLE: Duration = Duration::from_secs(60);

    #[test]
    fn a_quiet_client_is_pinged_every_interval_then_given_up() {
        let start = Instant::now();
        let mut keepalive = Keepalive::new(start, BEAT, IDLE);
        assert_eq!(keepalive.deadline(), start + BEAT);
        assert_eq!(keepalive.fire(start + BEAT), Some(Due::Ping));
        assert_eq!(keepalive.deadline(), start + 2 * BEAT);
        assert_eq!(keepalive.fire(start + 2 * BEAT), Some(Due::Ping));
        // The third ping and the idle deadline coincide: the client is gone.
        assert_eq!(keepalive.deadline(), start + IDLE);
        assert_eq!(keepalive.fire(start + IDLE), Some(Due::Idle));
    }

    #[test]
    fn hearing_from_the_client_moves_only_the_idle_deadline() {
        let start = Instant::now();
        let mut keepalive = Keepalive::new(start, BEAT, IDLE);
        keepalive.heard(start + Duration::from_secs(50));
        assert_eq!(
            keepalive.deadline(),
            start + BEAT,
            "pings keep their rhythm"
        );
        assert_eq!(keepalive.fire(start + BEAT), Some(Due::Ping));
        assert_eq!(keepalive.fire(start + 2 * BEAT), Some(Due::Ping));
        assert_eq!(keepalive.fire(start + 3 * BEAT), Some(Due::Ping));
        assert_eq!(
            keepalive.deadline(),
            start + Duration::from_secs(80),
            "the next ping comes at 80 s, before the idle deadline at 110 s"
        );
        assert_eq!(
            keepalive.fire(start + Duration::from_secs(110)),
            Some(Due::Idle)
        );
    }

    #[test]
    fn a_timer_set_for_a_deadline_that_moved_finds_nothing_due() {
        let start = Instant::now();
        let short = Duration::from_secs(5);
        let mut keepalive = Keepalive::new(start, BEAT, short);
        assert_eq!(keepalive.deadline(), start + short);
        keepalive.heard(start + Duration::from_secs(4));
        assert_eq!(keepalive.fire(start + short), None);
        assert_eq!(keepalive.deadline(), start + Duration::from_secs(9));
    }

    #[test]
    fn a_late_timer_pings_once_and_the_next_ping_counts_from_then() {
        let start = Instant::now();
        let mut keepalive = Keepalive::new(start, BEAT, IDLE);
        keepalive.heard(start + Duration::from_secs(45));
        let late = start + Duration::from_secs(45);
        assert_eq!(keepalive.fire(late), Some(Due::Ping));
        assert_eq!(
            keepalive.fire(late),
            None,
            "one ping, not one per missed beat"
        );
        assert_eq!(keepalive.deadline(), late + BEAT);
    }
}
