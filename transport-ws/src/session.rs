//! One WebSocket connection, from `hello` to the close frame: the only task that touches
//! that socket and that connection's engine [`Session`].
//!
//! Spawned by the `/ws` handler in `lib.rs` after the upgrade. One `select!` loop waits on
//! six things at once: a frame from the client, the next engine event, the replies of
//! posts being stored, the heartbeat tick, the idle deadline and the server's shutdown
//! token. Everything happens in this one task, so a request's reply is written before any
//! event that follows it (a `join` snapshot then always comes before the live messages
//! that continue it).
//!
//! Posts are pipelined: the loop reads on while up to `MAX_POSTS_IN_FLIGHT` posts are
//! being stored, so a fast sender's messages reach the room together. Replies still go
//! out in request order (every reply waits for the posts before it) and a post's reply
//! always precedes its own message event.
//!
//! It translates and forwards; it holds no chat state and decides nothing about rooms.
//! Every write is bounded by `Limits::write_timeout`: a client that stops reading is
//! dropped, it never stalls the engine or other clients (the engine itself disconnects a
//! session whose queue is full, as `slow_consumer`).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use actix_ws::{CloseCode, CloseReason, Message, MessageStream, ProtocolError};
use bytestring::ByteString;
use chat_core::{
    ChatError, ChatMessage, DisconnectReason, Engine, Event, Login, PendingPost, Room, Session,
    UserId,
};
use futures_util::stream::{FuturesOrdered, StreamExt};
use tokio::time::{interval_at, sleep, timeout, timeout_at, Instant, MissedTickBehavior};
use tokio_util::sync::CancellationToken;

use crate::fragments::{Assembled, Fragments};
use crate::protocol::{
    parse_request, ClientFrame, MessageView, Reply, RequestId, ServerFrame, TransportError,
};

/// Why the loop ended, and so what (if anything) to send before hanging up.
enum End {
    /// Send `frame` (if any), then a close frame with `code` and `reason`.
    Close {
        frame: Option<ServerFrame>,
        code: CloseCode,
        reason: String,
    },
    /// The client sent a close frame: answer it with the same code.
    ClientClosed(Option<CloseReason>),
    /// The connection is gone or a write failed: nothing more can be sent.
    Gone,
}

/// A write did not complete: the socket is closed or the client stopped reading for
/// longer than `Limits::write_timeout`.
struct Dropped;

/// The failure of one request, answered with an `error` frame.
enum Failure {
    Chat(ChatError),
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

/// Most posts of one connection being stored at once. Past it the loop stops reading the
/// client until one is answered; below it a fast sender's messages reach the room together
/// and are fanned out in one pass.
const MAX_POSTS_IN_FLIGHT: usize = 64;

/// A `post` request handed to its room, waiting for its reply.
struct InFlightPost {
    id: Option<RequestId>,
    post: PendingPost,
}

impl Future for InFlightPost {
    type Output = (Option<RequestId>, Result<Arc<ChatMessage>, ChatError>);

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        Pin::new(&mut this.post)
            .poll(cx)
            .map(|result| (this.id.take(), result))
    }
}

/// What a request that was not refused came to.
enum Handled {
    /// Its reply, to write now (after the replies of the posts before it).
    Done(Reply),
    /// A post on its way to the room: its reply comes when the room has stored it.
    Posting(PendingPost),
}

/// The connection's state: the socket's sending half and, once logged in, the session.
struct Connection {
    ws: actix_ws::Session,
    engine: Engine,
    session: Option<Session>,
    write_timeout: Duration,
    /// Posts handed to their rooms and not answered yet, in request order. Requests are
    /// answered in order: every reply waits for these first.
    posts: FuturesOrdered<InFlightPost>,
}

