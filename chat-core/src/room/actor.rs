//! `RoomActor`: one room (a channel or a private conversation). Owns the room's history,
//! its subscribed sessions and its members' presence, and fans every committed change out
//! to the subscribers in one order.
//!
//! Started by the directory on one of the engine's room workers. It commits posts,
//! deletions and signals to the broker and applies what comes back on the room's feed, so
//! the snapshot a joiner gets and the events that follow it come from the same sequence.
//! It never waits on a subscriber. A room nobody has followed for `Limits::room_idle`
//! stops and tells the directory, which starts it again (from the broker's stored history)
//! when someone asks for it.
//!
//! Presence is coalesced (`coalesce.rs`): one batch per follower per tick, or in a room
//! above `Limits::large_room` members only its counts.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::atomic::{AtomicI64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::prelude::*;
use tokio::sync::mpsc;

use super::coalescer::Coalescer;
use super::commit::{Commit, PostReply, UnderWay};
use super::history::History;
use super::outbox::Outbox;
use super::presence::Roster;
use crate::broker::{Broker, Change, NodeId, Proposal, Receipt, Signal, Stored};
use crate::delivery::entry::SharedEvents;
use crate::delivery::Subscriber;
use crate::error::ChatError;
use crate::event::Event;
use crate::limits::Limits;
use crate::model::{ChatMessage, MessageId, Room, RoomKey, SessionId, UserId};
use crate::telemetry;

/// The room mailbox's nominal capacity. Posts are not held back by it (they are sent with
/// `do_send`, so none is ever dropped or reordered): what bounds them is the user's
/// `message_rate` and each transport's limit on posts in flight per connection.
const MAILBOX_CAPACITY: usize = 1024;

/// At most this many changes from the feed are applied as one batch.
const FEED_BATCH: usize = 256;

/// A room that could not load its history answers with the error for this long before it
/// stops, so the requests already waiting learn why; the next request starts it afresh.
const FAILED_ROOM_LINGER: Duration = Duration::from_millis(100);

/// Numbers the directory lists without asking the actor.
#[derive(Debug, Default)]
pub(crate) struct RoomStats {
    pub(crate) members: AtomicUsize,
    pub(crate) last_activity_ms: AtomicI64,
}

/// Told to the directory when a room's actor stops (idle, or unable to load its history),
/// so that the next request for the room starts a new one.
#[derive(Message)]
#[rtype(result = "()")]
pub(crate) struct RoomStopped {
    pub(crate) room: RoomKey,
    pub(crate) addr: Addr<RoomActor>,
}

/// The actor serving one room.
pub(crate) struct RoomActor {
    pub(super) room: Room,
    pub(super) history: History,
    pub(super) subscribers: HashMap<SessionId, Arc<Subscriber>>,
    pub(super) roster: Roster,
    pub(super) last_typing: HashMap<UserId, Instant>,
    /// Presence changes waiting for the tick, and whether the room is large.
    pub(super) presence: Coalescer,
    /// This node, and what it has to tell the other nodes about its share of the room.
    pub(super) node: NodeId,
    pub(super) outbox: Outbox,
    pub(super) broker: Arc<dyn Broker>,
    pub(super) limits: Arc<Limits>,
    pub(super) stats: Arc<RoomStats>,
    directory: Recipient<RoomStopped>,
    /// Events of the feed batch being applied, with the user whose sessions skip each one,
    /// waiting for [`RoomActor::flush`]. Empty between handlers.
    pending: Vec<(Event, Option<UserId>)>,
    /// Posts already stored whose authors wait for the answer until this actor has applied
    /// them from its feed, in id order: once answered, a post is in the room's history for
    /// the author's next request (a `delete` of it, a `join`).
    pub(super) due: VecDeque<(Arc<ChatMessage>, PostReply)>,
    /// Since when nobody follows the room.
    idle_since: Option<Instant>,
    /// Why the room could not load its history; every request is answered with it.
    pub(super) failed: Option<ChatError>,
    /// Changes held back while a hole in the feed is filled from the store, in order.
    held: VecDeque<Change>,
    /// Commits this room started that still wait for the broker.
    pub(super) under_way: UnderWay,
}

impl RoomActor {
    pub(crate) fn new(
        room: Room,
        node: NodeId,
        broker: Arc<dyn Broker>,
        limits: Arc<Limits>,
        stats: Arc<RoomStats>,
        directory: Recipient<RoomStopped>,
    ) -> Self {
        RoomActor {
            history: History::new(limits.history),
            room,
            subscribers: HashMap::new(),
            roster: Roster::default(),
            last_typing: HashMap::new(),
            presence: Coalescer::default(),
            node,
            outbox: Outbox::default(),
            broker,
            limits,
            stats,
            directory,
            pending: Vec::new(),
            due: VecDeque::new(),
            idle_since: Some(Instant::now()),
            failed: None,
            held: VecDeque::new(),
            under_way: UnderWay::default(),
        }
    }

