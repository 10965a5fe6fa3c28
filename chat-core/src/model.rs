//! The data the engine hands out: users, rooms, messages, channel listings, members.
//!
//! Everything here is plain data, cheap to clone (shared strings) and safe to show to any
//! client: no token or session internals live in these types.

use std::any::{Any, TypeId};
use std::fmt;
use std::sync::{Arc, Mutex, OnceLock};

use chrono::{DateTime, Utc};

use crate::attachment::Attachment;
pub use crate::ids::{ChannelName, MessageId, Room, RoomKey, SessionId, UserId, UserRef};
use crate::reaction::Reactions;

/// One chat message, as stored in history and sent to subscribers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChatMessage {
    /// Wire encodings of this message that a transport computed once and shares between
    /// recipients ([`ChatMessage::encoded`]); not part of the message's value.
    encodings: Encodings,
    /// Id within `room`.
    pub id: MessageId,
    /// Where it was posted.
    pub room: Room,
    /// Who wrote it, with their display name at the time.
    pub author: UserRef,
    /// The text: non-empty, at most `Limits::max_message_bytes`, no control characters
    /// but newline and tab.
    pub text: String,
    /// When the server accepted it (UTC, millisecond precision).
    pub sent_at: DateTime<Utc>,
    /// When its author last edited it (UTC, millisecond precision); `None` if never.
    pub edited_at: Option<DateTime<Utc>>,
    /// Who reacted with which emoji of the set.
    pub reactions: Reactions,
    /// The files it carries (none for most messages), in the order the author gave them.
    pub attachments: Vec<Attachment>,
}

impl ChatMessage {
    /// A message as a broker stores it: `id` in `room`, by `author`, sent at `sent_at`.
    pub fn new(
        id: MessageId,
        room: Room,
        author: UserRef,
        text: String,
        sent_at: DateTime<Utc>,
    ) -> ChatMessage {
        ChatMessage {
            encodings: Encodings::default(),
            id,
            room,
            author,
            text,
            sent_at,
            edited_at: None,
            reactions: Reactions::default(),
            attachments: Vec::new(),
        }
    }

    /// The same message carrying `attachments`.
    pub fn with_attachments(mut self, attachments: Vec<Attachment>) -> ChatMessage {
        self.attachments = attachments;
        self
    }

    /// The keys ([`name_key`](crate::validate::name_key)) of the display names its
    /// `@name` tokens mention, each once, in the order they appear (see
    /// [`crate::mention`]).
    pub fn mention_keys(&self) -> Vec<String> {
        crate::mention::mention_keys(&self.text)
    }

    /// Whether it mentions `user` (`@name`, matched as names are: case and look-alikes
    /// do not count).
    pub fn mentions(&self, user: &UserRef) -> bool {
        self.text.contains('@')
            && crate::mention::mentions_key(&self.text, &crate::validate::name_key(&user.name))
    }

    /// The same message with `edited_at` and `reactions` as a store kept them.
    pub fn with_changes(
        mut self,
        edited_at: Option<DateTime<Utc>>,
        reactions: Reactions,
    ) -> ChatMessage {
        self.edited_at = edited_at;
        self.reactions = reactions;
        self
    }

    /// Whether it was edited or carries reactions: what a client that saw it before may
    /// have to update ([`Joined::updated`]).
    pub fn is_changed(&self) -> bool {
        self.edited_at.is_some() || !self.reactions.is_empty()
    }

    /// This message encoded as a transport sends it, computed by `encode` for the first
    /// recipient and shared by every other one (a cache keyed by the type `T`, so
    /// transports cannot collide).
    pub fn encoded<T: Any + Send + Sync>(&self, encode: impl FnOnce() -> T) -> Arc<T> {
        self.encodings.get_or_insert_with(encode)
    }

    /// Calls `f` with this message encoded as [`ChatMessage::encoded`] gives it, borrowed
    /// rather than shared: a transport that only copies the bytes out, once per recipient,
    /// takes no reference count for it.
    pub fn with_encoded<T: Any + Send + Sync, R>(
        &self,
        encode: impl FnOnce() -> T,
        f: impl FnOnce(&T) -> R,
    ) -> R {
        match self.encodings.first::<T>() {
            Some(found) => f(found),
            None => f(&self.encodings.get_or_insert_with(encode)),
        }
    }
}

/// Encodings of one message, computed once by a transport and shared by every recipient
/// (a channel message fanned out to 1,000 WebSockets is serialized once, not 1,000 times).
///
/// Keyed by the type the transport stores, so transports cannot collide. It is a cache:
/// clones start empty, and it never takes part in equality.
#[derive(Default)]
pub(crate) struct Encodings {
    /// The first encoding stored, read without a lock: usually the only one (one
    /// transport), and every recipient after the first reads it.
    first: OnceLock<Slot>,
    /// Encodings of other types (a second transport); also serializes the computing.
    others: Mutex<Vec<Slot>>,
}

type Slot = (TypeId, Arc<dyn Any + Send + Sync>);

