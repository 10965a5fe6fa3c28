//! One client connection: the loop that reads its lines, hands each to the
//! [`Dispatcher`], and writes what the client should see.
//!
//! Started by `listener.rs`, one task per connection on the caller's runtime. A single task
//! selects over the client's next line, the outcome of its oldest post, its session's next
//! events, the idle deadline and shutdown, so every answer is written before the events that
//! follow it (what `Session` asks of a transport). Chat lines are pipelined through a
//! [`PostPipeline`]: the loop reads on while earlier posts are being stored, and every
//! other answer waits for those first, so answers come out in the order of the lines.
//!
//! It must not touch bytes (that is `codec.rs`), run commands (`dispatch.rs`) nor format
//! text (`render.rs`), and it makes no chat decision.
//!
//! Protections, all from the [`TcpConfig`]: a line is at most `max_line_bytes` (the codec
//! cuts it); a connection with no complete input line for `idle_timeout` is closed (which
//! also reaps half-open connections); every write must finish within `write_timeout`, and
//! a write that is blocked is abandoned as soon as the engine closes the session (a full
//! event queue: `slow_consumer`), so a client that stops reading is dropped without
//! delaying anyone.

use std::io;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use chat_core::{
    ChatError, ChatMessage, Engine, Event, GateRefusal, PostOutcome, PostPipeline, Room, Session,
    ShutdownWait, UserRef,
};
use futures_util::StreamExt;
use tokio::io::{AsyncWriteExt, BufWriter};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpStream;
use tokio::time::{sleep_until, timeout, Instant};
use tokio_util::codec::FramedRead;
use tokio_util::sync::CancellationToken;

use crate::codec::{Input, LineCodec};
use crate::command;
use crate::config::TcpConfig;
use crate::dispatch::{Dispatcher, Reply};
use crate::error::TcpError;
use crate::render;

/// Serves one client, connected from `peer`, until it quits, goes away, idles out, is
/// dropped, or shutdown.
pub(crate) async fn run(
    stream: TcpStream,
    peer: IpAddr,
    engine: Engine,
    config: TcpConfig,
    shutdown: CancellationToken,
) {
    let (read, write) = stream.into_split();
    let greeting = render::greeting(engine.epoch());
    let mut conn = Connection {
        lines: FramedRead::new(read, LineCodec::new(config.max_line_bytes)),
        out: BufWriter::new(write),
        dispatcher: Dispatcher::new(engine, peer, &config),
        posts: PostPipeline::new(),
        events: Vec::new(),
        shutdown: ShutdownWait::new(shutdown),
        config,
    };
    tracing::debug!("connected");
    let end = conn.serve(greeting).await;
    match &end {
        End::WriteFailed(e) => tracing::info!(error = %e, "disconnected: write failed"),
        End::WriteTimeout => tracing::info!("disconnected: write timed out (client not reading)"),
        End::ReadFailed(e) => tracing::info!(error = %e, "disconnected: read failed"),
        other => tracing::info!(reason = ?other, "disconnected"),
    }
    if let Some(session) = conn.dispatcher.session_mut().take() {
        session.close();
    }
    if !matches!(end, End::WriteTimeout | End::SessionClosedWhileWriting) {
        // Best effort FIN; bounded like every write.
        let _ = timeout(conn.config.write_timeout, conn.out.shutdown()).await;
    }
}

/// Tells a connection the per-address gate refused why (`! closed <code>: <why>`), within
/// `write_timeout`, and closes it.
pub(crate) async fn refuse(stream: TcpStream, refused: GateRefusal, write_timeout: Duration) {
    let line = render::closed(refused.code(), &refused.to_string()) + "\r\n";
    crate::accept::refuse_with(stream, line, write_timeout).await
}

