//! One client connection speaking one protocol: connecting and setting up (login, create
//! the channel, join it), posting a text, and classifying what arrives.
//!
//! Used by [`crate::run`], one [`Conn`] per simulated user. Protocols:
//! - [`Protocol::Ws`]: our WebSocket protocol (`docs/protocol.md`), `GET /ws`. Also what
//!   `raw-ws` speaks: it answers posts with our server's frames.
//! - [`Protocol::Tcp`]: our line protocol (`docs/tcp.md`).
//! - [`Protocol::SocketIo`]: Engine.IO v4 over WebSocket, Socket.IO v5 packets, with the
//!   `join`/`post`/`message` events of the reference peers in `benches/peers/`.
//! - [`Protocol::Irc`]: NICK, USER, JOIN, PRIVMSG, PING/PONG.
//!
//! [`Conn::recv`] is cancel-safe (it may sit in a `select!` beside the send timer): a
//! partly read line stays in the connection's buffer. It never writes; a ping comes
//! back as [`Incoming::Ping`] and the caller answers with [`Conn::pong`]. Only loopback
//! addresses are accepted.

use std::net::SocketAddr;
use std::time::Instant;

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpStream;

use crate::payload::{self, Stamp};
use crate::ws::WsClient;
use crate::Error;

/// Longest line or frame a client accepts from a server, in bytes.
const MAX_INPUT: usize = 1 << 20;
/// Frames or lines a setup step reads at most while waiting for its reply.
const MAX_SETUP_READS: usize = 10_000;

/// Which protocol a client speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    /// Our WebSocket protocol (also the raw-ws limit server).
    Ws,
    /// Our TCP line protocol.
    Tcp,
    /// Socket.IO v5 over Engine.IO v4 WebSocket.
    #[value(name = "socketio")]
    #[serde(rename = "socketio")]
    SocketIo,
    /// IRC.
    Irc,
}

/// What a client got from its server.
#[derive(Debug, PartialEq, Eq)]
pub enum Incoming {
    /// A measured message.
    Delivery(Stamp),
    /// A ping to answer (IRC carries a token, Engine.IO does not).
    Ping(Option<String>),
    /// The server ended this client's session; the text says how.
    Closed(String),
    /// Anything else (replies, presence, history): ignored.
    Other,
}

enum Io {
    Ws(WsClient),
    Lines {
        reader: BufReader<OwnedReadHalf>,
        writer: OwnedWriteHalf,
        /// The line being read; kept across cancelled reads.
        buf: Vec<u8>,
    },
}

/// One connected, logged-in client that has joined its channel.
pub struct Conn {
    protocol: Protocol,
    channel: String,
    io: Io,
    next_id: u64,
}

async fn tcp(addr: SocketAddr) -> Result<TcpStream, Error> {
    if !addr.ip().is_loopback() {
        return Err(
            format!("{addr} is not a loopback address; loadgen only targets 127.0.0.0/8").into(),
        );
    }
    let stream = TcpStream::connect(addr).await?;
    stream.set_nodelay(true)?;
    Ok(stream)
}

impl Conn {
    /// Connects to `addr` as user `name`, creates `channel` when `create` (an existing
    /// channel is fine), and joins it. The caller bounds the time.
    pub async fn open(
        protocol: Protocol,
        addr: SocketAddr,
        name: &str,
        channel: &str,
        create: bool,
    ) -> Result<Conn, Error> {
        let stream = tcp(addr).await?;
        let io = match protocol {
            Protocol::Ws | Protocol::SocketIo => {
                let path = match protocol {
                    Protocol::Ws => "/ws",
                    _ => "/socket.io/?EIO=4&transport=websocket",
                };
                Io::Ws(WsClient::connect(stream, addr, path, MAX_INPUT).await?)
            }
            Protocol::Tcp | Protocol::Irc => {
                let (read, writer) = stream.into_split();
                Io::Lines {
                    reader: BufReader::with_capacity(64 * 1024, read),
                    writer,
                    buf: Vec::with_capacity(256),
                }
            }
        };
        let mut conn = Conn {
            protocol,
            channel: channel.to_owned(),
            io,
            next_id: 1,
        };
        match protocol {
            Protocol::Ws => conn.setup_ws(name, create).await?,
            Protocol::Tcp => conn.setup_tcp(name, create).await?,
            Protocol::SocketIo => conn.setup_socketio().await?,
            Protocol::Irc => conn.setup_irc(name).await?,
        }
        Ok(conn)
    }