/// Runs one connection until it closes. `stream` is the socket's receiving half, `ws` its
/// sending half; `shutdown` fires when the server stops.
pub(crate) async fn run(
    engine: Engine,
    shutdown: CancellationToken,
    ws: actix_ws::Session,
    stream: MessageStream,
) {
    // The few limits this loop needs, copied: the whole `Limits` would sit in every
    // connection's task.
    let limits = engine.limits();
    let (max_frame, heartbeat_interval, idle_timeout) = (
        limits.max_frame_bytes,
        limits.heartbeat_interval,
        limits.idle_timeout,
    );
    let write_timeout = limits.write_timeout;
    let mut stream = stream.max_frame_size(max_frame);
    let mut conn = Connection {
        ws,
        engine,
        session: None,
        write_timeout,
        posts: FuturesOrdered::new(),
    };
    let mut fragments = Fragments::new();

    let end = 'conn: {
        if Box::pin(conn.send(&ServerFrame::hello(max_frame)))
            .await
            .is_err()
        {
            break 'conn End::Gone;
        }
        let mut heartbeat = interval_at(Instant::now() + heartbeat_interval, heartbeat_interval);
        heartbeat.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let idle = sleep(idle_timeout);
        tokio::pin!(idle);

        // Every await in this loop but the `select!` is boxed: a task is as large as the
        // largest future it awaits inline, and that size is paid by every idle
        // connection. Boxed, the whole task is about 1.5 KiB instead of 6 (the handlers
        // only allocate when they run, once per request or per batch of events).
        loop {
            // Not biased: a client that floods requests must still get its events (and its
            // own echoes) drained, and a busy room must not starve reading the client.
            tokio::select! {
                _ = shutdown.cancelled() => {
                    break End::Close {
                        frame: Some(ServerFrame::disconnected(DisconnectReason::ShuttingDown)),
                        code: CloseCode::Away,
                        reason: DisconnectReason::ShuttingDown.to_string(),
                    };
                }
                answered = conn.posts.next(), if !conn.posts.is_empty() => {
                    if let Some((id, result)) = answered {
                        if Box::pin(conn.answer_post(id, result)).await.is_err() {
                            break End::Gone;
                        }
                    }
                }
                received = stream.recv(), if conn.posts.len() < MAX_POSTS_IN_FLIGHT => {
                    let Some(received) = received else {
                        tracing::debug!("connection closed by the peer");
                        break End::Gone;
                    };
                    // Any frame, a pong included, proves the client is there.
                    idle.as_mut().reset(Instant::now() + idle_timeout);
                    let text = match received {
                        Ok(Message::Text(text)) => text.to_string(),
                        Ok(Message::Binary(_)) => {
                            if Box::pin(conn.refuse_binary()).await.is_err() {
                                break End::Gone;
                            }
                            continue;
                        }
                        Ok(Message::Continuation(item)) => match fragments.push(item, max_frame) {
                            Assembled::Pending => continue,
                            Assembled::Text(text) => text,
                            Assembled::Binary => {
                                if Box::pin(conn.refuse_binary()).await.is_err() {
                                    break End::Gone;
                                }
                                continue;
                            }
                            Assembled::TooLarge => break too_large(max_frame),
                            Assembled::Invalid(why) => {
                                break End::Close { frame: None, code: CloseCode::Protocol, reason: why.to_owned() };
                            }
                        },
                        Ok(Message::Ping(bytes)) => {
                            if Box::pin(conn.write(Outgoing::Pong(bytes.to_vec()))).await.is_err() {
                                break End::Gone;
                            }
                            continue;
                        }
                        Ok(Message::Pong(_)) | Ok(Message::Nop) => continue,
                        Ok(Message::Close(reason)) => break End::ClientClosed(reason),
                        Err(ProtocolError::Overflow) => break too_large(max_frame),
                        Err(e) => {
                            tracing::debug!(error = %e, "protocol error");
                            break End::Close { frame: None, code: CloseCode::Protocol, reason: e.to_string() };
                        }
                    };
                    if Box::pin(conn.handle_text(&text)).await.is_err() {
                        break End::Gone;
                    }
                }
                event = next_event(&mut conn.session) => {
                    let Some(event) = event else {
                        // The session ended without a reason the client should see.
                        break End::Close { frame: None, code: CloseCode::Normal, reason: String::new() };
                    };
                    match Box::pin(conn.forward_batch(event)).await {
                        Ok(None) => {}
                        Ok(Some(end)) => break end,
                        Err(Dropped) => break End::Gone,
                    }
                }
                _ = heartbeat.tick() => {
                    if Box::pin(conn.write(Outgoing::Ping)).await.is_err() {
                        break End::Gone;
                    }
                }
                _ = &mut idle => {
                    tracing::debug!("idle timeout");
                    break End::Close {
                        frame: None,
                        code: CloseCode::Policy,
                        reason: format!("idle for {} ms", idle_timeout.as_millis()),
                    };
                }
            }
        }
    };

    Box::pin(conn.finish(end)).await;
}

