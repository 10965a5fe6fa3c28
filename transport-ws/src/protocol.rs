//! The wire format: what a client may send ([`ClientFrame`], parsed by [`parse_request`])
//! and everything the server sends ([`ServerFrame`]), with the conversions from the
//! engine's types. `docs/protocol.md` documents this file frame by frame; change both
//! together.
//!
//! Called by `session.rs`, which owns the socket. This file never does I/O and never
//! calls the engine: it only turns text into requests and engine values into JSON.

use chat_core::{
    ChannelInfo, ChatError, ChatMessage, DisconnectReason, Event, Joined, Member, MessageId,
    UserId, UserRef,
};
use std::borrow::Cow;

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The protocol version announced in the `hello` frame. Bumped on any incompatible change.
pub const PROTOCOL_VERSION: u32 = 1;

/// Bytes reserved for a serialized frame: a message event with a short text fits.
pub(crate) const FRAME_CAPACITY: usize = 256;

/// A request, as a client sends it in a text frame (`{"type": "...", ...}`).
///
/// The optional `id` is not part of this enum: [`parse_request`] takes it out first so
/// that even a request with bad fields can be answered with its `id`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ClientFrame {
    /// Log in: exactly one of `name` (a first visit) or `token` (a return). Must be the
    /// first request of a connection, and comes only once.
    Login {
        /// The display name a new user picked.
        #[serde(default)]
        name: Option<String>,
        /// The resume token a returning user was given.
        #[serde(default)]
        token: Option<String>,
    },
    /// List every channel.
    ListChannels,
    /// Create a channel (the creator does not join it).
    CreateChannel {
        /// The channel's name.
        name: String,
    },
    /// Join a channel or open a private conversation (`@name`), optionally resuming.
    Join {
        /// `general` or `@bob`.
        room: String,
        /// The last message id this client has for the room, to get only what it missed.
        #[serde(default)]
        after: Option<MessageId>,
    },
    /// Stop following a channel.
    Leave {
        /// `general` or `@bob`.
        room: String,
    },
    /// Post a message.
    Post {
        /// `general` or `@bob`.
        room: String,
        /// The text (plain text, never markup).
        text: String,
    },
    /// Delete one of this user's own messages.
    Delete {
        /// `general` or `@bob`.
        room: String,
        /// The message's id.
        message_id: MessageId,
    },
    /// Tell the room this user is typing.
    Typing {
        /// `general` or `@bob`.
        room: String,
    },
    /// The members of a joined room.
    Members {
        /// `general` or `@bob`.
        room: String,
    },
}

impl ClientFrame {
    /// Every request `type` this protocol knows, in the order `docs/protocol.md` lists them.
    pub const TYPES: [&'static str; 9] = [
        "login",
        "list_channels",
        "create_channel",
        "join",
        "leave",
        "post",
        "delete",
        "typing",
        "members",
    ];
}

/// Errors the transport itself reports (the engine's own are [`ChatError`]s). Each maps to
/// one stable protocol code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TransportError {
    /// The text frame is not a JSON object.
    BadJson(String),
    /// The object's `type` is not a request this server knows.
    UnknownType(String),
    /// A field is missing or has the wrong type (or `type` itself is missing).
    BadRequest(String),
    /// A binary frame arrived; the protocol is text only.
    BinaryNotSupported,
    /// A request other than `login` arrived before a successful login.
    NotLoggedIn,
    /// A second `login` arrived on a connection that is logged in.
    AlreadyLoggedIn,
}

impl TransportError {
    /// The stable protocol code, e.g. `bad_json`.
    pub fn code(&self) -> &'static str {
        match self {
            TransportError::BadJson(_) => "bad_json",
            TransportError::UnknownType(_) => "unknown_type",
            TransportError::BadRequest(_) => "bad_request",
            TransportError::BinaryNotSupported => "binary_not_supported",
            TransportError::NotLoggedIn => "not_logged_in",
            TransportError::AlreadyLoggedIn => "already_logged_in",
        }
    }

    /// Human-readable text for the `message` field.
    pub fn message(&self) -> String {
        match self {
            TransportError::BadJson(detail) => format!("expected one JSON object: {detail}"),
            TransportError::UnknownType(t) => format!("unknown request type {t:?}"),
            TransportError::BadRequest(detail) => format!("bad request: {detail}"),
            TransportError::BinaryNotSupported => {
                "binary frames are not supported: send JSON in text frames".to_owned()
            }
            TransportError::NotLoggedIn => "log in first".to_owned(),
            TransportError::AlreadyLoggedIn => "this connection is logged in already".to_owned(),
        }
    }
}

/// A request's `id` as the client sent it: a JSON number or string, echoed unchanged.
pub type RequestId = Value;

/// Parses one text frame into its `id` (if any) and request. On failure the error comes
/// with the `id` when one could be read, so the error reply can echo it.
pub fn parse_request(
    text: &str,
) -> Result<(Option<RequestId>, ClientFrame), (Option<RequestId>, TransportError)> {
    if let Some(post) = parse_post(text) {
        return Ok(post);
    }
    parse_any(text)
}

