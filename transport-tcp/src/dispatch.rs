//! `Dispatcher`: one client's parsed [`Command`] to [`Session`] calls, and the lines that
//! answer it. Owns what the connection knows between two lines: its session (once logged
//! in), its current room, and where `/more` goes on after a `/who`.
//!
//! Called by `connection.rs` for every command, in the order the client sent them; the
//! connection writes the answer and feeds the posts started here through its
//! [`PostPipeline`](chat_core::PostPipeline). Dispatching never touches a socket, so it is
//! tested here with a real engine and no network. It makes no chat decision: every request
//! goes to the engine as the client typed it, and the engine's error comes back as it is.

use std::net::IpAddr;

use chat_core::{
    ChatError, Engine, Joined, Login, Member, MemberCursor, MembersPage, PendingPost, Session,
    UserId, MEMBER_PAGE,
};

use crate::command::{self, Command};
use crate::config::TcpConfig;
use crate::error::TcpError;
use crate::render;

/// What to do with a command's outcome.
#[derive(Debug)]
pub(crate) enum Reply {
    /// Write these lines once every earlier post is answered. Empty when the command's
    /// event (which this client gets too) is its confirmation: a created channel, a
    /// deletion.
    Answer(Vec<String>),
    /// A post handed to its room: nothing to write now. A stored post answers nothing
    /// (its event is the confirmation); a refused one answers an error line.
    Post(PendingPost),
    /// `/quit`: write these lines once every earlier post is answered, then close.
    Quit(Vec<String>),
}

/// One connection's side of the conversation with the engine.
pub(crate) struct Dispatcher {
    engine: Engine,
    /// Where the client connects from: the engine counts new users per address.
    peer: IpAddr,
    /// Where IRC clients should connect instead (`TcpConfig::irc_address`).
    irc_address: Option<String>,
    /// Where files are served (`TcpConfig::files_url`).
    files_url: Option<String>,
    /// `None` until the client picked a name or resumed.
    session: Option<Session>,
    /// The room plain lines go to, as the client addresses it (`general`, `@bob`): the
    /// last one joined. Presentation state only; membership is the engine's.
    current: Option<String>,
    /// After a `/who` that did not show every member: the room as typed, where the next
    /// page starts, and how many members were shown so far.
    more: Option<(String, MemberCursor, usize)>,
}

impl Dispatcher {
    /// A dispatcher for a client, connected from `peer`, that has not logged in yet;
    /// `config` says where an IRC client is sent if one connects here, and where files are.
    pub(crate) fn new(engine: Engine, peer: IpAddr, config: &TcpConfig) -> Dispatcher {
        Dispatcher {
            engine,
            peer,
            irc_address: config.irc_address.clone(),
            files_url: config.files_url.clone(),
            session: None,
            current: None,
            more: None,
        }
    }

    /// The session, once logged in.
    pub(crate) fn session(&self) -> Option<&Session> {
        self.session.as_ref()
    }

    /// The session, once logged in, to take its events.
    pub(crate) fn session_mut(&mut self) -> &mut Option<Session> {
        &mut self.session
    }

    /// Runs `command` and says what to answer; a refusal is answered with its error line.
    pub(crate) async fn dispatch(&mut self, command: Command) -> Reply {
        if let Command::Quit = command {
            return Reply::Quit(vec![render::reply("bye")]);
        }
        // An IRC client on the line port: its registration is never a display name.
        if let (None, Command::Say(line)) = (&self.session, &command) {
            if command::is_irc_registration(line) {
                return Reply::Quit(vec![render::not_irc(self.irc_address.as_deref())]);
            }
        }
        match self.execute(command).await {
            Ok(reply) => reply,
            Err(e) => Reply::Answer(vec![render::error(&e)]),
        }
    }