    async fn setup_ws(&mut self, name: &str, create: bool) -> Result<(), Error> {
        let login = serde_json::json!({"type": "login", "name": name});
        self.ws_request(login, false).await?;
        if create {
            let frame = serde_json::json!({"type": "create_channel", "name": self.channel});
            self.ws_request(frame, true).await?;
        }
        let frame = serde_json::json!({"type": "join", "room": self.channel});
        self.ws_request(frame, false).await?;
        Ok(())
    }

    /// Sends a request with a fresh id and waits for its `ok` (or, with `taken_ok`, a
    /// `channel_exists`/`name_taken` error).
    async fn ws_request(
        &mut self,
        mut frame: serde_json::Value,
        taken_ok: bool,
    ) -> Result<(), Error> {
        let id = self.next_id;
        self.next_id += 1;
        frame["id"] = id.into();
        self.write_frame(frame.to_string()).await?;
        for _ in 0..MAX_SETUP_READS {
            let text = self.read_frame().await?;
            let Ok(reply) = serde_json::from_str::<serde_json::Value>(text) else {
                continue;
            };
            if reply["id"] != id {
                continue;
            }
            return match reply["type"].as_str() {
                Some("ok") => Ok(()),
                Some("error") if taken_ok => Ok(()),
                _ => Err(format!("request {frame} failed: {text}").into()),
            };
        }
        Err("no reply to a setup request".into())
    }

    async fn setup_tcp(&mut self, name: &str, create: bool) -> Result<(), Error> {
        self.write_line(name).await?;
        self.expect_line(|l| l.starts_with("= welcome"), 0).await?;
        let mut allowed_errors = 0;
        if create {
            self.write_line(&format!("/create {}", self.channel))
                .await?;
            allowed_errors = 1;
        }
        self.write_line(&format!("/join {}", self.channel)).await?;
        self.expect_line(|l| l.starts_with("= joined"), allowed_errors)
            .await
    }

    /// Reads lines until `done` matches one; a line starting with `! ` is an error
    /// unless `allowed_errors` remain.
    async fn expect_line(
        &mut self,
        done: impl Fn(&str) -> bool,
        mut allowed_errors: usize,
    ) -> Result<(), Error> {
        for _ in 0..MAX_SETUP_READS {
            let line = self.read_line().await?.to_owned();
            if done(&line) {
                return Ok(());
            }
            if line.starts_with("! ") || line.starts_with("ERROR") {
                if allowed_errors == 0 {
                    return Err(format!("server said: {line}").into());
                }
                allowed_errors -= 1;
            }
            if let Some(token) = line.strip_prefix("PING ") {
                self.write_line(&format!("PONG {token}")).await?;
            }
        }
        Err("no expected reply during setup".into())
    }