/// A well-formed `post`, read straight into its fields.
#[derive(Deserialize)]
struct PostRequest<'a> {
    #[serde(rename = "type", borrow)]
    kind: Cow<'a, str>,
    #[serde(default)]
    id: Option<RequestId>,
    #[serde(borrow)]
    room: Cow<'a, str>,
    #[serde(borrow)]
    text: Cow<'a, str>,
}

/// The hot path: a `post` parsed without building a JSON tree first (a dozen
/// allocations fewer per message). Anything it does not take exactly as a valid post goes
/// to [`parse_any`], which gives the same result or the precise error.
fn parse_post(text: &str) -> Option<(Option<RequestId>, ClientFrame)> {
    let post: PostRequest = serde_json::from_str(text).ok()?;
    let id_ok = match &post.id {
        None => true,
        Some(id) => id.is_number() || id.is_string(),
    };
    (post.kind == "post" && id_ok).then(|| {
        let frame = ClientFrame::Post {
            room: post.room.into_owned(),
            text: post.text.into_owned(),
        };
        (post.id, frame)
    })
}

/// Any request: the `id` is taken out first, so that even a request with bad fields is
/// answered with it.
fn parse_any(
    text: &str,
) -> Result<(Option<RequestId>, ClientFrame), (Option<RequestId>, TransportError)> {
    let mut value: Value =
        serde_json::from_str(text).map_err(|e| (None, TransportError::BadJson(e.to_string())))?;
    let Some(object) = value.as_object_mut() else {
        return Err((None, TransportError::BadJson("not an object".to_owned())));
    };
    let id = match object.remove("id") {
        None | Some(Value::Null) => None,
        Some(id @ (Value::Number(_) | Value::String(_))) => Some(id),
        Some(_) => {
            return Err((
                None,
                TransportError::BadRequest("`id` must be a number or a string".to_owned()),
            ))
        }
    };
    match object.get("type") {
        Some(Value::String(t)) if ClientFrame::TYPES.contains(&t.as_str()) => {}
        Some(Value::String(t)) => return Err((id, TransportError::UnknownType(t.clone()))),
        _ => {
            return Err((
                id,
                TransportError::BadRequest("`type` must be a string".to_owned()),
            ))
        }
    }
    match serde_json::from_value::<ClientFrame>(value) {
        Ok(frame) => Ok((id, frame)),
        Err(e) => Err((id, TransportError::BadRequest(e.to_string()))),
    }
}

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

/// The `result` of an `ok` reply, one shape per request type.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum Reply {
    /// `login`.
    LoggedIn {
        /// The user logged in.
        user: UserView,
        /// The resume token (32 hex digits): keep it to log in again as this user.
        token: String,
        /// True when this login created the user.
        new_user: bool,
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
        /// The room's highest message id (0 if none), to resume from later.
        last_id: MessageId,
        /// The room's members.
        members: Vec<MemberView>,
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
        /// The room's members, online ones first.
        members: Vec<MemberView>,
    },
    /// `leave`, `delete`: an empty object.
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
            last_id: joined.last_id,
            members: members_view(&joined.members),
        }
    }

    /// The reply to `members`.
    pub fn members(members: &[Member]) -> Self {
        Reply::Members {
            members: members_view(members),
        }
    }
}

