//! `Dispatcher`: one client's IRC messages to [`Session`] calls, and the lines that answer
//! them. Owns what the connection knows between two lines: registration, capabilities,
//! the session (once registered), the channels joined as the client sees them, and what
//! was shown to it (for `echo-message` and `CHATHISTORY`).
//!
//! Called by `connection.rs` for every input line, in order; the connection writes the
//! answer and feeds the posts started here through its
//! [`PostPipeline`](chat_core::PostPipeline). Dispatching never touches a socket, so it is
//! tested with a real engine and no network (`tests.rs`). It makes no chat decision: every
//! request goes to the engine as the client sent it, and the engine's error comes back
//! with its code. The commands live in `register`, `channels`, `users`, `messages` and
//! `history`, one concern each.

use std::collections::VecDeque;
use std::net::IpAddr;
use std::sync::Arc;

use chat_core::{ChatMessage, Engine, MessageId, PendingPost, Room, Session, MAX_POSTS_IN_FLIGHT};
use irc_proto::{Command, Message};

use crate::caps::{Cap, Caps};
use crate::codec::Input;
use crate::config::IrcConfig;
use crate::error::IrcError;
use crate::nick;
use crate::render::{self, View};
use crate::reply::Server;

mod channels;
mod history;
mod messages;
mod register;
#[cfg(test)]
mod tests;
mod users;

/// What to do with a command's outcome.
#[derive(Debug)]
pub(crate) enum Reply {
    /// Write these lines once every earlier post is answered (often none).
    Answer(Vec<Message>),
    /// A post handed to its room; its outcome is answered in order (a refusal is a
    /// numeric; a stored message is shown by its event, or not at all without
    /// `echo-message`).
    Post(PostTag, PendingPost),
    /// `QUIT` (or a refusal that ends the connection): write these lines, then close.
    Quit(Vec<Message>),
}

/// What a post needs to be answered: the command and the target the client named.
#[derive(Debug)]
pub(crate) struct PostTag {
    /// `PRIVMSG` or `NOTICE`.
    pub verb: &'static str,
    /// The target as the client sent it.
    pub target: String,
}

/// One connection's side of the conversation with the engine.
pub(crate) struct Dispatcher {
    engine: Engine,
    /// The client's address: new users count against its login rate.
    peer: IpAddr,
    config: Arc<IrcConfig>,
    server: Server,
    reg: register::Registration,
    caps: Caps,
    /// `None` until registered.
    session: Option<Session>,
    /// The client's nick: `*` before registration.
    nick: String,
    /// What live events are rendered with; set at registration.
    view: Option<View>,
    /// The channels joined on this connection, as shown (`#General`). Presentation
    /// state only; membership is the engine's.
    channels: Vec<String>,
    /// Per room, the last message id shown to the client (most recent room first).
    seen: Vec<(Room, MessageId)>,
    /// Messages this connection posted whose events are still to come: without
    /// `echo-message` they are not shown back.
    own: VecDeque<(Room, MessageId)>,
    /// The away message set with `AWAY`, shown in our own WHO and WHOIS only.
    away: Option<String>,
    /// Counter for batch references.
    batches: u64,
}

impl Dispatcher {
    /// A dispatcher for a client that has not registered yet.
    pub(crate) fn new(engine: Engine, peer: IpAddr, config: Arc<IrcConfig>) -> Dispatcher {
        let server = Server {
            name: config.server_name.clone(),
        };
        Dispatcher {
            engine,
            peer,
            config,
            server,
            reg: register::Registration::default(),
            caps: Caps::default(),
            session: None,
            nick: "*".into(),
            view: None,
            channels: Vec::new(),
            seen: Vec::new(),
            own: VecDeque::new(),
            away: None,
            batches: 0,
        }
    }

    /// The session, once registered.
    pub(crate) fn session(&self) -> Option<&Session> {
        self.session.as_ref()
    }

