//! What sessions and the directory ask a room, each message next to its handler: subscribe
//! (with the snapshot), unsubscribe, post, delete, typing, members.
//!
//! Every handler first refuses with the room's load error if it has one, so a room that
//! could not load its history says why instead of answering as if it were empty.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::Poll;
use std::time::Instant;

use actix::prelude::*;
use tokio::sync::oneshot;

use super::actor::RoomActor;
use crate::broker::{Broker, Proposal, Receipt, Signal};
use crate::delivery::Subscriber;
use crate::error::ChatError;
use crate::event::Event;
use crate::model::{ChatMessage, Joined, Member, MessageId, Room, SessionId, UserId, UserRef};

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

impl Handler<Subscribe> for RoomActor {
    type Result = Result<Joined, ChatError>;

    fn handle(&mut self, msg: Subscribe, ctx: &mut Context<Self>) -> Self::Result {
        if let Some(error) = &self.failed {
            return Err(error.clone());
        }
        let sub = msg.subscriber;
        if sub.is_closed() {
            return Err(ChatError::SessionClosed);
        }
        let replay = self.history.replay(msg.after);
        if msg.deliver_replay {
            for message in &replay.messages {
                sub.deliver(Event::Posted(message.clone()));
            }
        }
        self.add_subscriber(sub, ctx);
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

impl Handler<Unsubscribe> for RoomActor {
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

impl Handler<Post> for RoomActor {
    type Result = ();

    fn handle(&mut self, msg: Post, ctx: &mut Context<Self>) -> Self::Result {
        if let Some(error) = &self.failed {
            let _ = msg.reply.send(Err(error.clone()));
            return;
        }
        let proposal = Proposal::Post {
            author: msg.author,
            text: msg.text,
        };
        // The in-memory broker commits at once: settle now, without a task per post. Only a
        // commit still under way (Redis) gets a task on the room's context.
        match Commit::start(&self.broker, &self.room, proposal) {
            Commit::Settled(receipt) => self.settle(msg.reply, receipt),
            Commit::UnderWay(commit) => {
                ctx.spawn(
                    commit
                        .into_actor(self)
                        .map(move |receipt, act, _| act.settle(msg.reply, receipt)),
                );
            }
        }
    }
}

/// A commit as [`Commit::start`] leaves it.
pub(super) enum Commit {
    /// The broker decided on the first poll (the in-memory broker always does).
    Settled(Result<Receipt, ChatError>),
    /// Still waiting on the broker's server: the caller spawns it (on the room's context,
    /// or as a task of its own), and the first poll there registers the real waker.
    UnderWay(Pin<Box<dyn Future<Output = Result<Receipt, ChatError>> + Send>>),
}

impl Commit {
    /// Hands `proposal` for `room` to `broker` and polls the commit once, here, with a
    /// no-op waker.
    ///
    /// A broker's `async fn` does nothing until it is polled, and a spawned task is polled
    /// only after the room has handled every message waiting in its mailbox, and not
    /// always in the order the tasks were spawned. Polling here makes the in-memory broker
    /// commit while the handler runs, so a room's posts, deletions and signals reach its
    /// feed in the order its handlers made them. A commit still under way has only seen a
    /// waker that wakes nobody; the task it is spawned into polls it again with the real
    /// one.
    pub(super) fn start(broker: &Arc<dyn Broker>, room: &Room, proposal: Proposal) -> Commit {
        let (broker, room) = (broker.clone(), room.clone());
        let mut commit = Box::pin(async move { broker.commit(&room, proposal).await });
        let mut probe = std::task::Context::from_waker(futures_util::task::noop_waker_ref());
        match commit.as_mut().poll(&mut probe) {
            Poll::Ready(receipt) => Commit::Settled(receipt),
            Poll::Pending => Commit::UnderWay(commit),
        }
    }
}

impl RoomActor {
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
}

/// Delete a message on behalf of `by`.
#[derive(Message)]
#[rtype(result = "Result<(), ChatError>")]
pub(crate) struct Delete {
    pub(crate) id: MessageId,
    pub(crate) by: UserId,
}

impl Handler<Delete> for RoomActor {
    type Result = ResponseFuture<Result<(), ChatError>>;

    fn handle(&mut self, msg: Delete, _: &mut Context<Self>) -> Self::Result {
        // Refuse what we can tell locally; the broker checks again against its copy.
        let local = match (&self.failed, self.history.get(msg.id)) {
            (Some(error), _) => Err(error.clone()),
            (None, None) => Err(ChatError::NoSuchMessage(msg.id)),
            (None, Some(m)) if m.author.id != msg.by => Err(ChatError::NotAuthor(msg.id)),
            (None, Some(_)) => Ok(()),
        };
        let commit = local.map(|()| {
            let proposal = Proposal::Delete {
                id: msg.id,
                by: msg.by,
            };
            Commit::start(&self.broker, &self.room, proposal)
        });
        Box::pin(async move {
            match commit? {
                Commit::Settled(receipt) => receipt.map(|_| ()),
                Commit::UnderWay(commit) => commit.await.map(|_| ()),
            }
        })
    }
}

/// A member is typing; returns whether the notice was relayed (false when throttled).
#[derive(Message)]
#[rtype(result = "bool")]
pub(crate) struct Typing {
    pub(crate) user: UserRef,
}

impl Handler<Typing> for RoomActor {
    type Result = bool;

    fn handle(&mut self, msg: Typing, ctx: &mut Context<Self>) -> bool {
        let now = Instant::now();
        let throttled = self
            .last_typing
            .get(&msg.user.id)
            .is_some_and(|at| now.saturating_duration_since(*at) < self.limits.typing_interval);
        if throttled || self.failed.is_some() {
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

impl Handler<Members> for RoomActor {
    type Result = MessageResult<Members>;

    fn handle(&mut self, _: Members, _: &mut Context<Self>) -> Self::Result {
        MessageResult(self.members_list())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::broker::{Change, MemoryBroker};
    use crate::limits::Limits;
    use crate::validate;

    /// What lets a post settle without a task, and keeps a room's feed in the order of its
    /// handlers: the in-memory broker commits on the first poll, inside `Commit::start`.
    #[tokio::test]
    async fn the_memory_broker_settles_on_the_first_poll_in_call_order() {
        let limits = Limits::default();
        let broker: Arc<dyn Broker> = Arc::new(MemoryBroker::new(&limits));
        let room = Room::Channel(validate::channel_name("c", &limits).unwrap());
        let mut follow = broker.follow(&room).await.unwrap();
        let alice = UserRef {
            id: UserId(1),
            name: Arc::from("alice"),
        };

        let typing = Commit::start(
            &broker,
            &room,
            Proposal::Signal(Signal::Typing(alice.clone())),
        );
        let post = Commit::start(
            &broker,
            &room,
            Proposal::Post {
                author: alice,
                text: "hi".into(),
            },
        );
        assert!(matches!(typing, Commit::Settled(Ok(Receipt::Done))));
        assert!(matches!(post, Commit::Settled(Ok(Receipt::Posted(ref m))) if m.id == 1));
        // Already on the feed, in the order the commits were started.
        assert!(matches!(
            follow.changes.try_recv(),
            Ok(Change::Signal(Signal::Typing(_)))
        ));
        assert!(matches!(follow.changes.try_recv(), Ok(Change::Posted(m)) if m.id == 1));
    }
}
