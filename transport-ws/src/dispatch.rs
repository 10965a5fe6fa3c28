//! One client frame in, one engine call, one reply frame out: the requests of
//! `docs/protocol.md` translated into [`Session`] (and, for `login`, [`Engine`]) calls,
//! and their results into `ok` or `error` frames.
//!
//! Called by `connection.rs` for each frame the client sends; the connection decides when
//! the reply is written (after the posts before it) and writes it. This file never touches
//! the socket, so it is tested without one (frame -> call -> reply, below). It holds no
//! state of its own and decides nothing about rooms or users: the engine does.

use std::net::IpAddr;
use std::sync::Arc;

use chat_core::{
    ChatError, ChatMessage, Engine, FileId, Login, MemberCursor, PendingPost, Session, UserId,
    MAX_MEMBER_PAGE, MEMBER_PAGE,
};

use crate::protocol::{
    parse_request, ClientFrame, MessageView, Reply, RequestId, ServerFrame, TransportError,
};

/// What one text frame came to.
pub(crate) enum Dispatched {
    /// The reply, to write once the replies of the posts before it are written.
    Reply(ServerFrame),
    /// A post on its way to its room, with the request's id: its reply
    /// ([`post_reply`]) comes when the room has stored it.
    Posting(Option<RequestId>, PendingPost),
}

/// Handles one text frame from the client, which connects from `client`: parses it, makes
/// the call it asks for on `session` (a `login` creates the session), and says what to
/// answer. Every frame gets exactly one reply: this one, or a post's when its room
/// answers.
pub(crate) async fn text(
    engine: &Engine,
    client: IpAddr,
    session: &mut Option<Session>,
    text: &str,
) -> Dispatched {
    let (id, request) = match parse_request(text) {
        Ok(parsed) => parsed,
        Err((id, error)) => {
            tracing::debug!(code = error.code(), "refused frame");
            return Dispatched::Reply(ServerFrame::transport_error(id, &error));
        }
    };
    let name = request.type_name();
    match call(engine, client, session, request).await {
        Ok(Called::Done(result)) => Dispatched::Reply(ServerFrame::Ok { id, result }),
        Ok(Called::Posting(post)) => Dispatched::Posting(id, post),
        Err(failure) => Dispatched::Reply(refusal(id, name, failure)),
    }
}

/// The reply to a binary frame: the protocol is text only (the frame had no `id` to read).
pub(crate) fn binary() -> ServerFrame {
    ServerFrame::transport_error(None, &TransportError::BinaryNotSupported)
}

/// The reply to the post with request `id`, once its room has answered, for the user
/// `me`. (A channel message's reply is usually written from its shared encoding instead,
/// `shared_frame.rs`; this is the same frame.)
pub(crate) fn post_reply(
    id: Option<RequestId>,
    result: Result<Arc<ChatMessage>, ChatError>,
    me: UserId,
) -> ServerFrame {
    let outcome = result
        .map(|message| Reply::Posted {
            message: MessageView::new(&message, me),
        })
        .map_err(Failure::Chat);
    match outcome {
        Ok(result) => ServerFrame::Ok { id, result },
        Err(failure) => refusal(id, "post", failure),
    }
}

/// Why a request was refused.
enum Failure {
    /// The engine refused it.
    Chat(ChatError),
    /// The transport refused it before the engine saw it.
    Transport(TransportError),
}

impl From<ChatError> for Failure {
    fn from(e: ChatError) -> Self {
        Failure::Chat(e)
    }
}

impl From<TransportError> for Failure {
    fn from(e: TransportError) -> Self {
        Failure::Transport(e)
    }
}

/// What a request that was not refused came to.
enum Called {
    /// Its reply.
    Done(Reply),
    /// A post handed to its room.
    Posting(PendingPost),
}

/// The file ids a post names; one that is not an id at all is no upload of this user.
fn file_ids(raw: Vec<String>) -> Result<Vec<FileId>, ChatError> {
    raw.iter()
        .map(|id| FileId::parse(id).ok_or_else(|| ChatError::NoSuchFile(id.clone())))
        .collect()
}

