//! What the server sends: [`ServerFrame`] (replies, events, `hello`, `disconnected`),
//! the [`Reply`] inside each `ok`, and the views of the engine's types they carry.
//!
//! Called by `dispatch.rs` (replies) and `connection.rs` (events, `hello`,
//! `disconnected`); `shared_frame.rs` writes the same `message` frame by hand, and its
//! tests hold the two equal. It never does I/O and never calls the engine: it only turns
//! engine values into JSON. `docs/protocol.md` documents each frame; change both together.

use chat_core::{
    Attachment, ChannelInfo, ChatError, ChatMessage, DisconnectReason, Event, Joined, Limits,
    Member, MembersPage, MessageId, PresenceBatch, PresenceChange, UserId, UserRef,
};
use serde::Serialize;

use super::{RequestId, TransportError};

/// The protocol version announced in the `hello` frame. Bumped on any incompatible change.
pub const PROTOCOL_VERSION: u32 = 4;

/// Bytes reserved for a serialized frame: a message event with a short text fits.
pub(crate) const FRAME_CAPACITY: usize = 256;

/// A user as clients see it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UserView {
    /// Stable user id.
    pub id: u64,
    /// Display name.
    pub name: String,
}

impl From<&UserRef> for UserView {
    fn from(user: &UserRef) -> Self {
        UserView {
            id: user.id.0,
            name: user.name.to_string(),
        }
    }
}

/// A message as one particular user sees it (`room` is labelled for that user).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MessageView {
    /// Id within its room.
    pub id: MessageId,
    /// The room, as the receiving user names it (`general`, `@alice`).
    pub room: String,
    /// Who wrote it.
    pub author: UserView,
    /// The text, to show as text.
    pub text: String,
    /// When the server accepted it, in Unix milliseconds.
    pub sent_at: i64,
    /// The keys of the display names it mentions (`@name`), left out when none.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub mentions: Vec<String>,
    /// When its author last edited it, in Unix milliseconds; absent if never.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub edited_at: Option<i64>,
    /// Its reactions, in the set's order; absent when it has none.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub reactions: Vec<ReactionView>,
    /// The files it carries, in order; absent when none.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub files: Vec<FileView>,
}

/// A file a message carries: fetched at `/files/{id}` in the demo (the embedder's route).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FileView {
    /// Its id (32 hex digits), also its address.
    pub id: String,
    /// Its name, to show as text.
    pub name: String,
    /// Its size in bytes.
    pub size: u64,
    /// What its bytes are: `png`, `jpeg`, `gif`, `webp` (shown inline), `pdf`, `other`.
    pub kind: &'static str,
}

impl From<&Attachment> for FileView {
    fn from(file: &Attachment) -> Self {
        FileView {
            id: file.id.to_string(),
            name: file.name.to_string(),
            size: file.size,
            kind: file.kind.as_str(),
        }
    }
}

/// One emoji's reactions to a message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ReactionView {
    /// The emoji, e.g. `👍`.
    pub emoji: &'static str,
    /// How many users reacted with it.
    pub count: usize,
    /// Their ids, in the order they reacted.
    pub users: Vec<u64>,
}

/// The reactions of `message`, as clients see them.
pub fn reactions_view(message: &ChatMessage) -> Vec<ReactionView> {
    message
        .reactions
        .iter()
        .map(|(emoji, users)| ReactionView {
            emoji: emoji.as_str(),
            count: users.len(),
            users: users.iter().map(|u| u.0).collect(),
        })
        .collect()
}

impl MessageView {
    /// Renders `message` for the user `me`.
    pub fn new(message: &ChatMessage, me: UserId) -> Self {
        MessageView {
            id: message.id,
            room: message.room.label_for(me),
            author: UserView::from(&message.author),
            text: message.text.clone(),
            sent_at: message.sent_at.timestamp_millis(),
            mentions: message.mention_keys(),
            edited_at: message.edited_at.map(|at| at.timestamp_millis()),
            reactions: reactions_view(message),
            files: message.attachments.iter().map(FileView::from).collect(),
        }
    }
}

/// A channel as listed to clients.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ChannelView {
    /// Its name, as its creator typed it.
    pub name: String,
    /// How many users are members (online or not).
    pub members: usize,
    /// Creation time, Unix milliseconds.
    pub created_at: i64,
    /// Last message (or creation) time, Unix milliseconds.
    pub last_activity: i64,
}

