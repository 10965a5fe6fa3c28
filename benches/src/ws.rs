//! The loadgen's WebSocket client (RFC 6455): the opening handshake, then text frames
//! read in place from one buffer and written masked, many to one `write`.
//!
//! tokio-tungstenite did this before: in scenario 1 its frame parsing, buffer handling and
//! the lock between its split halves took about a quarter of the loadgen's core, the core
//! that limits that scenario for every server. This client reads into the spare capacity
//! of one buffer (nothing is zeroed), hands out each text frame as a `&str` into that
//! buffer (no allocation per frame), and answers pings itself. It accepts what a client
//! must: unmasked frames, fragmented messages, control frames between fragments; it
//! checks UTF-8 as the protocol requires. Only the handshake's key derivation comes from
//! tungstenite.

use std::net::SocketAddr;
use std::time::Instant;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::handshake::{client::generate_key, derive_accept_key};

use crate::Error;

/// Bytes of spare room asked for before each read.
const READ_CHUNK: usize = 8 * 1024;
/// The longest handshake response accepted.
const MAX_RESPONSE_HEAD: usize = 16 * 1024;

const OP_CONTINUATION: u8 = 0x0;
const OP_TEXT: u8 = 0x1;
const OP_BINARY: u8 = 0x2;
const OP_CLOSE: u8 = 0x8;
const OP_PING: u8 = 0x9;
const OP_PONG: u8 = 0xA;

/// One client connection after a successful handshake.
pub struct WsClient {
    stream: TcpStream,
    /// Bytes read and not yet consumed start at `start`.
    buf: Vec<u8>,
    start: usize,
    /// Bytes of the frame last handed out, consumed at the next call (the caller holds a
    /// borrow of them until then).
    handed_out: usize,
    /// A fragmented message being put together: its opcode and payload so far.
    fragments: Option<(u8, Vec<u8>)>,
    /// Whether the last message handed out came from `fragments` (cleared at next call).
    handed_out_fragments: bool,
    /// Frames written but not yet taken by the socket (pongs, a cut-short write).
    out: Vec<u8>,
    /// Longest message accepted.
    max_message: usize,
    /// State of the masking keys' generator.
    mask_state: u32,
    /// Whether reads ask the kernel when their bytes arrived ([`crate::arrival`]).
    stamped: bool,
    /// When the bytes of the last read arrived (ns since the Unix epoch), if stamped.
    arrived_unix_ns: Option<u64>,
    /// When the last read returned: the time every frame it completed was received.
    read_at: Option<Instant>,
}

/// The head of one frame: what it is and where its payload lies in the buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct FrameHead {
    fin: bool,
    opcode: u8,
    header_len: usize,
    payload_len: usize,
}

impl WsClient {
    /// Opens a WebSocket over `stream` to `path` on `addr`. Fails on any answer but
    /// `101 Switching Protocols` with the right `Sec-WebSocket-Accept`.
    pub async fn connect(
        mut stream: TcpStream,
        addr: SocketAddr,
        path: &str,
        max_message: usize,
    ) -> Result<WsClient, Error> {
        let key = generate_key();
        let request = format!(
            "GET {path} HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
        );
        stream.write_all(request.as_bytes()).await?;
        let mut buf = Vec::with_capacity(READ_CHUNK);
        let head_len = loop {
            if let Some(at) = find(&buf, b"\r\n\r\n") {
                break at + 4;
            }
            if buf.len() > MAX_RESPONSE_HEAD {
                return Err("handshake response too long".into());
            }
            buf.reserve(READ_CHUNK);
            if stream.read_buf(&mut buf).await? == 0 {
                return Err("connection closed during the handshake".into());
            }
        };
        check_response(&buf[..head_len], &derive_accept_key(key.as_bytes()))?;
        Ok(WsClient {
            stream,
            buf,
            start: head_len,
            handed_out: 0,
            fragments: None,
            handed_out_fragments: false,
            out: Vec::new(),
            max_message,
            mask_state: seed(),
            stamped: false,
            arrived_unix_ns: None,
            read_at: None,
        })
    }