    /// Adds a subscriber (once) and relays the presence change it makes.
    pub(super) fn add_subscriber(&mut self, sub: Arc<Subscriber>, ctx: &mut Context<Self>) {
        let user = sub.user.clone();
        if self.subscribers.insert(sub.id, sub).is_some() {
            return;
        }
        self.idle_since = None;
        let moved = self.roster.session_added(&user);
        self.presence_moved(moved, ctx);
    }

    pub(super) fn remove_subscriber(
        &mut self,
        session: SessionId,
        parting: bool,
        ctx: &mut Context<Self>,
    ) {
        let Some(sub) = self.subscribers.remove(&session) else {
            return;
        };
        if self.subscribers.is_empty() {
            self.idle_since = Some(Instant::now());
        }
        let moved = self.roster.session_removed(sub.user.id, parting);
        self.presence_moved(moved, ctx);
    }

    /// Queues `event` for every subscriber (but the sessions of `except`); `flush` sends it.
    pub(super) fn fan_out(&mut self, event: Event, except: Option<UserId>) {
        self.pending.push((event, except));
    }

    /// Sends the pending events, subscriber by subscriber, and drops the subscribers that
    /// could not take them. Giving one subscriber the whole batch at once costs it one lock
    /// and wakes its task (on another thread) once per batch instead of once per event.
    pub(super) fn flush(&mut self, ctx: &mut Context<Self>) {
        if self.pending.is_empty() {
            return;
        }
        let mut pending = std::mem::take(&mut self.pending);
        let dropped = self.deliver(&pending);
        // Keep the buffer for the next batch.
        pending.clear();
        self.pending = pending;
        for id in dropped {
            self.remove_subscriber(id, false, ctx);
        }
    }

    /// Gives each subscriber the pending events meant for it; returns the sessions that
    /// could not take them.
    fn deliver(&self, pending: &[(Event, Option<UserId>)]) -> Vec<SessionId> {
        let posted = pending
            .iter()
            .filter(|(event, _)| matches!(event, Event::Posted(_)))
            .count();
        telemetry::delivered(posted, self.subscribers.len());
        let shared = self.shared_batch(pending);
        let skipping: Vec<UserId> = pending.iter().filter_map(|(_, except)| *except).collect();
        let mut dropped = Vec::new();
        for (id, sub) in &self.subscribers {
            let delivered = match &shared {
                Some(shared) if !skipping.contains(&sub.user.id) => sub.deliver_shared(shared),
                _ => sub.deliver_all(
                    pending
                        .iter()
                        .filter(|(_, except)| *except != Some(sub.user.id))
                        .map(|(event, _)| event.clone().into()),
                ),
            };
            if !delivered {
                dropped.push(*id);
            }
        }
        dropped
    }

    /// The pending events built once for every subscriber who gets them all, when there
    /// are several of both: each such subscriber's queue then takes one entry, not one
    /// per event.
    fn shared_batch(&self, pending: &[(Event, Option<UserId>)]) -> Option<Arc<SharedEvents>> {
        if pending.len() < 2 || self.subscribers.len() < 2 {
            return None;
        }
        Some(SharedEvents::new(
            pending
                .iter()
                .map(|(event, _)| event.clone().into())
                .collect(),
        ))
    }

    /// Commits an ephemeral signal; it reaches the subscribers through the feed.
    pub(super) fn signal(&mut self, signal: Signal, ctx: &mut Context<Self>) {
        match Commit::start(
            &self.broker,
            &self.room,
            Proposal::Signal(signal),
            &self.under_way,
        ) {
            Commit::Settled(result) => self.relayed(result),
            Commit::UnderWay(commit) => {
                ctx.spawn(
                    commit
                        .into_actor(self)
                        .map(|result, act, _| act.relayed(result)),
                );
            }
        }
    }

    fn relayed(&self, result: Result<Receipt, ChatError>) {
        if let Err(e) = result {
            tracing::warn!(room = ?self.room.key(), error = %e, "signal not relayed");
        }
    }