/// Makes the call `request` asks for. Before login only `login` is allowed, after it
/// everything but `login`.
async fn call(
    engine: &Engine,
    client: IpAddr,
    session: &mut Option<Session>,
    request: ClientFrame,
) -> Result<Called, Failure> {
    let Some(session) = session else {
        return match request {
            ClientFrame::Login { name, token } => {
                let (new, reply) = login(engine, client, name, token).await?;
                *session = Some(new);
                Ok(Called::Done(reply))
            }
            _ => Err(TransportError::NotLoggedIn.into()),
        };
    };
    let me = session.user().id;
    let reply = match request {
        ClientFrame::Login { .. } => return Err(TransportError::AlreadyLoggedIn.into()),
        ClientFrame::ListChannels => Reply::Channels {
            channels: session
                .list_channels()
                .await?
                .iter()
                .map(Into::into)
                .collect(),
        },
        ClientFrame::CreateChannel { name } => Reply::ChannelCreated {
            channel: (&session.create_channel(&name).await?).into(),
        },
        ClientFrame::Join { room, after } => {
            Reply::joined(&session.join(room.as_str(), after).await?, me)
        }
        ClientFrame::Leave { room } => {
            session.leave(room.as_str()).await?;
            Reply::Done {}
        }
        ClientFrame::Post { room, text, files } => {
            let posting = if files.is_empty() {
                session.start_post(room, text).await?
            } else {
                let ids = file_ids(files)?;
                session.start_post_with_files(room, text, ids).await?
            };
            return Ok(Called::Posting(posting));
        }
        ClientFrame::Delete { room, message_id } => {
            session.delete(room.as_str(), message_id).await?;
            Reply::Done {}
        }
        ClientFrame::Edit {
            room,
            message_id,
            text,
        } => {
            session.edit(room.as_str(), message_id, text).await?;
            Reply::Done {}
        }
        ClientFrame::React {
            room,
            message_id,
            emoji,
        } => {
            session.react(room.as_str(), message_id, &emoji).await?;
            Reply::Done {}
        }
        ClientFrame::Typing { room } => Reply::Typing {
            sent: session.typing(room.as_str()).await?,
        },
        ClientFrame::Logout => {
            // The `disconnected` frame and the close follow, as for every session of
            // this user.
            session.log_out().await?;
            Reply::Done {}
        }
        ClientFrame::Members { room, after, limit } => {
            let after = match after {
                None => None,
                Some(text) => Some(MemberCursor::parse(&text).ok_or_else(|| {
                    TransportError::BadRequest(
                        "`after` must be a `next` or `members_next` the server gave".to_owned(),
                    )
                })?),
            };
            let limit = limit.unwrap_or(MEMBER_PAGE);
            if !(1..=MAX_MEMBER_PAGE).contains(&limit) {
                return Err(TransportError::BadRequest(format!(
                    "`limit` must be 1 to {MAX_MEMBER_PAGE}"
                ))
                .into());
            }
            Reply::members(&session.members_page(room.as_str(), after, limit).await?)
        }
    };
    Ok(Called::Done(reply))
}

/// Logs in from `client` with exactly one of a display name and a resume token, and
/// names the connection's span after the session.
async fn login(
    engine: &Engine,
    client: IpAddr,
    name: Option<String>,
    token: Option<String>,
) -> Result<(Session, Reply), Failure> {
    let login = match (name, token) {
        (Some(name), None) => Login::Name(name),
        (None, Some(token)) => Login::Resume(token),
        _ => {
            return Err(TransportError::BadRequest(
                "login takes exactly one of `name` and `token`".to_owned(),
            )
            .into())
        }
    };
    login_as(engine, client, login).await
}

/// Logs in from `client` as `login` says, and names the connection's span after the
/// session.
async fn login_as(
    engine: &Engine,
    client: IpAddr,
    login: Login,
) -> Result<(Session, Reply), Failure> {
    let session = engine.connect_from(login, client).await?;
    let user = session.user();
    let span = tracing::Span::current();
    span.record("session_id", session.id().0);
    span.record("user", &*user.name);
    tracing::info!("logged in");
    let reply = Reply::LoggedIn {
        user: user.into(),
        token: session.token().expose().to_owned(),
        new_user: session.is_new_user(),
        mention_key: chat_core::validate::name_key(&user.name),
    };
    Ok((session, reply))
}

