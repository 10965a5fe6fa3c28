//! One client connection: the loop that reads its lines, drives its engine
//! [`Session`], and writes what it should see.
//!
//! Started by `listener.rs`, one task per connection on the caller's runtime. A single
//! task selects over the client's next line, the session's next events, the outcome of its
//! oldest post, the idle deadline and shutdown, so every reply is written before the events
//! that follow it (what `Session` asks of a transport). Chat lines are pipelined through a
//! [`PostPipeline`]: the loop reads on while earlier posts are being stored, and every
//! other answer waits for those first, so answers come out in the order of the lines.
//! It never touches bytes (that is `codec.rs`) nor formats text (that is `render.rs`), and
//! it makes no chat decision: every request goes to the engine as it is.
//!
//! Protections, all from the [`TcpConfig`]: a line is at most `max_line_bytes`; a
//! connection with no complete input line for `idle_timeout` is closed (which also reaps
//! half-open connections); every write must finish within `write_timeout`, and a write
//! that is blocked is abandoned as soon as the engine closes the session (a full event
//! queue: `slow_consumer`), so a client that stops reading is dropped without delaying
//! anyone.

use std::io;
use std::sync::Arc;

use chat_core::{
    ChatError, ChatMessage, Engine, Event, Joined, Login, PostOutcome, PostPipeline, Session,
    UserId,
};
use futures_util::StreamExt;
use tokio::io::{AsyncWriteExt, BufWriter};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpStream;
use tokio::time::{sleep_until, timeout, Instant};
use tokio_util::codec::FramedRead;
use tokio_util::sync::CancellationToken;

use crate::codec::{Input, LineCodec};
use crate::command::{self, Command};
use crate::config::TcpConfig;
use crate::error::TcpError;
use crate::render;

/// Serves one client until it quits, goes away, idles out, is dropped, or shutdown.
pub(crate) async fn run(
    stream: TcpStream,
    engine: Engine,
    config: TcpConfig,
    shutdown: CancellationToken,
) {
    let (read, write) = stream.into_split();
    let mut conn = Connection {
        lines: FramedRead::new(read, LineCodec::new(config.max_line_bytes)),
        out: BufWriter::new(write),
        engine,
        session: None,
        current: None,
        shutdown,
        config,
        posts: PostPipeline::new(),
        events: Vec::new(),
    };
    tracing::debug!("connected");
    let end = conn.serve().await;
    match &end {
        End::WriteFailed(e) => tracing::info!(error = %e, "disconnected: write failed"),
        End::WriteTimeout => tracing::info!("disconnected: write timed out (client not reading)"),
        End::ReadFailed(e) => tracing::info!(error = %e, "disconnected: read failed"),
        other => tracing::info!(reason = ?other, "disconnected"),
    }
    if let Some(session) = conn.session.take() {
        session.close();
    }
    if !matches!(end, End::WriteTimeout | End::SessionClosedWhileWriting) {
        // Best effort FIN; bounded like every write.
        let _ = timeout(conn.config.write_timeout, conn.out.shutdown()).await;
    }
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
    engine: Engine,
    /// `None` until the client picked a name or resumed.
    session: Option<Session>,
    /// The room plain lines go to, as the client addresses it (`general`, `@bob`): the
    /// last one joined. Presentation state only; membership is the engine's.
    current: Option<String>,
    shutdown: CancellationToken,
    config: TcpConfig,
    /// Posts handed to their rooms and not answered yet, in order. A successful post
    /// answers nothing (its event is the confirmation); a refused one answers an error line,
    /// and every other answer waits for these, so errors come out in the order of the lines.
    posts: PostPipeline<()>,
    /// The events taken from the session and not written yet; kept to reuse its allocation.
    events: Vec<Event>,
}

impl Connection {
    async fn serve(&mut self) -> End {
        if let Err(end) = self.send(render::greeting()).await {
            return end;
        }
        let mut idle_deadline = Instant::now() + self.config.idle_timeout;
        loop {
            // Not biased: a client that floods lines must still get its events drained,
            // and a busy room must not starve reading the client.
            let step = tokio::select! {
                _ = self.shutdown.cancelled() => Step::Shutdown,
                posted = self.posts.next(), if !self.posts.is_empty() => Step::Posted(posted),
                input = self.lines.next(), if !self.posts.is_full() => Step::Input(input),
                more = next_events(&mut self.session, &mut self.events) => Step::Events(more),
                _ = sleep_until(idle_deadline) => Step::Idle,
            };
            match step {
                Step::Shutdown => {
                    let _ = self
                        .send(vec![render::closed(
                            "shutting_down",
                            "server shutting down",
                        )])
                        .await;
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
                    match self.input(input).await {
                        Ok(true) => {}
                        Ok(false) => return End::Quit,
                        Err(end) => return end,
                    }
                }
                Step::Posted(posted) => {
                    if let Some(((), result)) = posted {
                        if let Err(end) = self.answer_post(result).await {
                            return end;
                        }
                    }
                }
                Step::Events(false) => return End::Disconnected,
                Step::Events(true) => {
                    if let Err(end) = self.write_events().await {
                        return end;
                    }
                }
            }
        }
    }

