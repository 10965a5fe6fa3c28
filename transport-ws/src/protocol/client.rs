//! What a client may send: [`ClientFrame`] requests, read by [`parse_request`] from one
//! text frame, and the [`TransportError`]s a frame that is not a valid request gets.
//!
//! Called by `dispatch.rs` for every text frame. It never does I/O and never calls the
//! engine: it only turns text into requests. `docs/protocol.md` documents each request;
//! change both together.

use std::borrow::Cow;

use chat_core::MessageId;
use serde::Deserialize;
use serde_json::Value;

/// A request, as a client sends it in a text frame (`{"type": "...", ...}`).
///
/// The optional `id` is not part of this enum: [`parse_request`] takes it out first so
/// that even a request with bad fields can be answered with its `id`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
#[non_exhaustive]
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
    /// Post a message, with files uploaded before (their ids); the text may then be
    /// empty.
    Post {
        /// `general` or `@bob`.
        room: String,
        /// The text (plain text, never markup).
        text: String,
        /// Ids of files this user uploaded (`POST /files`) and no post carries yet.
        #[serde(default)]
        files: Vec<String>,
    },
    /// Delete one of this user's own messages.
    Delete {
        /// `general` or `@bob`.
        room: String,
        /// The message's id.
        message_id: MessageId,
    },
    /// Replace the text of one of this user's own messages.
    Edit {
        /// `general` or `@bob`.
        room: String,
        /// The message's id.
        message_id: MessageId,
        /// The new text (plain text, the same rules as a post's).
        text: String,
    },
    /// Add this user's reaction to a message, or take it back if it is there.
    React {
        /// `general` or `@bob`.
        room: String,
        /// The message's id.
        message_id: MessageId,
        /// One emoji of the set (`docs/protocol.md`), or its short name.
        emoji: String,
    },
    /// Tell the room this user is typing.
    Typing {
        /// `general` or `@bob`.
        room: String,
    },
    /// One page of a joined room's members, online ones first.
    Members {
        /// `general` or `@bob`.
        room: String,
        /// Where the page starts: the `next` (or a join's `members_next`) of the page
        /// before; from the start without it.
        #[serde(default)]
        after: Option<String>,
        /// Members at most (1 to 1,000; default 100).
        #[serde(default)]
        limit: Option<usize>,
    },
    /// Log out everywhere: the token no longer resumes and the name is free at once.
    Logout,
}

impl ClientFrame {
    /// Every request `type` this protocol knows, in the order `docs/protocol.md` lists them.
    pub const TYPES: [&'static str; 12] = [
        "login",
        "list_channels",
        "create_channel",
        "join",
        "leave",
        "post",
        "delete",
        "edit",
        "react",
        "typing",
        "members",
        "logout",
    ];

    /// This request's `type`, as the client wrote it (for logs).
    pub fn type_name(&self) -> &'static str {
        match self {
            ClientFrame::Login { .. } => "login",
            ClientFrame::ListChannels => "list_channels",
            ClientFrame::CreateChannel { .. } => "create_channel",
            ClientFrame::Join { .. } => "join",
            ClientFrame::Leave { .. } => "leave",
            ClientFrame::Post { .. } => "post",
            ClientFrame::Delete { .. } => "delete",
            ClientFrame::Edit { .. } => "edit",
            ClientFrame::React { .. } => "react",
            ClientFrame::Typing { .. } => "typing",
            ClientFrame::Members { .. } => "members",
            ClientFrame::Logout => "logout",
        }
    }
}

/// Errors the transport itself reports (the engine's own are
/// [`ChatError`](chat_core::ChatError)s). Each maps to one stable protocol code.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
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
    #[serde(default)]
    files: Vec<String>,
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
            files: post.files,
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
            r#"{"type":"post","id":3,"room":"general","text":"","files":["0123456789abcdef0123456789abcdef"]}"#,
            r#"{"type":"post","id":3,"room":"general","text":"","files":"not a list"}"#,
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
            (
                r#"{"type":"edit","room":"general","message_id":2,"text":"hi!"}"#,
                "edit",
            ),
            (
                r#"{"type":"react","room":"general","message_id":2,"emoji":"heart"}"#,
                "react",
            ),
            (r#"{"type":"typing","room":"general"}"#, "typing"),
            (
                r#"{"type":"members","room":"general","after":"0:2:bob","limit":50}"#,
                "members",
            ),
            (r#"{"type":"logout","id":9}"#, "logout"),
        ];
        assert_eq!(cases.len(), ClientFrame::TYPES.len());
        for (text, t) in cases {
            assert!(ClientFrame::TYPES.contains(&t));
            let parsed = parse_request(text);
            assert!(parsed.is_ok(), "{text}: {parsed:?}");
            assert_eq!(parsed.map(|(_, frame)| frame.type_name()), Ok(t));
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
}