/// Why a connection ended.
#[derive(Debug)]
enum End {
    /// The client sent `/quit`.
    Quit,
    /// The client closed its side.
    PeerClosed,
    /// No input line for `idle_timeout`.
    Idle,
    /// The server is shutting down.
    Shutdown,
    /// The engine closed the session (slow consumer, engine shutdown).
    Disconnected,
    /// The engine closed the session while a write to the client was blocked.
    SessionClosedWhileWriting,
    /// A write took longer than `write_timeout`.
    WriteTimeout,
    /// Writing failed (the client reset the connection).
    WriteFailed(io::Error),
    /// Reading failed.
    ReadFailed(io::Error),
}

/// What the loop woke up for.
enum Step {
    Shutdown,
    Input(Option<Result<Input, io::Error>>),
    /// New events are in `Connection::events`; `false`: the session has ended.
    Events(bool),
    Posted(Option<PostOutcome<()>>),
    Idle,
}

struct Connection {
    lines: FramedRead<OwnedReadHalf, LineCodec>,
    out: BufWriter<OwnedWriteHalf>,
    dispatcher: Dispatcher,
    /// Posts handed to their rooms and not answered yet, in the order of the lines.
    posts: PostPipeline<()>,
    /// The events taken from the session and not written yet; kept to reuse its allocation.
    events: Vec<Event>,
    /// The server's shutdown, polled on every turn.
    shutdown: ShutdownWait,
    config: TcpConfig,
}

impl Connection {
    async fn serve(&mut self, greeting: Vec<String>) -> End {
        if let Err(end) = self.send(greeting).await {
            return end;
        }
        let mut idle_deadline = Instant::now() + self.config.idle_timeout;
        loop {
            // Not biased: a client that floods lines must still get its events drained,
            // and a busy room must not starve reading the client.
            let step = tokio::select! {
                () = &mut self.shutdown => Step::Shutdown,
                posted = self.posts.next(), if !self.posts.is_empty() => Step::Posted(posted),
                input = self.lines.next(), if !self.posts.is_full() => Step::Input(input),
                more = next_events(self.dispatcher.session_mut(), &mut self.events) => {
                    Step::Events(more)
                }
                _ = sleep_until(idle_deadline) => Step::Idle,
            };
            let result = match step {
                Step::Shutdown => {
                    let line = render::closed("shutting_down", "server shutting down");
                    let _ = self.send(vec![line]).await;
                    return End::Shutdown;
                }
                Step::Idle => {
                    let why = format!(
                        "no input for {} s; reconnect (and /resume TOKEN) to chat again",
                        self.config.idle_timeout.as_secs_f64()
                    );
                    let _ = self.send(vec![render::closed("idle_timeout", &why)]).await;
                    return End::Idle;
                }
                Step::Input(None) => return End::PeerClosed,
                Step::Input(Some(Err(e))) => return End::ReadFailed(e),
                Step::Input(Some(Ok(input))) => {
                    idle_deadline = Instant::now() + self.config.idle_timeout;
                    self.input(input).await
                }
                Step::Posted(None) => Ok(()),
                Step::Posted(Some(((), result))) => self.answer_post(result).await,
                Step::Events(false) => return End::Disconnected,
                Step::Events(true) => self.write_events().await,
            };
            if let Err(end) = result {
                return end;
            }
        }
    }

    /// Handles one input item: dispatches a command, or answers a line the codec refused.
    async fn input(&mut self, input: Input) -> Result<(), End> {
        let command = match input {
            Input::TooLong { limit } => Err(TcpError::LineTooLong(limit)),
            Input::InvalidUtf8 => Err(TcpError::InvalidUtf8),
            Input::Line(line) => command::parse(&line),
        };
        let reply = match command {
            Ok(command) => self.dispatcher.dispatch(command).await,
            Err(e) => Reply::Answer(vec![render::error(&e)]),
        };
        match reply {
            Reply::Post(post) => {
                self.posts.push((), post);
                Ok(())
            }
            Reply::Answer(lines) if lines.is_empty() => Ok(()),
            Reply::Answer(lines) => {
                self.answer_posts().await?;
                self.send(lines).await
            }
            Reply::Quit(lines) => {
                self.answer_posts().await?;
                self.send(lines).await?;
                Err(End::Quit)
            }
        }
    }

