//! A room's presence between two ticks ([`Coalescer`]), and how often the ticks come: the
//! state of `coalesce.rs`, owned by the room's actor, apart from the actor's methods that
//! use it so that the actor can hold it without a cycle of imports.

use std::time::{Duration, Instant};

use crate::event::PresenceChange;
use crate::model::UserRef;

/// How long a room collects its members' presence changes before it fans them out, as one
/// event per follower: a burst of joins costs every follower one event per tick rather
/// than one per join, and a change is shown at most this late.
pub(crate) const PRESENCE_TICK: Duration = Duration::from_millis(100);

/// How often at most a large room sends its counts: once a second is as often as a person
/// reads a count.
pub(crate) const COUNTS_TICK: Duration = Duration::from_secs(1);

/// Counts events a large room sends per second at most, to all its followers together:
/// a room bigger than this sends them less often than [`COUNTS_TICK`] (every 15 s in a
/// room of 15,000), so that keeping counts live costs a room of any size about what a
/// room of 1,000 pays, while it fills and after.
pub(crate) const COUNTS_PER_SECOND: usize = 1_000;

/// How long a large room of `members` waits between two counts events.
pub(super) fn counts_tick(members: usize) -> Duration {
    COUNTS_TICK.max(Duration::from_millis(
        (members as u64).saturating_mul(1_000) / COUNTS_PER_SECOND as u64,
    ))
}

/// A room's presence between two ticks.
#[derive(Debug)]
pub(crate) struct Coalescer {
    /// Whether the room is large: counts, not members' changes.
    pub(super) large: bool,
    /// Changes from the feed waiting for the tick, oldest first (small rooms only).
    pub(super) changes: Vec<(UserRef, PresenceChange)>,
    /// Whether a tick is due (one is armed at a time).
    pub(super) tick_armed: bool,
    /// The counts the followers were last sent.
    pub(super) counts_sent: (usize, usize),
    /// In a large room: when the current typing interval began, and how many notices the
    /// room relayed in it.
    typing_window: (Instant, usize),
}

impl Default for Coalescer {
    fn default() -> Self {
        Coalescer {
            large: false,
            changes: Vec::new(),
            tick_armed: false,
            counts_sent: (0, 0),
            typing_window: (Instant::now(), 0),
        }
    }
}

impl Coalescer {
    /// Whether the room is large now.
    pub(crate) fn is_large(&self) -> bool {
        self.large
    }

    /// Keeps a change from the feed for the tick; a large room shows counts instead.
    pub(crate) fn keep(&mut self, user: UserRef, change: PresenceChange) {
        if !self.large {
            self.changes.push((user, change));
        }
    }

    /// Drops the changes waiting for the tick: what a room learnt before anyone followed
    /// it is in the first join's member list already.
    pub(crate) fn forget_changes(&mut self) {
        self.changes.clear();
    }

    /// Whether changes wait for a tick.
    pub(crate) fn has_changes(&self) -> bool {
        !self.changes.is_empty()
    }

    /// Whether a large room may relay one more typing notice now (and counts it); a small
    /// room always may (each user is throttled on their own).
    pub(crate) fn typing_allowed(&mut self, now: Instant, interval: Duration, most: usize) -> bool {
        if !self.large {
            return true;
        }
        let (since, relayed) = &mut self.typing_window;
        if now.saturating_duration_since(*since) >= interval {
            (*since, *relayed) = (now, 0);
        }
        if *relayed >= most {
            return false;
        }
        *relayed += 1;
        true
    }

    /// Notes the room's new size: large above `large_room` members, small again at three
    /// quarters of it, so a room at the edge does not flip back and forth.
    pub(super) fn resize(&mut self, members: usize, large_room: usize) {
        if !self.large && members > large_room {
            self.large = true;
        } else if self.large && members <= large_room - large_room / 4 {
            self.large = false;
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    #[test]
    fn a_room_becomes_large_above_the_limit_and_small_again_at_three_quarters() {
        let mut c = Coalescer::default();
        c.resize(1_000, 1_000);
        assert!(!c.is_large());
        c.resize(1_001, 1_000);
        assert!(c.is_large());
        c.resize(800, 1_000);
        assert!(c.is_large(), "no flipping at the edge");
        c.resize(750, 1_000);
        assert!(!c.is_large());
    }

    #[test]
    fn counts_cost_a_big_room_what_they_cost_a_room_of_a_thousand() {
        assert_eq!(counts_tick(1_000), COUNTS_TICK);
        assert_eq!(counts_tick(2_000), Duration::from_secs(2));
        assert_eq!(counts_tick(15_000), Duration::from_secs(15));
        for members in [1_001, 5_000, 15_000, 100_000] {
            let per_second = members as f64 / counts_tick(members).as_secs_f64();
            assert!(per_second <= COUNTS_PER_SECOND as f64 + 1.0, "{members}");
        }
    }

    #[test]
    fn a_large_room_keeps_no_changes_and_bounds_typing() {
        let mut c = Coalescer::default();
        let now = Instant::now();
        let second = Duration::from_secs(1);
        assert!((0..10).all(|_| c.typing_allowed(now, second, 2)), "small");
        c.resize(5, 4);
        let user = UserRef {
            id: crate::model::UserId(1),
            name: Arc::from("a"),
        };
        c.keep(user, PresenceChange::Joined);
        assert!(!c.has_changes());
        let allowed = (0..5).filter(|_| c.typing_allowed(now, second, 2)).count();
        assert_eq!(allowed, 2);
        assert!(c.typing_allowed(now + second, second, 2), "a new interval");
    }
}
