//! A raw WebSocket client for the tests that speak the wire byte by byte over a plain TCP
//! socket (`wire.rs`, `rfc6455.rs`): it sends whatever bytes a test builds, including
//! frames no client library would send, and reads the server's frames as they are.

use std::time::Duration;

use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::{TestServer, WAIT};

pub const CONTINUATION: u8 = 0x0;
pub const TEXT: u8 = 0x1;
pub const BINARY: u8 = 0x2;
pub const CLOSE: u8 = 0x8;
pub const PING: u8 = 0x9;
pub const PONG: u8 = 0xA;
pub const MASK: [u8; 4] = [0x37, 0xfa, 0x21, 0x3d];

/// A client frame: masked, as RFC 6455 requires of clients.
pub fn frame(opcode: u8, fin: bool, payload: &[u8]) -> Vec<u8> {
    let mut out = vec![if fin { 0x80 | opcode } else { opcode }];
    match payload.len() {
        n if n < 126 => out.push(0x80 | n as u8),
        n if n <= usize::from(u16::MAX) => {
            out.push(0x80 | 126);
            out.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            out.push(0x80 | 127);
            out.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    out.extend_from_slice(&MASK);
    out.extend(payload.iter().enumerate().map(|(i, b)| b ^ MASK[i % 4]));
    out
}

/// A whole text frame carrying `json`.
pub fn text(json: &Value) -> Vec<u8> {
    frame(TEXT, true, json.to_string().as_bytes())
}

/// A close frame with `code` and `reason`.
pub fn close(code: u16, reason: &[u8]) -> Vec<u8> {
    frame(CLOSE, true, &[&code.to_be_bytes()[..], reason].concat())
}

pub const UPGRADE: &str = "GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n\
    Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
    Sec-WebSocket-Version: 13\r\n\r\n";

/// A frame from the server.
#[derive(Debug, PartialEq)]
pub struct Frame {
    pub fin: bool,
    pub opcode: u8,
    pub payload: Vec<u8>,
}

impl Frame {
    /// The status code of a close frame that has one.
    pub fn close_code(&self) -> Option<u16> {
        match (self.opcode, &self.payload[..]) {
            (CLOSE, [a, b, ..]) => Some(u16::from_be_bytes([*a, *b])),
            _ => None,
        }
    }
}

/// A raw connection to the server.
pub struct Raw {
    stream: TcpStream,
    /// Read and not parsed yet.
    buf: Vec<u8>,
}

impl Raw {
    /// Sends the upgrade request followed, in the same write, by `then`; returns once the
    /// `101` head is read (anything after it is kept for [`Raw::next`]).
    pub async fn upgrade(server: &TestServer, then: &[u8]) -> Raw {
        let mut stream = TcpStream::connect(server.addr).await.expect("connect");
        let mut request = UPGRADE.as_bytes().to_vec();
        request.extend_from_slice(then);
        stream.write_all(&request).await.expect("write");
        let mut raw = Raw {
            stream,
            buf: Vec::new(),
        };
        let head = loop {
            if let Some(end) = raw.buf.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&raw.buf[..end]).into_owned();
                raw.buf.drain(..end + 4);
                break head;
            }
            assert!(raw.fill().await, "the server closed the connection");
        };
        assert!(head.starts_with("HTTP/1.1 101"), "{head}");
        raw
    }

    /// An upgraded connection that has read the server's `hello`.
    pub async fn hello(server: &TestServer) -> Raw {
        let mut raw = Raw::upgrade(server, &[]).await;
        assert_eq!(raw.json().await["type"], "hello");
        raw
    }

    /// Reads what the server sent; false at the end of its stream.
    async fn fill(&mut self) -> bool {
        let mut chunk = [0u8; 4096];
        let n = tokio::time::timeout(WAIT, self.stream.read(&mut chunk))
            .await
            .expect("the server sent nothing in time")
            .expect("read");
        self.buf.extend_from_slice(&chunk[..n]);
        n > 0
    }

    pub async fn send(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).await.expect("write");
    }

    /// Sends `bytes` one at a time, each in its own segment, a little apart: the server
    /// must put a frame together from many reads (the pause only paces the writes).
    pub async fn send_bytewise(&mut self, bytes: &[u8]) {
        self.stream.set_nodelay(true).expect("nodelay");
        for byte in bytes {
            self.send(&[*byte]).await;
            self.stream.flush().await.expect("flush");
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }

    /// The next frame from the server (which never masks).
    pub async fn next(&mut self) -> Frame {
        loop {
            if let Some((frame, used)) = parse(&self.buf) {
                self.buf.drain(..used);
                return frame;
            }
            assert!(self.fill().await, "the server closed the connection");
        }
    }

    /// The next text frame, skipping pings and pongs.
    pub async fn json(&mut self) -> Value {
        loop {
            let frame = self.next().await;
            match frame.opcode {
                TEXT => return serde_json::from_slice(&frame.payload).expect("JSON"),
                PING | PONG => continue,
                _ => panic!("expected a text frame, got {frame:?}"),
            }
        }
    }

    /// The close code the server ends with, skipping anything before it.
    pub async fn close_code(&mut self) -> u16 {
        loop {
            let frame = self.next().await;
            if frame.opcode == CLOSE {
                return frame.close_code().expect("a close code");
            }
        }
    }

    /// The close frame that must come next (only the server's own heartbeat pings may come
    /// first), once the server has also ended its stream with nothing after it.
    pub async fn closing(&mut self) -> Frame {
        let close = loop {
            let frame = self.next().await;
            match frame.opcode {
                PING => continue,
                CLOSE => break frame,
                _ => panic!("expected a close frame, got {frame:?}"),
            }
        };
        assert!(self.buf.is_empty(), "sent after its close: {:?}", self.buf);
        assert!(!self.fill().await, "sent after its close: {:?}", self.buf);
        close
    }

    /// The close code of the close frame that must come next, as [`Raw::closing`].
    pub async fn fails_with(&mut self) -> Option<u16> {
        self.closing().await.close_code()
    }
}

/// One server frame at the start of `buf`, and the bytes it used.
fn parse(buf: &[u8]) -> Option<(Frame, usize)> {
    let first = *buf.first()?;
    assert_eq!(buf.get(1)? & 0x80, 0, "the server masked a frame");
    let (len, start) = match buf.get(1)? & 0x7f {
        126 => (
            usize::from(u16::from_be_bytes([*buf.get(2)?, *buf.get(3)?])),
            4,
        ),
        127 => (
            u64::from_be_bytes(buf.get(2..10)?.try_into().ok()?) as usize,
            10,
        ),
        n => (usize::from(n), 2),
    };
    let frame = Frame {
        fin: first & 0x80 != 0,
        opcode: first & 0x0f,
        payload: buf.get(start..start + len)?.to_vec(),
    };
    Some((frame, start + len))
}