    /// The next text message. Pings are answered, pongs and binary messages skipped; a
    /// close frame or the end of the stream is an error carrying the reason. Cancel-safe:
    /// what was read stays in the buffer.
    pub async fn next_text(&mut self) -> Result<&str, Error> {
        self.start += std::mem::take(&mut self.handed_out);
        if std::mem::take(&mut self.handed_out_fragments) {
            self.fragments = None;
        }
        self.flush_out().await?;
        loop {
            let Some(head) = parse_head(&self.buf[self.start..], self.max_message)? else {
                self.read_more().await?;
                continue;
            };
            let total = head.header_len + head.payload_len;
            if self.buf.len() - self.start < total {
                self.read_more().await?;
                continue;
            }
            let payload = self.start + head.header_len..self.start + total;
            match self.take_frame(head, payload)? {
                Taken::Text => {
                    self.handed_out = total;
                    let text = &self.buf[self.start + head.header_len..self.start + total];
                    return Ok(std::str::from_utf8(text)?);
                }
                Taken::Assembled => {
                    self.start += total;
                    self.handed_out_fragments = true;
                    let (_, text) = self.fragments.as_ref().ok_or("no message assembled")?;
                    return Ok(std::str::from_utf8(text)?);
                }
                Taken::Skipped => {
                    self.start += total;
                    self.flush_out().await?;
                }
            }
        }
    }

    /// From now on, notes when the bytes of each read reached the socket.
    pub fn stamp_arrivals(&mut self) -> Result<(), Error> {
        crate::arrival::enable(&self.stream)?;
        self.stamped = true;
        Ok(())
    }

    /// When the last text handed out had reached the socket, in ns since the Unix epoch
    /// (the stamp of the read that completed it, or of a later one): `None` unless
    /// [`WsClient::stamp_arrivals`] was called.
    pub fn arrived_unix_ns(&self) -> Option<u64> {
        self.arrived_unix_ns
    }

    /// When the read that completed the last text handed out returned (`None` before the
    /// first read). One clock reading per read, not per frame: the frames of one read
    /// were all received at that moment, and a clock reading per frame was a visible
    /// share of the loadgen's core.
    pub fn read_at(&self) -> Option<Instant> {
        self.read_at
    }

    /// Writes each of `texts` as a text frame, all in one write.
    pub async fn send_texts<T: AsRef<str>>(&mut self, texts: &[T]) -> Result<(), Error> {
        for text in texts {
            let mask = self.next_mask();
            encode_frame(&mut self.out, OP_TEXT, text.as_ref().as_bytes(), mask);
        }
        self.flush_out().await
    }

    /// Drops the connection the way a lost one goes: no close frame, and a reset rather
    /// than a FIN, so that it leaves no `TIME_WAIT` behind (a reconnect storm of 15,000
    /// would otherwise run out of loopback ports).
    pub fn abort(self) {
        // SO_LINGER of zero never blocks (tokio's own note on this deprecation): the
        // socket is reset on drop.
        #[allow(deprecated)]
        let _ = self.stream.set_linger(Some(std::time::Duration::ZERO));
    }

    /// Sends a close frame (code 1000) and shuts the writing side down.
    pub async fn close(&mut self) -> Result<(), Error> {
        let mask = self.next_mask();
        encode_frame(&mut self.out, OP_CLOSE, &1000u16.to_be_bytes(), mask);
        self.flush_out().await?;
        self.stream.shutdown().await?;
        Ok(())
    }

