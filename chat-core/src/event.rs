//! `Event`: what a session receives from the engine, in order, through its bounded queue.
//!
//! Produced by room actors (messages, deletions, edits, reactions, presence batches and counts, typing) and
//! by the registry (channel created, disconnection); consumed by transports through
//! [`Session::next_event`](crate::Session::next_event).

use std::any::Any;
use std::fmt;
use std::sync::Arc;

use crate::model::{ChannelInfo, ChatMessage, Encodings, MessageId, Room, UserRef};

/// One thing that happened that a session should show.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum Event {
    /// A message was posted in a room the session follows.
    Posted(Arc<ChatMessage>),
    /// A message was deleted by its author.
    Deleted {
        /// Where.
        room: Room,
        /// Which message.
        id: MessageId,
    },
    /// A message was edited by its author: its new state (new `text`, `edited_at` set),
    /// to show in place of the one with its id.
    Edited(Arc<ChatMessage>),
    /// A message's reactions changed (someone added or took back an emoji): its new
    /// state, whose `reactions` replace the ones shown.
    Reacted(Arc<ChatMessage>),
    /// A channel was created (sent to every session, so channel lists stay current).
    ChannelCreated(ChannelInfo),
    /// Members' presence in a room changed: the changes of one short tick (100 ms, or
    /// less when the room fans out something else: events stay in the order they
    /// happened) in one event. Only rooms up to
    /// [`Limits::large_room`](crate::Limits::large_room) members send these; larger ones
    /// send [`Event::RoomCounts`]. Shared by every follower (fan-out copies a pointer).
    PresenceBatch(Arc<PresenceBatch>),
    /// How many members a large room has, and how many are online: sent instead of each
    /// member's presence in a room above [`Limits::large_room`](crate::Limits::large_room),
    /// only when a count changed, at most once a second (once per members / 1,000 seconds
    /// above 1,000 members). Its member list is fetched on demand
    /// ([`Session::members_page`](crate::Session::members_page)).
    RoomCounts {
        /// Where.
        room: Room,
        /// Members in all, online or not.
        members: usize,
        /// Of those, how many are online.
        online: usize,
    },
    /// A member is typing in a room (never stored; throttled per `Limits::typing_interval`).
    Typing {
        /// Where.
        room: Room,
        /// Who.
        user: UserRef,
    },
    /// Messages of a room were lost to this session: the store no longer had them when the
    /// room found the hole (after a broker outage). What the client shows of the room may
    /// lack them; joining again with the last id it saw returns the whole history with
    /// `gap` set. Never sent for a deletion.
    Gap {
        /// Where.
        room: Room,
    },
    /// The engine closed this session; it is the last event the session yields.
    Disconnected(DisconnectReason),
}

/// The presence changes of one room in one tick, and the room's counts after them.
#[derive(Debug)]
#[non_exhaustive]
pub struct PresenceBatch {
    /// Where.
    pub room: Room,
    /// Who changed and how, oldest first. One user may appear more than once (joined,
    /// then left): apply them in order.
    pub changes: Vec<(UserRef, PresenceChange)>,
    /// Members in all after these changes, online or not.
    pub member_count: usize,
    /// Of those, how many are online.
    pub online_count: usize,
    /// Wire encodings a transport computed once for every follower
    /// ([`PresenceBatch::encoded`]).
    encodings: Encodings,
}

impl PresenceBatch {
    /// The changes of one tick in `room`, with the room's counts after them.
    pub fn new(
        room: Room,
        changes: Vec<(UserRef, PresenceChange)>,
        member_count: usize,
        online_count: usize,
    ) -> PresenceBatch {
        PresenceBatch {
            room,
            changes,
            member_count,
            online_count,
            encodings: Encodings::default(),
        }
    }

    /// This batch encoded as a transport sends it, computed by `encode` for the first
    /// follower and shared by every other one (keyed by the type `T`, like
    /// [`ChatMessage::encoded`](crate::ChatMessage::encoded)). Only for what reads the
    /// same for every follower: a private room's label depends on who reads it.
    pub fn encoded<T: Any + Send + Sync>(&self, encode: impl FnOnce() -> T) -> Arc<T> {
        self.encodings.get_or_insert_with(encode)
    }

    /// The bytes this batch keeps alive while a session holds it.
    pub(crate) fn cost(&self) -> usize {
        std::mem::size_of::<PresenceBatch>()
            + self
                .changes
                .iter()
                .map(|(user, _)| std::mem::size_of::<(UserRef, PresenceChange)>() + user.name.len())
                .sum::<usize>()
    }
}

/// How a member's presence in a room changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum PresenceChange {
    /// Became a member (first join).
    Joined,
    /// Left the room on purpose; no longer a member.
    Left,
    /// A member came back (one of their sessions follows the room again).
    Online,
    /// A member's last session following the room went away (closed or dropped).
    Offline,
}

impl PresenceChange {
    /// Stable lower-case name for protocols: `joined`, `left`, `online`, `offline`.
    pub fn as_str(self) -> &'static str {
        match self {
            PresenceChange::Joined => "joined",
            PresenceChange::Left => "left",
            PresenceChange::Online => "online",
            PresenceChange::Offline => "offline",
        }
    }
}

/// Why the engine closed a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum DisconnectReason {
    /// Its event queue was full: it could not keep up. Reconnect and resume.
    SlowConsumer,
    /// The engine is shutting down.
    ShuttingDown,
    /// The user logged out (on this connection or another): their token no longer
    /// resumes. Log in again, as anyone.
    LoggedOut,
}

impl DisconnectReason {
    /// Stable code for protocols: `slow_consumer`, `shutting_down`, `logged_out`.
    pub fn code(self) -> &'static str {
        match self {
            DisconnectReason::SlowConsumer => "slow_consumer",
            DisconnectReason::ShuttingDown => "shutting_down",
            DisconnectReason::LoggedOut => "logged_out",
        }
    }
}

impl fmt::Display for DisconnectReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            DisconnectReason::SlowConsumer => {
                "too many unread events: the connection could not keep up"
            }
            DisconnectReason::ShuttingDown => "the server is shutting down",
            DisconnectReason::LoggedOut => "logged out: the session's token no longer resumes",
        })
    }
}
