//! Helpers shared by the TCP transport's integration tests: a server from
//! `transport_tcp::serve` on 127.0.0.1:0 over a real engine, raw `TcpStream` clients that
//! read with deadlines, and an engine session standing in for a web user.
//!
//! Every read has a deadline ([`WAIT`]) and every loop a bound; no test sleeps to wait
//! for something. Every line any client receives is checked to be terminal-safe (no
//! control byte but tab), whatever the test is about. Each test file is its own crate
//! and uses a part of these helpers, hence `dead_code` is allowed here.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::time::Duration;

use chat_core::{Engine, Event, InvalidLimit, Limits, Login, Rate, Session};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::timeout;
use tokio_util::sync::CancellationToken;
use transport_tcp::TcpConfig;

/// Longest wait for anything expected to happen.
pub const WAIT: Duration = Duration::from_secs(5);
/// Most lines `expect` reads while looking for one.
pub const MAX_LINES: usize = 5_000;

pub struct Server {
    pub addr: SocketAddr,
    pub engine: Engine,
    pub shutdown: CancellationToken,
    pub task: Option<JoinHandle<Result<(), InvalidLimit>>>,
}

impl Server {
    /// A server with the engine's `limits` and the transport's `config`.
    pub async fn start(limits: Limits, config: TcpConfig) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        Server::on(listener, limits, config).await
    }

    /// A server on a listener the test set up itself.
    pub async fn on(listener: TcpListener, limits: Limits, config: TcpConfig) -> Server {
        let addr = listener.local_addr().expect("local addr");
        let engine = Engine::builder()
            .limits(limits)
            .start()
            .await
            .expect("engine");
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

    pub async fn client(&self) -> Client {
        Client::connect(self.addr).await
    }

    /// A logged-in client named `name` (a new user).
    pub async fn user(&self, name: &str) -> Client {
        let mut c = self.client().await;
        c.expect_line("= pick a display name").await;
        c.send(name).await;
        c.expect_line(&format!("= welcome, {name}")).await;
        c.expect_line("= /list shows the channels").await;
        c
    }

    /// A logged-in client that created `channel` and joined it.
    pub async fn founder(&self, name: &str, channel: &str) -> Client {
        let mut c = self.user(name).await;
        c.send(&format!("/create {channel}")).await;
        c.expect_line(&format!("+ #{channel} created")).await;
        c.send(&format!("/join {channel}")).await;
        c.expect_line(&format!("* #{channel} {name} joined")).await;
        c
    }

    /// A logged-in client that has joined `channel`, after it saw its own join.
    pub async fn member(&self, name: &str, channel: &str) -> Client {
        let mut c = self.user(name).await;
        c.send(&format!("/join {channel}")).await;
        c.expect_line(&format!("* #{channel} {name} joined")).await;
        c
    }

    /// An engine session standing in for a user of another transport (the WebSocket one).
    pub async fn web_user(&self, name: &str) -> Session {
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
pub struct Lines {
    pub rx: mpsc::UnboundedReceiver<Vec<u8>>,
    pub reader: JoinHandle<()>,
    /// Every line received so far, in order.
    pub seen: Vec<String>,
}

impl Drop for Lines {
    fn drop(&mut self) {
        self.reader.abort();
    }
}

/// A well-behaved client: its [`Lines`] and the socket's writing half.
pub struct Client {
    pub lines: Lines,
    pub writer: tokio::net::tcp::OwnedWriteHalf,
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
    pub async fn connect(addr: SocketAddr) -> Client {
        let stream = timeout(WAIT, TcpStream::connect(addr))
            .await
            .expect("connect in time")
            .expect("connect");
        Client::over(stream)
    }

    pub fn over(stream: TcpStream) -> Client {
        let (read, writer) = stream.into_split();
        Client {
            lines: Lines::from(read),
            writer,
        }
    }

    pub async fn send(&mut self, line: &str) {
        self.send_raw(format!("{line}\n").as_bytes()).await;
    }

    pub async fn send_raw(&mut self, bytes: &[u8]) {
        timeout(WAIT, self.writer.write_all(bytes))
            .await
            .expect("write in time")
            .expect("write");
    }
}

impl Lines {
    /// Starts a task reading lines from `read`.
    pub fn from(read: impl tokio::io::AsyncRead + Unpin + Send + 'static) -> Lines {
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
    pub async fn next_line(&mut self) -> Option<String> {
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
    pub async fn expect(&mut self, what: &str, pred: impl Fn(&str) -> bool) -> String {
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
    pub async fn expect_line(&mut self, prefix: &str) -> String {
        self.expect(prefix, |l| l.starts_with(prefix)).await
    }

    /// Reads until an error line with `code`.
    pub async fn expect_error(&mut self, code: &str) -> String {
        self.expect_line(&format!("! error {code}: ")).await
    }

    /// Reads until a message line whose text after the `[HH:MM:SS] ` stamp is `body`.
    pub async fn expect_message(&mut self, body: &str) -> String {
        self.expect(body, |l| message_body(l) == Some(body)).await
    }

    /// Reads until the server closes the connection. Returns the lines read meanwhile.
    pub async fn expect_eof(&mut self) -> Vec<String> {
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
pub fn message_body(line: &str) -> Option<&str> {
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

/// Engine limits for tests: no rate limit getting in the way (every test client comes
/// from 127.0.0.1, so the per-address ones too).
pub fn limits() -> Limits {
    let fast = Rate::new(100_000, 100_000.0);
    {
        let mut limits = Limits::default();
        limits.message_rate = fast;
        limits.channel_create_rate = fast;
        limits.login_rate_per_address = fast;
        limits
    }
}

/// The transport's default config without the per-address limits getting in the way.
pub fn config() -> TcpConfig {
    let mut config = TcpConfig::default();
    config.max_connections_per_address = 100_000;
    config.connect_rate_per_address = Rate::new(100_000, 100_000.0);
    config
}

/// A client whose connection comes from `from` (another loopback address, say
/// `127.0.0.2`: Linux routes all of 127.0.0.0/8 to the loopback interface).
pub async fn client_from(addr: SocketAddr, from: &str) -> Client {
    let socket = tokio::net::TcpSocket::new_v4().expect("socket");
    socket
        .bind(format!("{from}:0").parse().expect("an address"))
        .expect("bind the client's address");
    let stream = timeout(WAIT, socket.connect(addr))
        .await
        .expect("connect in time")
        .expect("connect");
    Client::over(stream)
}

/// A server with the test limits and the default transport config.
pub async fn server() -> Server {
    Server::start(limits(), config()).await
}

/// The next `Posted` event of an engine session, skipping the others.
pub async fn next_posted(session: &mut Session) -> std::sync::Arc<chat_core::ChatMessage> {
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

/// The reason an engine session (a user of another transport) is disconnected for,
/// waiting at most a few seconds.
pub async fn disconnect_reason(session: &mut Session) -> chat_core::DisconnectReason {
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let event = tokio::time::timeout_at(deadline, session.next_event())
            .await
            .expect("disconnected within the deadline")
            .expect("an event before the session ends");
        if let chat_core::Event::Disconnected(reason) = event {
            return reason;
        }
    }
}