    async fn setup_irc(&mut self, name: &str) -> Result<(), Error> {
        self.write_line(&format!("NICK {name}\r\nUSER {name} 0 * :{name}"))
            .await?;
        for _ in 0..MAX_SETUP_READS {
            let line = self.read_line().await?.to_owned();
            if let Some(token) = line.strip_prefix("PING ") {
                self.write_line(&format!("PONG {token}")).await?;
            } else if irc_numeric(&line) == Some("001") {
                break;
            } else if matches!(irc_numeric(&line), Some("432" | "433")) || line.starts_with("ERROR")
            {
                return Err(format!("IRC login refused: {line}").into());
            }
        }
        self.write_line(&format!("JOIN #{}", self.channel)).await?;
        for _ in 0..MAX_SETUP_READS {
            let line = self.read_line().await?.to_owned();
            if let Some(token) = line.strip_prefix("PING ") {
                self.write_line(&format!("PONG {token}")).await?;
            } else if irc_numeric(&line) == Some("366") {
                return Ok(());
            } else if irc_numeric(&line).is_some_and(|n| n.starts_with('4')) {
                return Err(format!("IRC join refused: {line}").into());
            }
        }
        Err("no end of NAMES after JOIN".into())
    }

    async fn setup_socketio(&mut self) -> Result<(), Error> {
        let open = self.read_frame().await?;
        if !open.starts_with('0') {
            return Err(format!("expected an Engine.IO open packet, got {open}").into());
        }
        self.write_frame("40".into()).await?;
        self.socketio_wait(|f| f.starts_with("40")).await?;
        let id = self.next_id;
        self.next_id += 1;
        let join = serde_json::json!(["join", {"room": self.channel}]);
        self.write_frame(format!("42{id}{join}")).await?;
        let ack = format!("43{id}");
        self.socketio_wait(|f| f.starts_with(&ack)).await
    }

    async fn socketio_wait(&mut self, done: impl Fn(&str) -> bool) -> Result<(), Error> {
        for _ in 0..MAX_SETUP_READS {
            let frame = self.read_frame().await?;
            if done(frame) {
                return Ok(());
            }
            if frame == "2" {
                self.write_frame("3".into()).await?;
            } else if frame.starts_with("44") {
                return Err(format!("Socket.IO connect refused: {frame}").into());
            }
        }
        Err("no Socket.IO reply during setup".into())
    }

    /// Notes from now on when what arrives reached the socket ([`crate::arrival`]); over
    /// WebSocket only (line protocols are not measured that way).
    pub fn stamp_arrivals(&mut self) -> Result<(), Error> {
        match &mut self.io {
            Io::Ws(ws) => ws.stamp_arrivals(),
            Io::Lines { .. } => Ok(()),
        }
    }

    /// When the last frame [`Conn::recv`] returned had reached the socket, in ns since
    /// the Unix epoch, if [`Conn::stamp_arrivals`] was called.
    pub fn arrived_unix_ns(&self) -> Option<u64> {
        match &self.io {
            Io::Ws(ws) => ws.arrived_unix_ns(),
            Io::Lines { .. } => None,
        }
    }

    /// When what [`Conn::recv`] returned last was received: the return of the read that
    /// completed it (WebSocket), or `None` (lines: the caller reads the clock).
    pub fn read_at(&self) -> Option<Instant> {
        match &self.io {
            Io::Ws(ws) => ws.read_at(),
            Io::Lines { .. } => None,
        }
    }

    /// The next thing the server sent, classified. Cancel-safe.
    pub async fn recv(&mut self) -> Result<Incoming, Error> {
        match self.protocol {
            Protocol::Ws => {
                let frame = self.read_frame().await?;
                Ok(classify_ws(frame))
            }
            Protocol::SocketIo => {
                let frame = self.read_frame().await?;
                Ok(classify_socketio(frame))
            }
            Protocol::Tcp => Ok(classify_tcp(self.read_line().await?)),
            Protocol::Irc => Ok(classify_irc(self.read_line().await?)),
        }
    }

