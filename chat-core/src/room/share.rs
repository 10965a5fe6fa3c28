//! This node's share of a room's presence, and the other nodes' shares: what a room tells
//! the other nodes about the members it serves, and what it does with what they tell it.
//!
//! A room collects the changes of its own members' state on this node ([`HereState`])
//! and publishes them as one [`NodePresence`] signal per [`PRESENCE_TICK`]: presence
//! costs the broker one publish per room per node per tick, and nothing on a message's
//! path (the waiting share goes out before a post, so the other nodes see bob arrive
//! before bob's first message). A room that starts reads the other nodes' shares from the
//! broker's snapshot (Redis keeps them), or asks the nodes for their whole shares when the
//! broker keeps none; a room that catches up after the broker's outage asks too. A node
//! answers such a question with its whole share at its next publish. The members of the other nodes' shares are merged into the roster; what the
//! followers see of them goes through the coalescer like this node's own changes.
//!
//! Owned by the room's actor; the directory tells it when a node is gone (its heartbeat
//! expired) or when this node must announce its shares again.

use actix::prelude::*;

use super::actor::RoomActor;
use super::coalescer::PRESENCE_TICK;
use crate::broker::{HereState, NodeId, NodePresence, Signal};
use crate::event::PresenceChange;
use crate::model::UserRef;

/// A node is gone (its heartbeat expired): its share of the room goes.
#[derive(Message)]
#[rtype(result = "()")]
pub(crate) struct NodeGone(pub(crate) NodeId);

impl Handler<NodeGone> for RoomActor {
    type Result = ();

    fn handle(&mut self, msg: NodeGone, ctx: &mut Context<Self>) {
        let shown = self.roster.drop_node(&msg.0);
        self.show_all(shown, ctx);
    }
}

/// This node was taken for dead by the others (or has just joined): the room tells them
/// its whole share again.
#[derive(Message)]
#[rtype(result = "()")]
pub(crate) struct Announce;

impl Handler<Announce> for RoomActor {
    type Result = ();

    fn handle(&mut self, _: Announce, ctx: &mut Context<Self>) {
        self.outbox.whole = true;
        self.arm_publish(ctx);
    }
}

impl RoomActor {
    /// A member's state on this node changed: it goes to the other nodes at the next
    /// publish.
    pub(super) fn share_changed(&mut self, change: (UserRef, HereState), ctx: &mut Context<Self>) {
        self.outbox.changes.push(change);
        self.arm_publish(ctx);
    }

    /// The room has just loaded: it takes the other nodes' shares from the broker's
    /// snapshot, or asks the nodes for them when the broker keeps none; and tells its own
    /// whole share at once (which also clears what a previous room here left behind).
    pub(super) fn load_shares(
        &mut self,
        shares: Option<Vec<NodePresence>>,
        ctx: &mut Context<Self>,
    ) {
        match shares {
            Some(shares) => {
                for share in shares {
                    self.merge_share(share);
                }
                // Nobody follows the room yet: the first join's member list shows them.
                self.presence.forget_changes();
                self.outbox.whole = true;
            }
            None => self.outbox_ask(),
        }
        self.publish_share(ctx);
    }

    /// Asks the other nodes for their whole shares (and tells this node's) at the next
    /// publish.
    pub(super) fn outbox_ask(&mut self) {
        self.outbox.ask = true;
        self.outbox.whole = true;
    }

    /// Another node's share (or its changes), from the feed: merged into the roster; what
    /// the followers are shown waits in the coalescer for the tick, and what this node
    /// must answer or drop from its own share waits in the outbox for the next publish
    /// (which `apply_batch` arms).
    pub(super) fn merge_share(&mut self, share: NodePresence) {
        if share.node == self.node {
            return;
        }
        if share.ask {
            // Answered at the next publish, which `apply_batch` arms.
            self.outbox.whole = true;
        }
        let shown = if share.full {
            self.roster.replace_share(&share.node, &share.members)
        } else {
            share
                .members
                .iter()
                .filter_map(|(user, state)| {
                    let change = self.roster.remote(&share.node, user, *state)?;
                    Some((user.clone(), change))
                })
                .collect()
        };
        for (user, change) in shown {
            self.presence.keep(user, change);
        }
        for user in self.roster.take_left_here() {
            // Published by the next publish, which `apply_batch` arms.
            self.outbox.changes.push((user, HereState::Left));
        }
        self.roster_resized();
    }

    /// Whether the outbox waits for a publish that is not armed yet.
    pub(super) fn share_waiting(&self) -> bool {
        !self.outbox.armed && !self.outbox.is_empty()
    }

    /// Publishes what waits in the outbox now, if anything: at the tick, and before a post
    /// (so that the other nodes get a member's arrival before their first message).
    pub(super) fn publish_share(&mut self, ctx: &mut Context<Self>) {
        if self.outbox.is_empty() {
            return;
        }
        let outbox = std::mem::take(&mut self.outbox);
        let members = if outbox.whole {
            self.roster.local_share()
        } else {
            outbox.changes
        };
        let share = NodePresence::new(self.node.clone(), outbox.whole, outbox.ask, members);
        self.outbox.armed = outbox.armed;
        self.signal(Signal::Presence(share), ctx);
    }

    /// Makes sure a publish is due within [`PRESENCE_TICK`].
    pub(super) fn arm_publish(&mut self, ctx: &mut Context<Self>) {
        if self.outbox.armed {
            return;
        }
        self.outbox.armed = true;
        ctx.run_later(PRESENCE_TICK, |act, ctx| {
            act.outbox.armed = false;
            act.publish_share(ctx);
        });
    }

    /// Shows the followers `shown` (at the tick), and arms what must go out.
    fn show_all(&mut self, shown: Vec<(UserRef, PresenceChange)>, ctx: &mut Context<Self>) {
        for (user, change) in shown {
            self.presence.keep(user, change);
        }
        self.roster_resized();
        self.arm_tick(ctx);
    }
}
