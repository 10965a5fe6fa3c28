//! `Event`: what a session receives from the engine, in order, through its bounded queue.
//!
//! Produced by channel actors (messages, deletions, presence, typing) and by the registry
//! (channel created, disconnection); consumed by transports through
//! [`Session::next_event`](crate::Session::next_event).

use std::fmt;
use std::sync::Arc;

use crate::model::{ChannelInfo, ChatMessage, MessageId, Room, UserRef};

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
    /// A channel was created (sent to every session, so channel lists stay current).
    ChannelCreated(ChannelInfo),
    /// A member's presence in a room changed.
    Presence {
        /// Where.
        room: Room,
        /// Who.
        user: UserRef,
        /// What changed.
        change: PresenceChange,
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
}

impl DisconnectReason {
    /// Stable code for protocols: `slow_consumer`, `shutting_down`.
    pub fn code(self) -> &'static str {
        match self {
            DisconnectReason::SlowConsumer => "slow_consumer",
            DisconnectReason::ShuttingDown => "shutting_down",
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
        })
    }
}