    /// The session, once registered, to take its events.
    pub(crate) fn session_mut(&mut self) -> &mut Option<Session> {
        &mut self.session
    }

    /// How live events are shown to this client, once registered.
    pub(crate) fn view(&self) -> Option<&View> {
        self.view.as_ref()
    }

    /// The server, as a message source.
    pub(crate) fn server(&self) -> &Server {
        &self.server
    }

    /// The client's nick (`*` before registration).
    #[cfg(test)]
    pub(crate) fn nick(&self) -> &str {
        &self.nick
    }

    /// Whether the client wants its own messages back.
    pub(crate) fn echoes(&self) -> bool {
        self.caps.has(Cap::EchoMessage)
    }

    /// Runs one input item and says what to answer.
    pub(crate) async fn dispatch(&mut self, input: Input) -> Reply {
        let line = match input {
            Input::Line(line) => line,
            Input::TooLong => return self.answer_error("*", "", IrcError::LineTooLong),
            Input::InvalidUtf8 => {
                let text = IrcError::InvalidUtf8.text();
                return Reply::Answer(vec![self.server.notice(&self.nick, &text)]);
            }
        };
        if line.trim().is_empty() {
            return Reply::Answer(Vec::new());
        }
        match line.parse::<Message>() {
            Ok(message) => self.command(message).await,
            Err(e) => {
                let verb = guess_verb(&line);
                self.answer_error(&verb, "", IrcError::InvalidMessage(cause(&e)))
            }
        }
    }

    async fn command(&mut self, message: Message) -> Reply {
        let Message { tags, command, .. } = message;
        match command {
            Command::QUIT(why) => {
                let why = why.unwrap_or_else(|| "bye".into());
                Reply::Quit(vec![self.server.closing("quit", &why)])
            }
            Command::PING(token, _) => Reply::Answer(vec![self
                .server
                .message(Command::PONG(self.server.name.clone(), Some(token)))]),
            Command::PONG(..) => Reply::Answer(Vec::new()),
            Command::CAP(_, sub, a, b) => Reply::Answer(self.cap(sub, a, b).await),
            command if self.session.is_none() => self.before_registration(command).await,
            Command::PRIVMSG(target, text) => self.say("PRIVMSG", target, text).await,
            Command::NOTICE(target, text) => self.say("NOTICE", target, text).await,
            command => match self.registered(command, tags).await {
                Ok(lines) => Reply::Answer(lines),
                Err((verb, subject, e)) => self.answer_error(&verb, &subject, e),
            },
        }
    }

    async fn registered(
        &mut self,
        command: Command,
        tags: Option<Vec<irc_proto::message::Tag>>,
    ) -> Result<Vec<Message>, (String, String, IrcError)> {
        let fail = |verb: &str, subject: &str| {
            let (verb, subject) = (verb.to_owned(), subject.to_owned());
            move |e: IrcError| (verb, subject, e)
        };
        match command {
            Command::JOIN(channels, _, _) => Ok(self.join(&channels).await),
            Command::PART(channels, why) => Ok(self.part(&channels, why).await),
            Command::NAMES(channels, _) => Ok(self.names(channels.as_deref()).await),
            Command::LIST(channels, _) => self
                .list(channels.as_deref())
                .await
                .map_err(fail("LIST", "")),
            Command::TOPIC(channel, topic) => {
                self.topic(&channel, topic).map_err(fail("TOPIC", &channel))
            }
            Command::ChannelMODE(channel, modes) => self
                .channel_mode(&channel, &modes)
                .map_err(fail("MODE", &channel)),
            Command::UserMODE(target, modes) => self
                .user_mode(&target, &modes)
                .map_err(fail("MODE", &target)),
            Command::WHO(mask, _) => Ok(self.who(mask.as_deref()).await),
            Command::WHOIS(_, nicks) => Ok(self.whois(&nicks).await),
            Command::AWAY(why) => Ok(self.set_away(why)),
            Command::USERHOST(nicks) => Ok(self.userhost(&nicks)),
            Command::ISON(nicks) => Ok(self.ison(&nicks).await),
            Command::MOTD(_) => Ok(self.motd()),
            Command::NICK(nick) if nick == self.nick => Ok(Vec::new()),
            Command::NICK(nick) => Err(("NICK".into(), nick, IrcError::RenameUnsupported)),
            Command::USER(..) => Err(("USER".into(), String::new(), IrcError::AlreadyRegistered)),
            Command::PASS(_) => Err(("PASS".into(), String::new(), IrcError::AlreadyRegistered)),
            Command::Raw(verb, params) => {
                let verb = verb.to_ascii_uppercase();
                match verb.as_str() {
                    "CHATHISTORY" => self.chathistory(&params).await,
                    "REDACT" => self.redact(&params).await,
                    "TAGMSG" => Ok(self.tagmsg(&params, tags.as_deref()).await),
                    _ => Err(arity_or_unknown(verb)),
                }
            }
            // A command irc-proto knows and this server does not serve (KICK, OPER, ...).
            other => {
                let verb = verb_of(&other);
                Err((verb.clone(), String::new(), IrcError::UnknownCommand(verb)))
            }
        }
    }

