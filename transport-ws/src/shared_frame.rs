//! A channel message encoded once for everyone: the `message` event frame every follower
//! gets, and inside it the message object the author's `ok` reply to the post repeats.
//! Likewise a channel's `presence` batch ([`SharedPresenceFrame`]): every follower of a
//! room of up to `Limits::large_room` members gets it each tick.
//!
//! A channel message reads the same for every user (its room label does not depend on
//! who reads it, unlike a private message's `@peer`), so it is serialized once and kept
//! with the message ([`ChatMessage::encoded`]). The frames are exactly those of
//! [`ServerFrame::Message`] and of `ServerFrame::Ok` with [`Reply::Posted`]
//! (`crate::protocol`); the tests hold them equal.
//!
//! Used by `connection.rs` for `message` events and post replies. It never writes to a
//! socket, and it must not encode a private message once for both of its users.

use std::ops::Range;
use std::sync::Arc;

use chat_core::{ChatMessage, MessageId, PresenceBatch, Room, UserId};
use serde::Serialize;

use crate::protocol::{
    reactions_view, FileView, ReactionView, RequestId, ServerFrame, FRAME_CAPACITY,
};

/// The shared encoding of one channel's presence batch: the `presence` frame.
pub(crate) struct SharedPresenceFrame(String);

impl SharedPresenceFrame {
    /// The shared `presence` frame of `batch`, made by whichever connection needs it
    /// first; `None` in a private room, which each reader labels differently.
    pub(crate) fn of(batch: &PresenceBatch) -> Option<Arc<Self>> {
        if !matches!(batch.room, Room::Channel(_)) {
            return None;
        }
        // A channel's label is the same for every reader: any user id renders it.
        Some(batch.encoded(|| Self(ServerFrame::presence(batch, UserId(0)).to_json())))
    }

    /// The frame's payload.
    pub(crate) fn event(&self) -> &[u8] {
        self.0.as_bytes()
    }
}

/// The shared encoding of one channel message.
pub(crate) struct SharedMessageFrame {
    /// `{"type":"message","room":...,"message":{...}}`.
    event: Vec<u8>,
    /// Where `{...}`, the message object, is in `event`.
    message: Range<usize>,
}

/// The message object as [`crate::protocol::MessageView`] serializes it, borrowed from
/// the message instead of copied (same fields, same order).
#[derive(Serialize)]
struct MessageJson<'a> {
    id: MessageId,
    room: &'a str,
    author: AuthorJson<'a>,
    text: &'a str,
    sent_at: i64,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    mentions: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    edited_at: Option<i64>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    reactions: Vec<ReactionView>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    files: Vec<FileView>,
}

/// [`crate::protocol::UserView`], borrowed.
#[derive(Serialize)]
struct AuthorJson<'a> {
    id: u64,
    name: &'a str,
}

impl SharedMessageFrame {
    /// The shared encoding of `message`, made by whichever connection needs it first;
    /// `None` for a private message, which each reader labels differently.
    pub(crate) fn of(message: &ChatMessage) -> Option<Arc<Self>> {
        let Room::Channel(channel) = &message.room else {
            return None;
        };
        Some(message.encoded(|| Self::encode(message, channel.as_str())))
    }

    /// Calls `f` with the shared encoding of `message`, borrowed (see [`Self::of`]);
    /// `None`, without calling it, for a private message.
    pub(crate) fn with<R>(message: &ChatMessage, f: impl FnOnce(&Self) -> R) -> Option<R> {
        let Room::Channel(channel) = &message.room else {
            return None;
        };
        Some(message.with_encoded(|| Self::encode(message, channel.as_str()), f))
    }

