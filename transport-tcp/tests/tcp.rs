//! Integration tests of the TCP transport over real sockets: a server from
//! `transport_tcp::serve` on 127.0.0.1:0, raw `TcpStream` clients, and one session with
//! the real `nc` program.
//!
//! Every read has a deadline ([`WAIT`]) and every loop a bound; no test sleeps to wait
//! for something. Every line any client receives is checked to be terminal-safe (no
//! control byte but tab), whatever the test is about.

use std::net::SocketAddr;
use std::process::Stdio;
use std::time::Duration;

use chat_core::{Engine, Event, Limits, Login, Rate, Session};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::timeout;
use tokio_util::sync::CancellationToken;
use transport_tcp::TcpConfig;

/// Longest wait for anything expected to happen.
const WAIT: Duration = Duration::from_secs(5);
/// Most lines `expect` reads while looking for one.
const MAX_LINES: usize = 5_000;

struct Server {
    addr: SocketAddr,
    engine: Engine,
    shutdown: CancellationToken,
    task: Option<JoinHandle<()>>,
}

impl Server {
    /// A server with the engine's `limits` and the transport's `config`.
    async fn start(limits: Limits, config: TcpConfig) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        Server::on(listener, limits, config)
    }

    /// A server on a listener the test set up itself.
    fn on(listener: TcpListener, limits: Limits, config: TcpConfig) -> Server {
        let addr = listener.local_addr().expect("local addr");
        let engine = Engine::start(limits).expect("engine");
        let shutdown = CancellationToken::new();
        let task = tokio::spawn(transport_tcp::serve(
            listener,
            engine.clone(),
            config,
            shutdown.clone(),
        ));
        Server {
            addr,
            engine,
            shutdown,
            task: Some(task),
        }
    }

    async fn client(&self) -> Client {
        Client::connect(self.addr).await
    }

    /// A logged-in client named `name` (a new user).
    async fn user(&self, name: &str) -> Client {
        let mut c = self.client().await;
        c.expect_line("= pick a display name").await;
        c.send(name).await;
        c.expect_line(&format!("= welcome, {name}")).await;
        c.expect_line("= /list shows the channels").await;
        c
    }

    /// A logged-in client that created `channel` and joined it.
    async fn founder(&self, name: &str, channel: &str) -> Client {
        let mut c = self.user(name).await;
        c.send(&format!("/create {channel}")).await;
        c.expect_line(&format!("+ #{channel} created")).await;
        c.send(&format!("/join {channel}")).await;
        c.expect_line(&format!("* #{channel} {name} joined")).await;
        c
    }

    /// A logged-in client that has joined `channel`, after it saw its own join.
    async fn member(&self, name: &str, channel: &str) -> Client {
        let mut c = self.user(name).await;
        c.send(&format!("/join {channel}")).await;
        c.expect_line(&format!("* #{channel} {name} joined")).await;
        c
    }

    /// An engine session standing in for a user of another transport (the WebSocket one).
    async fn web_user(&self, name: &str) -> Session {
        self.engine
            .connect(Login::Name(name.into()))
            .await
            .expect("web user connects")
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.shutdown.cancel();
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

/// Lines from a server, read by a task as they arrive (so the server never sees a slow
/// reader) and handed to the test, which reads them with deadlines.
struct Lines {
    rx: mpsc::UnboundedReceiver<Vec<u8>>,
    reader: JoinHandle<()>,
    /// Every line received so far, in order.
    seen: Vec<String>,
}

impl Drop for Lines {
    fn drop(&mut self) {
        self.reader.abort();
    }
}

/// A well-behaved client: its [`Lines`] and the socket's writing half.
struct Client {
    lines: Lines,
    writer: tokio::net::tcp::OwnedWriteHalf,
}

impl std::ops::Deref for Client {
    type Target = Lines;
    fn deref(&self) -> &Lines {
        &self.lines
    }
}

impl std::ops::DerefMut for Client {
    fn deref_mut(&mut self) -> &mut Lines {
        &mut self.lines
    }
}

impl Client {
    async fn connect(addr: SocketAddr) -> Client {
        let stream = timeout(WAIT, TcpStream::connect(addr))
            .await
            .expect("connect in time")
            .expect("connect");
        Client::over(stream)
    }

    fn over(stream: TcpStream) -> Client {
        let (read, writer) = stream.into_split();
        Client {
            lines: Lines::from(read),
            writer,
        }
    }

    async fn send(&mut self, line: &str) {
        self.send_raw(format!("{line}\n").as_bytes()).await;
    }

    async fn send_raw(&mut self, bytes: &[u8]) {
        timeout(WAIT, self.writer.write_all(bytes))
            .await
            .expect("write in time")
            .expect("write");
    }
}

impl Lines {
    /// Starts a task reading lines from `read`.
    fn from(read: impl tokio::io::AsyncRead + Unpin + Send + 'static) -> Lines {
        let (tx, rx) = mpsc::unbounded_channel();
        let reader = tokio::spawn(async move {
            let mut read = BufReader::new(read);
            // Bounded: the server's lines are bounded and the test ends.
            for _ in 0..1_000_000 {
                let mut line = Vec::new();
                match read.read_until(b'\n', &mut line).await {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {
                        if tx.send(line).is_err() {
                            break;
                        }
                    }
                }
            }
        });
        Lines {
            rx,
            reader,
            seen: Vec::new(),
        }
    }

    /// The next line (without `\r\n`), or `None` at end of stream. Panics after [`WAIT`].
    async fn next_line(&mut self) -> Option<String> {
        let raw = timeout(WAIT, self.rx.recv()).await.unwrap_or_else(|_| {
            panic!(
                "no line within {WAIT:?}; seen so far:\n{}",
                self.seen.join("\n")
            )
        })?;
        let line = raw
            .strip_suffix(b"\r\n")
            .unwrap_or_else(|| panic!("line not ending in CRLF: {raw:?}"));
        assert!(
            !line.iter().any(|&b| (b < 0x20 && b != b'\t') || b == 0x7f),
            "a raw control byte reached the client: {line:?}"
        );
        let line = String::from_utf8(line.to_vec()).expect("server output is UTF-8");
        self.seen.push(line.clone());
        Some(line)
    }

    /// Reads until a line satisfies `pred`; returns it. Panics after [`WAIT`], at end of
    /// stream, or after [`MAX_LINES`].
    async fn expect(&mut self, what: &str, pred: impl Fn(&str) -> bool) -> String {
        let deadline = tokio::time::Instant::now() + WAIT;
        for _ in 0..MAX_LINES {
            assert!(
                tokio::time::Instant::now() < deadline,
                "gave up waiting for {what}; seen:\n{}",
                self.seen.join("\n")
            );
            match self.next_line().await {
                Some(line) if pred(&line) => return line,
                Some(_) => continue,
                None => panic!(
                    "connection closed while waiting for {what}; seen:\n{}",
                    self.seen.join("\n")
                ),
            }
        }
        panic!("{what} not among {MAX_LINES} lines")
    }

    /// Reads until a line starts with `prefix`.
    async fn expect_line(&mut self, prefix: &str) -> String {
        self.expect(prefix, |l| l.starts_with(prefix)).await
    }

    /// Reads until an error line with `code`.
    async fn expect_error(&mut self, code: &str) -> String {
        self.expect_line(&format!("! error {code}: ")).await
    }

    /// Reads until a message line whose text after the `[HH:MM:SS] ` stamp is `body`.
    async fn expect_message(&mut self, body: &str) -> String {
        self.expect(body, |l| message_body(l) == Some(body)).await
    }

    /// Reads until the server closes the connection. Returns the lines read meanwhile.
    async fn expect_eof(&mut self) -> Vec<String> {
        let mut lines = Vec::new();
        for _ in 0..MAX_LINES {
            match self.next_line().await {
                Some(line) => lines.push(line),
                None => return lines,
            }
        }
        panic!("no end of stream after {MAX_LINES} lines")
    }
}

/// The text of a message line after its `[HH:MM:SS] ` stamp, if it is one.
fn message_body(line: &str) -> Option<&str> {
    let b = line.as_bytes();
    let stamp = b.len() > 11
        && b[0] == b'['
        && b[9] == b']'
        && b[10] == b' '
        && [1, 2, 4, 5, 7, 8].iter().all(|&i| b[i].is_ascii_digit())
        && b[3] == b':'
        && b[6] == b':';
    stamp.then(|| &line[11..])
}

/// Engine limits for tests: no rate limit getting in the way.
fn limits() -> Limits {
    let fast = Rate {
        burst: 100_000,
        per_second: 100_000.0,
    };
    Limits {
        message_rate: fast,
        channel_create_rate: fast,
        ..Limits::default()
    }
}

/// A server with the test limits and the default transport config.
async fn server() -> Server {
    Server::start(limits(), TcpConfig::default()).await
}

/// The next `Posted` event of an engine session, skipping the others.
async fn next_posted(session: &mut Session) -> std::sync::Arc<chat_core::ChatMessage> {
    let deadline = tokio::time::Instant::now() + WAIT;
    for _ in 0..MAX_LINES {
        let event = tokio::time::timeout_at(deadline, session.next_event())
            .await
            .expect("an event in time")
            .expect("session open");
        if let Event::Posted(m) = event {
            return m;
        }
    }
    panic!("no message event")
}

#[tokio::test]
async fn greeting_login_and_session_commands() {
    let s = server().await;
    let mut c = s.client().await;
    let greeting = c.expect_line("= welcome to the chat").await;
    assert!(greeting.contains("/help"), "{greeting}");

    c.send("/help").await;
    for cmd in [
        "/nick", "/resume", "/list", "/create", "/join", "/part", "/who", "/msg", "/delete",
        "/quit",
    ] {
        c.expect(cmd, |l| l.starts_with("=   ") && l.contains(cmd))
            .await;
    }

    // Before login only /help, /nick, /resume, /quit and a plain name work.
    c.send("/list").await;
    c.expect_error("not_logged_in").await;
    c.send("/join general").await;
    c.expect_error("not_logged_in").await;
    c.send("/frobnicate").await;
    c.expect_error("unknown_command").await;
    c.send("/nick").await;
    c.expect_error("usage").await;
    c.send("/nick @alice").await;
    c.expect_error("invalid_name").await;

    c.send("/nick alice").await;
    c.expect_line("= welcome, alice").await;
    let token_line = c.expect_line("= your resume token: ").await;
    assert!(token_line.contains("/resume "), "{token_line}");
    c.expect_line("= /list shows the channels").await;

    c.send("/nick alicia").await;
    c.expect_error("rename_unsupported").await;
    c.send("/resume 0123").await;
    c.expect_error("already_logged_in").await;
    c.send("/unknown thing").await;
    let line = c.expect_error("unknown_command").await;
    assert!(line.contains("/unknown"), "{line}");
    c.send("/join").await;
    c.expect_error("usage").await;
    c.send("/delete nine").await;
    c.expect_error("usage").await;
    c.send("/msg bob").await;
    c.expect_error("usage").await;

    // The token is printed once: nothing else shows it.
    c.send("/quit").await;
    let rest = c.expect_eof().await;
    assert!(rest.contains(&"= bye".to_string()), "{rest:?}");
    let token = token_line
        .trim_start_matches("= your resume token: ")
        .split(' ')
        .next()
        .unwrap()
        .to_owned();
    assert_eq!(
        c.seen.iter().filter(|l| l.contains(&token)).count(),
        1,
        "{:?}",
        c.seen
    );
}

#[tokio::test]
async fn channel_commands_and_their_errors() {
    let s = server().await;
    let mut alice = s.user("alice").await;
    let mut bob = s.user("bob").await;

    alice.send("/list").await;
    alice.expect_line("= no channels yet").await;
    alice.send("hello?").await;
    alice.expect_error("not_joined").await;
    alice.send("/part").await;
    alice.expect_error("not_joined").await;
    alice.send("/who").await;
    alice.expect_error("not_joined").await;
    alice.send("/join nowhere").await;
    alice.expect_error("no_such_channel").await;
    alice.send("/create bad.name").await;
    alice.expect_error("invalid_channel_name").await;

    alice.send("/create rust").await;
    alice.expect_line("+ #rust created").await;
    bob.expect_line("+ #rust created").await;
    alice.send("/create RUST").await;
    alice.expect_error("channel_exists").await;

    bob.send("/list").await;
    bob.expect_line("= channels: 1").await;
    bob.expect_line("= #rust (members: 0, last active ").await;

    // Posting to a channel one has not joined.
    bob.send("/delete rust 1").await;
    bob.expect_error("not_joined").await;

    alice.send("/join #rust").await;
    alice
        .expect_line("= joined #rust: 0 earlier messages above; 1 online: alice")
        .await;
    alice.expect_line("* #rust alice joined").await;
    bob.send("/join rust").await;
    bob.expect_line("= joined #rust: 0 earlier messages above; 2 online: alice, bob")
        .await;
    alice.expect_line("* #rust bob joined").await;

    alice.send("/who").await;
    alice
        .expect_line("= members of #rust: 2 online: alice, bob")
        .await;

    bob.send("/part").await;
    bob.expect_line("= left #rust").await;
    alice.expect_line("* #rust bob left").await;
    bob.send("still here?").await;
    bob.expect_error("not_joined").await;
    bob.send("/part rust").await;
    bob.expect_error("not_joined").await;
    bob.send("/who rust").await;
    bob.expect_error("not_joined").await;

    alice.send("/who rust").await;
    alice
        .expect_line("= members of #rust: 1 online: alice")
        .await;
}

#[tokio::test]
async fn history_is_shown_on_join_then_live_messages() {
    let s = server().await;
    let mut alice = s.founder("alice", "general").await;
    for i in 1..=3 {
        alice.send(&format!("message {i}")).await;
        alice
            .expect_message(&format!("#general <alice> message {i} (id {i})"))
            .await;
    }

    let mut bob = s.user("bob").await;
    bob.send("/join general").await;
    let mut history = Vec::new();
    for _ in 0..3 {
        history.push(bob.next_line().await.expect("history line"));
    }
    let bodies: Vec<_> = history.iter().map(|l| message_body(l)).collect();
    assert_eq!(
        bodies,
        vec![
            Some("#general <alice> message 1 (id 1)"),
            Some("#general <alice> message 2 (id 2)"),
            Some("#general <alice> message 3 (id 3)"),
        ],
        "{history:?}"
    );
    bob.expect_line("= joined #general: 3 earlier messages above; 2 online: alice, bob")
        .await;

    alice.send("and one live").await;
    bob.expect_message("#general <alice> and one live (id 4)")
        .await;
}

#[tokio::test]
async fn two_tcp_users_chat_both_ways() {
    let s = server().await;
    let mut alice = s.founder("alice", "general").await;
    let mut bob = s.member("bob", "general").await;
    alice.expect_line("* #general bob joined").await;

    alice.send("hi bob").await;
    bob.expect_message("#general <alice> hi bob (id 1)").await;
    alice.expect_message("#general <alice> hi bob (id 1)").await;
    bob.send("hi alice, ünïcödé ✓").await;
    alice
        .expect_message("#general <bob> hi alice, ünïcödé ✓ (id 2)")
        .await;
    // A leading // posts a line starting with /.
    bob.send("//shrug").await;
    alice.expect_message("#general <bob> /shrug (id 3)").await;

    // Dropping the connection shows bob going offline.
    drop(bob);
    alice.expect_line("* #general bob offline").await;
}

#[tokio::test]
async fn a_burst_of_lines_is_stored_in_order_with_errors_in_place() {
    // One write of many lines: the server reads on while earlier messages are stored, and
    // must still store them in order and answer the bad lines in order.
    let s = server().await;
    let mut alice = s.founder("alice", "general").await;
    let mut bob = s.member("bob", "general").await;

    let mut burst = String::new();
    for n in 0..40 {
        match n {
            15 => burst.push_str("/msg nobody-here hello\r\n"),
            25 => burst.push_str("/frobnicate\r\n"),
            _ => burst.push_str(&format!("m{n}\r\n")),
        }
    }
    burst.push_str("/who\r\n");
    alice.send_raw(burst.as_bytes()).await;

    let who = alice.expect_line("= members of #general").await;
    let answers: Vec<&String> = alice
        .seen
        .iter()
        .filter(|l| l.starts_with("! error") || l.starts_with("= members of"))
        .collect();
    assert_eq!(
        answers.len(),
        3,
        "two errors and the /who reply: {answers:?}"
    );
    assert!(
        answers[0].starts_with("! error no_such_user: "),
        "{answers:?}"
    );
    assert!(
        answers[1].starts_with("! error unknown_command: "),
        "{answers:?}"
    );
    assert_eq!(*answers[2], who);

    let mut id = 0;
    for n in (0..40).filter(|n| *n != 15 && *n != 25) {
        id += 1;
        bob.expect_message(&format!("#general <alice> m{n} (id {id})"))
            .await;
    }
}

#[tokio::test]
async fn tcp_and_web_users_chat_in_one_channel() {
    let s = server().await;
    let mut web = s.web_user("webby").await;
    web.create_channel("general").await.expect("create");
    web.join("general", None).await.expect("join");
    let mut tcp = s.member("termy", "general").await;

    web.post("general", "hello from the browser")
        .await
        .expect("post");
    tcp.expect_message("#general <webby> hello from the browser (id 1)")
        .await;
    tcp.send("hello from the terminal").await;
    let m = next_posted(&mut web).await;
    assert_eq!(m.text, "hello from the browser", "its own message first");
    let m = next_posted(&mut web).await;
    assert_eq!(m.text, "hello from the terminal");
    assert_eq!(&*m.author.name, "termy");
}

#[tokio::test]
async fn private_messages() {
    let s = server().await;
    let mut alice = s.user("alice").await;
    let mut bob = s.user("bob").await;

    alice.send("/msg bob psst").await;
    bob.expect_message("@alice <alice> psst (id 1)").await;
    alice.expect_message("@bob <alice> psst (id 1)").await;
    bob.send("/msg @alice hi back").await;
    alice.expect_message("@bob <bob> hi back (id 2)").await;

    alice.send("/msg nobody hello").await;
    alice.expect_error("no_such_user").await;
    alice.send("/msg alice talking to myself").await;
    alice.expect_error("invalid_target").await;

    // Joining the conversation shows its history and makes it current.
    bob.send("/join @alice").await;
    bob.expect_message("@alice <alice> psst (id 1)").await;
    bob.expect_message("@alice <bob> hi back (id 2)").await;
    bob.expect_line("= joined @alice: 2 earlier messages above")
        .await;
    bob.send("plain line to alice").await;
    alice
        .expect_message("@bob <bob> plain line to alice (id 3)")
        .await;
    bob.send("/who").await;
    bob.expect_line("= members of @alice: 2 online: alice, bob")
        .await;
    // Parting a private conversation only stops it being current.
    bob.send("/part").await;
    bob.expect_line("= left @alice").await;
    alice.send("/msg bob still there?").await;
    bob.expect_message("@alice <alice> still there? (id 4)")
        .await;
}

#[tokio::test]
async fn delete_own_messages_only() {
    let s = server().await;
    let mut alice = s.founder("alice", "general").await;
    let mut bob = s.member("bob", "general").await;

    alice.send("oops").await;
    bob.expect_message("#general <alice> oops (id 1)").await;
    bob.send("/delete 1").await;
    bob.expect_error("not_author").await;
    alice.send("/delete 99").await;
    alice.expect_error("no_such_message").await;
    alice.send("/delete 1").await;
    alice.expect_line("- #general message 1 deleted").await;
    bob.expect_line("- #general message 1 deleted").await;
    alice.send("/delete #general 1").await;
    alice.expect_error("no_such_message").await;

    alice.send("/msg bob secret").await;
    bob.expect_message("@alice <alice> secret (id 1)").await;
    alice.send("/delete @bob 1").await;
    bob.expect_line("- @alice message 1 deleted").await;
}

#[tokio::test]
async fn taken_names_and_resume_tokens() {
    let s = server().await;
    let mut alice = s.client().await;
    alice.expect_line("= pick a display name").await;
    alice.send("alice").await;
    alice.expect_line("= welcome, alice").await;
    let token_line = alice.expect_line("= your resume token: ").await;
    let token = token_line
        .trim_start_matches("= your resume token: ")
        .split(' ')
        .next()
        .expect("token")
        .to_owned();
    assert_eq!(token.len(), 32, "{token_line}");

    let mut other = s.client().await;
    other.expect_line("= pick a display name").await;
    other.send("ALICE").await;
    other.expect_error("name_taken").await;
    other.send("/resume not-a-token").await;
    other.expect_error("invalid_token").await;
    other.send("carol").await;
    other.expect_line("= welcome, carol").await;

    alice.send("/quit").await;
    alice.expect_eof().await;

    let mut back = s.client().await;
    back.expect_line("= pick a display name").await;
    back.send(&format!("/resume {token}")).await;
    back.expect_line("= welcome back, alice").await;
    back.send("/help").await;
    back.expect_line("= commands:").await;
    assert!(
        !back.seen.iter().any(|l| l.contains(&token)),
        "a resumed login does not print the token again: {:?}",
        back.seen
    );
}

#[tokio::test]
async fn over_long_line_is_refused_and_the_connection_kept() {
    let mut config = TcpConfig::default();
    config.max_line_bytes = 64;
    let s = Server::start(limits(), config).await;
    let mut alice = s.founder("alice", "general").await;
    let mut bob = s.member("bob", "general").await;

    // 10 KB on one line, in several writes.
    for _ in 0..10 {
        alice.send_raw(&[b'x'; 1000]).await;
    }
    alice.send_raw(b"\n").await;
    let line = alice.expect_error("line_too_long").await;
    assert!(line.contains("64 bytes"), "{line}");
    alice.send("short again").await;
    bob.expect_message("#general <alice> short again (id 1)")
        .await;
    alice
        .expect_message("#general <alice> short again (id 1)")
        .await;
    assert_eq!(
        alice
            .seen
            .iter()
            .filter(|l| l.starts_with("! error line_too_long"))
            .count(),
        1
    );
    assert!(
        !bob.seen.iter().any(|l| l.contains("xxx")),
        "{:?}",
        bob.seen
    );
}

#[tokio::test]
async fn invalid_utf8_is_refused_and_the_connection_kept() {
    let s = server().await;
    let mut alice = s.member_of_new("alice", "general").await;
    let mut bob = s.member("bob", "general").await;
    alice.send_raw(b"bad \xc3\x28 bytes\r\n").await;
    alice.expect_error("invalid_utf8").await;
    alice.send("good bytes é").await;
    bob.expect_message("#general <alice> good bytes é (id 1)")
        .await;
    assert!(
        !bob.seen.iter().any(|l| l.contains("bad")),
        "{:?}",
        bob.seen
    );
}

#[tokio::test]
async fn telnet_negotiation_and_ctrl_c_are_never_posted() {
    let s = server().await;
    let mut alice = s.member_of_new("alice", "general").await;
    let mut bob = s.member("bob", "general").await;

    // What a telnet client sends: option negotiation, a terminal-type sub-negotiation,
    // an interrupt (Ctrl-C as IAC IP) on its own line, a raw Ctrl-C, then a line with
    // commands in the middle of it.
    alice
        .send_raw(b"\xff\xfd\x01\xff\xfb\x03\xff\xfb\x18")
        .await;
    alice
        .send_raw(b"\xff\xfa\x18\x00xterm-256color\xff\xf0")
        .await;
    alice.send_raw(b"\xff\xf4\xff\xfd\x06\r\n").await;
    alice.send_raw(b"\x03\r\n").await;
    alice.send_raw(b"hel\xff\xf1lo\x03 telnet\r\n").await;
    bob.expect_message("#general <alice> hello telnet (id 1)")
        .await;
    alice.send("marker").await;
    bob.expect_message("#general <alice> marker (id 2)").await;
    let posted: Vec<_> = bob
        .seen
        .iter()
        .filter(|l| message_body(l).is_some())
        .collect();
    assert_eq!(
        posted.len(),
        2,
        "only the two real lines were posted: {posted:?}"
    );
    assert!(
        !alice.seen.iter().any(|l| l.starts_with("! error")),
        "telnet noise is not an error: {:?}",
        alice.seen
    );
}

#[tokio::test]
async fn escape_sequences_never_reach_a_terminal_raw() {
    let s = server().await;
    let web = s.web_user("webby").await;
    web.create_channel("general").await.expect("create");
    web.join("general", None).await.expect("join");
    let mut alice = s.member("alice", "general").await;
    let mut bob = s.member("bob", "general").await;

    // From TCP: the engine refuses control characters; nothing is posted.
    alice
        .send_raw(b"\x1b[2J\x1b[31mred\x1b]0;owned\x07\r\n")
        .await;
    alice.expect_error("invalid_text").await;
    alice.send_raw("c1 \u{9b}31m csi\r\n".as_bytes()).await;
    alice.expect_error("invalid_text").await;

    // From another transport: a multi-line message and a right-to-left override.
    web.post("general", "line one\nline two\twith a tab")
        .await
        .expect("post");
    bob.expect_message("#general <webby> line one\\nline two\twith a tab (id 1)")
        .await;
    web.post("general", "\u{202e}txt.exe").await.expect("post");
    bob.expect_message("#general <webby> \\u{202e}txt.exe (id 2)")
        .await;
    // Every line bob got was checked by `next_line` to hold no raw control byte.
    assert!(
        !bob.seen.iter().any(|l| l.contains("red")),
        "{:?}",
        bob.seen
    );
}

#[tokio::test]
async fn a_client_that_stops_reading_is_dropped_and_others_are_served() {
    // Small socket buffers (accepted sockets inherit the listener's), so a client that
    // does not read blocks the server's writes quickly.
    let socket = TcpSocket::new_v4().expect("socket");
    socket.set_send_buffer_size(4096).expect("sndbuf");
    socket
        .bind("127.0.0.1:0".parse().expect("addr"))
        .expect("bind");
    let listener = socket.listen(64).expect("listen");
    let mut config = TcpConfig::default();
    config.write_timeout = Duration::from_secs(2);
    let s = Server::on(
        listener,
        Limits {
            session_queue: 8,
            ..limits()
        },
        config,
    );

    let mut poster = s.member_of_new("poster", "general").await;

    // The slow client logs in and joins, then never reads again.
    let slow_socket = TcpSocket::new_v4().expect("socket");
    slow_socket.set_recv_buffer_size(4096).expect("rcvbuf");
    let slow_stream = timeout(WAIT, slow_socket.connect(s.addr))
        .await
        .expect("connect in time")
        .expect("connect");
    let mut slow = Client::over(slow_stream);
    slow.expect_line("= pick a display name").await;
    slow.send("slow").await;
    slow.expect_line("= welcome, slow").await;
    slow.send("/join general").await;
    slow.expect_line("* #general slow joined").await;
    slow.lines.reader.abort();

    let mut good = s.member("good", "general").await;

    // Post until the slow client is dropped; the good one must see every message, each
    // promptly, all along.
    let text = "y".repeat(3000);
    let mut dropped = false;
    let mut posted = 0;
    for id in 1..=2000u64 {
        poster.send(&text).await;
        posted = id;
        let body = format!("#general <poster> {text} (id {id})");
        let line = good
            .expect("the next message or the slow client leaving", |l| {
                message_body(l) == Some(&body) || l == "* #general slow offline"
            })
            .await;
        if line == "* #general slow offline" {
            dropped = true;
            good.expect_message(&body).await;
            break;
        }
    }
    assert!(
        dropped,
        "the slow client was never dropped ({posted} messages)"
    );

    // The good client is still fully served.
    good.send("still here").await;
    good.expect_message(&format!("#general <good> still here (id {})", posted + 1))
        .await;
    // The poster saw the slow client go offline too, and every message.
    poster.expect_line("* #general slow offline").await;
    poster
        .expect_message(&format!("#general <good> still here (id {})", posted + 1))
        .await;
    let seen = poster
        .seen
        .iter()
        .filter(|l| message_body(l).is_some())
        .count();
    assert_eq!(seen as u64, posted + 1);
}

#[tokio::test]
async fn connections_beyond_the_limit_wait_until_one_closes() {
    let mut config = TcpConfig::default();
    config.max_connections = 1;
    let s = Server::start(limits(), config).await;
    let mut first = s.user("first").await;
    // The second connection is accepted by the kernel but not served yet.
    let mut second = s.client().await;
    let early = timeout(Duration::from_millis(300), second.rx.recv()).await;
    assert!(early.is_err(), "served beyond max_connections: {early:?}");
    first.send("/quit").await;
    first.expect_eof().await;
    second.expect_line("= pick a display name").await;
}

#[tokio::test]
async fn idle_connections_are_reaped() {
    let mut config = TcpConfig::default();
    config.idle_timeout = Duration::from_millis(1500);
    let s = Server::start(limits(), config).await;
    let mut silent = s.client().await;
    let mut silent_user = s.user("lurker").await;
    let mut active = s.user("active").await;
    // The active client keeps typing (an empty line counts) while the others stay silent.
    for _ in 0..6 {
        active.send("").await;
        active.send("/help").await;
        active.expect_line("= commands:").await;
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    for client in [&mut silent, &mut silent_user] {
        let rest = client.expect_eof().await;
        assert!(
            rest.iter()
                .any(|l| l.starts_with("! closed idle_timeout: ")),
            "{rest:?}"
        );
    }
    active.send("/help").await;
    active.expect_line("= commands:").await;
}

#[tokio::test]
async fn an_invalid_config_is_refused_at_start_up() {
    // A zero idle timeout would close every connection at once: `serve` refuses it and
    // returns without serving anyone.
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("local addr");
    let engine = Engine::start(limits()).expect("engine");
    let mut config = TcpConfig::default();
    config.idle_timeout = Duration::ZERO;
    let shutdown = CancellationToken::new();
    timeout(
        WAIT,
        transport_tcp::serve(listener, engine.clone(), config, shutdown),
    )
    .await
    .expect("serve returns at once");
    // The listener is gone with it.
    assert!(TcpStream::connect(addr).await.is_err());
    engine.shutdown().await;
}

#[tokio::test]
async fn shutdown_tells_every_client_and_closes() {
    let mut s = server().await;
    let mut anonymous = s.client().await;
    anonymous.expect_line("= pick a display name").await;
    let mut alice = s.member_of_new("alice", "general").await;

    s.shutdown.cancel();
    for client in [&mut anonymous, &mut alice] {
        let rest = client.expect_eof().await;
        assert_eq!(
            rest.last().map(String::as_str),
            Some("! closed shutting_down: server shutting down"),
            "{rest:?}"
        );
    }
    let task = s.task.take().expect("server task");
    timeout(WAIT, task)
        .await
        .expect("serve returns after shutdown")
        .expect("serve did not panic");
    // The listener is gone.
    assert!(TcpStream::connect(s.addr).await.is_err());
    s.engine.shutdown().await;
}

impl Server {
    /// A logged-in client that created `channel` and joined it.
    async fn member_of_new(&self, name: &str, channel: &str) -> Client {
        let mut c = self.user(name).await;
        c.send(&format!("/create {channel}")).await;
        c.expect_line(&format!("+ #{channel} created")).await;
        c.send(&format!("/join {channel}")).await;
        c.expect_line(&format!("* #{channel} {name} joined")).await;
        c
    }
}

/// Finds `nc` on the PATH.
fn find_nc() -> Option<std::path::PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join("nc"))
        .find(|p| p.is_file())
}