    /// The reply for a refusal: the numeric with its code.
    fn answer_error(&self, verb: &str, subject: &str, e: IrcError) -> Reply {
        Reply::Answer(vec![self.refusal(verb, subject, &e)])
    }

    /// The numeric that refuses `verb` about `subject`.
    pub(crate) fn refusal(&self, verb: &str, subject: &str, e: &IrcError) -> Message {
        self.server.refusal(&self.nick, verb, subject, e)
    }

    /// A numeric to this client.
    fn num(&self, code: u16, params: &[&str]) -> Message {
        self.server.numeric(code, &self.nick, params)
    }

    /// The session; only called on paths that run after registration.
    fn me(&self) -> Result<&Session, IrcError> {
        self.session.as_ref().ok_or(IrcError::NotRegistered)
    }

    /// A target as the engine names it: `#chan` stays, a nick becomes `@display name`.
    fn engine_target(raw: &str) -> Result<String, IrcError> {
        if raw.starts_with('#') {
            return Ok(raw.to_owned());
        }
        nick::decode(raw)
            .map(|name| format!("@{name}"))
            .map_err(|_| IrcError::NoSuchNick(raw.to_owned()))
    }

    /// The next batch reference.
    fn next_batch(&mut self) -> String {
        self.batches += 1;
        format!("h{}", self.batches)
    }

    /// Records that the client was shown `message` (live, or from history).
    pub(crate) fn saw(&mut self, message: &ChatMessage) {
        match self.seen.iter().position(|(room, _)| *room == message.room) {
            Some(0) => self.seen[0].1 = self.seen[0].1.max(message.id),
            Some(i) => {
                let (room, id) = self.seen.remove(i);
                self.seen.insert(0, (room, id.max(message.id)));
            }
            None => self.seen.insert(0, (message.room.clone(), message.id)),
        }
    }

    /// The last message id of `room` shown to the client.
    fn seen_in(&self, room: &Room) -> Option<MessageId> {
        self.seen.iter().find(|(r, _)| r == room).map(|(_, id)| *id)
    }

    /// Notes a message this connection posted, whose event is not to be shown back.
    pub(crate) fn posted(&mut self, message: &ChatMessage) {
        if self.own.len() >= 4 * MAX_POSTS_IN_FLIGHT {
            self.own.pop_front();
        }
        self.own.push_back((message.room.clone(), message.id));
    }

    /// Whether `message` is one this connection posted (and forgets it).
    pub(crate) fn take_own(&mut self, message: &ChatMessage) -> bool {
        match self
            .own
            .iter()
            .position(|(room, id)| *id == message.id && *room == message.room)
        {
            Some(i) => {
                self.own.remove(i);
                true
            }
            None => false,
        }
    }

