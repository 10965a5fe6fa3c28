//! Test harness shared by every test file: a real server with the WebSocket endpoint on
//! 127.0.0.1:0 in a thread of its own, and a `tokio-tungstenite` client that reads with a
//! timeout (never a fixed sleep) and keeps the events it was not asked about for later.
//!
//! The server is either entry point: `WsChat::listen` in actix-web, or `transport_ws::serve`
//! on a bare tokio listener. [`on_both!`] runs a test once on each (the thread-local
//! [`Entry`] tells `TestServer` which to start), so the protocol suite proves both.
//!
//! `raw` is the byte-level client of `wire.rs` and `rfc6455.rs`. Not every test file uses
//! every helper.
#![allow(dead_code)]

pub mod raw;

use std::cell::Cell;
use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::Duration;

use actix_server::ServerHandle;
use actix_web::App;
use chat_core::{Engine, Limits, Rate};
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::{self, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};
use tokio_util::sync::CancellationToken;
use transport_ws::{WsChat, WsConfig};

/// How long any single expectation may wait for the server.
pub const WAIT: Duration = Duration::from_secs(5);

/// Limits for tests: defaults, but rates high enough that no test trips them by accident
/// (every test client comes from 127.0.0.1, so the per-address ones too).
pub fn test_limits() -> Limits {
    {
        let mut limits = Limits::default();
        limits.message_rate = Rate::new(100_000, 100_000.0);
        limits.channel_create_rate = Rate::new(1_000, 1_000.0);
        limits.login_rate_per_address = Rate::new(100_000, 100_000.0);
        limits
    }
}

/// The transport's defaults, but per-address limits no test trips by accident.
pub fn test_config() -> WsConfig {
    let mut config = WsConfig::default();
    config.max_connections_per_address = 100_000;
    config.connect_rate_per_address = Rate::new(100_000, 100_000.0);
    config
}

/// Which entry point the servers of this thread's test use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Entry {
    /// `WsChat::listen` in an actix-web server (with an empty `App`).
    Actix,
    /// `WsChat::serve` on a bare tokio `TcpListener`.
    Serve,
}

thread_local! {
    static ENTRY: Cell<Entry> = const { Cell::new(Entry::Actix) };
}

impl Entry {
    /// Makes this thread's servers use this entry point.
    pub fn set(self) {
        ENTRY.with(|e| e.set(self));
    }

    /// The entry point this thread's servers use.
    pub fn current() -> Entry {
        ENTRY.with(Cell::get)
    }
}