impl From<&ChannelInfo> for ChannelView {
    fn from(info: &ChannelInfo) -> Self {
        ChannelView {
            name: info.name.as_str().to_owned(),
            members: info.members,
            created_at: info.created_at.timestamp_millis(),
            last_activity: info.last_activity.timestamp_millis(),
        }
    }
}

/// A member of a room and whether they are online.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MemberView {
    /// Who.
    pub user: UserView,
    /// Whether at least one of their connections follows the room now.
    pub online: bool,
}

impl From<&Member> for MemberView {
    fn from(member: &Member) -> Self {
        MemberView {
            user: UserView::from(&member.user),
            online: member.online,
        }
    }
}

fn members_view(members: &[Member]) -> Vec<MemberView> {
    members.iter().map(MemberView::from).collect()
}

/// One presence change: who, and `joined`, `left`, `online` or `offline`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ChangeView {
    /// Who.
    pub user: UserView,
    /// What changed.
    pub change: &'static str,
}

impl From<&(UserRef, PresenceChange)> for ChangeView {
    fn from((user, change): &(UserRef, PresenceChange)) -> Self {
        ChangeView {
            user: UserView::from(user),
            change: change.as_str(),
        }
    }
}

/// The `result` of an `ok` reply, one shape per request type.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged)]
#[non_exhaustive]
pub enum Reply {
    /// `login`.
    LoggedIn {
        /// The user logged in.
        user: UserView,
        /// The resume token (32 hex digits): keep it to log in again as this user.
        token: String,
        /// True when this login created the user.
        new_user: bool,
        /// The key of the user's display name: a message mentions them when its
        /// `mentions` holds it.
        mention_key: String,
    },
    /// `list_channels`.
    Channels {
        /// Every channel, by name.
        channels: Vec<ChannelView>,
    },
    /// `create_channel`.
    ChannelCreated {
        /// The new channel.
        channel: ChannelView,
    },
    /// `join`.
    Joined {
        /// The room joined, as this user names it.
        room: String,
        /// Messages to show, oldest first.
        messages: Vec<MessageView>,
        /// True: replace what is shown for this room with `messages`.
        gap: bool,
        /// Ids the client may still show that were deleted meanwhile.
        deleted: Vec<MessageId>,
        /// Messages the client may still show (at or below `after`) that were edited or
        /// carry reactions, in their latest form: replace them.
        updated: Vec<MessageView>,
        /// The room's highest message id (0 if none), to resume from later.
        last_id: MessageId,
        /// The first page of the room's members (at most 100), online ones first.
        members: Vec<MemberView>,
        /// The `after` of a `members` request for the next page; `null` when `members`
        /// holds them all.
        members_next: Option<String>,
        /// Members in all, online or not.
        member_count: usize,
        /// Of those, how many are online.
        online_count: usize,
        /// True when the room sends `counts` instead of each member's `presence`.
        large: bool,
    },
    /// `post`.
    Posted {
        /// The stored message.
        message: MessageView,
    },
    /// `typing`.
    Typing {
        /// False when the notice was dropped by the throttle.
        sent: bool,
    },
    /// `members`.
    Members {
        /// One page of the room's members, online ones first.
        members: Vec<MemberView>,
        /// The `after` of the next page; `null` at the end.
        next: Option<String>,
        /// Members in all, online or not.
        member_count: usize,
        /// Of those, how many are online.
        online_count: usize,
    },
    /// `leave`, `delete`, `edit`, `react`: an empty object.
    Done {},
}

impl Reply {
    /// The reply to a successful `join`, rendered for user `me`.
    pub fn joined(joined: &Joined, me: UserId) -> Self {
        Reply::Joined {
            room: joined.room.label_for(me),
            messages: joined
                .messages
                .iter()
                .map(|m| MessageView::new(m, me))
                .collect(),
            gap: joined.gap,
            deleted: joined.deleted.clone(),
            updated: joined
                .updated
                .iter()
                .map(|m| MessageView::new(m, me))
                .collect(),
            last_id: joined.last_id,
            members: members_view(&joined.members),
            members_next: joined.members_next.as_ref().map(ToString::to_string),
            member_count: joined.member_count,
            online_count: joined.online_count,
            large: joined.large,
        }
    }