#[tokio::test]
async fn a_session_with_the_real_nc() {
    let Some(nc) = find_nc() else {
        if std::env::var("CI").as_deref() == Ok("true") {
            panic!("nc (netcat-openbsd) is required under CI=true but is not installed");
        }
        eprintln!("SKIPPED: nc not installed (apt-get install netcat-openbsd); a_session_with_the_real_nc did not run");
        return;
    };
    let s = server().await;
    let mut child = tokio::process::Command::new(nc)
        .arg("127.0.0.1")
        .arg(s.addr.port().to_string())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn nc");
    let mut stdin = child.stdin.take().expect("nc stdin");
    let stdout = child.stdout.take().expect("nc stdout");
    let mut nc_out = Lines::from(stdout);
    let mut type_in = async |line: &str| {
        timeout(WAIT, stdin.write_all(format!("{line}\n").as_bytes()))
            .await
            .expect("nc stdin in time")
            .expect("nc stdin");
    };

    nc_out.expect_line("= pick a display name").await;
    type_in("ncuser").await;
    nc_out.expect_line("= welcome, ncuser").await;
    type_in("/create netcat").await;
    nc_out.expect_line("+ #netcat created").await;
    type_in("/join netcat").await;
    nc_out.expect_line("* #netcat ncuser joined").await;

    let mut bob = s.member("bob", "netcat").await;
    type_in("hello from nc").await;
    bob.expect_message("#netcat <ncuser> hello from nc (id 1)")
        .await;
    bob.send("hello nc").await;
    nc_out.expect_message("#netcat <bob> hello nc (id 2)").await;
    type_in("/who").await;
    nc_out
        .expect_line("= members of #netcat: 2 online: bob, ncuser")
        .await;
    type_in("/quit").await;
    nc_out.expect_line("= bye").await;
    bob.expect_line("* #netcat ncuser offline").await;

    // nc exits once the server closed the connection; kill it if it lingers.
    let exited = timeout(WAIT, child.wait()).await;
    if exited.is_err() {
        child.kill().await.expect("kill nc");
    }
    let _ = child.wait().await;
}
