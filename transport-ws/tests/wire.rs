//! The WebSocket wire itself, spoken byte by byte over a plain TCP socket: what a
//! well-behaved client library never sends (frames in the upgrade's packet, lying length
//! headers, broken UTF-8, interleaved fragments) and so what `ws.rs` cannot test.

mod common;

use common::{test_limits, TestServer, WAIT};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const TEXT: u8 = 0x1;
const BINARY: u8 = 0x2;
const CONTINUATION: u8 = 0x0;
const CLOSE: u8 = 0x8;
const MASK: [u8; 4] = [0x37, 0xfa, 0x21, 0x3d];

/// A client frame: masked, as RFC 6455 requires of clients.
fn frame(opcode: u8, fin: bool, payload: &[u8]) -> Vec<u8> {
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

fn text(json: &Value) -> Vec<u8> {
    frame(TEXT, true, json.to_string().as_bytes())
}

const UPGRADE: &str = "GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n\
    Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
    Sec-WebSocket-Version: 13\r\n\r\n";

/// A raw connection to the server.
struct Raw {
    stream: TcpStream,
    /// Read and not parsed yet.
    buf: Vec<u8>,
}

/// A frame from the server.
#[derive(Debug)]
enum Server {
    Text(Value),
    Close(u16),
    Other(u8),
}

impl Raw {
    /// Sends the upgrade request followed, in the same write, by `then`; returns once the
    /// `101` head is read (anything after it is kept for [`Raw::next`]).
    async fn upgrade(server: &TestServer, then: &[u8]) -> Raw {
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
            raw.fill().await;
        };
        assert!(head.starts_with("HTTP/1.1 101"), "{head}");
        raw
    }

    async fn fill(&mut self) {
        let mut chunk = [0u8; 4096];
        let n = tokio::time::timeout(WAIT, self.stream.read(&mut chunk))
            .await
            .expect("the server sent nothing in time")
            .expect("read");
        assert!(n > 0, "the server closed the connection");
        self.buf.extend_from_slice(&chunk[..n]);
    }

    async fn send(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).await.expect("write");
    }

    /// The next frame from the server (which never masks nor fragments).
    async fn next(&mut self) -> Server {
        loop {
            if let Some((opcode, payload, used)) = parse(&self.buf) {
                self.buf.drain(..used);
                return match opcode {
                    TEXT => Server::Text(serde_json::from_slice(&payload).expect("JSON")),
                    CLOSE => Server::Close(u16::from_be_bytes([payload[0], payload[1]])),
                    other => Server::Other(other),
                };
            }
            self.fill().await;
        }
    }

    /// The next text frame, skipping pings.
    async fn json(&mut self) -> Value {
        loop {
            match self.next().await {
                Server::Text(value) => return value,
                Server::Other(_) => continue,
                Server::Close(code) => panic!("closed with {code}"),
            }
        }
    }

    /// The close code the server ends with, skipping anything before it.
    async fn close_code(&mut self) -> u16 {
        loop {
            if let Server::Close(code) = self.next().await {
                return code;
            }
        }
    }
}

/// One server frame at the start of `buf`: opcode, payload and bytes used.
fn parse(buf: &[u8]) -> Option<(u8, Vec<u8>, usize)> {
    let opcode = buf.first()? & 0x0f;
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
    let payload = buf.get(start..start + len)?.to_vec();
    Some((opcode, payload, start + len))
}

#[tokio::test]
async fn frames_sent_with_the_upgrade_request_are_not_lost() {
    let server = TestServer::start(test_limits());
    // A client may pipeline its first frames behind the request, before the 101.
    let mut first = text(&json!({"type": "login", "id": 1, "name": "eager"}));
    first.extend(text(&json!({"type": "list_channels", "id": 2})));
    let mut raw = Raw::upgrade(&server, &first).await;
    assert_eq!(raw.json().await["type"], "hello");
    let login = raw.json().await;
    assert_eq!(
        (login["id"].clone(), login["type"].clone()),
        (json!(1), json!("ok"))
    );
    let list = raw.json().await;
    assert_eq!(
        (list["id"].clone(), list["type"].clone()),
        (json!(2), json!("ok"))
    );
}

#[tokio::test]
async fn a_frame_announcing_more_than_the_limit_is_refused_before_its_payload() {
    let server = TestServer::start(test_limits());
    let mut raw = Raw::upgrade(&server, &[]).await;
    assert_eq!(raw.json().await["type"], "hello");
    // Only the header of a 1 TiB frame: the server must not wait for (or buffer) it.
    let mut header = vec![0x80 | TEXT, 0x80 | 127];
    header.extend_from_slice(&(1u64 << 40).to_be_bytes());
    header.extend_from_slice(&MASK);
    raw.send(&header).await;
    assert_eq!(raw.close_code().await, 1009);

    // Others are not affected.
    server
        .user("bob")
        .await
        .ok(json!({"type": "list_channels"}))
        .await;
}

#[tokio::test]
async fn text_that_is_not_utf8_closes_with_1007() {
    let server = TestServer::start(test_limits());
    for bytes in [
        frame(TEXT, true, &[b'{', 0xff, b'}']),
        [
            frame(TEXT, false, &[b'"', 0xe2, 0x82]),
            frame(CONTINUATION, true, b"\""),
        ]
        .concat(),
    ] {
        let mut raw = Raw::upgrade(&server, &[]).await;
        assert_eq!(raw.json().await["type"], "hello");
        raw.send(&bytes).await;
        assert_eq!(raw.close_code().await, 1007);
    }
}

#[tokio::test]
async fn fragmented_messages_are_reassembled_and_interleaving_them_is_refused() {
    let server = TestServer::start(test_limits());
    let mut raw = Raw::upgrade(&server, &[]).await;
    assert_eq!(raw.json().await["type"], "hello");
    let login = json!({"type": "login", "id": "split", "name": "fragments"}).to_string();
    let (a, rest) = login.as_bytes().split_at(10);
    let (b, c) = rest.split_at(7);
    // A ping between the pieces is allowed (control frames may interleave).
    let ping = frame(0x9, true, b"hi");
    raw.send(
        &[
            frame(TEXT, false, a),
            ping,
            frame(CONTINUATION, false, b),
            frame(CONTINUATION, true, c),
        ]
        .concat(),
    )
    .await;
    let pong = raw.next().await;
    assert!(matches!(pong, Server::Other(0xA)), "{pong:?}");
    let reply = raw.json().await;
    assert_eq!(
        (reply["id"].clone(), reply["type"].clone()),
        (json!("split"), json!("ok"))
    );

    // A new data frame before the fragmented message ends breaks the protocol: 1002.
    raw.send(&[frame(TEXT, false, b"{\"type\":"), frame(BINARY, true, b"x")].concat())
        .await;
    assert_eq!(raw.close_code().await, 1002);
}

#[tokio::test]
async fn upgrades_elsewhere_than_ws_are_not_found() {
    let server = TestServer::start(test_limits());
    let request = UPGRADE.replacen("GET /ws ", "GET /chat ", 1);
    let response = server.http_exchange(&request).await;
    assert!(response.starts_with("HTTP/1.1 404"), "{response}");
}
