//! `ChannelActor`: one room (a channel or a private conversation). Owns the room's
//! history, its subscribed sessions and its members' presence, and fans every committed
//! change out to the subscribers in one order.
//!
//! Started by the registry on one of the engine's arbiters. Sessions call it through the
//! messages below. It commits posts, deletions and signals to the broker and applies what
//! comes back on the room's feed, so that the snapshot a joiner gets and the events that
//! follow it come from the same sequence. It never waits on a subscriber.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::atomic::{AtomicI64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;

use actix::prelude::*;
use tokio::sync::{mpsc, oneshot};

use crate::broker::{Broker, Change, Proposal, Receipt, Signal};
use crate::error::ChatError;
use crate::event::{Event, PresenceChange};
use crate::history::History;
use crate::limits::Limits;
use crate::model::{ChatMessage, Joined, Member, MessageId, Room, SessionId, UserId, UserRef};
use crate::subscriber::Subscriber;

/// The channel mailbox's nominal capacity. Posts are not held back by it (they are sent
/// with `do_send`, so none is ever dropped or reordered): what bounds them is the user's
/// `message_rate` and each transport's limit on posts in flight per connection.
const MAILBOX_CAPACITY: usize = 1024;

/// At most this many changes from the feed are applied as one batch.
const FEED_BATCH: usize = 256;

/// Numbers the registry lists without asking the actor.
#[derive(Debug, Default)]
pub(crate) struct ChannelStats {
    pub(crate) members: AtomicUsize,
    pub(crate) last_activity_ms: AtomicI64,
}

#[derive(Debug)]
struct MemberState {
    user: UserRef,
    /// Sessions of this user subscribed here; 0 means offline.
    sessions: usize,
}

/// The actor serving one room.
pub(crate) struct ChannelActor {
    room: Room,
    history: History,
    subscribers: HashMap<SessionId, Arc<Subscriber>>,
    members: HashMap<UserId, MemberState>,
    last_typing: HashMap<UserId, Instant>,
    broker: Arc<dyn Broker>,
    limits: Arc<Limits>,
    stats: Arc<ChannelStats>,
    /// Events of the feed batch being applied, with the user whose sessions skip each one,
    /// waiting for [`ChannelActor::flush`]. Empty between handlers.
    pending: Vec<(Event, Option<UserId>)>,
    /// Posts already stored whose authors wait for the answer until this actor has applied
    /// them from its feed, in id order: once answered, a post is in the room's history for
    /// the author's next request (a `delete` of it, a `join`).
    due: VecDeque<(Arc<ChatMessage>, PostReply)>,
}

impl ChannelActor {
    pub(crate) fn new(
        room: Room,
        broker: Arc<dyn Broker>,
        limits: Arc<Limits>,
        stats: Arc<ChannelStats>,
    ) -> Self {
        ChannelActor {
            history: History::new(limits.history),
            room,
            subscribers: HashMap::new(),
            members: HashMap::new(),
            last_typing: HashMap::new(),
            broker,
            limits,
            stats,
            pending: Vec::new(),
            due: VecDeque::new(),
        }
    }

    /// Queues `event` for every subscriber (but the sessions of `except`); `flush` sends it.
    fn fan_out(&mut self, event: Event, except: Option<UserId>) {
        self.pending.push((event, except));
    }

    /// Sends the pending events, subscriber by subscriber, and drops the subscribers that
    /// could not take them. Giving one subscriber the whole batch at once costs it one lock
    /// and wakes its task (on another thread) once per batch instead of once per event.
    fn flush(&mut self, ctx: &mut Context<Self>) {
        if self.pending.is_empty() {
            return;
        }
        let mut pending = std::mem::take(&mut self.pending);
        let mut dropped = Vec::new();
        for (id, sub) in &self.subscribers {
            let wanted = pending
                .iter()
                .filter(|(_, except)| *except != Some(sub.user.id))
                .map(|(event, _)| event.clone().into());
            if !sub.deliver_all(wanted) {
                dropped.push(*id);
            }
        }
        // Keep the buffer for the next batch.
        pending.clear();
        self.pending = pending;
        for id in dropped {
            self.remove_subscriber(id, false, ctx);
        }
    }

    fn remove_subscriber(&mut self, session: SessionId, parting: bool, ctx: &mut Context<Self>) {
        let Some(sub) = self.subscribers.remove(&session) else {
            return;
        };
        let user = sub.user.id;
        let Some(member) = self.members.get_mut(&user) else {
            return;
        };
        member.sessions = member.sessions.saturating_sub(1);
        if member.sessions > 0 {
            return;
        }
        let who = member.user.clone();
        let change = if parting {
            self.members.remove(&user);
            self.stats
                .members
                .store(self.members.len(), Ordering::Relaxed);
            PresenceChange::Left
        } else {
            PresenceChange::Offline
        };
        self.signal(Signal::Presence(who, change), ctx);
    }

