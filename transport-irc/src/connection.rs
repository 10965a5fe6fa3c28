//! One IRC connection: the loop that reads its lines, hands each to the [`Dispatcher`],
//! and writes what the client should see.
//!
//! Started by the accept loop (`transport_tcp::accept_loop`), one task per connection on the caller's runtime. A single task
//! selects over the client's next line, the outcome of its oldest post, its session's next
//! events, the keep-alive deadline and shutdown, so every answer is written before the
//! events that follow it. `PRIVMSG`s are pipelined through a [`PostPipeline`] as on the
//! other transports: the loop reads on while earlier posts are being stored, and answers
//! come out in the order of the lines.
//!
//! Without `echo-message`, a client is not shown the messages it posted itself on this
//! connection (IRC clients show their own lines); the event of such a message comes before
//! its post is answered, so when one arrives the loop takes post outcomes until it knows.
//! Messages the same user posted elsewhere (the web page) are shown.
//!
//! It must not touch bytes (that is `codec.rs`), run commands (`dispatch/`) nor format
//! (`render.rs`), and it makes no chat decision.
//!
//! Protections, from the [`IrcConfig`] and IRC's limits: a line is at most 512 bytes plus
//! 8191 of tags (the codec drops longer ones); a connection must register within
//! `registration_timeout`; a registered one that sends nothing for `ping_interval` gets a
//! `PING` and is closed after `ping_timeout` more; every write must finish within
//! `write_timeout`, and a blocked write is abandoned as soon as the engine closes the
//! session as a slow consumer.

use std::io;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use chat_core::{
    ChatError, ChatMessage, Engine, Event, GateRefusal, PostOutcome, PostPipeline, Session,
    ShutdownWait,
};
use futures_util::StreamExt;
use irc_proto::{Command, Message};
use tokio::io::AsyncWriteExt;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpStream;
use tokio::time::{sleep_until, timeout, Instant};
use tokio_util::codec::FramedRead;
use tokio_util::sync::CancellationToken;

use crate::codec::{Input, IrcCodec};
use crate::config::IrcConfig;
use crate::dispatch::{Dispatcher, PostTag, Reply};
use crate::error::IrcError;

/// Output capacity kept between writes; a burst's larger buffer is given back.
const KEEP_OUT: usize = 8 * 1024;

/// Tells a connection the per-address gate refused why, in one `ERROR` line, and closes
/// it, within `write_timeout`.
pub(crate) async fn refuse(stream: TcpStream, refused: GateRefusal, write_timeout: Duration) {
    let line = Message::from(Command::ERROR(format!(
        "Closing link: {}: {refused}",
        refused.code()
    )))
    .to_string();
    transport_tcp::accept::refuse_with(stream, line, write_timeout).await
}

/// Serves one client until it quits, goes away, times out, is dropped, or shutdown.
pub(crate) async fn run(
    stream: TcpStream,
    peer: IpAddr,
    engine: Engine,
    config: IrcConfig,
    shutdown: CancellationToken,
) {
    let (read, write) = stream.into_split();
    let config = Arc::new(config);
    let mut conn = Connection {
        lines: FramedRead::new(read, IrcCodec::new()),
        writer: write,
        out: Vec::new(),
        dispatcher: Dispatcher::new(engine, peer, config.clone()),
        posts: PostPipeline::new(),
        events: Vec::new(),
        shutdown: ShutdownWait::new(shutdown),
        config,
    };
    tracing::debug!("connected");
    let end = conn.serve().await;
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
        let _ = timeout(conn.config.write_timeout, conn.writer.shutdown()).await;
    }
}

/// Why a connection ended.
#[derive(Debug)]
enum End {
    Quit,
    PeerClosed,
    RegistrationTimeout,
    PingTimeout,
    Shutdown,
    /// The engine closed the session (slow consumer, engine shutdown).
    Disconnected,
    SessionClosedWhileWriting,
    WriteTimeout,
    WriteFailed(io::Error),
    ReadFailed(io::Error),
}

