//! One WebSocket connection, from `hello` to the close frame: the task that owns that
//! socket and that connection's engine [`Session`].
//!
//! Spawned by `upgrade.rs` once the handshake is answered; it owns the TCP stream from
//! then on (`wire.rs` frames it). One `select!` loop waits on seven things at once: a
//! frame from the client, the next engine event, the replies of posts being stored, the
//! heartbeat tick, the idle deadline, the server's shutdown token, and the session coming
//! back from the lane. Requests are handled in this one task, so a request's reply is
//! written before any event that follows it (a `join` snapshot then always comes before
//! the live messages that continue it). Each turn of the loop queues its frames, then
//! takes whatever else is ready without waiting (replies already answered, events already
//! queued), and ends with one write of all of them.
//!
//! Between turns, a connection with nothing of its own in progress lends its session to
//! its worker's lane (`lane.rs`), which writes the channel messages that come meanwhile;
//! the task takes the session back before it does anything else, whatever wakes it, and
//! then writes first what the lane could not (its unwritten bytes, the event it gave
//! back). One of the two writes to the socket at a time.
//!
//! Posts are pipelined: the loop reads on while up to `MAX_POSTS_IN_FLIGHT` posts are
//! being stored, so a fast sender's messages reach the room together. Replies still go
//! out in request order (every reply waits for the posts before it) and a post's reply
//! always precedes its own message event.
//!
//! It translates and forwards; it holds no chat state and decides nothing about rooms.
//! Every write is bounded by `Limits::write_timeout`: a client that stops reading is
//! dropped, it never stalls the engine or other clients (the engine itself disconnects a
//! session whose queue is full, as `slow_consumer`). After a close frame the task reads on
//! for up to `Limits::close_linger` until the client closes too, so the close frame is not
//! lost to a reset.

use std::collections::VecDeque;
use std::future::{poll_fn, Future};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll, Waker};
use std::time::Duration;

use actix_http::ws::{CloseCode, CloseReason};
use bytes::BytesMut;
use chat_core::{
    ChatError, ChatMessage, DisconnectReason, Engine, Event, Login, PendingPost, Session, UserId,
};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio::time::{interval_at, sleep, timeout, Instant, MissedTickBehavior};
use tokio_util::sync::CancellationToken;

use crate::lane::{self, Lending, Slot};
use crate::protocol::{
    parse_request, ClientFrame, MessageView, Reply, RequestId, ServerFrame, TransportError,
};
use crate::shared_frame::SharedMessageFrame;
use crate::wire::{Incoming, ReadError, Reader, Writer, FLUSH_AT};

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

/// A post's request id and what became of it.
type PostOutcome = (Option<RequestId>, Result<Arc<ChatMessage>, ChatError>);

/// The posts handed to their rooms and not answered yet, in request order.
///
/// Only the oldest is polled: replies go out in request order, so a later post's reply
/// could not be written before it anyway. That also keeps the later ones quiet: a reply
/// that nobody polled wakes no task when it arrives, and the queue allocates nothing per
/// post (a `FuturesOrdered` allocates a task node for each).
#[derive(Default)]
struct InFlightPosts(VecDeque<InFlightPost>);

impl InFlightPosts {
    /// Capacity kept once all are answered: a burst's queue is not held by an idle
    /// connection.
    const KEEP: usize = 8;

    fn push_back(&mut self, post: InFlightPost) {
        self.0.push_back(post);
    }

    fn len(&self) -> usize {
        self.0.len()
    }

    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The oldest post's outcome once its room has answered; `None` when none is left.
    async fn next(&mut self) -> Option<PostOutcome> {
        poll_fn(|cx| self.poll_oldest(cx)).await
    }

    fn poll_oldest(&mut self, cx: &mut Context<'_>) -> Poll<Option<PostOutcome>> {
        let Some(oldest) = self.0.front_mut() else {
            return Poll::Ready(None);
        };
        let result = ready!(Pin::new(&mut oldest.post).poll(cx));
        let id = oldest.id.take();
        self.0.pop_front();
        if self.0.is_empty() && self.0.capacity() > Self::KEEP {
            self.0 = VecDeque::new();
        }
        Poll::Ready(Some((id, result)))
    }
}

/// What a request that was not refused came to.
enum Handled {
    /// Its reply, to write now (after the replies of the posts before it).
    Done(Reply),
    /// A post on its way to the room: its reply comes when the room has stored it.
    Posting(PendingPost),
}