    /// Posts each of `texts` to the joined channel, in order and in one write (no reply
    /// is awaited).
    pub async fn post_all(&mut self, texts: &[String]) -> Result<(), Error> {
        let channel = &self.channel;
        match self.protocol {
            Protocol::Ws => {
                let frames = texts
                    .iter()
                    .map(|text| format!(r#"{{"type":"post","room":"{channel}","text":"{text}"}}"#));
                self.write_frames(frames.collect()).await
            }
            Protocol::SocketIo => {
                let frames = texts
                    .iter()
                    .map(|text| format!(r#"42["post",{{"room":"{channel}","text":"{text}"}}]"#));
                self.write_frames(frames.collect()).await
            }
            Protocol::Tcp => self.write_lines(texts.iter().map(String::as_str)).await,
            Protocol::Irc => {
                let lines: Vec<String> = texts
                    .iter()
                    .map(|text| format!("PRIVMSG #{channel} :{text}"))
                    .collect();
                self.write_lines(lines.iter().map(String::as_str)).await
            }
        }
    }

    /// Answers a ping from [`Incoming::Ping`].
    pub async fn pong(&mut self, token: Option<String>) -> Result<(), Error> {
        match (self.protocol, token) {
            (Protocol::Irc, Some(token)) => self.write_line(&format!("PONG {token}")).await,
            (Protocol::SocketIo, _) => self.write_frame("3".into()).await,
            _ => Ok(()),
        }
    }

    /// Closes the connection politely (a close frame, `QUIT`, or a FIN).
    pub async fn close(mut self) {
        // Errors mean the connection is gone already, which is the goal.
        match &mut self.io {
            Io::Ws(ws) => {
                let _ = ws.close().await;
            }
            Io::Lines { writer, .. } => {
                let bye: &[u8] = if self.protocol == Protocol::Irc {
                    b"QUIT\r\n"
                } else {
                    b"/quit\r\n"
                };
                let _ = writer.write_all(bye).await;
                let _ = writer.shutdown().await;
            }
        }
    }

    async fn write_frame(&mut self, text: String) -> Result<(), Error> {
        self.write_frames(vec![text]).await
    }

    /// Writes text frames, all in one write.
    async fn write_frames(&mut self, texts: Vec<String>) -> Result<(), Error> {
        let Io::Ws(ws) = &mut self.io else {
            return Err("not a WebSocket connection".into());
        };
        ws.send_texts(&texts).await
    }

    /// The next text message. A close frame or the end of the stream is an error carrying
    /// the close reason. Cancel-safe.
    async fn read_frame(&mut self) -> Result<&str, Error> {
        let Io::Ws(ws) = &mut self.io else {
            return Err("not a WebSocket connection".into());
        };
        ws.next_text().await
    }

    async fn write_line(&mut self, line: &str) -> Result<(), Error> {
        self.write_lines(std::iter::once(line)).await
    }

    /// Writes lines, each with its CRLF, in one write.
    async fn write_lines<'a>(&mut self, lines: impl Iterator<Item = &'a str>) -> Result<(), Error> {
        let Io::Lines { writer, .. } = &mut self.io else {
            return Err("not a line connection".into());
        };
        let mut bytes = Vec::new();
        for line in lines {
            bytes.extend_from_slice(line.as_bytes());
            bytes.extend_from_slice(b"\r\n");
        }
        writer.write_all(&bytes).await?;
        Ok(())
    }

    /// The next line without its terminator. Cancel-safe: a partial line stays in `buf`.
    /// The next line, without its end, borrowed from the connection's buffer until the
    /// next read: classifying a line costs no copy of it (the loadgen reads millions of
    /// lines a second and must not be what limits a run). A line that is not UTF-8 reads
    /// as empty (it is no delivery either way). Cancel-safe: a partial line stays in the
    /// buffer.
    async fn read_line(&mut self) -> Result<&str, Error> {
        let Io::Lines { reader, buf, .. } = &mut self.io else {
            return Err("not a line connection".into());
        };
        if buf.last() == Some(&b'\n') {
            buf.clear();
        }
        loop {
            let n = reader.read_until(b'\n', buf).await?;
            if n == 0 {
                return Err("connection closed".into());
            }
            if buf.last() == Some(&b'\n') {
                let line = std::str::from_utf8(buf).unwrap_or_default();
                return Ok(line.trim_end_matches(['\r', '\n']));
            }
            if buf.len() > MAX_INPUT {
                return Err("line too long".into());
            }
        }
    }
}

/// Our WebSocket events: `message` events (from the engine, or from raw-ws). Replies
/// (`ok` carries the poster's own message) are not deliveries.
pub fn classify_ws(frame: &str) -> Incoming {
    if frame.starts_with(r#"{"type":"message""#) {
        return payload::find(frame).map_or(Incoming::Other, Incoming::Delivery);
    }
    if frame.starts_with(r#"{"type":"disconnected""#) {
        return Incoming::Closed(frame.to_owned());
    }
    Incoming::Other
}

/// Engine.IO/Socket.IO: `2` is a ping, `42["message",...]` an event, `1` a close.
pub fn classify_socketio(frame: &str) -> Incoming {
    if frame == "2" {
        return Incoming::Ping(None);
    }
    if frame.starts_with(r#"42["message""#) {
        return payload::find(frame).map_or(Incoming::Other, Incoming::Delivery);
    }
    if frame == "1" || frame.starts_with("41") {
        return Incoming::Closed(frame.to_owned());
    }
    Incoming::Other
}

/// Our line protocol: message lines start with `[HH:MM:SS] `; `! closed` ends a session.
pub fn classify_tcp(line: &str) -> Incoming {
    if line.starts_with('[') {
        return payload::find(line).map_or(Incoming::Other, Incoming::Delivery);
    }
    if line.starts_with("! closed") {
        return Incoming::Closed(line.to_owned());
    }
    Incoming::Other
}

/// IRC: `:nick!user@host PRIVMSG #chan :text`, `PING :token`, `ERROR :why`.
pub fn classify_irc(line: &str) -> Incoming {
    if let Some(token) = line.strip_prefix("PING ") {
        return Incoming::Ping(Some(token.to_owned()));
    }
    if line.contains(" PRIVMSG ") {
        return payload::find(line).map_or(Incoming::Other, Incoming::Delivery);
    }
    if line.starts_with("ERROR") {
        return Incoming::Closed(line.to_owned());
    }
    Incoming::Other
}

/// The numeric reply code of an IRC line (`:server 001 nick :Welcome` → `001`).
fn irc_numeric(line: &str) -> Option<&str> {
    let mut words = line.split(' ');
    let first = words.next()?;
    let code = if first.starts_with(':') {
        words.next()?
    } else {
        first
    };
    (code.len() == 3 && code.bytes().all(|b| b.is_ascii_digit())).then_some(code)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_each_protocol() {
        let s = Stamp {
            sender: 1,
            seq: 2,
            sent_ns: 3,
        };
        let t = payload::encode(s, 16);
        assert_eq!(
            classify_ws(&format!(
                r#"{{"type":"message","room":"c","message":{{"text":"{t}"}}}}"#
            )),
            Incoming::Delivery(s)
        );
        assert_eq!(
            classify_ws(&format!(
                r#"{{"type":"ok","id":3,"result":{{"message":{{"text":"{t}"}}}}}}"#
            )),
            Incoming::Other
        );
        assert_eq!(classify_socketio("2"), Incoming::Ping(None));
        assert_eq!(
            classify_socketio(&format!(r#"42["message",{{"text":"{t}"}}]"#)),
            Incoming::Delivery(s)
        );
        assert_eq!(
            classify_tcp(&format!("[14:03:22] #c <u> {t} (id 9)")),
            Incoming::Delivery(s)
        );
        assert_eq!(classify_tcp("= joined #c"), Incoming::Other);
        assert_eq!(
            classify_irc(&format!(":u!~u@h PRIVMSG #c :{t}")),
            Incoming::Delivery(s)
        );
        assert_eq!(classify_irc("PING :x"), Incoming::Ping(Some(":x".into())));
        assert_eq!(irc_numeric(":srv 001 nick :Welcome"), Some("001"));
        assert_eq!(irc_numeric(":srv NOTICE x"), None);
    }
}