/// What the loop woke up for.
enum Step {
    Shutdown,
    Input(Option<Result<Input, io::Error>>),
    /// New events are in `Connection::events`; `false`: the session has ended.
    Events(bool),
    Posted(Option<PostOutcome<PostTag>>),
    Deadline,
}

struct Connection {
    lines: FramedRead<OwnedReadHalf, IrcCodec>,
    writer: OwnedWriteHalf,
    /// Bytes to write with the next flush.
    out: Vec<u8>,
    dispatcher: Dispatcher,
    posts: PostPipeline<PostTag>,
    events: Vec<Event>,
    /// The server's shutdown, polled on every turn.
    shutdown: ShutdownWait,
    config: Arc<IrcConfig>,
}

impl Connection {
    async fn serve(&mut self) -> End {
        let mut deadline = Instant::now() + self.config.registration_timeout;
        let mut pinged = false;
        loop {
            let step = tokio::select! {
                () = &mut self.shutdown => Step::Shutdown,
                posted = self.posts.next(), if !self.posts.is_empty() => Step::Posted(posted),
                input = self.lines.next(), if !self.posts.is_full() => Step::Input(input),
                more = next_events(self.dispatcher.session_mut(), &mut self.events) => {
                    Step::Events(more)
                }
                _ = sleep_until(deadline) => Step::Deadline,
            };
            let result = match step {
                Step::Shutdown => {
                    return self
                        .close(End::Shutdown, "shutting_down", "server shutting down")
                        .await
                }
                Step::Deadline if self.dispatcher.session().is_none() => {
                    let why = "register (NICK and USER) sooner";
                    return self
                        .close(End::RegistrationTimeout, "registration_timeout", why)
                        .await;
                }
                Step::Deadline if pinged => {
                    let why = format!(
                        "no reply to PING within {} s",
                        self.config.ping_timeout.as_secs_f64()
                    );
                    return self.close(End::PingTimeout, "ping_timeout", &why).await;
                }
                Step::Deadline => {
                    pinged = true;
                    deadline = Instant::now() + self.config.ping_timeout;
                    let name = self.dispatcher.server().name.clone();
                    self.push(&Message::from(Command::PING(name, None)));
                    self.flush().await
                }
                Step::Input(None) => return End::PeerClosed,
                Step::Input(Some(Err(e))) => return End::ReadFailed(e),
                Step::Input(Some(Ok(input))) => {
                    let registered = self.dispatcher.session().is_some();
                    let result = self.input(input).await;
                    if registered || self.dispatcher.session().is_some() {
                        pinged = false;
                        deadline = Instant::now() + self.config.ping_interval;
                    }
                    result
                }
                Step::Posted(None) => Ok(()),
                Step::Posted(Some((tag, result))) => {
                    self.answer_post(tag, result);
                    self.flush().await
                }
                Step::Events(false) => return End::Disconnected,
                Step::Events(true) => self.write_events().await,
            };
            if let Err(end) = result {
                return end;
            }
        }
    }

    /// Says why in an `ERROR` line (best effort), then ends with `end`.
    async fn close(&mut self, end: End, code: &str, why: &str) -> End {
        let line = self.dispatcher.server().closing(code, why);
        self.push(&line);
        let _ = self.flush().await;
        end
    }

    /// Dispatches one input item and writes its answer.
    async fn input(&mut self, input: Input) -> Result<(), End> {
        match self.dispatcher.dispatch(input).await {
            Reply::Post(tag, post) => {
                self.posts.push(tag, post);
                Ok(())
            }
            Reply::Answer(lines) if lines.is_empty() => Ok(()),
            Reply::Answer(lines) => {
                self.answer_posts().await;
                lines.iter().for_each(|l| self.push(l));
                self.flush().await
            }
            Reply::Quit(lines) => {
                self.answer_posts().await;
                lines.iter().for_each(|l| self.push(l));
                self.flush().await?;
                Err(End::Quit)
            }
        }
    }