    /// Refreshes the view after the nick or the capabilities changed.
    fn refresh_view(&mut self) {
        if let Some(session) = &self.session {
            self.view = Some(View {
                me: session.user().id,
                nick: self.nick.clone(),
                caps: self.caps,
                server: self.server.clone(),
                files_url: self.config.files_url.as_deref().map(Arc::from),
            });
        }
    }

    /// The lines of `messages` as history: in a `chathistory` batch with `batch`.
    fn history_lines(&mut self, target: &str, messages: &[Arc<ChatMessage>]) -> Vec<Message> {
        let mut lines = Vec::new();
        if messages.is_empty() {
            return lines;
        }
        let batch = self.caps.has(Cap::Batch).then(|| self.next_batch());
        if let Some(batch) = &batch {
            lines.push(self.server.message(Command::Raw(
                "BATCH".into(),
                vec![format!("+{batch}"), "chathistory".into(), target.to_owned()],
            )));
        }
        for m in messages {
            let files_url = self.config.files_url.as_deref();
            lines.extend(render::history(m, self.caps, batch.as_deref(), files_url));
            self.saw(m);
        }
        if let Some(batch) = batch {
            lines.push(
                self.server
                    .message(Command::Raw("BATCH".into(), vec![format!("-{batch}")])),
            );
        }
        lines
    }
}

/// A command irc-proto read with the wrong number of parameters comes back raw: such a
/// known command needs more parameters (461); anything else is unknown (421).
fn arity_or_unknown(verb: String) -> (String, String, IrcError) {
    const KNOWN: &[&str] = &[
        "JOIN", "PART", "NICK", "USER", "PASS", "TOPIC", "MODE", "PRIVMSG", "NOTICE", "WHOIS",
        "PING", "CAP", "KICK", "INVITE", "OPER", "AWAY", "USERHOST", "ISON", "NAMES", "LIST",
        "WHO",
    ];
    let e = if KNOWN.contains(&verb.as_str()) {
        IrcError::NeedMoreParams(verb.clone())
    } else {
        IrcError::UnknownCommand(verb.clone())
    };
    (verb, String::new(), e)
}

/// A command's name, as it would be written.
fn verb_of(command: &Command) -> String {
    let line = String::from(command);
    line.split(' ')
        .next()
        .unwrap_or_default()
        .to_ascii_uppercase()
}

/// The command word of a line irc-proto could not read, for the refusal.
fn guess_verb(line: &str) -> String {
    let mut words = line.split(' ').filter(|w| !w.is_empty());
    let mut word = words.next().unwrap_or("*");
    if word.starts_with('@') {
        word = words.next().unwrap_or("*");
    }
    if word.starts_with(':') {
        word = words.next().unwrap_or("*");
    }
    let verb: String = word.chars().take(32).collect();
    verb.to_ascii_uppercase()
}

/// irc-proto's parse error, without the line it repeats.
fn cause(e: &irc_proto::error::ProtocolError) -> String {
    match e {
        irc_proto::error::ProtocolError::InvalidMessage { cause, .. } => cause.to_string(),
        other => other.to_string(),
    }
}

/// Every member of a joined room, page after page: IRC's NAMES, WHO and WHOIS answer with
/// the whole list, so they pay for it only when a client asks.
pub(super) async fn all_members(
    session: &Session,
    room: &str,
) -> Result<Vec<chat_core::Member>, chat_core::ChatError> {
    let mut members = Vec::new();
    let mut after = None;
    loop {
        let page = session
            .members_page(room, after, chat_core::MAX_MEMBER_PAGE)
            .await?;
        members.extend(page.members);
        match page.next {
            Some(next) => after = Some(next),
            None => return Ok(members),
        }
    }
}