    /// The reply to `members`.
    pub fn members(page: &MembersPage) -> Self {
        Reply::Members {
            members: members_view(&page.members),
            next: page.next.as_ref().map(ToString::to_string),
            member_count: page.member_count,
            online_count: page.online_count,
        }
    }
}

/// Everything the server sends, as one JSON object per text frame, tagged by `type`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
#[non_exhaustive]
pub enum ServerFrame {
    /// First frame of every connection.
    Hello {
        /// [`PROTOCOL_VERSION`].
        protocol: u32,
        /// The largest frame the server accepts, in bytes.
        max_frame_bytes: usize,
        /// The most characters a display name may have (`Limits::max_display_name_chars`).
        max_name_chars: usize,
        /// The largest file an upload may keep, in bytes (`Limits::max_file_bytes`).
        max_file_bytes: u64,
        /// The most files one message may carry (`Limits::max_files_per_message`).
        max_files_per_message: usize,
        /// The store's epoch ([`chat_core::Engine::epoch`]): when it differs from the one
        /// a client saw before, the ids, rooms and token it kept are no longer valid.
        epoch: String,
    },
    /// A request succeeded.
    Ok {
        /// The request's `id`, when it had one.
        #[serde(skip_serializing_if = "Option::is_none")]
        id: Option<RequestId>,
        /// What the request returned.
        result: Reply,
    },
    /// A request (or a frame) was refused.
    Error {
        /// The request's `id`, when one could be read.
        #[serde(skip_serializing_if = "Option::is_none")]
        id: Option<RequestId>,
        /// Stable machine-readable code.
        code: String,
        /// Human-readable explanation.
        message: String,
    },
    /// A message was posted in a followed room.
    Message {
        /// The room, as this user names it.
        room: String,
        /// The message.
        message: MessageView,
    },
    /// A message was deleted by its author.
    Deleted {
        /// The room, as this user names it.
        room: String,
        /// Which message.
        message_id: MessageId,
    },
    /// A message was edited by its author: its new state (new `text`, `edited_at` set).
    Edited {
        /// The room, as this user names it.
        room: String,
        /// The message as it is now.
        message: MessageView,
    },
    /// A message's reactions changed.
    Reactions {
        /// The room, as this user names it.
        room: String,
        /// Which message.
        message_id: MessageId,
        /// All of its reactions now, in the set's order (empty when none is left).
        reactions: Vec<ReactionView>,
    },
    /// A channel was created.
    ChannelCreated {
        /// The new channel.
        channel: ChannelView,
    },
    /// Members' presence in a room changed: every change of one tick, in order.
    Presence {
        /// The room, as this user names it.
        room: String,
        /// Who changed and how, oldest first.
        changes: Vec<ChangeView>,
        /// Members in all after these changes.
        members: usize,
        /// Of those, how many are online.
        online: usize,
    },
    /// A large room's counts changed (sent instead of `presence`, at most once a second).
    Counts {
        /// The room, as this user names it.
        room: String,
        /// Members in all, online or not.
        members: usize,
        /// Of those, how many are online.
        online: usize,
    },
    /// A member is typing.
    Typing {
        /// The room, as this user names it.
        room: String,
        /// Who.
        user: UserView,
    },
    /// Messages of a room were lost to this client: join it again (with `after`) for the
    /// whole history.
    Gap {
        /// The room, as this user names it.
        room: String,
    },
    /// The server is closing this connection; a close frame follows.
    Disconnected {
        /// `slow_consumer` or `shutting_down`.
        code: &'static str,
        /// Human-readable explanation.
        message: String,
    },
}

impl ServerFrame {
    /// The `hello` frame for a server with this frame limit and name limit, working from
    /// the store with this epoch.
    pub fn hello(max_frame_bytes: usize, limits: &Limits, epoch: &str) -> Self {
        ServerFrame::Hello {
            protocol: PROTOCOL_VERSION,
            max_frame_bytes,
            max_name_chars: limits.max_display_name_chars,
            max_file_bytes: limits.max_file_bytes,
            max_files_per_message: limits.max_files_per_message,
            epoch: epoch.to_owned(),
        }
    }