/// Defines each test twice, in a module named after it: `actix` (on `WsChat::listen`)
/// and `serve` (on `transport_ws::serve`'s listener).
#[macro_export]
macro_rules! on_both {
    ($($(#[$attr:meta])* async fn $name:ident() $body:block)*) => {$(
        $(#[$attr])*
        mod $name {
            #[allow(unused_imports)]
            use super::*;

            #[tokio::test]
            async fn actix() {
                $crate::common::Entry::Actix.set();
                $body
            }

            #[tokio::test]
            async fn serve() {
                $crate::common::Entry::Serve.set();
                $body
            }
        }
    )*};
}

/// How the test's server runs, to stop it.
enum Running {
    /// The actix server, stopped through its handle.
    Actix(ServerHandle),
    /// The bare listener, stopped by the shutdown token (its runtime ends with it).
    Serve,
}

/// A running server. Dropping it stops the HTTP server.
/// A tiny real PNG (1x1, transparent), for uploads.
pub const PNG: &[u8] = &[
    0x89, b'P', b'N', b'G', 0x0d, 0x0a, 0x1a, 0x0a, 0, 0, 0, 0x0d, b'I', b'H', b'D', b'R', 0, 0, 0,
    1, 0, 0, 0, 1, 8, 6, 0, 0, 0, 0x1f, 0x15, 0xc4, 0x89, 0, 0, 0, 0x0d, b'I', b'D', b'A', b'T',
    0x78, 0x9c, 0x63, 0, 1, 0, 0, 5, 0, 1, 0x0d, 0x0a, 0x2d, 0xb4, 0, 0, 0, 0, b'I', b'E', b'N',
    b'D', 0xae, 0x42, 0x60, 0x82,
];

pub struct TestServer {
    /// Where it listens.
    pub addr: SocketAddr,
    /// The token passed to [`WsChat::new`].
    pub shutdown: CancellationToken,
    /// The service, to reach its task tracker.
    pub chat: WsChat,
    /// The engine behind it.
    pub engine: Engine,
    running: Running,
}

impl TestServer {
    /// A server with the engine's `limits` and the transport's defaults (same-origin
    /// pages only).
    pub fn start(limits: Limits) -> TestServer {
        TestServer::with_config(limits, test_config())
    }

    /// A server with the engine's `limits` and the transport's `config`.
    ///
    /// Synchronous, so tests of any flavour can call it: the engine is started from a
    /// thread of its own (it needs no runtime; its start only awaits a channel).
    pub fn with_config(limits: Limits, config: WsConfig) -> TestServer {
        TestServer::bound_to("127.0.0.1:0", limits, config)
    }

    /// Like [`TestServer::with_config`], listening on `bind` (`0.0.0.0:0`, say); `addr`
    /// is then the loopback address of the same family with the port it got.
    pub fn bound_to(bind: &str, limits: Limits, config: WsConfig) -> TestServer {
        let engine = start_engine(limits);
        let shutdown = CancellationToken::new();
        let chat = WsChat::new(engine.clone(), config, shutdown.clone()).expect("a valid config");
        let listener = std::net::TcpListener::bind(bind).expect("bind");
        let mut addr = listener.local_addr().expect("local address");
        if addr.ip().is_unspecified() {
            let loopback = match addr {
                SocketAddr::V4(_) => std::net::Ipv4Addr::LOCALHOST.into(),
                SocketAddr::V6(_) => std::net::Ipv6Addr::LOCALHOST.into(),
            };
            addr.set_ip(loopback);
        }
        let running = match Entry::current() {
            Entry::Actix => Running::Actix(run_actix(chat.clone(), listener)),
            Entry::Serve => run_serve(chat.clone(), listener),
        };
        TestServer {
            addr,
            shutdown,
            chat,
            engine,
            running,
        }
    }

    /// The WebSocket URL.
    pub fn url(&self) -> String {
        format!("ws://{}/ws", self.addr)
    }

    /// Sends `request` as raw bytes and returns everything the server answers until it
    /// closes the connection.
    pub async fn http_exchange(&self, request: &str) -> String {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};

        let mut stream = TcpStream::connect(self.addr).await.expect("connect");
        stream.write_all(request.as_bytes()).await.expect("write");
        let mut response = Vec::new();
        tokio::time::timeout(WAIT, stream.read_to_end(&mut response))
            .await
            .expect("answered and closed in time")
            .expect("read");
        String::from_utf8_lossy(&response).into_owned()
    }

    /// A new client that has read the `hello` frame.
    pub async fn client(&self) -> Client {
        Client::connect(&self.url(), None)
            .await
            .expect("upgrade accepted")
    }

    /// A new client logged in as `name`.
    pub async fn user(&self, name: &str) -> Client {
        let mut client = self.client().await;
        client.login(name).await;
        client
    }
}

/// Serves `chat` on `listener` with `WsChat::listen` and an empty `App`, in an actix
/// system in a thread of its own (two workers).
fn run_actix(chat: WsChat, listener: std::net::TcpListener) -> ServerHandle {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        actix_web::rt::System::new().block_on(async move {
            let builder = actix_server::Server::build()
                .workers(2)
                .disable_signals()
                .shutdown_timeout(1);
            let server = chat
                .listen(builder, listener, App::new)
                .expect("listen")
                .run();
            tx.send(server.handle()).expect("test is waiting");
            let _ = server.await;
        })
    });
    rx.recv().expect("server thread started")
}

