//! One WebSocket connection, from `hello` to the close handshake: the task that owns the
//! socket and the connection's engine [`Session`], and the only one that writes to it.
//!
//! Spawned by `upgrade.rs` on the HTTP worker that accepted the socket, once the
//! handshake is answered; `wire.rs` frames the stream, and `close.rs` says how it ends.
//! One `select!` loop waits on five things at once: a frame from the client, the outcome
//! of the oldest post being stored, the next engine events, the keepalive timer (the
//! next ping or the idle deadline, `keepalive.rs`) and the server's shutdown token. Each client frame goes to `dispatch.rs`,
//! which makes the engine call and says what to answer; this file decides when that is
//! written, and writes it.
//!
//! Requests are handled in this one task, so a request's reply is written before any
//! event that follows it (a `join` snapshot then always comes before the live messages
//! that continue it). Posts are pipelined ([`PostPipeline`]): the loop reads on while
//! earlier posts are being stored, so a fast sender's messages reach the room together;
//! replies still go out in request order, and a post's reply before its own message
//! event. Each turn queues its frames, then takes whatever else is ready without waiting
//! (replies already answered, events already queued), and ends with one write of all of
//! them.
//!
//! It must not hold chat state or decide anything about rooms, and no write may wait
//! without a bound: each one is limited by `WsConfig::write_timeout`, so a client that
//! stops reading is dropped and never stalls the engine or other clients (the engine
//! itself disconnects a session whose queue is full, as `slow_consumer`).

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use chat_core::{
    ChatError, ChatMessage, DisconnectReason, Engine, Event, Login, PostOutcome, PostPipeline,
    Session, ShutdownWait, UserId, EVENT_BATCH,
};
use futures_util::FutureExt;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::time::{sleep_until, timeout, Instant};
use tokio_util::sync::CancellationToken;

use crate::close::{linger, End};
use crate::config::WsConfig;
use crate::dispatch::{self, Dispatched};
use crate::keepalive::{Due, Keepalive};
use crate::protocol::{RequestId, ServerFrame};
use crate::shared_frame::{SharedMessageFrame, SharedPresenceFrame};
use crate::wire::{Incoming, ReadError, Reader, Writer, FLUSH_AT};

/// Most rounds of [`Connection::take_ready`] in one turn, so the client is read again
/// soon however busy its rooms are.
const READY_ROUNDS: usize = 4;

/// A write did not complete: the socket is closed or the client stopped reading for
/// longer than `WsConfig::write_timeout`.
struct Dropped;

/// What ended a turn's wait.
enum Woke {
    Shutdown,
    Answered(Option<PostOutcome<Option<RequestId>>>),
    Received(Result<Incoming, ReadError>),
    /// Events are in [`Connection::events`]; `false`: the session has ended.
    Events(bool),
    /// The keepalive timer fired.
    Clock,
}

/// The connection's state: the socket's writing half and, once logged in, the session.
/// Handlers only queue frames ([`Connection::send`]); the loop writes them all at the end
/// of each turn, so a turn's frames leave in one system call.
struct Connection<S> {
    /// The upgraded stream; borrowed by the reader inside the loop's `select!`, and by
    /// the writer between turns (the loop never reads and writes at once).
    io: S,
    out: Writer,
    engine: Engine,
    /// Where the client connects from (`forwarded.rs`): its login counts there.
    client: IpAddr,
    session: Option<Session>,
    write_timeout: Duration,
    /// Posts handed to their rooms and not answered yet, with their request ids. Requests
    /// are answered in order: every reply waits for these first.
    posts: PostPipeline<Option<RequestId>>,
    /// The batch of events being taken; unallocated between batches, so that a waiting
    /// connection holds no room for events (80 bytes each).
    events: Vec<Event>,
}

/// Any stream a connection can run on: a `TcpStream`, hyper's upgraded connection, a TLS
/// stream. Every entry point (`WsChat::listen`, `serve`, the hyper and axum adapters)
/// hands its upgraded stream to the one loop here.
pub(crate) trait Stream: AsyncRead + AsyncWrite + Unpin {}

impl<S: AsyncRead + AsyncWrite + Unpin> Stream for S {}