/// The connection's state: the socket's writing half and, once logged in, the session.
/// Handlers only queue frames ([`Connection::send`]); the loop writes them all at the end
/// of each turn ([`Connection::flush`]), so a turn's frames leave in one system call.
struct Connection<'s> {
    out: Writer<'s>,
    engine: Engine,
    session: Option<Session>,
    write_timeout: Duration,
    /// Posts handed to their rooms and not answered yet, in request order. Requests are
    /// answered in order: every reply waits for these first.
    posts: InFlightPosts,
    /// When the client last sent a frame: the session is lent to the lane only once the
    /// client has been quiet for `LEND_AFTER_QUIET`.
    heard_at: Instant,
}

/// Runs one connection until it closes. `read_ahead` holds what the HTTP server read past
/// the upgrade request; `shutdown` fires when the server stops.
pub(crate) async fn run(
    engine: Engine,
    shutdown: CancellationToken,
    stream: TcpStream,
    read_ahead: BytesMut,
) {
    // The few limits this loop needs, copied: the whole `Limits` would sit in every
    // connection's task.
    let limits = engine.limits();
    let (max_frame, heartbeat_interval, idle_timeout) = (
        limits.max_frame_bytes,
        limits.heartbeat_interval,
        limits.idle_timeout,
    );
    let (write_timeout, close_linger) = (limits.write_timeout, limits.close_linger);
    let stream = Arc::new(stream);
    let mut reader = Reader::new(&stream, read_ahead, max_frame);
    let mut conn = Connection {
        out: Writer::new(&stream),
        engine,
        session: None,
        write_timeout,
        posts: InFlightPosts::default(),
        heard_at: Instant::now(),
    };
    let lending = lane::slot_here().map(Lending);

    let end = 'conn: {
        conn.send(&ServerFrame::hello(max_frame));
        if Box::pin(conn.flush()).await.is_err() {
            break 'conn End::Gone;
        }
        let mut heartbeat = interval_at(Instant::now() + heartbeat_interval, heartbeat_interval);
        heartbeat.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let idle = sleep(idle_timeout);
        // Waited on across turns, not made anew by each `select!`: a fresh wait registers
        // with the token and unregisters again on every turn of every connection.
        let shutdown = shutdown.cancelled_owned();
        tokio::pin!(idle, shutdown);

        // Every await in this loop but the `select!` is boxed: a task is as large as the
        // largest future it awaits inline, and that size is paid by every idle
        // connection. Boxed, the whole task stays small (the handlers only allocate when
        // they run, once per request or per batch of events).
        loop {
            let lent = match &lending {
                Some(Lending(slot)) => match conn.lend(slot, &stream) {
                    Ok(lent) => lent,
                    Err(event) => {
                        if let Err(end) = Box::pin(conn.on_event(event)).await {
                            break end;
                        }
                        if let Err(end) = Box::pin(conn.end_turn()).await {
                            break end;
                        }
                        continue;
                    }
                },
                None => false,
            };
            // Not biased: a client that floods requests must still get its events (and its
            // own echoes) drained, and a busy room must not starve reading the client.
            let woke = tokio::select! {
                () = &mut shutdown => Woke::Shutdown,
                answered = conn.posts.next(), if !conn.posts.is_empty() => Woke::Answered(answered),
                received = reader.next(), if conn.posts.len() < MAX_POSTS_IN_FLIGHT => {
                    Woke::Received(received)
                }
                event = next_event(&mut conn.session) => Woke::Event(event),
                () = returned(&lending), if lent => Woke::Returned,
                _ = heartbeat.tick() => Woke::Heartbeat,
                _ = &mut idle => Woke::Idle,
            };
            // Whatever woke the task, it takes its session back from the lane first: only
            // one of them writes to the socket at a time. (A session not lent this turn is
            // still the task's: nothing to take back.)
            if let (true, Some(Lending(slot))) = (lent, &lending) {
                if let Err(end) = Box::pin(conn.reclaim(slot)).await {
                    break end;
                }
            }
            let turn = match woke {
                Woke::Shutdown => Err(End::Close {
                    frame: Some(ServerFrame::disconnected(DisconnectReason::ShuttingDown)),
                    code: CloseCode::Away,
                    reason: DisconnectReason::ShuttingDown.to_string(),
                }),
                Woke::Answered(answered) => {
                    if let Some((id, result)) = answered {
                        conn.answer_post(id, result);
                    }
                    Ok(())
                }
                Woke::Received(received) => {
                    if received.is_ok() {
                        // Any frame, a pong included, proves the client is there.
                        conn.heard_at = Instant::now();
                        idle.as_mut().reset(conn.heard_at + idle_timeout);
                    }
                    match received {
                        Ok(incoming) => Box::pin(conn.on_incoming(incoming)).await,
                        Err(error) => Err(end_for(error, max_frame)),
                    }
                }
                Woke::Event(event) => Box::pin(conn.on_event(event)).await,
                Woke::Returned => Ok(()),
                Woke::Heartbeat => {
                    conn.out.ping();
                    Ok(())
                }
                Woke::Idle => {
                    tracing::debug!("idle timeout");
                    Err(End::Close {
                        frame: None,
                        code: CloseCode::Policy,
                        reason: format!("idle for {} ms", idle_timeout.as_millis()),
                    })
                }
            };
            if let Err(end) = turn {
                break end;
            }
            if let Err(end) = Box::pin(conn.end_turn()).await {
                break end;
            }
        }
    };

    drop(lending);
    drop(reader);
    let gone = matches!(end, End::Gone);
    let closed = Box::pin(conn.finish(end)).await;
    if !gone && closed {
        match Arc::try_unwrap(stream) {
            Ok(mut stream) => Box::pin(linger(&mut stream, close_linger)).await,
            Err(_) => tracing::debug!("the socket is still shared: not lingering"),
        }
    }
}