/// Serves `chat` on `listener` with `WsChat::serve`, on a runtime in a thread of its own
/// (two workers, like the actix server), until the shutdown token fires.
fn run_serve(chat: WsChat, listener: std::net::TcpListener) -> Running {
    listener.set_nonblocking(true).expect("nonblocking");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    std::thread::spawn(move || {
        runtime.block_on(async move {
            let listener = tokio::net::TcpListener::from_std(listener).expect("listener");
            chat.serve(listener).await;
            // Like the actix server's stop: the sockets get their close, within a bound.
            let tasks = chat.tasks();
            tasks.close();
            let _ = tokio::time::timeout(Duration::from_secs(3), tasks.wait()).await;
        });
    });
    Running::Serve
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.shutdown.cancel();
        if let Running::Actix(handle) = &self.running {
            // `stop` sends its command at once; its future only reports completion.
            drop(handle.stop(false));
        }
    }
}

/// What the server sent, as a test sees it.
#[derive(Debug)]
pub enum Incoming {
    /// A text frame, parsed.
    Json(Value),
    /// A close frame.
    Close(Option<CloseFrame>),
    /// The connection ended (or failed) without a close frame.
    Ended(String),
}

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// A WebSocket client speaking the chat protocol.
pub struct Client {
    ws: Ws,
    /// Frames read while waiting for something else, oldest first.
    pending: VecDeque<Value>,
    next_id: u64,
    /// The `result` of this client's login.
    pub login: Value,
    /// The `hello` frame the server opened with.
    pub hello: Value,
}

impl Client {
    /// Connects (with an `Origin` header when given) and reads the `hello` frame.
    pub async fn connect(url: &str, origin: Option<&str>) -> Result<Client, tungstenite::Error> {
        let headers: &[(&'static str, &str)] = match origin {
            Some(origin) => &[("Origin", origin)],
            None => &[],
        };
        Client::connect_with(url, headers).await
    }

    /// Connects with these extra request headers and reads the `hello` frame.
    pub async fn connect_with(
        url: &str,
        headers: &[(&'static str, &str)],
    ) -> Result<Client, tungstenite::Error> {
        let mut request = url.into_client_request()?;
        for (name, value) in headers {
            request
                .headers_mut()
                .append(*name, HeaderValue::from_str(value).expect("valid header"));
        }
        let (ws, _) = tokio::time::timeout(WAIT, tokio_tungstenite::connect_async(request))
            .await
            .expect("connect in time")?;
        Ok(Client::upgraded(ws).await)
    }

    /// Connects over a socket whose receive buffer is `receive_buffer` bytes (a client
    /// that falls behind soon fills it) and reads the `hello` frame.
    pub async fn with_receive_buffer(server: &TestServer, receive_buffer: u32) -> Client {
        let socket = tokio::net::TcpSocket::new_v4().expect("socket");
        socket
            .set_recv_buffer_size(receive_buffer)
            .expect("buffer size");
        let stream = socket.connect(server.addr).await.expect("connect");
        let (ws, _) = tokio::time::timeout(
            WAIT,
            tokio_tungstenite::client_async(server.url(), MaybeTlsStream::Plain(stream)),
        )
        .await
        .expect("upgraded in time")
        .expect("upgrade accepted");
        Client::upgraded(ws).await
    }

    /// A client on `ws`, once it has read the `hello` frame.
    async fn upgraded(ws: Ws) -> Client {
        let mut client = Client {
            ws,
            pending: VecDeque::new(),
            next_id: 1,
            login: Value::Null,
            hello: Value::Null,
        };
        let hello = client.frame().await;
        assert_eq!(hello["type"], "hello", "first frame: {hello}");
        assert_eq!(hello["protocol"], transport_ws::protocol::PROTOCOL_VERSION);
        client.hello = hello;
        client
    }

    /// Sends a WebSocket message as is.
    pub async fn send(&mut self, message: Message) {
        self.ws.send(message).await.expect("send");
    }

    /// Sends one JSON text frame.
    pub async fn send_json(&mut self, value: &Value) {
        self.send(Message::text(value.to_string())).await;
    }

    /// The next thing the server sends, skipping pings and pongs.
    pub async fn incoming(&mut self) -> Incoming {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let next = tokio::time::timeout_at(deadline, self.ws.next())
                .await
                .expect("the server sent nothing in time");
            return match next {
                Some(Ok(Message::Text(text))) => {
                    Incoming::Json(serde_json::from_str(&text).expect("server sends JSON"))
                }
                Some(Ok(Message::Close(frame))) => Incoming::Close(frame),
                Some(Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_))) => continue,
                Some(Ok(Message::Binary(_))) => panic!("the server sent a binary frame"),
                Some(Err(e)) => Incoming::Ended(e.to_string()),
                None => Incoming::Ended("stream ended".into()),
            };
        }
    }

