//! Helpers shared by the IRC transport's integration tests: a server from
//! `transport_irc::serve` on 127.0.0.1:0 over a real engine, raw line clients that read
//! with deadlines, clients made with the `irc` crate (a real IRC client library), and an
//! engine session standing in for a web user.
//!
//! Every read has a deadline ([`WAIT`]) and every loop a bound; no test sleeps to wait
//! for something. Each test file is its own crate and uses a part of these helpers, hence
//! `dead_code` is allowed here.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::time::Duration;

use chat_core::{ChatMessage, Engine, Event, InvalidLimit, Limits, Login, Rate, Session};
use futures_util::StreamExt;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;
use tokio::time::timeout;
use tokio_util::sync::CancellationToken;
use transport_irc::IrcConfig;

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

/// Limits for tests: the defaults with a generous message rate (flood tests set their
/// own).
pub fn limits() -> Limits {
    let mut limits = Limits::default();
    limits.message_rate = Rate::new(1000, 1000.0);
    limits
}

impl Server {
    pub async fn start(limits: Limits, config: IrcConfig) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("local addr");
        let engine = Engine::builder()
            .limits(limits)
            .start()
            .await
            .expect("engine");
        let shutdown = CancellationToken::new();
        let task = tokio::spawn(transport_irc::serve(
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

    pub async fn client(&self) -> Raw {
        Raw::connect(self.addr).await
    }

    /// A raw client registered as `nick` (NICK and USER, no CAP), past the welcome.
    pub async fn user(&self, nick: &str) -> Raw {
        let mut c = self.client().await;
        c.send(&format!("NICK {nick}\r\nUSER {nick} 0 * :{nick}"))
            .await;
        c.expect_code("001").await;
        c.expect_code("376").await;
        c
    }

    /// A raw client that negotiated `caps` and registered as `nick`.
    pub async fn user_with(&self, nick: &str, caps: &str) -> Raw {
        let mut c = self.client().await;
        c.send(&format!(
            "CAP LS 302\r\nNICK {nick}\r\nUSER {nick} 0 * :{nick}\r\nCAP REQ :{caps}\r\nCAP END"
        ))
        .await;
        c.expect("CAP ACK", |l| l.contains(" CAP ") && l.contains(" ACK "))
            .await;
        c.expect_code("376").await;
        c
    }

    /// An engine session standing in for a web user.
    pub async fn web_user(&self, name: &str) -> Session {
        self.engine
            .connect(Login::Name(name.into()))
            .await
            .expect("web login")
    }

    /// An `irc` crate client registered as `nick`, joining `channels` once registered.
    /// A task drives its stream (the library writes only while its stream is polled) and
    /// hands every message to the returned receiver.
    pub async fn library_client(
        &self,
        nick: &str,
        channels: &[&str],
    ) -> (irc::client::Client, Library) {
        let config = irc::client::data::Config {
            nickname: Some(nick.into()),
            server: Some(self.addr.ip().to_string()),
            port: Some(self.addr.port()),
            channels: channels.iter().map(|c| c.to_string()).collect(),
            ..Default::default()
        };
        let mut client = irc::client::Client::from_config(config)
            .await
            .expect("irc client");
        client.identify().expect("identify");
        let mut stream = client.stream().expect("stream");
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        tokio::spawn(async move {
            while let Some(Ok(message)) = stream.next().await {
                if tx.send(message).is_err() {
                    break;
                }
            }
        });
        (client, rx)
    }
}

/// The messages an `irc` crate client received.
pub type Library = tokio::sync::mpsc::UnboundedReceiver<irc::proto::Message>;

/// The next message an `irc` crate client received for which `pred` holds.
pub async fn library_expect(
    stream: &mut Library,
    what: &str,
    pred: impl Fn(&irc::proto::Message) -> bool,
) -> irc::proto::Message {
    let deadline = tokio::time::Instant::now() + WAIT;
    for _ in 0..MAX_LINES {
        let next = tokio::time::timeout_at(deadline, stream.recv())
            .await
            .unwrap_or_else(|_| panic!("no {what} in time"));
        let message = next.unwrap_or_else(|| panic!("stream ended before {what}"));
        if pred(&message) {
            return message;
        }
    }
    panic!("no {what} within {MAX_LINES} messages")
}

/// A raw line client: writes lines, reads lines with deadlines.
pub struct Raw {
    reader: BufReader<tokio::net::tcp::OwnedReadHalf>,
    writer: tokio::net::tcp::OwnedWriteHalf,
    /// Every line read so far.
    pub seen: Vec<String>,
}

impl Raw {
    pub async fn connect(addr: SocketAddr) -> Raw {
        let stream = timeout(WAIT, TcpStream::connect(addr))
            .await
            .expect("connect in time")
            .expect("connect");
        Raw::over(stream)
    }

    pub fn over(stream: TcpStream) -> Raw {
        let (read, writer) = stream.into_split();
        Raw {
            reader: BufReader::new(read),
            writer,
            seen: Vec::new(),
        }
    }

    /// Sends `line` (which may hold several, separated by `\r\n`) and a final `\r\n`.
    pub async fn send(&mut self, line: &str) {
        self.send_raw(format!("{line}\r\n").as_bytes()).await;
    }

    pub async fn send_raw(&mut self, bytes: &[u8]) {
        timeout(WAIT, self.writer.write_all(bytes))
            .await
            .expect("write in time")
            .expect("write");
    }

    /// The next line (without `\r\n`); `None` at end of stream. Every line is checked to
    /// be one IRC line of at most 512 bytes (tags aside) in UTF-8.
    pub async fn next_line(&mut self) -> Option<String> {
        let mut raw = Vec::new();
        let n = timeout(WAIT, self.reader.read_until(b'\n', &mut raw))
            .await
            .unwrap_or_else(|_| panic!("no line in time; saw {:#?}", self.seen))
            .ok()?;
        if n == 0 {
            return None;
        }
        let line = String::from_utf8(raw).expect("the server writes UTF-8");
        assert!(line.ends_with("\r\n"), "{line:?}");
        let line = line.trim_end_matches("\r\n").to_owned();
        assert!(!line.contains(['\r', '\n', '\0']), "{line:?}");
        let untagged = match line.strip_prefix('@') {
            Some(rest) => rest.split_once(' ').map_or("", |(_, r)| r),
            None => &line,
        };
        assert!(
            untagged.len() + 2 <= 512,
            "{} bytes: {line}",
            untagged.len() + 2
        );
        self.seen.push(line.clone());
        Some(line)
    }

    /// Reads until a line for which `pred` holds.
    pub async fn expect(&mut self, what: &str, pred: impl Fn(&str) -> bool) -> String {
        for _ in 0..MAX_LINES {
            match self.next_line().await {
                Some(line) if pred(&line) => return line,
                Some(_) => {}
                None => panic!("connection closed before {what}; saw {:#?}", self.seen),
            }
        }
        panic!("no {what} within {MAX_LINES} lines")
    }

    /// Reads until a line containing `needle`.
    pub async fn expect_line(&mut self, needle: &str) -> String {
        self.expect(needle, |l| l.contains(needle)).await
    }

    /// Reads until a numeric `code` (`001`, `433`) from the server.
    pub async fn expect_code(&mut self, code: &str) -> String {
        self.expect(code, |l| {
            l.starts_with(":flack.irc ") && l.split(' ').nth(1) == Some(code)
        })
        .await
    }

    /// Reads until the server closes the connection; the lines read meanwhile.
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

/// The next `Posted` event of an engine session with `text`, skipping the others.
pub async fn posted_text(session: &mut Session, text: &str) -> std::sync::Arc<ChatMessage> {
    for _ in 0..MAX_LINES {
        let message = next_posted(session).await;
        if message.text == text {
            return message;
        }
    }
    panic!("no message {text:?} within {MAX_LINES} messages")
}

/// The next `Posted` event of an engine session, skipping the others.
pub async fn next_posted(session: &mut Session) -> std::sync::Arc<ChatMessage> {
    let deadline = tokio::time::Instant::now() + WAIT;
    for _ in 0..MAX_LINES {
        let event = tokio::time::timeout_at(deadline, session.next_event())
            .await
            .expect("an event in time")
            .expect("the session is open");
        if let Event::Posted(message) = event {
            return message;
        }
    }
    panic!("no message within {MAX_LINES} events")
}

pub async fn server() -> Server {
    Server::start(limits(), IrcConfig::default()).await
}