    /// What one complete frame, whose payload is `payload` in the buffer, means for the
    /// reader.
    fn take_frame(
        &mut self,
        head: FrameHead,
        payload: std::ops::Range<usize>,
    ) -> Result<Taken, Error> {
        match head.opcode {
            OP_PING => {
                let mask = self.next_mask();
                encode_frame(&mut self.out, OP_PONG, &self.buf[payload], mask);
                Ok(Taken::Skipped)
            }
            OP_PONG => Ok(Taken::Skipped),
            OP_CLOSE => Err(close_reason(&self.buf[payload]).into()),
            OP_TEXT | OP_BINARY => {
                if self.fragments.is_some() {
                    return Err("a new message began inside a fragmented one".into());
                }
                if !head.fin {
                    self.fragments = Some((head.opcode, self.buf[payload].to_vec()));
                    return Ok(Taken::Skipped);
                }
                Ok(if head.opcode == OP_TEXT {
                    Taken::Text
                } else {
                    Taken::Skipped
                })
            }
            OP_CONTINUATION => {
                let (opcode, so_far) = self
                    .fragments
                    .as_mut()
                    .ok_or("a continuation frame without a message to continue")?;
                if so_far.len() + payload.len() > self.max_message {
                    return Err("message too long".into());
                }
                so_far.extend_from_slice(&self.buf[payload]);
                match (head.fin, *opcode) {
                    (true, OP_TEXT) => Ok(Taken::Assembled),
                    (true, _) => {
                        self.fragments = None;
                        Ok(Taken::Skipped)
                    }
                    (false, _) => Ok(Taken::Skipped),
                }
            }
            other => Err(format!("unknown opcode {other:#x}").into()),
        }
    }

    /// Reads once into the buffer's spare room, first dropping what was consumed.
    async fn read_more(&mut self) -> Result<(), Error> {
        if self.start > 0 {
            self.buf.drain(..self.start);
            self.start = 0;
        }
        self.buf.reserve(READ_CHUNK);
        let read = if self.stamped {
            let (n, stamp) = crate::arrival::read(&self.stream, &mut self.buf).await?;
            self.arrived_unix_ns = stamp;
            n
        } else {
            self.stream.read_buf(&mut self.buf).await?
        };
        if read == 0 {
            return Err("connection closed".into());
        }
        self.read_at = Some(Instant::now());
        Ok(())
    }

    /// Writes what waits in `out`. Cancel-safe: each write that completes is removed.
    async fn flush_out(&mut self) -> Result<(), Error> {
        while !self.out.is_empty() {
            let n = self.stream.write(&self.out).await?;
            if n == 0 {
                return Err("connection closed".into());
            }
            self.out.drain(..n);
        }
        Ok(())
    }

    /// A masking key (xorshift32: a client's keys need not be secret from the servers
    /// measured here, only varied).
    fn next_mask(&mut self) -> [u8; 4] {
        let mut x = self.mask_state;
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        self.mask_state = x;
        x.to_le_bytes()
    }
}

/// What [`WsClient::take_frame`] made of a frame.
enum Taken {
    /// A whole text message: the frame's payload.
    Text,
    /// The last fragment of a text message: the message is in `fragments`.
    Assembled,
    /// Nothing to hand out (control frame, binary message, a fragment).
    Skipped,
}

/// The head of the frame at the start of `buf`, if it is all there.
fn parse_head(buf: &[u8], max_message: usize) -> Result<Option<FrameHead>, Error> {
    let [b0, b1, ..] = *buf else {
        return Ok(None);
    };
    if b0 & 0x70 != 0 {
        return Err("reserved bits set in a frame (no extension was negotiated)".into());
    }
    if b1 & 0x80 != 0 {
        return Err("a masked frame from the server".into());
    }
    let opcode = b0 & 0x0F;
    let (len, header_len) = match b1 & 0x7F {
        126 => match buf.get(2..4) {
            Some(b) => (u64::from(u16::from_be_bytes([b[0], b[1]])), 4),
            None => return Ok(None),
        },
        127 => match buf.get(2..10) {
            Some(b) => (u64::from_be_bytes(b.try_into()?), 10),
            None => return Ok(None),
        },
        n => (u64::from(n), 2),
    };
    let payload_len = usize::try_from(len).map_err(|_| "frame too long")?;
    if payload_len > max_message {
        return Err(format!("frame of {payload_len} bytes, more than {max_message}").into());
    }
    if opcode >= 0x8 && (payload_len > 125 || b0 & 0x80 == 0) {
        return Err("a control frame longer than 125 bytes or fragmented".into());
    }
    Ok(Some(FrameHead {
        fin: b0 & 0x80 != 0,
        opcode,
        header_len,
        payload_len,
    }))
}