impl Encodings {
    /// The first encoding stored, if it is a `T`: borrowed, without a lock.
    fn first<T: Any + Send + Sync>(&self) -> Option<&T> {
        let (key, value) = self.first.get()?;
        if *key != TypeId::of::<T>() {
            return None;
        }
        value.downcast_ref::<T>()
    }

    /// The value of type `T` stored here, computed by `encode` the first time.
    pub fn get_or_insert_with<T: Any + Send + Sync>(&self, encode: impl FnOnce() -> T) -> Arc<T> {
        let key = TypeId::of::<T>();
        if let Some(found) = find::<T>(self.first.get(), key) {
            return found;
        }
        let mut others = self.others.lock().unwrap_or_else(|e| e.into_inner());
        // Another thread may have stored it while this one waited for the lock.
        let stored = find::<T>(self.first.get(), key);
        if let Some(found) = stored.or_else(|| others.iter().find_map(|s| find::<T>(Some(s), key)))
        {
            return found;
        }
        let value = Arc::new(encode());
        if let Err(slot) = self.first.set((key, value.clone())) {
            others.push(slot);
        }
        value
    }
}

/// The value in `slot` if it holds a `T` (whose type id is `key`).
fn find<T: Any + Send + Sync>(slot: Option<&Slot>, key: TypeId) -> Option<Arc<T>> {
    let (k, value) = slot?;
    if *k != key {
        return None;
    }
    value.clone().downcast::<T>().ok()
}

impl Clone for Encodings {
    fn clone(&self) -> Self {
        Encodings::default()
    }
}

impl PartialEq for Encodings {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl Eq for Encodings {}

impl fmt::Debug for Encodings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Encodings(..)")
    }
}

/// A channel as listed to clients.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ChannelInfo {
    /// Its name.
    pub name: ChannelName,
    /// How many users are members (online or not).
    pub members: usize,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// When its last message was posted, or when it was created if it has none.
    pub last_activity: DateTime<Utc>,
}

/// A member of a room and whether they are there now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    /// Who.
    pub user: UserRef,
    /// Whether at least one of their sessions follows the room now.
    pub online: bool,
}

/// Members a join reply carries at most, and a members page by default: the first page
/// of the roster (online members first). A join costs the same in a room of 15,000 as in
/// one of 10 because it never carries more; [`Session::members_page`](crate::Session::members_page)
/// fetches the rest.
pub const MEMBER_PAGE: usize = 100;

/// The largest page [`Session::members_page`](crate::Session::members_page) returns; a
/// larger `limit` is served as this many.
pub const MAX_MEMBER_PAGE: usize = 1_000;

/// A position in a room's member list, which is ordered online members first, then by
/// lower-cased name, then by user id: the page after it starts with the next member in
/// that order. It names a position, not a member, so it stays valid when that member
/// leaves. Its text form ([`MemberCursor::parse`] reads what `Display` writes) is opaque
/// to clients: they hand back what a page gave them.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct MemberCursor {
    // Field order is the sort order.
    pub(crate) offline: bool,
    pub(crate) key: Arc<str>,
    pub(crate) id: UserId,
}

impl MemberCursor {
    /// The position of `user` in a room's order, online or not.
    pub(crate) fn of(user: &UserRef, online: bool) -> MemberCursor {
        MemberCursor {
            offline: !online,
            key: Arc::from(user.name.to_lowercase()),
            id: user.id,
        }
    }

    /// Reads a cursor in the form `Display` writes (`0:42:alice`); `None` for anything
    /// else.
    pub fn parse(text: &str) -> Option<MemberCursor> {
        let mut parts = text.splitn(3, ':');
        let offline = match parts.next()? {
            "0" => false,
            "1" => true,
            _ => return None,
        };
        let id = parts.next()?.parse().ok()?;
        let key = parts.next()?;
        Some(MemberCursor {
            offline,
            key: Arc::from(key),
            id: UserId(id),
        })
    }
}

impl fmt::Display for MemberCursor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", u8::from(self.offline), self.id.0, self.key)
    }
}

/// One page of a room's members, online ones first.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct MembersPage {
    /// At most the `limit` asked for, in the room's order.
    pub members: Vec<Member>,
    /// Where the next page starts, or `None` when this one reached the end.
    pub next: Option<MemberCursor>,
    /// Members in all, online or not (on this node: see `docs/architecture.md`).
    pub member_count: usize,
    /// Of those, how many are online.
    pub online_count: usize,
}