    /// The next WebSocket message as is (pings included), or `None` when the stream ended.
    pub async fn raw(&mut self) -> Option<Result<Message, tungstenite::Error>> {
        tokio::time::timeout(WAIT, self.ws.next())
            .await
            .expect("the server sent nothing in time")
    }

    /// Reads until the server hangs up: returns the frames read and the close frame, or
    /// `None` when the connection ended without one.
    pub async fn until_hangup(&mut self) -> (Vec<Value>, Option<CloseFrame>) {
        let mut frames: Vec<Value> = self.pending.drain(..).collect();
        for _ in 0..1_000_000 {
            match self.incoming().await {
                Incoming::Json(frame) => frames.push(frame),
                Incoming::Close(close) => return (frames, close),
                Incoming::Ended(_) => return (frames, None),
            }
        }
        panic!("the server never hung up");
    }

    /// The next frame: an earlier buffered one, or a new one. Panics on a close.
    pub async fn frame(&mut self) -> Value {
        if let Some(frame) = self.pending.pop_front() {
            return frame;
        }
        match self.incoming().await {
            Incoming::Json(frame) => frame,
            other => panic!("expected a frame, got {other:?}"),
        }
    }

    /// Sends `request` with a fresh `id` and returns the reply (`ok` or `error`) that
    /// echoes it; events read meanwhile are kept for [`Client::event`].
    pub async fn request(&mut self, mut request: Value) -> Value {
        let id = self.next_id;
        self.next_id += 1;
        request["id"] = json!(id);
        self.send_json(&request).await;
        self.reply_to(&json!(id)).await
    }

    /// Waits for the reply echoing `id`, buffering everything else.
    pub async fn reply_to(&mut self, id: &Value) -> Value {
        for _ in 0..10_000 {
            let frame = match self.incoming().await {
                Incoming::Json(frame) => frame,
                other => panic!("waiting for reply {id}, got {other:?}"),
            };
            let is_reply = matches!(frame["type"].as_str(), Some("ok" | "error"));
            if is_reply && &frame["id"] == id {
                return frame;
            }
            self.pending.push_back(frame);
        }
        panic!("no reply to {id}");
    }

    /// Sends `request` and returns its `result`, asserting it succeeded.
    pub async fn ok(&mut self, request: Value) -> Value {
        let reply = self.request(request.clone()).await;
        assert_eq!(reply["type"], "ok", "{request} got {reply}");
        reply["result"].clone()
    }

    /// Sends `request` and returns the error code, asserting it failed.
    pub async fn error(&mut self, request: Value) -> String {
        let reply = self.request(request.clone()).await;
        assert_eq!(reply["type"], "error", "{request} got {reply}");
        assert!(reply["message"].as_str().is_some_and(|m| !m.is_empty()));
        reply["code"].as_str().expect("code is a string").to_owned()
    }

    /// Logs in with a display name.
    pub async fn login(&mut self, name: &str) -> Value {
        self.login = self.ok(json!({"type": "login", "name": name})).await;
        self.login.clone()
    }