/// Appends one masked frame (FIN set) to `out`.
fn encode_frame(out: &mut Vec<u8>, opcode: u8, payload: &[u8], mask: [u8; 4]) {
    out.push(0x80 | opcode);
    match payload.len() {
        n @ 0..=125 => out.push(0x80 | n as u8),
        n @ 126..=0xFFFF => {
            out.push(0x80 | 126);
            out.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            out.push(0x80 | 127);
            out.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    out.extend_from_slice(&mask);
    out.extend(payload.iter().zip(mask.iter().cycle()).map(|(b, m)| b ^ m));
}

/// The server's close frame as an error text.
fn close_reason(payload: &[u8]) -> String {
    match payload {
        [a, b, reason @ ..] => format!(
            "closed by the server: {} {}",
            u16::from_be_bytes([*a, *b]),
            String::from_utf8_lossy(reason)
        ),
        _ => "closed by the server".to_owned(),
    }
}

/// Checks a handshake response head: status 101 and the expected accept key.
fn check_response(head: &[u8], accept: &str) -> Result<(), Error> {
    let head = std::str::from_utf8(head).map_err(|_| "handshake response is not text")?;
    let mut lines = head.split("\r\n");
    let status = lines.next().unwrap_or_default();
    if status.split(' ').nth(1) != Some("101") {
        let reason = status.split_once(' ').map_or(status, |(_, rest)| rest);
        return Err(format!("HTTP error: {reason}").into());
    }
    let got = lines.find_map(|line| {
        let (name, value) = line.split_once(':')?;
        name.eq_ignore_ascii_case("sec-websocket-accept")
            .then_some(value.trim())
    });
    if got != Some(accept) {
        return Err(format!("handshake: wrong Sec-WebSocket-Accept {got:?}").into());
    }
    Ok(())
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// A nonzero seed for the masking keys, different for each client.
fn seed() -> u32 {
    use std::hash::{BuildHasher, RandomState};
    (RandomState::new().hash_one(std::time::Instant::now()) as u32) | 1
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_util::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::protocol::frame::coding::{Data, OpCode};
    use tokio_tungstenite::tungstenite::protocol::frame::Frame;
    use tokio_tungstenite::tungstenite::Message;

    #[test]
    fn heads_are_parsed_once_whole() {
        assert_eq!(parse_head(&[0x81], 100).unwrap(), None);
        let head = parse_head(&[0x81, 5, b'h'], 100).unwrap().unwrap();
        assert_eq!(
            head,
            FrameHead {
                fin: true,
                opcode: OP_TEXT,
                header_len: 2,
                payload_len: 5
            }
        );
        assert_eq!(parse_head(&[0x01, 126, 1], 1000).unwrap(), None);
        let head = parse_head(&[0x01, 126, 1, 0], 1000).unwrap().unwrap();
        assert_eq!(
            (head.fin, head.header_len, head.payload_len),
            (false, 4, 256)
        );
        let mut long = vec![0x82, 127];
        long.extend_from_slice(&70_000u64.to_be_bytes());
        let head = parse_head(&long, 100_000).unwrap().unwrap();
        assert_eq!(
            (head.opcode, head.header_len, head.payload_len),
            (OP_BINARY, 10, 70_000)
        );
    }

    #[test]
    fn bad_heads_are_errors() {
        let too_long = parse_head(&[0x81, 126, 1, 0], 100).unwrap_err();
        assert!(too_long.to_string().contains("more than 100"), "{too_long}");
        assert!(
            parse_head(&[0x81, 0x85], 100).is_err(),
            "masked by the server"
        );
        assert!(parse_head(&[0xC1, 1], 100).is_err(), "reserved bit");
        assert!(parse_head(&[0x09, 0], 100).is_err(), "fragmented ping");
        assert!(parse_head(&[0x89, 126, 0, 200], 1000).is_err(), "long ping");
    }

    #[test]
    fn frames_are_masked_with_the_key() {
        let mut out = Vec::new();
        encode_frame(&mut out, OP_TEXT, b"abcde", [1, 2, 3, 4]);
        assert_eq!(
            out,
            [
                0x81,
                0x85,
                1,
                2,
                3,
                4,
                b'a' ^ 1,
                b'b' ^ 2,
                b'c' ^ 3,
                b'd' ^ 4,
                b'e' ^ 1
            ]
        );
        out.clear();
        encode_frame(&mut out, OP_TEXT, &[b'x'; 300], [0; 4]);
        assert_eq!(&out[..4], &[0x81, 0x80 | 126, 1, 44]);
        assert_eq!(out.len(), 4 + 4 + 300);
    }

    #[test]
    fn responses_need_101_and_the_right_accept() {
        let ok = "HTTP/1.1 101 Switching Protocols\r\nsec-websocket-accept: abc\r\n\r\n";
        check_response(ok.as_bytes(), "abc").expect("accepted");
        let wrong = check_response(ok.as_bytes(), "abd").unwrap_err();
        assert!(
            wrong.to_string().contains("Sec-WebSocket-Accept"),
            "{wrong}"
        );
        let refused = "HTTP/1.1 500 Internal Server Error\r\n\r\n";
        let err = check_response(refused.as_bytes(), "abc").unwrap_err();
        assert_eq!(err.to_string(), "HTTP error: 500 Internal Server Error");
    }

    /// Against tungstenite's server side: texts in both directions, a fragmented text with
    /// a ping between its fragments (answered), a binary message (skipped), then a close.
    #[tokio::test]
    async fn talks_to_an_independent_server() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = tokio::spawn(async move {
            let (socket, _) = listener.accept().await.unwrap();
            let mut ws = tokio_tungstenite::accept_async(socket).await.unwrap();
            let first = ws.next().await.unwrap().unwrap();
            let second = ws.next().await.unwrap().unwrap();
            ws.send(Message::text("hello")).await.unwrap();
            ws.send(Message::binary(vec![1, 2, 3])).await.unwrap();
            let text = |s: &str, op, fin| Message::Frame(Frame::message(s.to_owned(), op, fin));
            ws.send(text("frag", OpCode::Data(Data::Text), false))
                .await
                .unwrap();
            ws.send(Message::Ping(b"are you there".to_vec().into()))
                .await
                .unwrap();
            ws.send(text("mented", OpCode::Data(Data::Continue), true))
                .await
                .unwrap();
            ws.send(Message::text("x".repeat(20_000))).await.unwrap();
            let pong = ws.next().await.unwrap().unwrap();
            ws.close(None).await.unwrap();
            (first, second, pong)
        });
        let stream = TcpStream::connect(addr).await.unwrap();
        let mut client = WsClient::connect(stream, addr, "/ws", 1 << 20)
            .await
            .unwrap();
        client.send_texts(&["one", "two"]).await.unwrap();
        assert_eq!(client.next_text().await.unwrap(), "hello");
        assert_eq!(client.next_text().await.unwrap(), "fragmented");
        assert_eq!(client.next_text().await.unwrap(), "x".repeat(20_000));
        let closed = client.next_text().await.unwrap_err();
        assert!(
            closed.to_string().starts_with("closed by the server"),
            "{closed}"
        );
        let (first, second, pong) = server.await.unwrap();
        assert_eq!(first, Message::text("one"));
        assert_eq!(second, Message::text("two"));
        assert_eq!(pong, Message::Pong(b"are you there".to_vec().into()));
    }
}