    fn apply(&mut self, change: Change) {
        if !matches!(change, Change::Signal(Signal::Presence(..))) {
            // Presence that happened before this change goes out before it.
            self.release_presence();
        }
        match change {
            Change::Posted(message) => {
                if self.history.push(message.clone()) {
                    self.stats
                        .last_activity_ms
                        .store(message.sent_at.timestamp_millis(), Ordering::Relaxed);
                    self.fan_out(Event::Posted(message), None);
                }
            }
            Change::Deleted(id) => {
                self.history.remove(id);
                let room = self.room.clone();
                self.fan_out(Event::Deleted { room, id }, None);
            }
            Change::Updated(message) => self.update(message),
            Change::Signal(Signal::Presence(share)) => self.merge_share(share),
            Change::Resync(stored) => {
                // Presence published while the broker was away is lost too: the room
                // asks every node for its whole share again (at the next publish).
                self.outbox_ask();
                self.resync(stored);
            }
            Change::Signal(Signal::Typing(user)) => {
                let except = Some(user.id);
                let room = self.room.clone();
                self.fan_out(Event::Typing { room, user }, except);
            }
        }
    }

    /// Keeps a message's new state in place of the old one and tells the followers what
    /// changed: [`Event::Edited`] for its text, [`Event::Reacted`] for its reactions.
    /// Nothing happens for a message no longer kept (deleted, evicted) or a state already
    /// applied.
    fn update(&mut self, message: Arc<ChatMessage>) {
        let Some(old) = self.history.replace(message.clone()) else {
            return;
        };
        if old.text != message.text || old.edited_at != message.edited_at {
            self.fan_out(Event::Edited(message.clone()), None);
        }
        if old.reactions != message.reactions {
            self.fan_out(Event::Reacted(message), None);
        }
    }

    /// Catches up with the store's history (after the broker's outage, or to fill a hole
    /// in the feed): deletions first (local messages in the stored range that are gone),
    /// then edits and reactions of kept messages, then new messages, each fanned out like
    /// a live change. Messages already applied are ignored by id.
    ///
    /// The store vouches for every id from its first kept message to its last id: one
    /// missing there was deleted, so a client is told so when it resumes, and nothing was
    /// lost. Ids below that range that this room never saw are unknown: lost, never
    /// deleted. The range ends at the snapshot's `last_id`: a broker may read the store
    /// before a change is stored and deliver the snapshot after it, so a local message
    /// above that id is newer than the snapshot, not deleted.
    fn resync(&mut self, stored: Stored) {
        let first = stored.messages.first().map_or(stored.last_id + 1, |m| m.id);
        let kept: HashSet<MessageId> = stored.messages.iter().map(|m| m.id).collect();
        let gone: Vec<MessageId> = self
            .history
            .all()
            .iter()
            .map(|m| m.id)
            .filter(|id| (first..=stored.last_id).contains(id) && !kept.contains(id))
            .collect();
        for id in gone {
            self.apply(Change::Deleted(id));
        }
        if first > self.history.last_id() + 1 {
            // Given and gone from the store (deleted or evicted) before this room saw them.
            self.lose_through(first - 1);
        }
        for message in stored.messages {
            if self.history.get(message.id).is_some() {
                self.apply(Change::Updated(message));
            } else {
                self.apply(Change::Posted(message));
            }
        }
        // The newest ids, when deleted before this room saw them.
        self.history.advance_to(stored.last_id);
    }

    /// Ids up to `id` that this room never saw are lost: a client that missed them is
    /// told of a gap (now, and when it joins again), never that they were deleted.
    fn lose_through(&mut self, id: MessageId) {
        if id <= self.history.last_id() {
            return;
        }
        tracing::warn!(room = ?self.room.key(), from = self.history.last_id() + 1, to = id, "messages lost to this room's followers");
        self.history.forget_through(id);
        let room = self.room.clone();
        self.fan_out(Event::Gap { room }, None);
    }

    /// Whether `change` shows a hole: a message with ids between the last one applied and
    /// it that this room never got, or the deletion, edit or reaction of a message it
    /// never got (applied as is, it would be forgotten, and a snapshot read before it
    /// would bring the message back, or miss the change).
    fn leaves_hole(&self, change: &Change) -> bool {
        let last = self.history.last_id();
        match change {
            Change::Posted(m) => m.id > last + 1,
            Change::Deleted(id) => *id > last,
            Change::Updated(m) => m.id > last,
            _ => false,
        }
    }

    /// Applies a batch from the feed. At a hole it holds that change and the rest back,
    /// and reads the store to fill the hole first.
    fn apply_batch(&mut self, changes: impl IntoIterator<Item = Change>, ctx: &mut Context<Self>) {
        let mut changes = changes.into_iter();
        while let Some(change) = changes.next() {
            if self.leaves_hole(&change) {
                self.held.push_back(change);
                self.held.extend(changes);
                self.flush(ctx);
                self.fill_hole(ctx);
                return;
            }
            self.apply(change);
        }
        self.after_feed(ctx);
    }