/// The login the embedder made for the connection before it opened (an account of its
/// own, `Login::External`): its reply, as a `login` request without an `id` gets, and
/// the session if it succeeded.
pub(crate) async fn embedder_login(
    engine: &Engine,
    client: IpAddr,
    login: Login,
) -> (Option<Session>, ServerFrame) {
    match login_as(engine, client, login).await {
        Ok((session, result)) => (Some(session), ServerFrame::Ok { id: None, result }),
        Err(failure) => (None, refusal(None, "login", failure)),
    }
}

/// The `error` reply for a refused request (`request` names its type, for the log).
fn refusal(id: Option<RequestId>, request: &'static str, failure: Failure) -> ServerFrame {
    match failure {
        Failure::Chat(error) => {
            tracing::debug!(request, code = error.code(), "request refused");
            ServerFrame::chat_error(id, &error)
        }
        Failure::Transport(error) => {
            tracing::debug!(request, code = error.code(), "request refused");
            ServerFrame::transport_error(id, &error)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{binary, post_reply, text, Dispatched};
    use chat_core::{Engine, Limits, Rate, Session};
    use serde_json::{json, Value};

    /// Where the test's client connects from.
    const LOCAL: std::net::IpAddr = std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST);

    async fn engine() -> Engine {
        let limits = {
            let mut limits = Limits::default();
            limits.message_rate = Rate::new(1_000, 1_000.0);
            limits.channel_create_rate = Rate::new(1_000, 1_000.0);
            limits
        };
        Engine::builder()
            .limits(limits)
            .start()
            .await
            .expect("engine")
    }

    /// The reply `frame` gets, as the client would read it.
    async fn reply(engine: &Engine, session: &mut Option<Session>, frame: Value) -> Value {
        match text(engine, LOCAL, session, &frame.to_string()).await {
            Dispatched::Reply(reply) => serde_json::from_str(&reply.to_json()).expect("json"),
            Dispatched::Posting(..) => panic!("{frame}: a post, not a reply"),
        }
    }

    /// A connection logged in as `name`.
    async fn logged_in(engine: &Engine, name: &str) -> Option<Session> {
        let mut session = None;
        let login = reply(engine, &mut session, json!({"type": "login", "name": name})).await;
        assert_eq!(login["type"], "ok", "{login}");
        session
    }

    #[tokio::test]
    async fn login_creates_the_session_and_comes_once() {
        let engine = engine().await;
        let mut session = None;
        let before = reply(
            &engine,
            &mut session,
            json!({"type": "list_channels", "id": 1}),
        )
        .await;
        assert_eq!(before["code"], "not_logged_in");
        assert_eq!(before["id"], 1);
        assert!(session.is_none());

        let both = json!({"type": "login", "id": 2, "name": "a", "token": "b"});
        assert_eq!(
            reply(&engine, &mut session, both).await["code"],
            "bad_request"
        );
        let login = reply(
            &engine,
            &mut session,
            json!({"type": "login", "id": "l", "name": "alice"}),
        )
        .await;
        assert_eq!(login["id"], "l");
        assert_eq!(login["result"]["user"]["name"], "alice");
        assert_eq!(login["result"]["new_user"], true);
        assert_eq!(
            session.as_ref().map(|s| &*s.user().name),
            Some("alice"),
            "the session is the connection's now"
        );

        let again = reply(
            &engine,
            &mut session,
            json!({"type": "login", "name": "bob"}),
        )
        .await;
        assert_eq!(again["code"], "already_logged_in");
        assert!(again.get("id").is_none(), "no id, no echo: {again}");
        engine.shutdown().await;
    }

    #[tokio::test]
    async fn requests_become_session_calls_and_their_results_replies() {
        let engine = engine().await;
        let mut alice = logged_in(&engine, "alice").await;
        let created = reply(
            &engine,
            &mut alice,
            json!({"type": "create_channel", "id": 1, "name": "rust"}),
        )
        .await;
        assert_eq!(created["result"]["channel"]["name"], "rust");
        let joined = reply(
            &engine,
            &mut alice,
            json!({"type": "join", "id": 2, "room": "rust"}),
        )
        .await;
        assert_eq!(joined["result"]["room"], "rust");
        assert_eq!(joined["result"]["members"][0]["user"]["name"], "alice");
        let members = reply(
            &engine,
            &mut alice,
            json!({"type": "members", "id": 3, "room": "rust"}),
        )
        .await;
        assert_eq!(members["result"]["members"][0]["online"], true);
        let typing = reply(
            &engine,
            &mut alice,
            json!({"type": "typing", "id": 4, "room": "rust"}),
        )
        .await;
        assert_eq!(
            typing,
            json!({"type": "ok", "id": 4, "result": {"sent": true}})
        );
        let left = reply(
            &engine,
            &mut alice,
            json!({"type": "leave", "id": 5, "room": "rust"}),
        )
        .await;
        assert_eq!(left, json!({"type": "ok", "id": 5, "result": {}}));
        engine.shutdown().await;
    }

    #[tokio::test]
    async fn a_post_is_answered_when_its_room_has_stored_it() {
        let engine = engine().await;
        let mut alice = logged_in(&engine, "alice").await;
        reply(
            &engine,
            &mut alice,
            json!({"type": "create_channel", "name": "g"}),
        )
        .await;
        reply(&engine, &mut alice, json!({"type": "join", "room": "g"})).await;

        let post = json!({"type": "post", "id": 7, "room": "g", "text": "hi"});
        let (id, pending) = match text(&engine, LOCAL, &mut alice, &post.to_string()).await {
            Dispatched::Posting(id, pending) => (id, pending),
            Dispatched::Reply(reply) => panic!("a post is not answered at once: {reply:?}"),
        };
        let me = alice.as_ref().map(|s| s.user().id).expect("logged in");
        let frame = post_reply(id, pending.await, me);
        let frame: Value = serde_json::from_str(&frame.to_json()).expect("json");
        assert_eq!(frame["type"], "ok");
        assert_eq!(frame["id"], 7);
        assert_eq!(frame["result"]["message"]["text"], "hi");
        assert_eq!(frame["result"]["message"]["room"], "g");
        assert_eq!(frame["result"]["message"]["id"], 1);

        // A post the session refuses before it reaches a room is answered at once.
        let elsewhere = json!({"type": "post", "id": 8, "room": "nowhere", "text": "hi"});
        let refused = reply(&engine, &mut alice, elsewhere).await;
        assert_eq!(
            (refused["id"].clone(), refused["code"].clone()),
            (json!(8), json!("not_joined"))
        );
        engine.shutdown().await;
    }

    #[tokio::test]
    async fn engine_and_transport_errors_keep_their_codes_and_the_id() {
        let engine = engine().await;
        let mut alice = logged_in(&engine, "alice").await;
        let cases = [
            ("{nope".to_owned(), Value::Null, "bad_json"),
            (
                r#"{"type":"dance","id":3}"#.to_owned(),
                json!(3),
                "unknown_type",
            ),
            (
                r#"{"type":"post","id":4,"room":"g"}"#.to_owned(),
                json!(4),
                "bad_request",
            ),
            (
                json!({"type": "join", "id": 5, "room": "nowhere"}).to_string(),
                json!(5),
                "no_such_channel",
            ),
            (
                json!({"type": "create_channel", "id": 6, "name": "no spaces"}).to_string(),
                json!(6),
                "invalid_channel_name",
            ),
        ];
        for (frame, id, code) in cases {
            let Dispatched::Reply(reply) = text(&engine, LOCAL, &mut alice, &frame).await else {
                panic!("{frame}: expected a reply");
            };
            let reply: Value = serde_json::from_str(&reply.to_json()).expect("json");
            assert_eq!(reply["type"], "error", "{frame}");
            assert_eq!(reply["code"], code, "{frame}");
            assert_eq!(
                reply.get("id").cloned().unwrap_or(Value::Null),
                id,
                "{frame}"
            );
        }
        let binary: Value = serde_json::from_str(&binary().to_json()).expect("json");
        assert_eq!(binary["code"], "binary_not_supported");
        engine.shutdown().await;
    }
}