    /// Waits for every post in flight, answering each.
    async fn answer_posts(&mut self) -> Result<(), End> {
        while let Some(((), result)) = self.posts.next().await {
            self.answer_post(result).await?;
        }
        Ok(())
    }

    /// A stored post answers nothing (its event is the confirmation); a refused one, an
    /// error line.
    async fn answer_post(
        &mut self,
        result: Result<Arc<ChatMessage>, ChatError>,
    ) -> Result<(), End> {
        match result {
            Ok(_) => Ok(()),
            Err(e) => self.send(vec![render::error(&TcpError::Chat(e))]).await,
        }
    }

    /// Writes the events taken from the session with one flush. The session's last event
    /// (`Disconnected`) is written, then the connection ends.
    async fn write_events(&mut self) -> Result<(), End> {
        let Some(me) = self.dispatcher.session().map(|s| s.user().clone()) else {
            return Err(End::Disconnected);
        };
        let mut lines = Vec::with_capacity(self.events.len());
        let mut ended = false;
        for event in self.events.drain(..) {
            event_lines(&event, &me, self.config.files_url.as_deref(), &mut lines);
            if matches!(event, Event::Disconnected(_)) {
                ended = true;
                break;
            }
        }
        self.send(lines).await?;
        if ended {
            Err(End::Disconnected)
        } else {
            Ok(())
        }
    }

    /// Writes `lines`, each ending in `\r\n`, within `write_timeout`. Gives up at once if
    /// the engine closes the session while the write is blocked (the client stopped
    /// reading and its event queue filled up).
    async fn send(&mut self, lines: Vec<String>) -> Result<(), End> {
        let out = &mut self.out;
        let write = async {
            for line in &lines {
                out.write_all(line.as_bytes()).await?;
                out.write_all(b"\r\n").await?;
            }
            out.flush().await
        };
        tokio::select! {
            biased;
            result = timeout(self.config.write_timeout, write) => match result {
                Ok(Ok(())) => Ok(()),
                Ok(Err(e)) => Err(End::WriteFailed(e)),
                Err(_) => Err(End::WriteTimeout),
            },
            _ = session_closed(self.dispatcher.session()) => Err(End::SessionClosedWhileWriting),
        }
    }
}

/// A channel message's line, rendered once and shared by every terminal recipient.
struct SharedLine(String);

/// A channel's presence batch as lines, rendered once and shared likewise.
struct SharedLines(Vec<String>);

/// Adds the lines for `event` to `lines`. A channel message or presence batch reads the
/// same for everyone (unlike a private room's, labelled with the other user), so its
/// lines are rendered once for all of them.
fn event_lines(event: &Event, user: &UserRef, files_url: Option<&str>, lines: &mut Vec<String>) {
    let me = user.id;
    match event {
        Event::Posted(message) if matches!(message.room, Room::Channel(_)) => {
            let shared = message.encoded(|| SharedLine(render::message(message, me)));
            lines.push(shared.0.clone());
        }
        Event::PresenceBatch(batch) if matches!(batch.room, Room::Channel(_)) => {
            let shared = batch.encoded(|| SharedLines(render::presence(batch, me)));
            lines.extend(shared.0.iter().cloned());
        }
        Event::PresenceBatch(batch) => lines.extend(render::presence(batch, me)),
        _ => lines.extend(render::event(event, me)),
    }
    if let Event::Posted(message) = event {
        // Most messages carry no file: they pay one test, not an empty list's making.
        if !message.attachments.is_empty() {
            lines.extend(render::files(message, me, files_url));
        }
        if message.author.id != me && message.mentions(user) {
            lines.push(render::mention(message, me));
        }
    }
}

/// Takes the session's next events into `batch`; never resolves before login.
async fn next_events(session: &mut Option<Session>, batch: &mut Vec<Event>) -> bool {
    match session {
        Some(session) => session.next_events(batch).await,
        None => std::future::pending().await,
    }
}

/// Resolves when the session is closed; never before login.
async fn session_closed(session: Option<&Session>) {
    match session {
        Some(session) => session.closed().await,
        None => std::future::pending().await,
    }
}
