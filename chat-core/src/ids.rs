//! The engine's plain names for who and where: user, session and message ids, a user as
//! others see them, channel names, rooms and their keys.
//!
//! The lowest of the data modules: it imports none of the others, so every module can
//! name a user or a room (reactions, files, identities, validation) without importing the
//! messages that [`crate::model`] builds from them.

use std::fmt;
use std::sync::Arc;

use serde::Serialize;

/// A user's stable id, the same across reconnects and display-name changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct UserId(pub u64);

impl fmt::Display for UserId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "u{}", self.0)
    }
}

/// The id of one connection's session, unique for the engine's lifetime.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct SessionId(pub u64);

/// A message's id within its room: starts at 1, only grows, never reused.
pub type MessageId = u64;

/// A user as others see them: id and display name.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct UserRef {
    /// Stable id.
    pub id: UserId,
    /// Display name, as the user typed it (trimmed).
    pub name: Arc<str>,
}

/// A validated channel name: the form its creator typed, and its case-folded key.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ChannelName {
    pub(crate) display: Arc<str>,
    pub(crate) key: Arc<str>,
}

impl ChannelName {
    /// The name as created, e.g. `Rust-Beginners`.
    pub fn as_str(&self) -> &str {
        &self.display
    }

    /// The case-folded form used for uniqueness, e.g. `rust-beginners`.
    pub fn key(&self) -> &str {
        &self.key
    }
}

impl fmt::Display for ChannelName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.display)
    }
}

/// Where messages live: a named channel, or the private conversation of two users.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Room {
    /// A public channel.
    Channel(ChannelName),
    /// The private conversation of two distinct users, ordered by id.
    Direct([UserRef; 2]),
}

impl Room {
    /// The other participant of a private conversation, as seen by `me`; `None` for
    /// channels.
    pub fn peer_of(&self, me: UserId) -> Option<&UserRef> {
        match self {
            Room::Channel(_) => None,
            Room::Direct(pair) => pair.iter().find(|u| u.id != me).or(pair.first()),
        }
    }

    /// How `me` names this room when addressing it: `general` for a channel, `@alice` for
    /// the private conversation with alice. Inverse of [`Target::parse`](crate::Target::parse).
    pub fn label_for(&self, me: UserId) -> String {
        match self {
            Room::Channel(name) => name.as_str().to_owned(),
            Room::Direct(_) => match self.peer_of(me) {
                Some(peer) => format!("@{}", peer.name),
                None => String::from("@"),
            },
        }
    }

    /// The identity of this room for maps: the channel key, or the pair of user ids.
    pub(crate) fn key(&self) -> RoomKey {
        match self {
            Room::Channel(name) => RoomKey::Channel(name.key.clone()),
            Room::Direct([a, b]) => RoomKey::Direct(a.id, b.id),
        }
    }
}

/// A room's identity without display data: a channel's case-folded name or two user ids
/// (lower first).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum RoomKey {
    /// A channel, by its case-folded name.
    Channel(Arc<str>),
    /// A private conversation, by its two user ids, lower first.
    Direct(UserId, UserId),
}

impl RoomKey {
    /// Whether `room` has this key (without building the key).
    pub fn is(&self, room: &Room) -> bool {
        match (self, room) {
            (RoomKey::Channel(key), Room::Channel(name)) => **key == *name.key,
            (RoomKey::Direct(a, b), Room::Direct([x, y])) => *a == x.id && *b == y.id,
            _ => false,
        }
    }
}
