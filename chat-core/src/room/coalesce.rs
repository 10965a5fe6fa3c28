//! How a room tells its followers about presence without costing every join a delivery
//! to every member: changes are coalesced into one [`PresenceBatch`] per follower per
//! [`PRESENCE_TICK`](super::coalescer::PRESENCE_TICK) (sooner when something else is fanned out, which keeps every
//! follower's events in the order they happened), and a room above `Limits::large_room` members (on every node together) sends no
//! member's change at all, only its counts, at most once per [`COUNTS_TICK`] (less often
//! above [`COUNTS_PER_SECOND`] followers). Typing
//! notices in such a room are bounded too (`Limits::large_room_typing` per
//! `typing_interval`). `docs/architecture.md` ("Presence in big rooms") says why.
//!
//! Members on other nodes count here like this node's own (`share.rs` merges their
//! shares), so the large/small rule and the counts are the cluster's.
//!
//! [`Coalescer`] (`coalescer.rs`) is the state, owned by the room's actor; the `RoomActor`
//! methods here are what the actor calls when its roster changes and what its tick runs.
//! Nothing here is armed while nothing changes, so an idle room costs no timer.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use actix::prelude::*;

use super::actor::RoomActor;
use super::coalescer::{counts_tick, PRESENCE_TICK};
use super::presence::Moved;
use crate::event::{Event, PresenceBatch};

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