/// What ended a connection task's wait.
enum Woke {
    Shutdown,
    Answered(Option<PostOutcome>),
    Received(Result<Incoming, ReadError>),
    Event(Option<Event>),
    /// The lane gave the session back.
    Returned,
    Heartbeat,
    Idle,
}

/// Resolves once the lane gives the session back.
async fn returned(lending: &Option<Lending>) {
    match lending {
        Some(Lending(slot)) => poll_fn(|cx| slot.poll_returned(cx)).await,
        None => std::future::pending().await,
    }
}

/// After our close frame: ends our side of the stream and reads (and drops) what the
/// client still sends until it closes its side too, at most `wait`. Dropping a socket
/// with unread data resets it, and the client could lose our close frame to the reset.
async fn linger(stream: &mut TcpStream, wait: Duration) {
    let drain = async {
        if stream.shutdown().await.is_err() {
            return;
        }
        let mut sink = [0u8; 512];
        // Bounded by `wait`; ends at the client's EOF or an error.
        loop {
            match tokio::io::AsyncReadExt::read(stream, &mut sink).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    };
    if timeout(wait, drain).await.is_err() {
        tracing::debug!("the client did not close its side in time");
    }
}

/// How the connection ends when the client's stream cannot be read any more.
fn end_for(error: ReadError, max_frame: usize) -> End {
    match error {
        ReadError::Gone => {
            tracing::debug!("connection closed by the peer");
            End::Gone
        }
        // The rest of an oversized frame is never read, so the connection cannot go on.
        ReadError::TooLarge => {
            tracing::debug!(max_frame, "frame too large");
            End::Close {
                frame: None,
                code: CloseCode::Size,
                reason: format!("frames are limited to {max_frame} bytes"),
            }
        }
        ReadError::Invalid(code, reason) => {
            tracing::debug!(%reason, "protocol error");
            End::Close {
                frame: None,
                code,
                reason,
            }
        }
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

impl Connection<'_> {
    /// Lends the session to the lane when this connection has nothing of its own in
    /// progress: logged in, no post being stored, nothing left to write. Whether it did;
    /// an event already queued comes back instead (`None`: the session ended).
    fn lend(&mut self, slot: &Arc<Slot>, stream: &Arc<TcpStream>) -> Result<bool, Option<Event>> {
        if !self.posts.is_empty()
            || self.out.pending() > 0
            || self.heard_at.elapsed() < LEND_AFTER_QUIET
        {
            return Ok(false);
        }
        slot.lend(&mut self.session, stream)
    }

    /// Takes the session back from the lane, then what the lane left: its unwritten
    /// bytes, then the event it did not write.
    async fn reclaim(&mut self, slot: &Slot) -> Result<(), End> {
        let Some((session, returned)) = slot.reclaim() else {
            return Ok(());
        };
        self.session = Some(session);
        let Some(returned) = returned else {
            return Ok(());
        };
        self.out.put_pending(returned.unwritten);
        if returned.failed {
            return Err(End::Gone);
        }
        match returned.event {
            Some(event) => self.on_event(event).await,
            None => Ok(()),
        }
    }

    /// Queues an event and what is queued behind it; `None` ends the connection.
    async fn on_event(&mut self, event: Option<Event>) -> Result<(), End> {
        match event {
            Some(event) => self.forward_batch(event).await,
            // The session ended without a reason the client should see.
            None => Err(End::Close {
                frame: None,
                code: CloseCode::Normal,
                reason: String::new(),
            }),
        }
    }

    /// Ends a turn: takes what else is ready, then writes it all.
    async fn end_turn(&mut self) -> Result<(), End> {
        self.take_ready().await?;
        // Usually the socket takes the whole turn at once; only a full socket buffer
        // makes the task wait (bounded by `write_timeout`), and `flush` reports errors.
        if !matches!(self.out.write_now(), Ok(true)) && self.flush().await.is_err() {
            return Err(End::Gone);
        }
        Ok(())
    }
}

/// How long a client must have sent nothing before its session is lent to the lane. A
/// client that talks keeps its session: it would take it back at once, and the writes
/// that the lane and its task then make apart would each carry fewer frames (scenario 7
/// of docs/performance.md lost 10 to 20 % lending on every turn).
const LEND_AFTER_QUIET: Duration = Duration::from_millis(50);

/// Most events written in one go before the loop looks at the client again.
const EVENT_BATCH: usize = 256;
/// Most rounds of [`Connection::take_ready`] in one turn.
const READY_ROUNDS: usize = 4;

impl Connection<'_> {
    /// After a turn, takes what is ready without waiting (replies to posts the room has
    /// answered, events already queued) so that the turn's one write carries it too. Left
    /// to the `select!`, each would be a turn, and a `sendto`, of its own: on busy rooms
    /// (scenario 7 of docs/performance.md) that took two to three times the writes.
    /// Bounded by `READY_ROUNDS` batches, so the client is read again soon.
    async fn take_ready(&mut self) -> Result<(), End> {
        for _ in 0..READY_ROUNDS {
            let mut took = self.take_answered();
            if let Some(event) = self.session.as_mut().and_then(Session::try_next_event) {
                self.forward_batch(event).await?;
                took = true;
            }
            if !took {
                break;
            }
        }
        Ok(())
    }

    /// Answers the posts whose rooms have answered already; whether there were any.
    fn take_answered(&mut self) -> bool {
        // A waker that drops wake-ups is enough here: whatever is not ready is polled
        // again, with the task's own waker, by the next `select!`.
        let mut cx = Context::from_waker(Waker::noop());
        let mut took = false;
        while let Poll::Ready(Some((id, result))) = self.posts.poll_oldest(&mut cx) {
            self.answer_post(id, result);
            took = true;
        }
        took
    }

    /// Queues `first` and every event already waiting behind it (up to `EVENT_BATCH`), so
    /// the socket gets them in one write. Ends the connection if an event ends it.
    async fn forward_batch(&mut self, first: Event) -> Result<(), End> {
        let mut next = Some(first);
        let mut queued = 0;
        while let Some(event) = next.take() {
            if let Event::Disconnected(reason) = event {
                return Err(End::Close {
                    frame: Some(ServerFrame::disconnected(reason)),
                    code: close_code_for(reason),
                    reason: reason.to_string(),
                });
            }
            if let Event::Posted(message) = &event {
                self.answer_posts_before_echo(message).await;
            }
            self.queue_event(&event);
            queued += 1;
            if self.out.pending() >= FLUSH_AT {
                // A long batch of large messages is written as it goes, not held whole.
                self.flush().await.map_err(|Dropped| End::Gone)?;
            }
            if queued < EVENT_BATCH {
                next = self.session.as_mut().and_then(Session::try_next_event);
            }
        }
        Ok(())
    }

    /// Queues the frame for `event`; a channel message is serialized once for all
    /// recipients (its room label is the same for everyone, unlike a private message's).
    fn queue_event(&mut self, event: &Event) {
        if let Event::Posted(message) = event {
            if let Some(shared) = SharedMessageFrame::of(message) {
                self.out.text(shared.event());
                return;
            }
        }
        let me = self.user_id();
        self.out
            .text(ServerFrame::from_event(event, me).to_json().as_bytes());
    }

    fn user_id(&self) -> UserId {
        // Events only come from a logged-in session; 0 is never a user's id.
        self.session
            .as_ref()
            .map(|s| s.user().id)
            .unwrap_or(UserId(0))
    }

    /// Writes every queued frame within `write_timeout`.
    async fn flush(&mut self) -> Result<(), Dropped> {
        match timeout(self.write_timeout, self.out.flush()).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => {
                tracing::debug!(error = %e, "write failed");
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

    /// Queues one frame; the loop writes it at the end of the turn.
    fn send(&mut self, frame: &ServerFrame) {
        self.out.text(frame.to_json().as_bytes());
    }

    /// Handles one message or control frame from the client.
    async fn on_incoming(&mut self, incoming: Incoming) -> Result<(), End> {
        match incoming {
            Incoming::Text(text) => self.handle_text(&text).await,
            Incoming::Binary => self.send(&ServerFrame::transport_error(
                None,
                &TransportError::BinaryNotSupported,
            )),
            Incoming::Ping(payload) => self.out.pong(&payload),
            Incoming::Pong => {}
            Incoming::Close(reason) => return Err(End::ClientClosed(reason)),
        }
        Ok(())
    }

    /// Answers one text frame with exactly one `ok` or `error` frame, in request order: a
    /// post's reply is queued when the room has stored it, and every later reply waits
    /// for it.
    async fn handle_text(&mut self, text: &str) {
        let frame = match parse_request(text) {
            Ok((id, request)) => {
                let name = request_name(&request);
                match self.dispatch(request).await {
                    Ok(Handled::Posting(post)) => {
                        self.posts.push_back(InFlightPost { id, post });
                        return;
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
        self.answer_posts().await;
        self.send(&frame);
    }

    /// Queues the reply to a post the room has stored (or refused).
    fn answer_post(&mut self, id: Option<RequestId>, result: Result<Arc<ChatMessage>, ChatError>) {
        if let Some(shared) = result.as_ref().ok().and_then(|m| SharedMessageFrame::of(m)) {
            // The reply repeats the message its followers get: reuse that encoding.
            let id_json = id.as_ref().map(SharedMessageFrame::id_json);
            self.out.text_parts(&shared.reply(id_json.as_deref()));
            return;
        }
        let me = self.user_id();
        let outcome = result
            .map(|message| Reply::Posted {
                message: MessageView::new(&message, me),
            })
            .map_err(Failure::Chat);
        self.send(&reply_frame(id, "post", outcome));
    }

    /// Waits for every post in flight and queues their replies, in order.
    async fn answer_posts(&mut self) {
        while let Some((id, result)) = self.posts.next().await {
            self.answer_post(id, result);
        }
    }

    /// Before this connection's own message goes out as an event, queues the replies of
    /// the posts up to the one that stored it: a client always has a post's reply before
    /// its echo. (The room queues the echo before it answers, so it can arrive first.)
    async fn answer_posts_before_echo(&mut self, message: &ChatMessage) {
        if self.posts.is_empty() || message.author.id != self.user_id() {
            return;
        }
        while let Some((id, result)) = self.posts.next().await {
            let is_this = matches!(&result, Ok(m) if m.id == message.id && m.room == message.room);
            self.answer_post(id, result);
            if is_this {
                break;
            }
        }
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
                return Ok(Handled::Posting(session.start_post(room, text).await?));
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

    /// Writes the last frames (if the socket still takes them) and releases the session.
    /// Returns whether a close frame was written.
    async fn finish(mut self, end: End) -> bool {
        let close = match end {
            End::Gone => None,
            End::ClientClosed(reason) => Some(reason),
            End::Close {
                frame,
                code,
                reason,
            } => {
                if let Some(frame) = frame {
                    self.send(&frame);
                }
                let description = (!reason.is_empty()).then_some(reason);
                Some(Some(CloseReason { code, description }))
            }
        };
        let mut closed = false;
        if let Some(reason) = close {
            let code = reason.as_ref().map(|r| u16::from(r.code));
            self.out.close(reason);
            closed = self.flush().await.is_ok();
            if closed {
                tracing::debug!(?code, "closed");
            } else {
                tracing::debug!(?code, "could not send the close frame");
            }
        }
        if let Some(session) = self.session {
            session.close();
        }
        closed
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

#[cfg(test)]
mod tests {
    use super::run;
    use bytes::BytesMut;
    use chat_core::{Engine, Limits};
    use tokio::net::{TcpListener, TcpStream};
    use tokio_util::sync::CancellationToken;

    /// Every idle connection pays for its task's whole state, so it must stay small: the
    /// handlers' futures are boxed for that. 2 KiB leaves room for the `select!` and the
    /// timers; a handler awaited inline would take it past.
    #[tokio::test]
    async fn a_connection_task_stays_small() {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let _client = TcpStream::connect(addr).await.expect("connect");
        let (stream, _) = listener.accept().await.expect("accept");
        let engine = Engine::start(Limits::default()).expect("engine");
        let task = run(
            engine.clone(),
            CancellationToken::new(),
            stream,
            BytesMut::new(),
        );
        let size = std::mem::size_of_val(&task);
        assert!(size <= 2048, "the connection task takes {size} bytes");
        drop(task);
        engine.shutdown().await;
    }
}