    fn encode(message: &ChatMessage, channel: &str) -> Self {
        let view = MessageJson {
            id: message.id,
            room: channel,
            author: AuthorJson {
                id: message.author.id.0,
                name: &message.author.name,
            },
            text: &message.text,
            sent_at: message.sent_at.timestamp_millis(),
            mentions: message.mention_keys(),
            edited_at: message.edited_at.map(|at| at.timestamp_millis()),
            reactions: reactions_view(message),
            files: message.attachments.iter().map(FileView::from).collect(),
        };
        let mut event = Vec::with_capacity(FRAME_CAPACITY + message.text.len());
        event.extend_from_slice(br#"{"type":"message","room":"#);
        // Strings and integers into a Vec: serde_json has nothing that can fail here.
        let room = serde_json::to_writer(&mut event, channel);
        event.extend_from_slice(br#","message":"#);
        let start = event.len();
        let view = room.and_then(|()| serde_json::to_writer(&mut event, &view));
        let end = event.len();
        event.push(b'}');
        if let Err(e) = view {
            tracing::error!(error = %e, "cannot serialize a message");
        }
        SharedMessageFrame {
            event,
            message: start..end,
        }
    }

    /// The `message` event frame's payload.
    pub(crate) fn event(&self) -> &[u8] {
        &self.event
    }

    /// The payload of the `ok` reply to the post that stored this message, in parts:
    /// `id_json` is the request's id as JSON (`None` when the request had none).
    pub(crate) fn reply<'a>(&'a self, id_json: Option<&'a [u8]>) -> [&'a [u8]; 6] {
        let message = &self.event[self.message.clone()];
        let (id_key, id): (&[u8], &[u8]) = match id_json {
            Some(id) => (br#","id":"#, id),
            None => (b"", b""),
        };
        [
            br#"{"type":"ok""#,
            id_key,
            id,
            br#","result":{"message":"#,
            message,
            b"}}",
        ]
    }

    /// `id` as the JSON a reply repeats.
    pub(crate) fn id_json(id: &RequestId) -> Vec<u8> {
        // A JSON value the client sent, so it serializes back.
        serde_json::to_vec(id).unwrap_or_else(|_| b"null".to_vec())
    }
}

#[cfg(test)]
mod tests {
    use super::{SharedMessageFrame, SharedPresenceFrame};
    use crate::protocol::{MessageView, Reply, ServerFrame};
    use chat_core::validate::channel_name;
    use chat_core::{
        ChatMessage, Event, Limits, PresenceBatch, PresenceChange, Room, UserId, UserRef,
    };
    use chrono::{TimeZone, Utc};
    use serde_json::json;
    use std::sync::Arc;

    fn message(room: Room, text: &str) -> ChatMessage {
        let author = UserRef {
            id: UserId(7),
            name: Arc::from("Zoë \"z\" <b>"),
        };
        let sent_at = Utc.timestamp_millis_opt(1_767_225_720_123).unwrap();
        ChatMessage::new(42, room, author, text.to_owned(), sent_at)
    }

    fn channel() -> Room {
        Room::Channel(channel_name("Rust-Beginners", &Limits::default()).unwrap())
    }

    fn joined(parts: &[&[u8]]) -> String {
        String::from_utf8(parts.concat()).unwrap()
    }

    /// The hand-built frames are byte for byte what serde makes of the protocol's types,
    /// for texts that need escaping too.
    #[test]
    fn the_shared_frames_are_the_protocols_frames() {
        let me = UserId(9);
        for text in [
            "hi",
            "quote \" backslash \\ newline \n tab \t <script>",
            "é 😀 \u{7f}",
            "hi @Bob and @Ann Lee, @\"q\"",
        ] {
            let message = Arc::new(message(channel(), text));
            let shared = SharedMessageFrame::of(&message).expect("a channel message");
            let event = ServerFrame::from_event(&Event::Posted(message.clone()), me)
                .expect("a message is a frame")
                .to_json();
            assert_eq!(String::from_utf8(shared.event().to_vec()).unwrap(), event);
            for id in [Some(json!(3)), Some(json!("req-\"1\"")), None] {
                let id_json = id.as_ref().map(SharedMessageFrame::id_json);
                let reply = ServerFrame::Ok {
                    id: id.clone(),
                    result: Reply::Posted {
                        message: MessageView::new(&message, me),
                    },
                };
                assert_eq!(
                    joined(&shared.reply(id_json.as_deref())),
                    reply.to_json(),
                    "{text:?} {id:?}"
                );
            }
        }
    }

    /// Every follower and the author's reply use one encoding; a private message has none,
    /// since each side labels it with the other's name.
    #[test]
    fn a_channel_message_is_encoded_once_and_a_private_one_never() {
        let message = message(channel(), "hi");
        let lent = SharedMessageFrame::with(&message, |shared| shared as *const SharedMessageFrame);
        let first = SharedMessageFrame::of(&message).unwrap();
        let again = SharedMessageFrame::of(&message).unwrap();
        assert!(Arc::ptr_eq(&first, &again));
        assert_eq!(lent, Some(Arc::as_ptr(&first)), "lent, the same encoding");

        let pair = [
            UserRef {
                id: UserId(7),
                name: Arc::from("a"),
            },
            UserRef {
                id: UserId(8),
                name: Arc::from("b"),
            },
        ];
        assert!(SharedMessageFrame::of(&self::message(Room::Direct(pair.clone()), "hi")).is_none());
        let private = self::message(Room::Direct(pair.clone()), "hi");
        assert!(
            SharedMessageFrame::with(&private, |_| unreachable!("no shared encoding")).is_none()
        );

        let changes = vec![(pair[0].clone(), PresenceChange::Joined)];
        let batch = PresenceBatch::new(channel(), changes.clone(), 3, 2);
        let shared = SharedPresenceFrame::of(&batch).expect("a channel's batch");
        assert!(Arc::ptr_eq(
            &shared,
            &SharedPresenceFrame::of(&batch).unwrap()
        ));
        let frame = ServerFrame::from_event(&Event::PresenceBatch(Arc::new(batch)), UserId(8));
        assert_eq!(
            shared.event(),
            frame.expect("a presence frame").to_json().as_bytes()
        );
        let direct = PresenceBatch::new(Room::Direct(pair), changes, 2, 2);
        assert!(SharedPresenceFrame::of(&direct).is_none());
    }
}