    /// An `error` reply for an engine error.
    pub fn chat_error(id: Option<RequestId>, error: &ChatError) -> Self {
        ServerFrame::Error {
            id,
            code: error.code().to_owned(),
            message: error.to_string(),
        }
    }

    /// An `error` reply for a transport error.
    pub fn transport_error(id: Option<RequestId>, error: &TransportError) -> Self {
        ServerFrame::Error {
            id,
            code: error.code().to_owned(),
            message: error.message(),
        }
    }

    /// The `disconnected` frame for an engine (or server) disconnection.
    pub fn disconnected(reason: DisconnectReason) -> Self {
        ServerFrame::Disconnected {
            code: reason.code(),
            message: reason.to_string(),
        }
    }

    /// The `presence` frame for a batch, rendered for user `me`.
    pub fn presence(batch: &PresenceBatch, me: UserId) -> Self {
        ServerFrame::Presence {
            room: batch.room.label_for(me),
            changes: batch.changes.iter().map(ChangeView::from).collect(),
            members: batch.member_count,
            online: batch.online_count,
        }
    }

    /// Renders an engine event for user `me`; `None` for an event this protocol version
    /// does not carry.
    pub fn from_event(event: &Event, me: UserId) -> Option<Self> {
        Some(match event {
            Event::Posted(message) => ServerFrame::Message {
                room: message.room.label_for(me),
                message: MessageView::new(message, me),
            },
            Event::Deleted { room, id } => ServerFrame::Deleted {
                room: room.label_for(me),
                message_id: *id,
            },
            Event::Edited(message) => ServerFrame::Edited {
                room: message.room.label_for(me),
                message: MessageView::new(message, me),
            },
            Event::Reacted(message) => ServerFrame::Reactions {
                room: message.room.label_for(me),
                message_id: message.id,
                reactions: reactions_view(message),
            },
            Event::ChannelCreated(info) => ServerFrame::ChannelCreated {
                channel: ChannelView::from(info),
            },
            Event::PresenceBatch(batch) => ServerFrame::presence(batch, me),
            Event::RoomCounts {
                room,
                members,
                online,
            } => ServerFrame::Counts {
                room: room.label_for(me),
                members: *members,
                online: *online,
            },
            Event::Typing { room, user } => ServerFrame::Typing {
                room: room.label_for(me),
                user: UserView::from(user),
            },
            Event::Gap { room } => ServerFrame::Gap {
                room: room.label_for(me),
            },
            Event::Disconnected(reason) => ServerFrame::disconnected(*reason),
            _ => return None,
        })
    }

    /// The frame as JSON text.
    pub fn to_json(&self) -> String {
        // Most frames fit: one allocation instead of a string doubling its way up.
        let mut json = Vec::with_capacity(FRAME_CAPACITY);
        // Serializing these plain structs cannot fail (string keys, no maps of other
        // keys, no floats); fall back to an internal-error frame rather than panic.
        let written = serde_json::to_writer(&mut json, self)
            .map_err(|e| e.to_string())
            .and_then(|()| String::from_utf8(json).map_err(|e| e.to_string()));
        written.unwrap_or_else(|e| {
            tracing::error!(error = %e, "cannot serialize a server frame");
            r#"{"type":"error","code":"internal","message":"internal error"}"#.to_owned()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn replies_serialize_as_documented() {
        let ok = ServerFrame::Ok {
            id: Some(json!(7)),
            result: Reply::Done {},
        };
        assert_eq!(
            serde_json::to_value(&ok).expect("serializes"),
            json!({"type":"ok","id":7,"result":{}})
        );
        let typing = ServerFrame::Ok {
            id: None,
            result: Reply::Typing { sent: true },
        };
        assert_eq!(
            serde_json::to_value(&typing).expect("serializes"),
            json!({"type":"ok","result":{"sent":true}})
        );
        assert_eq!(
            serde_json::to_value(ServerFrame::hello(65536, &Limits::default(), "5f0c"))
                .expect("serializes"),
            json!({"type":"hello","protocol":4,"max_frame_bytes":65536,"max_name_chars":32,
                   "max_file_bytes":10485760,"max_files_per_message":10,"epoch":"5f0c"})
        );
    }
}