/// Everything the server sends, as one JSON object per text frame, tagged by `type`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerFrame {
    /// First frame of every connection.
    Hello {
        /// [`PROTOCOL_VERSION`].
        protocol: u32,
        /// The largest frame the server accepts, in bytes.
        max_frame_bytes: usize,
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
    /// A channel was created.
    ChannelCreated {
        /// The new channel.
        channel: ChannelView,
    },
    /// A member's presence in a room changed.
    Presence {
        /// The room, as this user names it.
        room: String,
        /// Who.
        user: UserView,
        /// `joined`, `left`, `online` or `offline`.
        change: &'static str,
    },
    /// A member is typing.
    Typing {
        /// The room, as this user names it.
        room: String,
        /// Who.
        user: UserView,
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
    /// The `hello` frame for a server with this frame limit.
    pub fn hello(max_frame_bytes: usize) -> Self {
        ServerFrame::Hello {
            protocol: PROTOCOL_VERSION,
            max_frame_bytes,
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

    /// Renders an engine event for user `me`.
    pub fn from_event(event: &Event, me: UserId) -> Self {
        match event {
            Event::Posted(message) => ServerFrame::Message {
                room: message.room.label_for(me),
                message: MessageView::new(message, me),
            },
            Event::Deleted { room, id } => ServerFrame::Deleted {
                room: room.label_for(me),
                message_id: *id,
            },
            Event::ChannelCreated(info) => ServerFrame::ChannelCreated {
                channel: ChannelView::from(info),
            },
            Event::Presence { room, user, change } => ServerFrame::Presence {
                room: room.label_for(me),
                user: UserView::from(user),
                change: change.as_str(),
            },
            Event::Typing { room, user } => ServerFrame::Typing {
                room: room.label_for(me),
                user: UserView::from(user),
            },
            Event::Disconnected(reason) => ServerFrame::disconnected(*reason),
        }
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

    fn err_code(text: &str) -> (Option<RequestId>, &'static str) {
        match parse_request(text) {
            Ok(parsed) => panic!("expected an error, got {parsed:?}"),
            Err((id, e)) => (id, e.code()),
        }
    }

    #[test]
    fn the_post_fast_path_agrees_with_the_general_path() {
        let cases = [
            r#"{"type":"post","id":7,"room":"general","text":"hi"}"#,
            r#"{"type":"post","id":"a","room":"@bob","text":"esc\"aped \u00e9"}"#,
            r#"{"room":"general","text":"no id","type":"post","extra":[1]}"#,
            r#"{"type":"post","id":null,"room":"general","text":"null id"}"#,
            r#"{"type":"post","id":{"x":1},"room":"general","text":"bad id"}"#,
            r#"{"type":"post","id":true,"room":"general","text":"bad id"}"#,
            r#"{"type":"post","id":3,"room":"general"}"#,
            r#"{"type":"post","id":3,"room":"general","text":5}"#,
            r#"{"type":"post","room":"general","text":"a","text":"b"}"#,
            r#"{"type":"join","id":4,"room":"general","text":"not a post"}"#,
            r#"{"type":"dance","id":5,"room":"general","text":"x"}"#,
        ];
        for text in cases {
            let fast = parse_post(text);
            let general = parse_any(text);
            match (&fast, &general) {
                (Some(fast), Ok(general)) => assert_eq!(fast, general, "{text}"),
                (None, _) => {}
                (Some(_), Err(e)) => panic!("{text}: the fast path took a refused request: {e:?}"),
            }
            // Whatever path is taken, the public function gives the general path's answer.
            match (parse_request(text), general) {
                (Ok(a), Ok(b)) => assert_eq!(a, b, "{text}"),
                (Err((ia, ea)), Err((ib, eb))) => {
                    assert_eq!((ia, ea.code()), (ib, eb.code()), "{text}")
                }
                (a, b) => panic!("{text}: {a:?} vs {b:?}"),
            }
        }
        assert!(parse_post(r#"{"type":"post","id":1,"room":"general","text":"hi"}"#).is_some());
    }

    #[test]
    fn parses_every_request_type() {
        let cases = [
            (r#"{"type":"login","id":1,"name":"alice"}"#, "login"),
            (r#"{"type":"list_channels"}"#, "list_channels"),
            (
                r#"{"type":"create_channel","name":"rust"}"#,
                "create_channel",
            ),
            (r#"{"type":"join","room":"general","after":4}"#, "join"),
            (r#"{"type":"leave","room":"general"}"#, "leave"),
            (r#"{"type":"post","room":"@bob","text":"hi"}"#, "post"),
            (
                r#"{"type":"delete","room":"general","message_id":2}"#,
                "delete",
            ),
            (r#"{"type":"typing","room":"general"}"#, "typing"),
            (r#"{"type":"members","room":"general"}"#, "members"),
        ];
        assert_eq!(cases.len(), ClientFrame::TYPES.len());
        for (text, t) in cases {
            assert!(ClientFrame::TYPES.contains(&t));
            let parsed = parse_request(text);
            assert!(parsed.is_ok(), "{text}: {parsed:?}");
        }
    }

    #[test]
    fn keeps_the_id() {
        let (id, frame) =
            parse_request(r#"{"type":"join","id":"j1","room":"general"}"#).expect("valid request");
        assert_eq!(id, Some(json!("j1")));
        assert_eq!(
            frame,
            ClientFrame::Join {
                room: "general".into(),
                after: None
            }
        );
    }

    #[test]
    fn classifies_bad_frames() {
        assert_eq!(err_code("{nope"), (None, "bad_json"));
        assert_eq!(err_code("[1,2]"), (None, "bad_json"));
        assert_eq!(
            err_code(r#"{"type":"dance","id":3}"#),
            (Some(json!(3)), "unknown_type")
        );
        assert_eq!(err_code(r#"{"id":3}"#), (Some(json!(3)), "bad_request"));
        assert_eq!(
            err_code(r#"{"type":"post","id":4,"room":"general"}"#),
            (Some(json!(4)), "bad_request")
        );
        assert_eq!(
            err_code(r#"{"type":"delete","room":"g","message_id":"x"}"#),
            (None, "bad_request")
        );
        assert_eq!(
            err_code(r#"{"type":"list_channels","id":[1]}"#),
            (None, "bad_request")
        );
    }

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
            serde_json::to_value(ServerFrame::hello(65536)).expect("serializes"),
            json!({"type":"hello","protocol":1,"max_frame_bytes":65536})
        );
    }
}