    /// Commits an ephemeral signal; it reaches the subscribers through the feed.
    fn signal(&mut self, signal: Signal, ctx: &mut Context<Self>) {
        let commit = self.broker.commit(&self.room, Proposal::Signal(signal));
        ctx.spawn(commit.into_actor(self).map(|result, act, _| {
            if let Err(e) = result {
                tracing::warn!(room = ?act.room.key(), error = %e, "signal not relayed");
            }
        }));
    }

    fn members_list(&self) -> Vec<Member> {
        let mut list: Vec<Member> = self
            .members
            .values()
            .map(|m| Member {
                user: m.user.clone(),
                online: m.sessions > 0,
            })
            .collect();
        list.sort_by(|a, b| {
            b.online
                .cmp(&a.online)
                .then_with(|| a.user.name.cmp(&b.user.name))
        });
        list
    }

    fn apply(&mut self, change: Change) {
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
            Change::Signal(Signal::Presence(user, change)) => {
                let room = self.room.clone();
                self.fan_out(Event::Presence { room, user, change }, None);
            }
            Change::Resync(stored) => self.resync(stored),
            Change::Signal(Signal::Typing(user)) => {
                let except = Some(user.id);
                let room = self.room.clone();
                self.fan_out(Event::Typing { room, user }, except);
            }
        }
    }
}

impl ChannelActor {
    /// Catches up with the stored history after the broker's outage: deletions first
    /// (local messages in the stored range that are gone), then new messages, each fanned
    /// out like a live change. Messages already applied are ignored by id.
    fn resync(&mut self, stored: Vec<Arc<ChatMessage>>) {
        if let Some(first) = stored.first().map(|m| m.id) {
            let kept: HashSet<MessageId> = stored.iter().map(|m| m.id).collect();
            let gone: Vec<MessageId> = self
                .history
                .all()
                .iter()
                .map(|m| m.id)
                .filter(|id| *id >= first && !kept.contains(id))
                .collect();
            for id in gone {
                self.apply(Change::Deleted(id));
            }
        }
        for message in stored {
            self.apply(Change::Posted(message));
        }
    }
}

impl Actor for ChannelActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        ctx.set_mailbox_capacity(MAILBOX_CAPACITY);
        // Nothing else is handled until the room's stored history is loaded and its feed
        // attached: `wait` holds the mailbox.
        let follow = self.broker.follow(&self.room);
        ctx.wait(follow.into_actor(self).map(|result, act, ctx| match result {
            Ok(follow) => {
                for message in follow.messages {
                    act.history.push(message);
                }
                ctx.add_stream(feed_stream(follow.changes));
            }
            Err(e) => {
                tracing::error!(room = ?act.room.key(), error = %e, "cannot follow room; stopping it");
                ctx.stop();
            }
        }));
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

impl StreamHandler<Vec<Change>> for ChannelActor {
    fn handle(&mut self, changes: Vec<Change>, ctx: &mut Context<Self>) {
        for change in changes {
            self.apply(change);
        }
        self.flush(ctx);
        self.answer_due();
    }
}

/// Subscribe a session and get the room's snapshot, atomically.
#[derive(Message)]
#[rtype(result = "Result<Joined, ChatError>")]
pub(crate) struct Subscribe {
    pub(crate) subscriber: Arc<Subscriber>,
    /// The last id the client saw, to resume after; `None` for the whole history.
    pub(crate) after: Option<MessageId>,
    /// Also queue the replayed messages as events: for a session that follows a private
    /// room it never asked for, which another node opened with messages already in it.
    pub(crate) deliver_replay: bool,
}

impl Handler<Subscribe> for ChannelActor {
    type Result = Result<Joined, ChatError>;

    fn handle(&mut self, msg: Subscribe, ctx: &mut Context<Self>) -> Self::Result {
        let sub = msg.subscriber;
        let session = sub.id;
        if sub.is_closed() {
            return Err(ChatError::SessionClosed);
        }
        let user = sub.user.clone();
        if self.subscribers.insert(sub.id, sub).is_none() {
            let is_new = !self.members.contains_key(&user.id);
            let member = self.members.entry(user.id).or_insert_with(|| MemberState {
                user: user.clone(),
                sessions: 0,
            });
            member.sessions += 1;
            let change = if is_new {
                Some(PresenceChange::Joined)
            } else if member.sessions == 1 {
                Some(PresenceChange::Online)
            } else {
                None
            };
            self.stats
                .members
                .store(self.members.len(), Ordering::Relaxed);
            if let Some(change) = change {
                self.signal(Signal::Presence(user, change), ctx);
            }
        }
        let replay = self.history.replay(msg.after);
        if msg.deliver_replay {
            if let Some(sub) = self.subscribers.get(&session) {
                for message in &replay.messages {
                    sub.deliver(Event::Posted(message.clone()));
                }
            }
        }
        Ok(Joined {
            room: self.room.clone(),
            messages: replay.messages,
            gap: replay.gap,
            deleted: replay.deleted,
            last_id: self.history.last_id(),
            members: self.members_list(),
        })
    }
}