/// Runs one connection, whose client connects from `client`, until it closes.
/// `read_ahead` holds what the HTTP server read past the upgrade request; `shutdown`
/// fires when the server stops. With `login` (the embedder's, for a user it
/// authenticated), the connection logs in right after `hello` and sends that login's
/// reply; a refused one is the last frame before the close.
pub(crate) async fn run<S: Stream>(
    engine: Engine,
    config: Arc<WsConfig>,
    shutdown: CancellationToken,
    stream: S,
    read_ahead: BytesMut,
    client: IpAddr,
    login: Option<Login>,
) {
    // The few settings this loop needs, copied out of the shared config.
    let (max_frame, heartbeat_interval, idle_timeout) = (
        config.max_frame_bytes,
        config.heartbeat_interval,
        config.idle_timeout,
    );
    let close_linger = config.close_linger;
    let mut reader = Reader::new(read_ahead, max_frame);
    let mut conn = Connection {
        io: stream,
        out: Writer::new(),
        engine,
        client,
        session: None,
        write_timeout: config.write_timeout,
        posts: PostPipeline::new(),
        events: Vec::new(),
    };

    let end = 'conn: {
        let hello = ServerFrame::hello(max_frame, conn.engine.limits(), conn.engine.epoch());
        conn.send(&hello);
        if let Some(login) = login {
            let logging_in = dispatch::embedder_login(&conn.engine, conn.client, login);
            let (session, reply) = Box::pin(logging_in).await;
            conn.send(&reply);
            conn.session = session;
            if conn.session.is_none() {
                break 'conn End::login_refused();
            }
        }
        if Box::pin(conn.flush()).await.is_err() {
            break 'conn End::Gone;
        }
        let mut keepalive = Keepalive::new(Instant::now(), heartbeat_interval, idle_timeout);
        let clock = sleep_until(keepalive.deadline());
        // Waited on across turns, not made anew by each `select!`, and cheap to poll
        // (`ShutdownWait`): the token is shared by every connection of the server.
        let mut shutdown = ShutdownWait::new(shutdown);
        tokio::pin!(clock);

        // Every await in this loop but the `select!` is boxed: a task is as large as the
        // largest future it awaits inline, and that size is paid by every idle
        // connection. Boxed, the whole task stays small (the handlers only allocate when
        // they run, once per request or per batch of events).
        loop {
            // Not biased: a client that floods requests must still get its events (and its
            // own echoes) drained, and a busy room must not starve reading the client.
            let woke = tokio::select! {
                () = &mut shutdown => Woke::Shutdown,
                answered = conn.posts.next(), if !conn.posts.is_empty() => Woke::Answered(answered),
                received = reader.next(&mut conn.io), if !conn.posts.is_full() => Woke::Received(received),
                more = next_events(&mut conn.session, &mut conn.events) => Woke::Events(more),
                () = &mut clock => Woke::Clock,
            };
            let turn = match woke {
                Woke::Shutdown => Err(End::disconnected(DisconnectReason::ShuttingDown)),
                Woke::Answered(answered) => {
                    if let Some((id, result)) = answered {
                        conn.answer_post(id, result);
                    }
                    Ok(())
                }
                Woke::Received(Ok(incoming)) => {
                    // Any frame, a pong included, proves the client is there.
                    keepalive.heard(Instant::now());
                    Box::pin(conn.on_incoming(incoming)).await
                }
                Woke::Received(Err(error)) => Err(End::unreadable(error, max_frame)),
                Woke::Events(more) => Box::pin(conn.forward_events(more)).await,
                Woke::Clock => {
                    let due = keepalive.fire(Instant::now());
                    clock.as_mut().reset(keepalive.deadline());
                    match due {
                        Some(Due::Ping) => {
                            conn.out.ping();
                            Ok(())
                        }
                        Some(Due::Idle) => Err(End::idle(idle_timeout)),
                        None => Ok(()),
                    }
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

    drop(reader);
    let gone = matches!(end, End::Gone);
    let (closed, mut stream) = Box::pin(conn.finish(end)).await;
    if !gone && closed {
        Box::pin(linger(&mut stream, close_linger)).await;
    }
}

/// The next engine events into `batch` (false: the session has ended), or never before
/// login.
async fn next_events(session: &mut Option<Session>, batch: &mut Vec<Event>) -> bool {
    match session {
        Some(session) => session.next_events(batch).await,
        None => std::future::pending().await,
    }
}

impl<S: Stream> Connection<S> {
    /// Handles one message or control frame from the client.
    async fn on_incoming(&mut self, incoming: Incoming) -> Result<(), End> {
        match incoming {
            Incoming::Text(text) => self.on_text(&text).await,
            Incoming::Binary => self.send(&dispatch::binary()),
            Incoming::Ping(payload) => self.out.pong(&payload),
            Incoming::Pong => {}
            Incoming::Close(reason) => return Err(End::ClientClosed(reason)),
        }
        Ok(())
    }

    /// Answers one text frame with exactly one `ok` or `error` frame, in request order: a
    /// post's reply is queued when the room has stored it, and every later reply waits
    /// for it.
    async fn on_text(&mut self, text: &str) {
        match dispatch::text(&self.engine, self.client, &mut self.session, text).await {
            Dispatched::Posting(id, post) => self.posts.push(id, post),
            Dispatched::Reply(frame) => {
                self.answer_posts().await;
                self.send(&frame);
            }
        }
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
        self.send(&dispatch::post_reply(id, result, me));
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

    /// Queues the batch of events in [`Connection::events`] (`more` false: the session
    /// has ended). Ends the connection if an event ends it.
    async fn forward_events(&mut self, more: bool) -> Result<(), End> {
        if !more {
            return Err(End::session_ended());
        }
        // Freed once written: a small allocation per batch, which the thread's allocator
        // cache serves, rather than one per connection for as long as it lives.
        for event in std::mem::take(&mut self.events) {
            if let Event::Disconnected(reason) = event {
                return Err(End::disconnected(reason));
            }
            if let Event::Posted(message) = &event {
                self.answer_posts_before_echo(message).await;
            }
            self.queue_event(&event);
            if self.out.pending() >= FLUSH_AT {
                // A long batch of large messages is written as it goes, not held whole.
                self.flush().await.map_err(|Dropped| End::Gone)?;
            }
        }
        Ok(())
    }

    /// Queues the frame for `event`; a channel message or presence batch is serialized
    /// once for all recipients (its room label is the same for everyone, unlike a private
    /// room's).
    fn queue_event(&mut self, event: &Event) {
        match event {
            Event::Posted(message) => {
                let out = &mut self.out;
                if SharedMessageFrame::with(message, |shared| out.text(shared.event())).is_some() {
                    return;
                }
            }
            Event::PresenceBatch(batch) => {
                if let Some(shared) = SharedPresenceFrame::of(batch) {
                    self.out.text(shared.event());
                    return;
                }
            }
            _ => {}
        }
        let me = self.user_id();
        if let Some(frame) = ServerFrame::from_event(event, me) {
            self.out.text(frame.to_json().as_bytes());
        }
    }

    fn user_id(&self) -> UserId {
        // Events only come from a logged-in session; 0 is never a user's id.
        self.session
            .as_ref()
            .map(|s| s.user().id)
            .unwrap_or(UserId(0))
    }

    /// Ends a turn: takes what else is ready, then writes it all.
    async fn end_turn(&mut self) -> Result<(), End> {
        self.take_ready().await?;
        // Usually the socket takes the whole turn at once; only a full socket buffer
        // makes the task wait (bounded by `write_timeout`), and `flush` reports errors.
        if !matches!(self.out.write_now(&mut self.io), Ok(true)) && self.flush().await.is_err() {
            return Err(End::Gone);
        }
        Ok(())
    }

    /// After a turn, takes what is ready without waiting (replies to posts the room has
    /// answered, events already queued) so that the turn's one write carries it too. Left
    /// to the `select!`, each would be a turn, and a write, of its own. Bounded by
    /// [`READY_ROUNDS`] batches, so the client is read again soon.
    async fn take_ready(&mut self) -> Result<(), End> {
        for _ in 0..READY_ROUNDS {
            let mut took = self.take_answered();
            // Taken without waiting (and without lending the queue a waker that the next
            // `select!` would swap back): an ended session is found by that `select!`.
            if self.take_queued() {
                self.forward_events(true).await?;
                took = true;
            }
            if !took {
                break;
            }
        }
        Ok(())
    }

    /// Moves the events queued now into [`Connection::events`]; whether there were any.
    fn take_queued(&mut self) -> bool {
        let Some(session) = &mut self.session else {
            return false;
        };
        while self.events.len() < EVENT_BATCH {
            match session.try_next_event() {
                Some(event) => self.events.push(event),
                None => break,
            }
        }
        !self.events.is_empty()
    }

    /// Answers the posts whose rooms have answered already; whether there were any.
    fn take_answered(&mut self) -> bool {
        let mut took = false;
        while let Some(Some((id, result))) = self.posts.next().now_or_never() {
            self.answer_post(id, result);
            took = true;
        }
        took
    }

    /// Queues one frame; the loop writes it at the end of the turn.
    fn send(&mut self, frame: &ServerFrame) {
        self.out.text(frame.to_json().as_bytes());
    }

    /// Writes every queued frame within `write_timeout`.
    async fn flush(&mut self) -> Result<(), Dropped> {
        match timeout(self.write_timeout, self.out.flush(&mut self.io)).await {
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

    /// The close handshake's first half: writes the last frames and the close frame (if
    /// the socket still takes them) and releases the session. Returns whether a close
    /// frame was written (the caller then lingers for the client's), and the stream.
    async fn finish(mut self, end: End) -> (bool, S) {
        let mut closed = false;
        if let Some((last, reason)) = end.farewell() {
            if let Some(frame) = last {
                self.send(&frame);
            }
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
        (closed, self.io)
    }
}

#[cfg(test)]
mod tests {
    use super::run;
    use crate::config::WsConfig;
    use bytes::BytesMut;
    use chat_core::Engine;
    use std::sync::Arc;
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
        let engine = Engine::builder().start().await.expect("engine");
        let task = run(
            engine.clone(),
            Arc::new(WsConfig::default()),
            CancellationToken::new(),
            stream,
            BytesMut::new(),
            std::net::Ipv4Addr::LOCALHOST.into(),
            Some(chat_core::Login::Name("alice".into())),
        );
        let size = std::mem::size_of_val(&task);
        assert!(size <= 2048, "the connection task takes {size} bytes");
        drop(task);
        engine.shutdown().await;
    }
}