    async fn execute(&mut self, command: Command) -> Result<Reply, TcpError> {
        let answer = |lines| Ok(Reply::Answer(lines));
        let Some(session) = &self.session else {
            return match command {
                Command::Nothing => answer(Vec::new()),
                Command::Help => answer(render::help()),
                Command::Say(name) | Command::Nick(name) => self.login(Login::Name(name)).await,
                Command::Resume(token) => self.login(Login::Resume(token)).await,
                _ => Err(TcpError::NotLoggedIn),
            };
        };
        let me = session.user().id;
        match command {
            Command::Nothing | Command::Quit => answer(Vec::new()),
            Command::Help => answer(render::help()),
            Command::Logout => {
                // `! closed logged_out` follows, as on every connection of this user.
                session.log_out().await?;
                answer(vec![render::reply(
                    "logged out: your token no longer works, and your name is free",
                )])
            }
            Command::Nick(_) => Err(TcpError::RenameUnsupported),
            Command::Resume(_) => Err(TcpError::AlreadyLoggedIn(session.user().name.to_string())),
            Command::Say(text) => {
                let room = self.current_room()?;
                Ok(Reply::Post(session.start_post(room, text).await?))
            }
            Command::Msg { to, text } => {
                let to = if to.starts_with('@') {
                    to
                } else {
                    format!("@{to}")
                };
                Ok(Reply::Post(session.start_post(to, text).await?))
            }
            Command::Create(name) => {
                session.create_channel(&name).await?;
                answer(Vec::new())
            }
            Command::Delete { room, id } => {
                let room = match room {
                    Some(room) => room,
                    None => self.current_room()?,
                };
                session.delete(room.as_str(), id).await?;
                answer(Vec::new())
            }
            Command::Edit { room, id, text } => {
                let room = match room {
                    Some(room) => room,
                    None => self.current_room()?,
                };
                session.edit(room.as_str(), id, text).await?;
                answer(Vec::new())
            }
            Command::React { room, id, emoji } => {
                let room = match room {
                    Some(room) => room,
                    None => self.current_room()?,
                };
                session.react(room.as_str(), id, &emoji).await?;
                answer(Vec::new())
            }
            Command::List => answer(channel_lines(session).await?),
            Command::Join(target) => {
                let joined = session.join(target.as_str(), None).await?;
                let lines = joined_lines(&joined, me, self.files_url.as_deref());
                self.current = Some(joined.room.label_for(me));
                answer(lines)
            }
            Command::Part(target) => {
                let target = match target {
                    Some(target) => target,
                    None => self.current_room()?,
                };
                // Leaving a private conversation only stops it being current: leaving it in
                // the engine would also stop that user's private messages reaching us.
                if !target.starts_with('@') {
                    session.leave(target.as_str()).await?;
                }
                if self
                    .current
                    .as_deref()
                    .is_some_and(|c| same_room(c, &target))
                {
                    self.current = None;
                }
                answer(vec![render::reply(&format!("left {}", shown(&target)))])
            }
            Command::Who(target) => {
                let target = match target {
                    Some(target) => target,
                    None => self.current_room()?,
                };
                let page = session
                    .members_page(target.as_str(), None, MEMBER_PAGE)
                    .await?;
                let lines = members_lines(&target, &page, 0);
                self.more = page.next.map(|next| (target, next, page.members.len()));
                answer(lines)
            }
            Command::More => {
                let Some((target, after, shown)) = self.more.take() else {
                    return answer(vec![render::reply(
                        "no more members to show; /who [NAME] lists a room's",
                    )]);
                };
                let page = session
                    .members_page(target.as_str(), Some(after), MEMBER_PAGE)
                    .await?;
                let lines = members_lines(&target, &page, shown);
                let shown = shown + page.members.len();
                self.more = page.next.map(|next| (target, next, shown));
                answer(lines)
            }
        }
    }

    async fn login(&mut self, login: Login) -> Result<Reply, TcpError> {
        let session = self.engine.connect_from(login, self.peer).await?;
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
        Ok(Reply::Answer(lines))
    }

    fn current_room(&self) -> Result<String, TcpError> {
        self.current.clone().ok_or_else(|| {
            TcpError::Chat(ChatError::NotJoined(
                "a channel (/join NAME) or use /msg USER TEXT".into(),
            ))
        })
    }
}