    /// Logs in with a resume token.
    pub async fn resume(&mut self, token: &str) -> Value {
        self.login = self.ok(json!({"type": "login", "token": token})).await;
        self.login.clone()
    }

    /// The next `ok` or `error` frame, whatever its `id`; events read meanwhile are kept.
    pub async fn next_reply(&mut self) -> Value {
        for _ in 0..10_000 {
            match self.incoming().await {
                Incoming::Json(frame) if matches!(frame["type"].as_str(), Some("ok" | "error")) => {
                    return frame
                }
                Incoming::Json(frame) => self.pending.push_back(frame),
                other => panic!("waiting for a reply, got {other:?}"),
            }
        }
        panic!("no reply");
    }

    /// This client's resume token.
    pub fn token(&self) -> String {
        self.login["token"].as_str().expect("logged in").to_owned()
    }

    /// This client's user id.
    pub fn user_id(&self) -> u64 {
        self.login["user"]["id"].as_u64().expect("logged in")
    }

    /// The first frame (buffered or new) that `matches`; frames that don't are kept.
    pub async fn event(&mut self, matches: impl Fn(&Value) -> bool) -> Value {
        if let Some(at) = self.pending.iter().position(&matches) {
            return self.pending.remove(at).expect("position is valid");
        }
        for _ in 0..10_000 {
            match self.incoming().await {
                Incoming::Json(frame) if matches(&frame) => return frame,
                Incoming::Json(frame) => self.pending.push_back(frame),
                other => panic!("waiting for an event, got {other:?}"),
            }
        }
        panic!("no matching event");
    }

    /// Every frame buffered or received up to and including the first that `matches`.
    pub async fn frames_until(&mut self, matches: impl Fn(&Value) -> bool) -> Vec<Value> {
        let mut seen = Vec::new();
        for _ in 0..10_000 {
            let frame = self.frame().await;
            let done = matches(&frame);
            seen.push(frame);
            if done {
                return seen;
            }
        }
        panic!("no matching frame");
    }

    /// Reads until the close frame (other frames are collected) and returns both.
    pub async fn close_frame(&mut self) -> (Vec<Value>, Option<CloseFrame>) {
        let mut frames: Vec<Value> = self.pending.drain(..).collect();
        for _ in 0..100_000 {
            match self.incoming().await {
                Incoming::Json(frame) => frames.push(frame),
                Incoming::Close(close) => return (frames, close),
                Incoming::Ended(why) => panic!("connection ended without a close frame: {why}"),
            }
        }
        panic!("no close frame");
    }
}

/// A message event in `room` with this text.
pub fn is_message(room: &str, text: &str) -> impl Fn(&Value) -> bool {
    let (room, text) = (room.to_owned(), text.to_owned());
    move |f| f["type"] == "message" && f["room"] == room && f["message"]["text"] == text
}

/// A `presence` frame whose batch holds `name`'s `change` (`joined`, `left`, ...).
pub fn is_presence(change: &str, name: &str) -> impl Fn(&Value) -> bool {
    let (change, name) = (change.to_owned(), name.to_owned());
    move |f| {
        f["type"] == "presence"
            && presence_changes(f)
                .iter()
                .any(|(c, n)| *c == change && *n == name)
    }
}

/// The `(change, name)` pairs of a `presence` frame, in order; none for other frames.
pub fn presence_changes(frame: &Value) -> Vec<(String, String)> {
    if frame["type"] != "presence" {
        return Vec::new();
    }
    frame["changes"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|c| {
            Some((
                c["change"].as_str()?.to_owned(),
                c["user"]["name"].as_str()?.to_owned(),
            ))
        })
        .collect()
}

/// Starts an engine with `limits` from any context, async or not.
pub fn start_engine(limits: Limits) -> Engine {
    std::thread::spawn(move || {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("a runtime to start the engine from")
            .block_on(Engine::builder().limits(limits).start())
    })
    .join()
    .expect("the engine's starter thread")
    .expect("engine starts")
}
