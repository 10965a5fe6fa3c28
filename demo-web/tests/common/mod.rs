//! Test helpers shared by `e2e.rs`, `multinode.rs` and the `browser_*.rs` stories: the
//! real `demo-web` binary as a child process on port 0 (killed on drop, panics included), a
//! small WebSocket client of the JSON protocol, a line-protocol client (also used for raw
//! IRC lines), and waiting with a deadline instead of sleeping. `browser` and `page` drive headless Chromium.
//!
//! Each test file compiles its own copy and uses a different subset, hence the
//! `dead_code` allowance below.

#![allow(dead_code)]

pub mod axe;
pub mod browser;
pub mod http;
pub mod page;
pub mod redis;

use std::collections::VecDeque;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// A tiny real PNG (1x1, transparent), for uploads.
pub const PNG: &[u8] = &[
    0x89, b'P', b'N', b'G', 0x0d, 0x0a, 0x1a, 0x0a, 0, 0, 0, 0x0d, b'I', b'H', b'D', b'R', 0, 0, 0,
    1, 0, 0, 0, 1, 8, 6, 0, 0, 0, 0x1f, 0x15, 0xc4, 0x89, 0, 0, 0, 0x0d, b'I', b'D', b'A', b'T',
    0x78, 0x9c, 0x63, 0, 1, 0, 0, 5, 0, 1, 0x0d, 0x0a, 0x2d, 0xb4, 0, 0, 0, 0, b'I', b'E', b'N',
    b'D', 0xae, 0x42, 0x60, 0x82,
];

/// The error type of test helpers: a message saying what was expected.
pub type TestResult<T = ()> = Result<T, Box<dyn std::error::Error + Send + Sync>>;