/// Stop delivering to a session; `parting` when the user left on purpose.
#[derive(Message)]
#[rtype(result = "()")]
pub(crate) struct Unsubscribe {
    pub(crate) session: SessionId,
    pub(crate) parting: bool,
}

impl Handler<Unsubscribe> for ChannelActor {
    type Result = ();

    fn handle(&mut self, msg: Unsubscribe, ctx: &mut Context<Self>) {
        self.remove_subscriber(msg.session, msg.parting, ctx);
    }
}

/// Post a validated message. Sent with `do_send` and answered on `reply`: unlike a request
/// whose caller stopped waiting, it is handled even when nobody awaits the answer any more,
/// so a post handed to the room is never silently taken back.
#[derive(Message)]
#[rtype(result = "()")]
pub(crate) struct Post {
    pub(crate) author: UserRef,
    pub(crate) text: String,
    pub(crate) reply: PostReply,
}

/// Where a post's outcome goes: the poster's [`crate::PendingPost`].
pub(crate) type PostReply = oneshot::Sender<Result<Arc<ChatMessage>, ChatError>>;

impl Handler<Post> for ChannelActor {
    type Result = ();

    fn handle(&mut self, msg: Post, ctx: &mut Context<Self>) -> Self::Result {
        let mut commit = self.broker.commit(
            &self.room,
            Proposal::Post {
                author: msg.author,
                text: msg.text,
            },
        );
        // The in-memory broker commits at once: settle now, without a task per post. A
        // commit still under way (Redis) is awaited first; polling it once here does no
        // harm (the next poll registers the real waker).
        let mut probe = std::task::Context::from_waker(futures_util::task::noop_waker_ref());
        match commit.as_mut().poll(&mut probe) {
            std::task::Poll::Ready(receipt) => self.settle(msg.reply, receipt),
            std::task::Poll::Pending => {
                ctx.spawn(
                    commit
                        .into_actor(self)
                        .map(move |receipt, act, _| act.settle(msg.reply, receipt)),
                );
            }
        }
    }
}

impl ChannelActor {
    /// Answers a committed post once this room has applied it from its feed (at once if
    /// it has, or if the commit failed).
    fn settle(&mut self, reply: PostReply, receipt: Result<Receipt, ChatError>) {
        match receipt {
            Ok(Receipt::Posted(message)) => {
                // Kept in id order: commits under way may finish out of order.
                let at = self.due.partition_point(|(m, _)| m.id < message.id);
                self.due.insert(at, (message, reply));
                self.answer_due();
            }
            Ok(Receipt::Done) => {
                let refused = ChatError::Unavailable("broker did not store the message".into());
                let _ = reply.send(Err(refused));
            }
            Err(e) => {
                let _ = reply.send(Err(e));
            }
        }
    }

    /// Answers the posts that the feed has applied to the history by now.
    fn answer_due(&mut self) {
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
}

/// Delete a message on behalf of `by`.
#[derive(Message)]
#[rtype(result = "Result<(), ChatError>")]
pub(crate) struct Delete {
    pub(crate) id: MessageId,
    pub(crate) by: UserId,
}

impl Handler<Delete> for ChannelActor {
    type Result = ResponseFuture<Result<(), ChatError>>;

    fn handle(&mut self, msg: Delete, _: &mut Context<Self>) -> Self::Result {
        // Refuse what we can tell locally; the broker checks again against its copy.
        let local = match self.history.get(msg.id) {
            None => Err(ChatError::NoSuchMessage(msg.id)),
            Some(m) if m.author.id != msg.by => Err(ChatError::NotAuthor(msg.id)),
            Some(_) => Ok(()),
        };
        let commit = local.map(|()| {
            self.broker.commit(
                &self.room,
                Proposal::Delete {
                    id: msg.id,
                    by: msg.by,
                },
            )
        });
        Box::pin(async move { commit?.await.map(|_| ()) })
    }
}

/// A member is typing; returns whether the notice was relayed (false when throttled).
#[derive(Message)]
#[rtype(result = "bool")]
pub(crate) struct Typing {
    pub(crate) user: UserRef,
}

impl Handler<Typing> for ChannelActor {
    type Result = bool;

    fn handle(&mut self, msg: Typing, ctx: &mut Context<Self>) -> bool {
        let now = Instant::now();
        let throttled = self
            .last_typing
            .get(&msg.user.id)
            .is_some_and(|at| now.saturating_duration_since(*at) < self.limits.typing_interval);
        if throttled {
            return false;
        }
        self.last_typing.insert(msg.user.id, now);
        self.signal(Signal::Typing(msg.user), ctx);
        true
    }
}

/// List the members with their online state.
#[derive(Message)]
#[rtype(result = "Vec<Member>")]
pub(crate) struct Members;

impl Handler<Members> for ChannelActor {
    type Result = MessageResult<Members>;

    fn handle(&mut self, _: Members, _: &mut Context<Self>) -> Self::Result {
        MessageResult(self.members_list())
    }
}