/// The end for a frame over the limit: the rest of it is never read, so the connection
/// cannot continue.
fn too_large(max_frame: usize) -> End {
    tracing::debug!(max_frame, "frame too large");
    End::Close {
        frame: None,
        code: CloseCode::Size,
        reason: format!("frames are limited to {max_frame} bytes"),
    }
}

/// The close code that goes with an engine disconnection.
fn close_code_for(reason: DisconnectReason) -> CloseCode {
    match reason {
        DisconnectReason::ShuttingDown => CloseCode::Away,
        DisconnectReason::SlowConsumer => CloseCode::Policy,
    }
}

/// The next engine event, or never before login.
async fn next_event(session: &mut Option<Session>) -> Option<Event> {
    match session {
        Some(session) => session.next_event().await,
        None => std::future::pending().await,
    }
}

/// Something to write on the socket.
enum Outgoing {
    Text(String),
    Shared(ByteString),
    Ping,
    Pong(Vec<u8>),
}

/// Most events written in one go before the loop looks at the client again.
const EVENT_BATCH: usize = 256;

/// A channel message's frame, encoded once and shared by every recipient (through the
/// message's [`chat_core::Encodings`]).
struct SharedMessageFrame(ByteString);

impl Connection {
    /// Writes `first` and every event already waiting behind it (up to `EVENT_BATCH`),
    /// so the socket gets them in one flush. Returns how the connection must end, if an
    /// event ends it.
    async fn forward_batch(&mut self, first: Event) -> Result<Option<End>, Dropped> {
        let mut next = Some(first);
        let mut written = 0;
        // The batch must be taken within `write_timeout`, counted from its first write
        // (and again after waiting for post replies, which is not the client's doing).
        let mut deadline = None;
        while let Some(event) = next.take() {
            if let Event::Disconnected(reason) = event {
                return Ok(Some(End::Close {
                    frame: Some(ServerFrame::disconnected(reason)),
                    code: close_code_for(reason),
                    reason: reason.to_string(),
                }));
            }
            if let Event::Posted(message) = &event {
                if self.answer_posts_before_echo(message).await? {
                    deadline = None;
                }
            }
            let text = self.encode(&event);
            let by = *deadline.get_or_insert_with(|| Instant::now() + self.write_timeout);
            self.write_by(Outgoing::Shared(text), by).await?;
            written += 1;
            if written < EVENT_BATCH {
                next = self.session.as_mut().and_then(Session::try_next_event);
            }
        }
        Ok(None)
    }

    /// The frame for `event`; a channel message is serialized once for all recipients
    /// (its room label is the same for everyone, unlike a private message's).
    fn encode(&self, event: &Event) -> ByteString {
        let me = self.user_id();
        match event {
            Event::Posted(message) if matches!(message.room, Room::Channel(_)) => {
                let shared = message.encodings.get_or_insert_with(|| {
                    SharedMessageFrame(ServerFrame::from_event(event, me).to_json().into())
                });
                shared.0.clone()
            }
            _ => ServerFrame::from_event(event, me).to_json().into(),
        }
    }