    /// Waits for every post in flight, answering each into the output.
    async fn answer_posts(&mut self) {
        while let Some((tag, result)) = self.posts.next().await {
            self.answer_post(tag, result);
        }
    }

    /// A refused post answers its numeric; a stored one nothing (without `echo-message`
    /// it is noted, so that its event is not shown back).
    fn answer_post(&mut self, tag: PostTag, result: Result<Arc<ChatMessage>, ChatError>) {
        match result {
            Ok(message) => {
                if !self.dispatcher.echoes() {
                    self.dispatcher.posted(&message);
                }
            }
            Err(e) => {
                let line = self
                    .dispatcher
                    .refusal(tag.verb, &tag.target, &IrcError::Chat(e));
                self.push(&line);
            }
        }
    }

    /// Writes the events taken from the session with one flush. The session's last event
    /// (`Disconnected`) is written, then the connection ends.
    async fn write_events(&mut self) -> Result<(), End> {
        let Some(me) = self.dispatcher.session().map(|s| s.user().id) else {
            return Err(End::Disconnected);
        };
        let mut events = std::mem::take(&mut self.events);
        let mut ended = false;
        for event in events.drain(..) {
            if let Event::Posted(message) = &event {
                if message.author.id == me && !self.dispatcher.echoes() && self.own(message).await {
                    self.dispatcher.saw(message);
                    continue;
                }
                self.dispatcher.saw(message);
            }
            if let Some(view) = self.dispatcher.view() {
                view.event(&event, &mut self.out);
            }
            if matches!(event, Event::Disconnected(_)) {
                ended = true;
                break;
            }
        }
        self.events = events;
        self.flush().await?;
        if ended {
            Err(End::Disconnected)
        } else {
            Ok(())
        }
    }

    /// Whether `message` (by this user) was posted on this connection: answered posts
    /// say so; while it is not among them, the next outcome is taken (its event came first,
    /// so its answer is on its way).
    async fn own(&mut self, message: &ChatMessage) -> bool {
        loop {
            if self.dispatcher.take_own(message) {
                return true;
            }
            match self.posts.next().await {
                Some((tag, result)) => self.answer_post(tag, result),
                None => return false,
            }
        }
    }

    fn push(&mut self, message: &Message) {
        use std::io::Write;
        // Writing into a Vec cannot fail.
        let _ = write!(self.out, "{message}");
    }

    /// Writes what is in `out` within `write_timeout`. Gives up at once if the engine
    /// closes the session while the write is blocked (the client stopped reading).
    async fn flush(&mut self) -> Result<(), End> {
        if self.out.is_empty() {
            return Ok(());
        }
        let writer = &mut self.writer;
        let out = &self.out;
        let write = writer.write_all(out);
        let result = tokio::select! {
            biased;
            result = timeout(self.config.write_timeout, write) => match result {
                Ok(Ok(())) => Ok(()),
                Ok(Err(e)) => Err(End::WriteFailed(e)),
                Err(_) => Err(End::WriteTimeout),
            },
            _ = session_closed(self.dispatcher.session()) => Err(End::SessionClosedWhileWriting),
        };
        self.out.clear();
        if self.out.capacity() > KEEP_OUT {
            self.out = Vec::new();
        }
        result
    }
}

/// Takes the session's next events into `batch`; never resolves before registration.
async fn next_events(session: &mut Option<Session>, batch: &mut Vec<Event>) -> bool {
    match session {
        Some(session) => session.next_events(batch).await,
        None => std::future::pending().await,
    }
}

/// Resolves when the session is closed; never before registration.
async fn session_closed(session: Option<&Session>) {
    match session {
        Some(session) => session.closed().await,
        None => std::future::pending().await,
    }
}