/// A name unique within this test process (for temp dirs and user names).
pub fn unique(prefix: &str) -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    format!(
        "{prefix}{}x{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// A directory for this test run's files (server logs, screenshots, browser profiles).
pub fn scratch_dir(name: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(unique(name));
    // unwrap-free: a failure here shows up as the first use of the path failing.
    let _ = std::fs::create_dir_all(&dir);
    dir
}

/// A running `demo-web` process. Dropping it kills the process.
pub struct Server {
    child: Child,
    /// The web address (front end, `/ws`, `/healthz`).
    pub http: SocketAddr,
    /// The TCP line-protocol address, when enabled.
    pub tcp: Option<SocketAddr>,
    /// The IRC address, when enabled.
    pub irc: Option<SocketAddr>,
    /// The metrics listener's address, with `--metrics ADDR`.
    pub metrics: Option<SocketAddr>,
    /// Where the server's log (its standard error) goes.
    pub log: PathBuf,
    /// Where it said its data is (the rest of its `data in ...` line).
    pub data: String,
}

impl Server {
    /// Starts the binary with `--listen 127.0.0.1:0 --tcp 127.0.0.1:0 --irc 127.0.0.1:0`
    /// plus `args` (which may set `--tcp` or `--irc` otherwise), and waits until it prints
    /// its addresses. In memory (`--data-dir none`) unless `args` choose a store: many
    /// tests start servers at once, and none wants another's data.
    pub fn start(args: &[&str]) -> TestResult<Server> {
        Self::start_on("127.0.0.1:0", args)
    }

    /// Like [`Server::start`], keeping its data in `dir` (`--data-dir`).
    pub fn start_with_data(dir: &std::path::Path, args: &[&str]) -> TestResult<Server> {
        let dir = dir.to_str().ok_or("a data dir that is not UTF-8")?;
        let args: Vec<&str> = ["--data-dir", dir]
            .into_iter()
            .chain(args.iter().copied())
            .collect();
        Self::start_on("127.0.0.1:0", &args)
    }

    /// Like [`Server::start`] with the web listener on `listen`.
    pub fn start_on(listen: &str, args: &[&str]) -> TestResult<Server> {
        let log = scratch_dir("server").join("server.log");
        let mut command = Command::new(env!("CARGO_BIN_EXE_demo-web"));
        command.args(["--listen", listen]);
        if !args.contains(&"--tcp") {
            command.args(["--tcp", "127.0.0.1:0"]);
        }
        let chooses_store = ["--data-dir", "--redis", "--in-memory"]
            .iter()
            .any(|flag| args.contains(flag));
        if !chooses_store {
            command.args(["--data-dir", "none"]);
        }
        // Never the default 6667, which another server (or test) may hold.
        if !args.contains(&"--irc") {
            command.args(["--irc", "127.0.0.1:0"]);
        }
        let mut child = command
            .args(args)
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&log)?)
            .spawn()?;
        let stdout = child.stdout.take().ok_or("no stdout")?;
        let mut server = Server {
            child,
            http: "0.0.0.0:0".parse()?,
            tcp: None,
            irc: None,
            metrics: None,
            log,
            data: String::new(),
        };
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = rx.recv_timeout(left).map_err(|_| {
                format!(
                    "demo-web printed no address line; log: {}",
                    server.log.display()
                )
            })?;
            if let Some(data) = line.strip_prefix("data in ") {
                server.data = data.trim().to_owned();
            } else if let Some(addr) = line.strip_prefix("tcp listening on ") {
                server.tcp = Some(addr.trim().parse()?);
            } else if let Some(addr) = line.strip_prefix("irc listening on ") {
                server.irc = Some(addr.trim().parse()?);
            } else if let Some(addr) = line.strip_prefix("metrics listening on http://") {
                server.metrics = Some(addr.trim().parse()?);
            } else if let Some(addr) = line.strip_prefix("listening on http://") {
                server.http = addr.trim().parse()?;
                break;
            }
        }
        println!(
            "demo-web at http://{} (log: {})",
            server.http,
            server.log.display()
        );
        Ok(server)
    }

    /// The page's URL.
    pub fn url(&self) -> String {
        format!("http://{}/", self.http)
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends SIGTERM (through `kill`, the way an init system would).
    pub fn terminate(&self) -> TestResult {
        let status = Command::new("kill")
            .args(["-TERM", &self.pid().to_string()])
            .status()?;
        if !status.success() {
            return Err("kill -TERM failed".into());
        }
        Ok(())
    }

    /// Kills the process with SIGKILL (`kill -9`): no chance to write anything more.
    pub fn kill_hard(&mut self) -> TestResult<ExitStatus> {
        self.child.kill()?;
        Ok(self.child.wait()?)
    }

    /// Waits for the process to exit, at most `timeout`.
    pub fn wait_exit(&mut self, timeout: Duration) -> TestResult<ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait()? {
                return Ok(status);
            }
            if Instant::now() >= deadline {
                return Err(format!("demo-web still running after {timeout:?}").into());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs `check` until it returns `Some`, at most `timeout`; polls every 25 ms.
pub async fn eventually<T, F, Fut>(what: &str, timeout: Duration, mut check: F) -> TestResult<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = TestResult<Option<T>>>,
{
    let deadline = Instant::now() + timeout;
    let mut last_error = None;
    loop {
        match check().await {
            Ok(Some(found)) => return Ok(found),
            Ok(None) => {}
            Err(e) => last_error = Some(e.to_string()),
        }
        if Instant::now() >= deadline {
            let detail = last_error
                .map(|e| format!(" (last error: {e})"))
                .unwrap_or_default();
            return Err(format!("timed out after {timeout:?} waiting for {what}{detail}").into());
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// A WebSocket client of the JSON protocol, for tests: requests by id, events buffered.
pub struct WsClient {
    stream: WebSocketStream<MaybeTlsStream<TcpStream>>,
    /// The server's `hello` frame.
    pub hello: Value,
    next_id: u64,
    /// Frames that were not the reply being waited for, in arrival order.
    pub events: VecDeque<Value>,
}

/// How long a test waits for any one frame.
pub const FRAME_TIMEOUT: Duration = Duration::from_secs(10);

impl WsClient {
    /// Connects to `/ws` and checks the `hello` frame.
    pub async fn connect(http: SocketAddr) -> TestResult<WsClient> {
        let (stream, _) = tokio_tungstenite::connect_async(format!("ws://{http}/ws")).await?;
        let mut client = WsClient {
            stream,
            hello: Value::Null,
            next_id: 1,
            events: VecDeque::new(),
        };
        let hello = client.next_frame().await?;
        if hello["type"] != "hello" || hello["protocol"] != 4 {
            return Err(format!("expected hello, got {hello}").into());
        }
        client.hello = hello;
        Ok(client)
    }

    /// Connects and logs in with a display name.
    pub async fn login(http: SocketAddr, name: &str) -> TestResult<WsClient> {
        let mut client = WsClient::connect(http).await?;
        client.ok(json!({"type": "login", "name": name})).await?;
        Ok(client)
    }

    /// The next frame of any kind (text frames only; a close is an error).
    pub async fn next_frame(&mut self) -> TestResult<Value> {
        loop {
            let frame = tokio::time::timeout(FRAME_TIMEOUT, self.stream.next())
                .await
                .map_err(|_| "no frame within the timeout")?
                .ok_or("the socket ended")??;
            match frame {
                Message::Text(text) => return Ok(serde_json::from_str(text.as_str())?),
                Message::Close(close) => return Err(format!("closed: {close:?}").into()),
                _ => continue,
            }
        }
    }

    /// Sends a request (an `id` is added) and returns its reply, `ok` or `error`.
    pub async fn request(&mut self, mut request: Value) -> TestResult<Value> {
        let id = self.next_id;
        self.next_id += 1;
        request["id"] = json!(id);
        self.stream.send(Message::text(request.to_string())).await?;
        loop {
            let frame = self.next_frame().await?;
            if frame["id"] == json!(id) && (frame["type"] == "ok" || frame["type"] == "error") {
                return Ok(frame);
            }
            self.events.push_back(frame);
        }
    }

    /// Sends a request and returns its `result`, failing on an `error` reply.
    pub async fn ok(&mut self, request: Value) -> TestResult<Value> {
        let reply = self.request(request.clone()).await?;
        if reply["type"] != "ok" {
            return Err(format!("{request} was refused: {reply}").into());
        }
        Ok(reply["result"].clone())
    }

    /// The first event (buffered or new) for which `pred` holds; others stay buffered.
    pub async fn event(&mut self, pred: impl Fn(&Value) -> bool) -> TestResult<Value> {
        if let Some(pos) = self.events.iter().position(&pred) {
            return Ok(self.events.remove(pos).ok_or("index")?);
        }
        loop {
            let frame = self.next_frame().await?;
            if pred(&frame) {
                return Ok(frame);
            }
            self.events.push_back(frame);
        }
    }

    /// Reads until the server closes the socket; returns the close frame.
    pub async fn close_frame(&mut self) -> TestResult<Option<CloseFrame>> {
        loop {
            let frame = tokio::time::timeout(FRAME_TIMEOUT, self.stream.next())
                .await
                .map_err(|_| "no close within the timeout")?
                .ok_or("the socket ended without a close frame")??;
            if let Message::Close(close) = frame {
                return Ok(close);
            }
        }
    }
}

/// A line-protocol client with a deadline on every read.
pub struct Terminal {
    reader: tokio::io::BufReader<tokio::net::tcp::OwnedReadHalf>,
    writer: tokio::net::tcp::OwnedWriteHalf,
    /// Every line read so far.
    pub seen: Vec<String>,
}

impl Terminal {
    pub async fn connect(addr: SocketAddr) -> TestResult<Terminal> {
        let (read, writer) = TcpStream::connect(addr).await?.into_split();
        Ok(Terminal {
            reader: tokio::io::BufReader::new(read),
            writer,
            seen: Vec::new(),
        })
    }

    pub async fn send(&mut self, line: &str) -> TestResult {
        self.writer
            .write_all(format!("{line}\n").as_bytes())
            .await?;
        Ok(())
    }

    /// Reads lines until one contains `needle`; `None` at end of stream.
    pub async fn line_with(&mut self, needle: &str) -> TestResult<Option<String>> {
        loop {
            let mut line = String::new();
            let n = tokio::time::timeout(Duration::from_secs(10), self.reader.read_line(&mut line))
                .await
                .map_err(|_| format!("no line containing {needle:?}; saw {:?}", self.seen))??;
            if n == 0 {
                return Ok(None);
            }
            let line = line.trim_end().to_owned();
            self.seen.push(line.clone());
            if line.contains(needle) {
                return Ok(Some(line));
            }
        }
    }
}