    fn user_id(&self) -> UserId {
        // Events only come from a logged-in session; 0 is never a user's id.
        self.session
            .as_ref()
            .map(|s| s.user().id)
            .unwrap_or(UserId(0))
    }

    /// Writes one frame within `write_timeout`.
    async fn write(&mut self, out: Outgoing) -> Result<(), Dropped> {
        self.write_by(out, Instant::now() + self.write_timeout)
            .await
    }

    /// Writes one frame, giving up at `deadline`. A batch of events shares one deadline
    /// (one clock read and one timer per batch, not per frame).
    async fn write_by(&mut self, out: Outgoing, deadline: Instant) -> Result<(), Dropped> {
        let write = async {
            match out {
                Outgoing::Text(text) => self.ws.text(text).await,
                Outgoing::Shared(text) => self.ws.text(text).await,
                Outgoing::Ping => self.ws.ping(b"").await,
                Outgoing::Pong(bytes) => self.ws.pong(&bytes).await,
            }
        };
        match timeout_at(deadline, write).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(_closed)) => {
                tracing::debug!("write to a closed socket");
                Err(Dropped)
            }
            Err(_elapsed) => {
                tracing::warn!(
                    write_timeout_ms = self.write_timeout.as_millis() as u64,
                    "client stopped reading: dropping it"
                );
                Err(Dropped)
            }
        }
    }

    async fn send(&mut self, frame: &ServerFrame) -> Result<(), Dropped> {
        self.write(Outgoing::Text(frame.to_json())).await
    }

    async fn refuse_binary(&mut self) -> Result<(), Dropped> {
        let frame = ServerFrame::transport_error(None, &TransportError::BinaryNotSupported);
        self.send(&frame).await
    }

    /// Answers one text frame with exactly one `ok` or `error` frame, in request order: a
    /// post's reply is written when the room has stored it, and every later reply waits
    /// for it.
    async fn handle_text(&mut self, text: &str) -> Result<(), Dropped> {
        let frame = match parse_request(text) {
            Ok((id, request)) => {
                let name = request_name(&request);
                match self.dispatch(request).await {
                    Ok(Handled::Posting(post)) => {
                        self.posts.push_back(InFlightPost { id, post });
                        return Ok(());
                    }
                    Ok(Handled::Done(reply)) => reply_frame(id, name, Ok(reply)),
                    Err(failure) => reply_frame(id, name, Err(failure)),
                }
            }
            Err((id, error)) => {
                tracing::debug!(code = error.code(), "refused frame");
                ServerFrame::transport_error(id, &error)
            }
        };
        self.answer_posts().await?;
        self.send(&frame).await
    }

    /// Writes the reply to a post the room has stored (or refused).
    async fn answer_post(
        &mut self,
        id: Option<RequestId>,
        result: Result<Arc<ChatMessage>, ChatError>,
    ) -> Result<(), Dropped> {
        let me = self.user_id();
        let outcome = result
            .map(|message| Reply::Posted {
                message: MessageView::new(&message, me),
            })
            .map_err(Failure::Chat);
        self.send(&reply_frame(id, "post", outcome)).await
    }

    /// Waits for every post in flight and writes their replies, in order.
    async fn answer_posts(&mut self) -> Result<(), Dropped> {
        while let Some((id, result)) = self.posts.next().await {
            self.answer_post(id, result).await?;
        }
        Ok(())
    }

    /// Before this connection's own message goes out as an event, writes the replies of
    /// the posts up to the one that stored it: a client always has a post's reply before
    /// its echo. (The room queues the echo before it answers, so it can arrive first.)
    /// Returns whether it wrote (and so may have waited for) any reply.
    async fn answer_posts_before_echo(&mut self, message: &ChatMessage) -> Result<bool, Dropped> {
        if self.posts.is_empty() || message.author.id != self.user_id() {
            return Ok(false);
        }
        while let Some((id, result)) = self.posts.next().await {
            let is_this = matches!(&result, Ok(m) if m.id == message.id && m.room == message.room);
            self.answer_post(id, result).await?;
            if is_this {
                break;
            }
        }
        Ok(true)
    }

    async fn dispatch(&mut self, request: ClientFrame) -> Result<Handled, Failure> {
        let Some(session) = &self.session else {
            let reply = match request {
                ClientFrame::Login { name, token } => self.login(name, token).await?,
                _ => return Err(TransportError::NotLoggedIn.into()),
            };
            return Ok(Handled::Done(reply));
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
            ClientFrame::Post { room, text } => {
                return Ok(Handled::Posting(
                    session.start_post(room.as_str(), &text).await?,
                ));
            }
            ClientFrame::Delete { room, message_id } => {
                session.delete(room.as_str(), message_id).await?;
                Reply::Done {}
            }
            ClientFrame::Typing { room } => Reply::Typing {
                sent: session.typing(room.as_str()).await?,
            },
            ClientFrame::Members { room } => Reply::members(&session.members(room.as_str()).await?),
        };
        Ok(Handled::Done(reply))
    }

    async fn login(
        &mut self,
        name: Option<String>,
        token: Option<String>,
    ) -> Result<Reply, Failure> {
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
        let session = self.engine.connect(login).await?;
        let user = session.user();
        let span = tracing::Span::current();
        span.record("session_id", session.id().0);
        span.record("user", &*user.name);
        tracing::info!("logged in");
        let reply = Reply::LoggedIn {
            user: user.into(),
            token: session.token().expose().to_owned(),
            new_user: session.is_new_user(),
        };
        self.session = Some(session);
        Ok(reply)
    }

    /// Sends the last frames (if the socket still takes them) and releases the session.
    async fn finish(mut self, end: End) {
        let close = match end {
            End::Gone => None,
            End::ClientClosed(reason) => Some(reason),
            End::Close {
                frame,
                code,
                reason,
            } => {
                let sent = match frame {
                    Some(frame) => self.send(&frame).await.is_ok(),
                    None => true,
                };
                let description = (!reason.is_empty()).then_some(reason);
                sent.then_some(Some(CloseReason { code, description }))
            }
        };
        if let Some(reason) = close {
            let code = reason.as_ref().map(|r| u16::from(r.code));
            match timeout(self.write_timeout, self.ws.close(reason)).await {
                Ok(Ok(())) => tracing::debug!(?code, "closed"),
                _ => tracing::debug!(?code, "could not send the close frame"),
            }
        }
        if let Some(session) = self.session {
            session.close();
        }
    }
}

/// The request's `type`, for logs.
fn request_name(request: &ClientFrame) -> &'static str {
    match request {
        ClientFrame::Login { .. } => "login",
        ClientFrame::ListChannels => "list_channels",
        ClientFrame::CreateChannel { .. } => "create_channel",
        ClientFrame::Join { .. } => "join",
        ClientFrame::Leave { .. } => "leave",
        ClientFrame::Post { .. } => "post",
        ClientFrame::Delete { .. } => "delete",
        ClientFrame::Typing { .. } => "typing",
        ClientFrame::Members { .. } => "members",
    }
}

fn reply_frame(
    id: Option<RequestId>,
    request: &'static str,
    outcome: Result<Reply, Failure>,
) -> ServerFrame {
    match outcome {
        Ok(result) => ServerFrame::Ok { id, result },
        Err(Failure::Chat(error)) => {
            tracing::debug!(request, code = error.code(), "request refused");
            ServerFrame::chat_error(id, &error)
        }
        Err(Failure::Transport(error)) => {
            tracing::debug!(request, code = error.code(), "request refused");
            ServerFrame::transport_error(id, &error)
        }
    }
}