    /// What follows a batch from the feed: send what it queued, answer the posts it
    /// applied, and arm the presence tick and publish when they have something to send.
    fn after_feed(&mut self, ctx: &mut Context<Self>) {
        self.flush(ctx);
        self.answer_due();
        self.arm_tick_if_due(ctx);
        if self.share_waiting() {
            self.arm_publish(ctx);
        }
    }

    /// Reads the store and applies what it has of the hole, holding every other change
    /// (and request: `wait` holds the mailbox) until then; what the store no longer has is
    /// lost. Then the held changes are applied in order.
    fn fill_hole(&mut self, ctx: &mut Context<Self>) {
        let (broker, room) = (self.broker.clone(), self.room.clone());
        let read = async move { broker.stored(&room).await };
        ctx.wait(read.into_actor(self).map(|result, act, ctx| {
            let held: Vec<Change> = act.held.drain(..).collect();
            match result {
                Ok(stored) => act.resync(stored),
                Err(e) => {
                    tracing::warn!(room = ?act.room.key(), error = %e, "cannot read the store to fill a hole");
                }
            }
            for change in held {
                if let Change::Posted(m) = &change {
                    if m.id > act.history.last_id() + 1 {
                        act.lose_through(m.id - 1);
                    }
                }
                act.apply(change);
            }
            act.after_feed(ctx);
        }));
    }

    /// Answers the posts that the feed has applied to the history by now.
    pub(super) fn answer_due(&mut self) {
        while let Some((message, _)) = self.due.front() {
            if message.id > self.history.last_id() {
                break;
            }
            if let Some((message, reply)) = self.due.pop_front() {
                // The poster may have stopped waiting; the message is stored either way.
                let _ = reply.send(Ok(message));
            }
        }
    }

    /// Stops the room when nobody has followed it for `Limits::room_idle`, no post waits
    /// for its answer and no commit for the broker; forgets typing throttles that have run
    /// out meanwhile.
    fn check_idle(&mut self, ctx: &mut Context<Self>) {
        let now = Instant::now();
        let interval = self.limits.typing_interval;
        self.last_typing
            .retain(|_, at| now.saturating_duration_since(*at) < interval);
        let idle = self
            .idle_since
            .is_some_and(|since| now.saturating_duration_since(since) >= self.limits.room_idle);
        if idle && self.due.is_empty() && !self.under_way.any() {
            tracing::debug!(room = ?self.room.key(), "stopping an idle room");
            ctx.stop();
        }
    }

    /// The room's history could not be loaded: answer with `error` for a moment, then stop.
    fn fail(&mut self, error: ChatError, ctx: &mut Context<Self>) {
        tracing::error!(room = ?self.room.key(), error = %error, "cannot load the room's history");
        self.failed = Some(error);
        ctx.run_later(FAILED_ROOM_LINGER, |_, ctx| ctx.stop());
    }
}

impl Actor for RoomActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        telemetry::room_started();
        ctx.set_mailbox_capacity(MAILBOX_CAPACITY);
        // Nothing else is handled until the room's stored history is loaded and its feed
        // attached: `wait` holds the mailbox.
        let (broker, room) = (self.broker.clone(), self.room.clone());
        let follow = async move { broker.follow(&room).await };
        ctx.wait(
            follow
                .into_actor(self)
                .map(|result, act, ctx| match result {
                    Ok(follow) => {
                        act.history.load(&follow.stored);
                        ctx.add_stream(feed_stream(follow.changes));
                        act.load_shares(follow.presence, ctx);
                    }
                    Err(e) => act.fail(e, ctx),
                }),
        );
        let every = (self.limits.room_idle / 4).max(Duration::from_millis(10));
        ctx.run_interval(every, |act, ctx| act.check_idle(ctx));
    }

    fn stopped(&mut self, ctx: &mut Context<Self>) {
        telemetry::room_stopped();
        self.directory.do_send(RoomStopped {
            room: self.room.key(),
            addr: ctx.address(),
        });
    }
}

/// The room's feed as batches: every change already waiting (up to `FEED_BATCH`) comes
/// out together, so a burst of posts is fanned out in one pass.
fn feed_stream(
    rx: mpsc::UnboundedReceiver<Change>,
) -> impl futures_util::Stream<Item = Vec<Change>> {
    futures_util::stream::unfold(rx, |mut rx| async move {
        let mut batch = Vec::new();
        match rx.recv_many(&mut batch, FEED_BATCH).await {
            0 => None,
            _ => Some((batch, rx)),
        }
    })
}

impl StreamHandler<Vec<Change>> for RoomActor {
    fn handle(&mut self, changes: Vec<Change>, ctx: &mut Context<Self>) {
        self.apply_batch(changes, ctx);
    }
}
