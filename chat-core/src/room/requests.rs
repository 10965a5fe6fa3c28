//! What sessions and the directory ask a room, each message next to its handler: subscribe
//! (with the snapshot), unsubscribe, post, delete, typing, members.
//!
//! Every handler first refuses with the room's load error if it has one, so a room that
//! could not load its history says why instead of answering as if it were empty.

use std::sync::Arc;
use std::time::Instant;

use actix::prelude::*;

use super::actor::RoomActor;
use super::commit::{Commit, PostReply};
use crate::attachment::FileId;
use crate::broker::{Proposal, Receipt, Signal};
use crate::delivery::Subscriber;
use crate::error::ChatError;
use crate::event::Event;
use crate::model::{
    Joined, MemberCursor, MembersPage, MessageId, SessionId, UserId, UserRef, MAX_MEMBER_PAGE,
    MEMBER_PAGE,
};

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
        // One page, whatever the room's size: the rest is fetched on demand.
        let (members, members_next) = self.roster.page(None, MEMBER_PAGE);
        Ok(Joined {
            room: self.room.clone(),
            messages: replay.messages,
            gap: replay.gap,
            deleted: replay.deleted,
            updated: replay.updated,
            last_id: self.history.last_id(),
            members,
            members_next,
            member_count: self.roster.len(),
            online_count: self.roster.online(),
            large: self.presence.is_large(),
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
    pub(crate) files: Vec<FileId>,
    pub(crate) reply: PostReply,
}

impl Handler<Post> for RoomActor {
    type Result = ();

    fn handle(&mut self, msg: Post, ctx: &mut Context<Self>) -> Self::Result {
        if let Some(error) = &self.failed {
            let _ = msg.reply.send(Err(error.clone()));
            return;
        }
        // The other nodes hear of a member's arrival before their first message.
        self.publish_share(ctx);
        let proposal = Proposal::Post {
            author: msg.author,
            text: msg.text,
            files: msg.files,
        };
        // The in-memory broker commits at once: settle now, without a task per post. Only a
        // commit still under way (Redis) gets a task on the room's context.
        match Commit::start(&self.broker, &self.room, proposal, &self.under_way) {
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
            Ok(Receipt::Done | Receipt::Updated(_)) => {
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
            Commit::start(&self.broker, &self.room, proposal, &self.under_way)
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
        // Each notice goes to every follower: a large room relays a few per interval.
        let (interval, most) = (self.limits.typing_interval, self.limits.large_room_typing);
        if !self.presence.typing_allowed(now, interval, most) {
            return false;
        }
        self.last_typing.insert(msg.user.id, now);
        self.signal(Signal::Typing(msg.user), ctx);
        true
    }
}

/// One page of the members with their online state, online ones first.
#[derive(Message)]
#[rtype(result = "MembersPage")]
pub(crate) struct Members {
    /// Where the page starts (after this place); from the start without it.
    pub(crate) after: Option<MemberCursor>,
    /// Members at most, served within 1..=[`MAX_MEMBER_PAGE`].
    pub(crate) limit: usize,
}

impl Handler<Members> for RoomActor {
    type Result = MessageResult<Members>;

    fn handle(&mut self, msg: Members, _: &mut Context<Self>) -> Self::Result {
        let limit = msg.limit.clamp(1, MAX_MEMBER_PAGE);
        let (members, next) = self.roster.page(msg.after.as_ref(), limit);
        MessageResult(MembersPage {
            members,
            next,
            member_count: self.roster.len(),
            online_count: self.roster.online(),
        })
    }
}
