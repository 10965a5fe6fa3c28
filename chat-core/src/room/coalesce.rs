//! How a room tells its followers about presence without costing every join a delivery
//! to every member: changes are coalesced into one [`PresenceBatch`] per follower per
//! [`PRESENCE_TICK`] (sooner when something else is fanned out, which keeps every
//! follower's events in the order they happened), and a room above `Limits::large_room` members (on every node together) sends no
//! member's change at all, only its counts, at most once per [`COUNTS_TICK`] (less often
//! above [`COUNTS_PER_SECOND`] followers). Typing
//! notices in such a room are bounded too (`Limits::large_room_typing` per
//! `typing_interval`). `docs/architecture.md` ("Presence in big rooms") says why.
//!
//! Members on other nodes count here like this node's own (`share.rs` merges their
//! shares), so the large/small rule and the counts are the cluster's.
//!
//! [`Coalescer`] is the state, owned by the room's actor; the `RoomActor` methods here are
//! what the actor calls when its roster changes and what its tick runs. Nothing here is
//! armed while nothing changes, so an idle room costs no timer.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::prelude::*;

use super::actor::RoomActor;
use super::presence::Moved;
use crate::event::{Event, PresenceBatch, PresenceChange};
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
fn counts_tick(members: usize) -> Duration {
    COUNTS_TICK.max(Duration::from_millis(
        (members as u64).saturating_mul(1_000) / COUNTS_PER_SECOND as u64,
    ))
}

/// A room's presence between two ticks.
#[derive(Debug)]
pub(crate) struct Coalescer {
    /// Whether the room is large: counts, not members' changes.
    large: bool,
    /// Changes from the feed waiting for the tick, oldest first (small rooms only).
    changes: Vec<(UserRef, PresenceChange)>,
    /// Whether a tick is due (one is armed at a time).
    tick_armed: bool,
    /// The counts the followers were last sent.
    counts_sent: (usize, usize),
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
    fn resize(&mut self, members: usize, large_room: usize) {
        if !self.large && members > large_room {
            self.large = true;
        } else if self.large && members <= large_room - large_room / 4 {
            self.large = false;
        }
    }
}

impl RoomActor {
    /// One of this node's sessions changed the roster: the followers are shown what
    /// the cluster sees at the next tick (a large room: only its counts), and this node's
    /// new share goes to the other nodes at the next publish.
    pub(super) fn presence_moved(&mut self, moved: Moved, ctx: &mut Context<Self>) {
        if let Some((user, change)) = moved.shown {
            self.presence.keep(user, change);
        }
        self.roster_resized();
        self.arm_tick_if_due(ctx);
        if let Some(here) = moved.here {
            self.share_changed(here, ctx);
        }
    }

    /// The roster's size may have changed: the directory's count, and whether the room is
    /// large now.
    pub(super) fn roster_resized(&mut self) {
        let members = self.roster.len();
        self.stats.members.store(members, Ordering::Relaxed);
        self.presence.resize(members, self.limits.large_room);
    }

    /// Arms the tick when it has something to send: changes waiting (a small room), or
    /// counts the followers were not sent yet (a large one).
    pub(super) fn arm_tick_if_due(&mut self, ctx: &mut Context<Self>) {
        let counts = (self.roster.len(), self.roster.online());
        let due = if self.presence.large {
            counts != self.presence.counts_sent
        } else {
            self.presence.has_changes()
        };
        if due {
            self.arm_tick(ctx);
        }
    }

    /// Makes sure a tick is due: in [`PRESENCE_TICK`], or in a large room when its
    /// counts may go out again ([`counts_tick`]).
    pub(super) fn arm_tick(&mut self, ctx: &mut Context<Self>) {
        if self.presence.tick_armed {
            return;
        }
        self.presence.tick_armed = true;
        let after = if self.presence.large {
            counts_tick(self.roster.len())
        } else {
            PRESENCE_TICK
        };
        ctx.run_later(after, |act, ctx| act.presence_tick(ctx));
    }

    /// Fans out what changed since the last tick: a small room's changes as one shared
    /// batch (with its counts), a large room's counts when they changed.
    fn presence_tick(&mut self, ctx: &mut Context<Self>) {
        self.presence.tick_armed = false;
        let counts = (self.roster.len(), self.roster.online());
        let state = &mut self.presence;
        if state.large {
            state.changes.clear();
            if counts != state.counts_sent {
                state.counts_sent = counts;
                let (members, online) = counts;
                let room = self.room.clone();
                self.fan_out(
                    Event::RoomCounts {
                        room,
                        members,
                        online,
                    },
                    None,
                );
            }
        } else {
            self.release_presence();
        }
        self.flush(ctx);
    }

    /// Queues the changes waiting for the tick as one batch now. The room calls it before
    /// it fans out anything else (a message, a deletion, a typing notice), so a follower
    /// gets everything in the order it happened: bob's arrival before bob's first message.
    /// In a quiet room that is the tick; in a busy one, at most one batch per fan-out.
    pub(super) fn release_presence(&mut self) {
        if self.presence.changes.is_empty() {
            return;
        }
        let counts = (self.roster.len(), self.roster.online());
        self.presence.counts_sent = counts;
        let changes = std::mem::take(&mut self.presence.changes);
        let batch = PresenceBatch::new(self.room.clone(), changes, counts.0, counts.1);
        self.fan_out(Event::PresenceBatch(Arc::new(batch)), None);
    }
}

#[cfg(test)]
mod tests {
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