    /// Writes the events taken from the session with one flush. The session's last event
    /// (`Disconnected`) is written, then the connection ends.
    async fn write_events(&mut self) -> Result<(), End> {
        let Some(me) = self.session.as_ref().map(|s| s.user().id) else {
            return Err(End::Disconnected);
        };
        let mut lines = Vec::with_capacity(self.events.len());
        let mut ended = false;
        for event in self.events.drain(..) {
            lines.extend(event_line(&event, me));
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

    /// Handles one input item. `Ok(false)` ends the connection (`/quit`).
    async fn input(&mut self, input: Input) -> Result<bool, End> {
        let result = match input {
            Input::TooLong { limit } => Err(TcpError::LineTooLong(limit)),
            Input::InvalidUtf8 => Err(TcpError::InvalidUtf8),
            Input::Line(line) => match command::parse(&line) {
                Ok(Command::Quit) => {
                    self.answer_posts().await?;
                    self.send(vec![render::reply("bye")]).await?;
                    return Ok(false);
                }
                Ok(command) => self.execute(command).await,
                Err(e) => Err(e),
            },
        };
        let lines = match result {
            Ok(lines) => lines,
            Err(e) => vec![render::error(&e)],
        };
        if !lines.is_empty() {
            self.answer_posts().await?;
            self.send(lines).await?;
        }
        Ok(true)
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
        posted: Result<Arc<ChatMessage>, ChatError>,
    ) -> Result<(), End> {
        match posted {
            Ok(_) => Ok(()),
            Err(e) => self.send(vec![render::error(&TcpError::Chat(e))]).await,
        }
    }

    /// Runs a command; returns the lines to answer with. Successful posts, deletions and
    /// channel creations answer nothing: their event (which this client gets too) is the
    /// confirmation.
    async fn execute(&mut self, command: Command) -> Result<Vec<String>, TcpError> {
        let Some(session) = &self.session else {
            return match command {
                Command::Nothing => Ok(Vec::new()),
                Command::Help => Ok(render::help()),
                Command::Say(name) | Command::Nick(name) => self.login(Login::Name(name)).await,
                Command::Resume(token) => self.login(Login::Resume(token)).await,
                _ => Err(TcpError::NotLoggedIn),
            };
        };
        let me = session.user().id;
        match command {
            Command::Nothing => Ok(Vec::new()),
            Command::Help => Ok(render::help()),
            Command::Nick(_) => Err(TcpError::RenameUnsupported),
            Command::Resume(_) => Err(TcpError::AlreadyLoggedIn(session.user().name.to_string())),
            Command::Quit => Ok(Vec::new()),
            Command::Say(text) => {
                let room = self.current_room()?;
                let post = session.start_post(room, text).await?;
                self.posts.push((), post);
                Ok(Vec::new())
            }
            Command::Msg { to, text } => {
                let to = if to.starts_with('@') {
                    to
                } else {
                    format!("@{to}")
                };
                let post = session.start_post(to, text).await?;
                self.posts.push((), post);
                Ok(Vec::new())
            }
            Command::Create(name) => {
                session.create_channel(&name).await?;
                Ok(Vec::new())
            }
            Command::Delete { room, id } => {
                let room = match room {
                    Some(room) => room,
                    None => self.current_room()?,
                };
                session.delete(room.as_str(), id).await?;
                Ok(Vec::new())
            }
            Command::List => {
                let channels = session.list_channels().await?;
                if channels.is_empty() {
                    return Ok(vec![render::reply(
                        "no channels yet; /create NAME makes one",
                    )]);
                }
                let mut lines = vec![render::reply(&format!("channels: {}", channels.len()))];
                lines.extend(channels.iter().map(|c| {
                    render::reply(&format!(
                        "#{} (members: {}, last active {})",
                        c.name,
                        c.members,
                        c.last_activity.format("%Y-%m-%d %H:%M:%S UTC")
                    ))
                }));
                Ok(lines)
            }
            Command::Join(target) => {
                let joined = session.join(target.as_str(), None).await?;
                let lines = joined_lines(&joined, me);
                self.current = Some(joined.room.label_for(me));
                Ok(lines)
            }
            Command::Part(target) => {
                let target = match target {
                    Some(target) => target,
                    None => self.current_room()?,
                };
                if !target.starts_with('@') {
                    session.leave(target.as_str()).await?;
                }
                // Leaving a private conversation only stops it being current: leaving it in
                // the engine would also stop that user's private messages reaching us.
                if self
                    .current
                    .as_deref()
                    .is_some_and(|c| same_room(c, &target))
                {
                    self.current = None;
                }
                Ok(vec![render::reply(&format!("left {}", shown(&target)))])
            }
            Command::Who(target) => {
                let target = match target {
                    Some(target) => target,
                    None => self.current_room()?,
                };
                let members = session.members(target.as_str()).await?;
                let (online, offline): (Vec<_>, Vec<_>) = members.iter().partition(|m| m.online);
                let names = |list: &[&chat_core::Member]| {
                    list.iter()
                        .map(|m| m.user.name.to_string())
                        .collect::<Vec<_>>()
                        .join(", ")
                };
                let mut text = format!(
                    "members of {}: {} online: {}",
                    shown(&target),
                    online.len(),
                    names(&online)
                );
                if !offline.is_empty() {
                    text.push_str(&format!("; {} offline: {}", offline.len(), names(&offline)));
                }
                Ok(vec![render::reply(&text)])
            }
        }
    }

    async fn login(&mut self, login: Login) -> Result<Vec<String>, TcpError> {
        let session = self.engine.connect(login).await?;
        let user = session.user().clone();
        tracing::Span::current().record("session_id", session.id().0);
        tracing::info!(user = %user.name, new_user = session.is_new_user(), "logged in");
        let mut lines = Vec::new();
        if session.is_new_user() {
            let token = session.token().expose();
            lines.push(render::reply(&format!("welcome, {}", user.name)));
            lines.push(render::reply(&format!(
                "your resume token: {token} (keep it secret: /resume {token} brings the name {} back later)",
                user.name
            )));
        } else {
            lines.push(render::reply(&format!("welcome back, {}", user.name)));
        }
        lines.push(render::reply(
            "/list shows the channels, /join NAME enters one, /help lists the commands",
        ));
        self.session = Some(session);
        Ok(lines)
    }

    fn current_room(&self) -> Result<String, TcpError> {
        self.current.clone().ok_or_else(|| {
            TcpError::Chat(ChatError::NotJoined(
                "a channel (/join NAME) or use /msg USER TEXT".into(),
            ))
        })
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
            _ = session_closed(&self.session) => Err(End::SessionClosedWhileWriting),
        }
    }
}

/// A channel message's line, rendered once and shared by every terminal recipient.
struct SharedLine(String);

/// The line for `event`. A channel message reads the same for everyone (unlike a private
/// message, labelled with the other user), so its line is rendered once for all of them.
fn event_line(event: &Event, me: UserId) -> Option<String> {
    match event {
        Event::Posted(message) if matches!(message.room, chat_core::Room::Channel(_)) => {
            let shared = message.encoded(|| SharedLine(render::message(message, me)));
            Some(shared.0.clone())
        }
        _ => render::event(event, me),
    }
}

/// The lines for a join: the history, oldest first, then a summary reply.
fn joined_lines(joined: &Joined, me: chat_core::UserId) -> Vec<String> {
    let mut lines: Vec<String> = joined
        .messages
        .iter()
        .map(|m| render::message(m, me))
        .collect();
    let online: Vec<_> = joined
        .members
        .iter()
        .filter(|m| m.online)
        .map(|m| m.user.name.to_string())
        .collect();
    lines.push(render::reply(&format!(
        "joined {}: {} earlier messages above; {} online: {}",
        render::room_label(&joined.room, me),
        joined.messages.len(),
        online.len(),
        online.join(", ")
    )));
    lines
}

/// A room as the client typed it, shown with its sigil: `#general`, `@bob`.
fn shown(target: &str) -> String {
    let target = target.trim();
    if target.starts_with('@') || target.starts_with('#') {
        target.to_owned()
    } else {
        format!("#{target}")
    }
}

/// Whether two room names, as typed, name the same room (case-insensitively, `#` optional).
fn same_room(a: &str, b: &str) -> bool {
    shown(a).to_lowercase() == shown(b).to_lowercase()
}

/// Takes the session's next events into `batch`; never resolves before login.
async fn next_events(session: &mut Option<Session>, batch: &mut Vec<Event>) -> bool {
    match session {
        Some(session) => session.next_events(batch).await,
        None => std::future::pending().await,
    }
}

/// Resolves when the session is closed; never before login.
async fn session_closed(session: &Option<Session>) {
    match session {
        Some(session) => session.closed().await,
        None => std::future::pending().await,
    }
}
