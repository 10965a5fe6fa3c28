//! How posts reach the rooms of one room worker from the threads of the callers: through
//! the worker's [`Handoff`], gathered while the caller's runtime works through what is
//! ready and carried over as one batch.
//!
//! A busy transport thread reads many clients' posts in one pass of its runtime; put
//! into the rooms' mailboxes one by one, each post could wake the room worker on its own,
//! and each wake-up is a switch between threads (two, when both share a core: the worker
//! runs its one post and sleeps again). Through the handoff the whole pass's posts cross
//! with one wake-up, and on the worker one task puts each into its room's mailbox.
//!
//! The price is latency: a post waits for the rest of its pass. A fan-out to a thousand
//! sessions on the same thread would make that pass long, but their relay wakes them in
//! turns (`delivery::relay`), and the pass ends with the turn. Crossing at once
//! instead makes the worker preempt a transport thread that shares its core at every
//! post, which costs more (docs/performance.md, "posts cross to a room worker in
//! batches", has both, and the variants in between that were measured).
//!
//! A session's posts keep their order: they enter one queue per worker in the order they
//! were made. Only posts come this way: every other request is awaited by its caller,
//! which then waits for a reply, not for a batch.

use std::sync::Arc;
use std::vec::Drain;

use actix::Addr;
use actix_rt::ArbiterHandle;

use super::{Post, RoomActor};
use crate::handoff::Handoff;

/// Posts on their way to the rooms of one worker.
pub(crate) type PostHandoff = Handoff<(Arc<Addr<RoomActor>>, Post)>;

/// The handoff of posts to the rooms `arbiter` runs.
pub(crate) fn post_handoff(arbiter: &ArbiterHandle) -> Arc<PostHandoff> {
    // Whole batches: putting a post into a mailbox is quick, and the worker runs no
    // sockets that could wait behind it.
    let (handoff, receiving) = Handoff::new(
        usize::MAX,
        |batch: Drain<'_, (Arc<Addr<RoomActor>>, Post)>| {
            for (room, post) in batch {
                // On the rooms' own thread: a wake-up without a system call. (A batch that
                // could not cross goes to a stopped worker's rooms, which drop it: each post
                // is then answered `shutting_down`.)
                room.do_send(post);
            }
        },
    );
    arbiter.spawn(receiving);
    handoff
}

/// A room's actor and the handoff to the worker it runs on.
#[derive(Clone)]
pub(crate) struct RoomAddr {
    /// Shared rather than cloned per post: cloning an actix `Addr` allocates.
    actor: Arc<Addr<RoomActor>>,
    handoff: Arc<PostHandoff>,
}

impl RoomAddr {
    pub(crate) fn new(actor: Addr<RoomActor>, handoff: Arc<PostHandoff>) -> Self {
        RoomAddr {
            actor: Arc::new(actor),
            handoff,
        }
    }

    /// Queues `post` for the room, carried over with the caller's batch.
    pub(crate) fn post(&self, post: Post) {
        self.handoff.send((self.actor.clone(), post));
    }
}

impl std::ops::Deref for RoomAddr {
    type Target = Addr<RoomActor>;

    fn deref(&self) -> &Addr<RoomActor> {
        &self.actor
    }
}