/// What joining (or re-joining) a room returns: what to show, and who is there.
///
/// The session follows the room from the same instant the snapshot was taken, so the
/// events that come after it continue it with nothing missing and nothing twice. It
/// carries at most [`MEMBER_PAGE`] members, whatever the room's size.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Joined {
    /// The room joined.
    pub room: Room,
    /// Messages to show, oldest first: the whole history, or only those after the id the
    /// client last saw when it resumed without a gap.
    pub messages: Vec<Arc<ChatMessage>>,
    /// True when the client asked to resume but some messages it missed are no longer
    /// kept: `messages` is then the whole history, to show instead of what it had.
    pub gap: bool,
    /// When resuming without a gap: ids the client may still show that were deleted
    /// while it was away.
    pub deleted: Vec<MessageId>,
    /// When resuming without a gap: messages the client may still show, at or below the
    /// id it last saw, that were edited or carry reactions, in their latest form (to
    /// replace what it shows; it may have seen some of them so already).
    pub updated: Vec<Arc<ChatMessage>>,
    /// The highest message id the room ever had (0 if none), to resume from later.
    pub last_id: MessageId,
    /// The first page of the room's members (at most [`MEMBER_PAGE`]), online ones first.
    pub members: Vec<Member>,
    /// Where the next page of members starts
    /// ([`Session::members_page`](crate::Session::members_page)), or `None` when
    /// `members` is all of them.
    pub members_next: Option<MemberCursor>,
    /// Members in all, online or not.
    pub member_count: usize,
    /// Of those, how many are online.
    pub online_count: usize,
    /// Whether the room is above [`Limits::large_room`](crate::Limits::large_room): its
    /// followers then get [`Event::RoomCounts`](crate::Event::RoomCounts) instead of each
    /// member's presence, and fetch the member list on demand.
    pub large: bool,
}

/// The current time, truncated to milliseconds (the precision messages promise).
pub(crate) fn now_millis() -> DateTime<Utc> {
    let now = Utc::now();
    DateTime::from_timestamp_millis(now.timestamp_millis()).unwrap_or(now)
}

/// A channel message for unit tests: id `id`, text `m{id}`, in channel `t`, by user 1.
#[cfg(test)]
pub(crate) fn test_message(id: MessageId) -> Arc<ChatMessage> {
    let limits = crate::Limits::default();
    Arc::new(ChatMessage {
        encodings: Encodings::default(),
        id,
        room: Room::Channel(
            crate::validate::channel_name("t", &limits).expect("a valid channel name"),
        ),
        author: UserRef {
            id: UserId(1),
            name: Arc::from("a"),
        },
        text: format!("m{id}"),
        sent_at: now_millis(),
        edited_at: None,
        reactions: Reactions::default(),
        attachments: Vec::new(),
    })
}

#[cfg(test)]
mod tests {
    use super::Encodings;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    #[derive(Debug, PartialEq)]
    struct Frame(String);
    #[derive(Debug, PartialEq)]
    struct Line(String);

    /// Each type is computed once, however many threads ask at once, and two types (two
    /// transports) do not see each other's value.
    #[test]
    fn each_encoding_is_computed_once_per_type() {
        let encodings = Arc::new(Encodings::default());
        let computed = Arc::new(AtomicUsize::new(0));
        let threads: Vec<_> = (0..8)
            .map(|i| {
                let (encodings, computed) = (encodings.clone(), computed.clone());
                std::thread::spawn(move || {
                    let get_frame = || {
                        encodings.get_or_insert_with(|| {
                            computed.fetch_add(1, Ordering::SeqCst);
                            Frame("frame".into())
                        })
                    };
                    let get_line = || {
                        encodings.get_or_insert_with(|| {
                            computed.fetch_add(1, Ordering::SeqCst);
                            Line("line".into())
                        })
                    };
                    // Half the threads ask for the frame first, half for the line.
                    let (frame, line) = if i % 2 == 0 {
                        (get_frame(), get_line())
                    } else {
                        let line = get_line();
                        (get_frame(), line)
                    };
                    assert_eq!(*frame, Frame("frame".into()));
                    assert_eq!(*line, Line("line".into()));
                    (frame, line)
                })
            })
            .collect();
        let results: Vec<_> = threads.into_iter().map(|t| t.join().unwrap()).collect();
        assert_eq!(computed.load(Ordering::SeqCst), 2);
        for (frame, line) in &results {
            assert!(Arc::ptr_eq(frame, &results[0].0));
            assert!(Arc::ptr_eq(line, &results[0].1));
        }
        assert!(
            Encodings::clone(&encodings).first.get().is_none(),
            "clones start empty"
        );
    }

    /// The borrowed read finds what the first transport stored, for its own type only,
    /// and a second type still gets its own value, computed once.
    #[test]
    fn the_first_encoding_is_lent_to_its_own_type_only() {
        let encodings = Encodings::default();
        assert!(encodings.first::<Frame>().is_none());
        let stored = encodings.get_or_insert_with(|| Frame("frame".into()));
        let lent = encodings.first::<Frame>().expect("the first encoding");
        assert!(std::ptr::eq(lent, &*stored), "the same value, not a copy");
        assert!(encodings.first::<Line>().is_none(), "another type's");
        let line = encodings.get_or_insert_with(|| Line("line".into()));
        let again = encodings.get_or_insert_with(|| -> Line { unreachable!("computed once") });
        assert!(Arc::ptr_eq(&line, &again));
        assert!(
            encodings.first::<Line>().is_none(),
            "only the first is lent"
        );
    }
}