/// The `/list` answer: a count, then one line per channel.
async fn channel_lines(session: &Session) -> Result<Vec<String>, ChatError> {
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

/// The lines for a join: the history, oldest first, then a summary reply naming who is
/// online (from the first page of members: `/who` lists the rest).
fn joined_lines(joined: &Joined, me: UserId, files_url: Option<&str>) -> Vec<String> {
    let mut lines = Vec::with_capacity(joined.messages.len() + 1);
    for m in &joined.messages {
        lines.push(render::message(m, me));
        lines.extend(render::files(m, me, files_url));
    }
    let online: Vec<_> = joined
        .members
        .iter()
        .filter(|m| m.online)
        .map(|m| m.user.name.to_string())
        .collect();
    let mut text = format!(
        "joined {}: {} earlier messages above; {} online: {}",
        render::room_label(&joined.room, me),
        joined.messages.len(),
        joined.online_count,
        online.join(", ")
    );
    if joined.online_count > online.len() {
        let more = joined.online_count - online.len();
        text.push_str(&format!(" and {more} more (/who lists them)"));
    }
    lines.push(render::reply(&text));
    lines
}

fn names(list: &[&Member]) -> String {
    list.iter()
        .map(|m| m.user.name.to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

/// The `/who` (or `/more`) answer for one page, `shown` members after the start. A room
/// that fits one page gets one line: who is online, then who is not (left out when
/// nobody). A longer list says which members these are of how many, and how to go on.
fn members_lines(target: &str, page: &MembersPage, shown: usize) -> Vec<String> {
    let (online, offline): (Vec<_>, Vec<_>) = page.members.iter().partition(|m| m.online);
    if shown == 0 && page.next.is_none() {
        let mut text = format!(
            "members of {}: {} online: {}",
            self::shown(target),
            online.len(),
            names(&online)
        );
        if !offline.is_empty() {
            text.push_str(&format!("; {} offline: {}", offline.len(), names(&offline)));
        }
        return vec![render::reply(&text)];
    }
    let mut text = format!(
        "members of {} {}-{} of {} ({} online):",
        self::shown(target),
        shown + 1,
        shown + page.members.len(),
        page.member_count,
        page.online_count
    );
    if !online.is_empty() {
        text.push_str(&format!(" online: {}", names(&online)));
    }
    if !offline.is_empty() {
        let sep = if online.is_empty() { "" } else { ";" };
        text.push_str(&format!("{sep} offline: {}", names(&offline)));
    }
    let mut lines = vec![render::reply(&text)];
    if page.next.is_some() {
        lines.push(render::reply(&format!(
            "/more shows the next {MEMBER_PAGE}"
        )));
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Where the test's client connects from.
    const LOCAL: IpAddr = IpAddr::V4(std::net::Ipv4Addr::LOCALHOST);

    async fn engine() -> Engine {
        chat_core::Engine::builder()
            .start()
            .await
            .expect("engine starts")
    }

    /// Dispatches `line` as the client typed it and returns the lines answered.
    async fn answer(d: &mut Dispatcher, line: &str) -> Vec<String> {
        let command = command::parse(line).expect("a valid command");
        match d.dispatch(command).await {
            Reply::Answer(lines) => lines,
            other => panic!("{line:?}: expected an answer, got {other:?}"),
        }
    }

    /// A dispatcher logged in as `name`.
    async fn logged_in(engine: &Engine, name: &str) -> Dispatcher {
        let mut d = Dispatcher::new(engine.clone(), LOCAL, &TcpConfig::default());
        let lines = answer(&mut d, name).await;
        assert_eq!(lines[0], format!("= welcome, {name}"), "{lines:?}");
        d
    }

    #[tokio::test]
    async fn before_login_only_a_name_help_and_quit_are_served() {
        let engine = engine().await;
        let mut d = Dispatcher::new(engine.clone(), LOCAL, &TcpConfig::default());
        assert_eq!(answer(&mut d, "").await, Vec::<String>::new());
        assert_eq!(answer(&mut d, "/help").await, render::help());
        let refused = answer(&mut d, "/list").await;
        assert_eq!(refused.len(), 1);
        assert!(
            refused[0].starts_with("! error not_logged_in: "),
            "{refused:?}"
        );
        assert!(d.session().is_none());

        let lines = answer(&mut d, "/nick alice").await;
        assert_eq!(lines[0], "= welcome, alice");
        assert!(lines[1].starts_with("= your resume token: "), "{lines:?}");
        assert!(d.session().is_some());
        let again = answer(&mut d, "/nick alicia").await;
        assert!(
            again[0].starts_with("! error rename_unsupported: "),
            "{again:?}"
        );
        assert!(matches!(
            d.dispatch(Command::Quit).await,
            Reply::Quit(lines) if lines == ["= bye"]
        ));
        engine.shutdown().await;
    }

    #[tokio::test]
    async fn join_answers_history_then_summary_and_makes_the_room_current() {
        let engine = engine().await;
        let mut alice = logged_in(&engine, "alice").await;
        assert_eq!(
            answer(&mut alice, "/create general").await,
            Vec::<String>::new()
        );
        let joined = answer(&mut alice, "/join general").await;
        assert_eq!(
            joined,
            ["= joined #general: 0 earlier messages above; 1 online: alice"]
        );

        // A plain line is a post to the current room; its outcome is the stored message.
        let Reply::Post(post) = alice.dispatch(Command::Say("hello".into())).await else {
            panic!("a plain line after /join is a post");
        };
        let stored = post.await.expect("stored");
        assert_eq!((stored.id, stored.text.as_str()), (1, "hello"));

        let mut bob = logged_in(&engine, "bob").await;
        let joined = answer(&mut bob, "/join #general").await;
        assert_eq!(joined.len(), 2, "{joined:?}");
        assert!(
            joined[0].ends_with("#general <alice> hello (id 1)"),
            "{joined:?}"
        );
        assert_eq!(
            joined[1],
            "= joined #general: 1 earlier messages above; 2 online: alice, bob"
        );
        assert_eq!(
            answer(&mut bob, "/who").await,
            ["= members of #general: 2 online: alice, bob"]
        );
        assert_eq!(answer(&mut bob, "/part").await, ["= left #general"]);
        let after = answer(&mut bob, "still here?").await;
        assert!(after[0].starts_with("! error not_joined: "), "{after:?}");
        engine.shutdown().await;
    }

    #[tokio::test]
    async fn engine_errors_keep_their_code() {
        let engine = engine().await;
        let mut alice = logged_in(&engine, "alice").await;
        let cases = [
            ("/list", "= no channels yet"),
            ("hello?", "! error not_joined: "),
            ("/join nowhere", "! error no_such_channel: "),
            ("/create bad.name", "! error invalid_channel_name: "),
            ("/resume 0123", "! error already_logged_in: "),
        ];
        for (line, expected) in cases {
            let lines = answer(&mut alice, line).await;
            assert_eq!(lines.len(), 1, "{line}: {lines:?}");
            assert!(lines[0].starts_with(expected), "{line}: {lines:?}");
        }
        // A private message to nobody is refused when it is started, not later.
        let refused = answer(&mut alice, "/msg nobody hi").await;
        assert!(
            refused[0].starts_with("! error no_such_user: "),
            "{refused:?}"
        );
        engine.shutdown().await;
    }

    /// An IRC client's first lines are never taken as a display name: each gets the
    /// `ERROR` naming the IRC port, closes the connection, and registers nothing.
    #[tokio::test]
    async fn irc_registration_lines_are_sent_to_the_irc_port() {
        let engine = engine().await;
        for line in [
            "CAP LS 302",
            "NICK dave",
            "USER root 0 * :root",
            "PASS secret",
        ] {
            let config = TcpConfig {
                irc_address: Some("127.0.0.1:6667".into()),
                ..TcpConfig::default()
            };
            let mut d = Dispatcher::new(engine.clone(), LOCAL, &config);
            let command = command::parse(line).expect("a plain line");
            match d.dispatch(command).await {
                Reply::Quit(lines) => assert_eq!(
                    lines,
                    ["ERROR :this is the plain-text port; IRC clients connect to 127.0.0.1:6667"]
                ),
                other => panic!("{line}: {other:?}"),
            }
            assert!(d.session().is_none(), "{line} registered a user");
        }
        // Nothing was registered: the names are free.
        let dave = engine.connect(Login::Name("dave".into())).await;
        assert!(dave.is_ok(), "{dave:?}");
        // After login, such a line is chat like any other.
        let mut alice = logged_in(&engine, "alice").await;
        let refused = answer(&mut alice, "NICK dave").await;
        assert!(refused[0].starts_with("! error not_joined"), "{refused:?}");
        engine.shutdown().await;
    }

    #[tokio::test]
    async fn who_shows_a_page_and_more_the_next_until_the_end() {
        let engine = engine().await;
        let mut alice = logged_in(&engine, "alice").await;
        answer(&mut alice, "/create big").await;
        answer(&mut alice, "/join big").await;
        let mut others = Vec::new();
        for i in 0..150 {
            let s = engine
                .connect(Login::Name(format!("m{i:03}")))
                .await
                .expect("connects");
            s.join("big", None).await.expect("joins");
            others.push(s);
        }
        let first = answer(&mut alice, "/who").await;
        assert_eq!(first.len(), 2, "{first:?}");
        assert!(
            first[0]
                .starts_with("= members of #big 1-100 of 151 (151 online): online: alice, m000, "),
            "{first:?}"
        );
        assert_eq!(first[1], "= /more shows the next 100");
        let next = answer(&mut alice, "/more").await;
        assert_eq!(next.len(), 1, "the end: {next:?}");
        assert!(
            next[0].starts_with("= members of #big 101-151 of 151 (151 online): online: m099, "),
            "{next:?}"
        );
        assert!(next[0].ends_with(", m149"), "{next:?}");
        let done = answer(&mut alice, "/more").await;
        assert_eq!(
            done,
            ["= no more members to show; /who [NAME] lists a room's"]
        );

        // The join summary names the first page's online members and counts the rest.
        let mut late = logged_in(&engine, "zed").await;
        let joined = answer(&mut late, "/join big").await;
        let summary = joined.last().expect("a summary");
        assert!(
            summary.starts_with("= joined #big: 0 earlier messages above; 152 online: alice, m000"),
            "{summary}"
        );
        assert!(
            summary.ends_with(" and 52 more (/who lists them)"),
            "{summary}"
        );
        engine.shutdown().await;
    }

    #[test]
    fn rooms_are_shown_with_their_sigil_and_compared_loosely() {
        assert_eq!(shown("general"), "#general");
        assert_eq!(shown(" @bob "), "@bob");
        assert!(same_room("#General", "general"));
        assert!(!same_room("@general", "general"));
    }
}
