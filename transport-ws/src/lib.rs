//! # transport-ws: the chat engine over WebSocket
//!
//! Serves `chat-core` to browsers and other WebSocket clients as JSON text frames, one
//! object per frame, tagged by `type` (the protocol is `docs/protocol.md`). It mounts into
//! any actix-web `App` with one call, so an embedder adds chat to a service it already
//! runs; `demo-web` uses the same call:
//!
//! ```no_run
//! use actix_web::{App, HttpServer};
//! use chat_core::{Engine, Limits};
//! use tokio_util::sync::CancellationToken;
//! use transport_ws::{configure, WsChat};
//!
//! # async fn serve() -> Result<(), Box<dyn std::error::Error>> {
//! let engine = Engine::start(Limits::default())?;
//! let shutdown = CancellationToken::new();
//! let chat = WsChat::new(engine, vec!["http://localhost:8080".into()], shutdown.clone());
//! HttpServer::new(move || App::new().configure(configure(chat.clone())))
//!     .disable_signals()
//!     .bind(("127.0.0.1", 8080))?
//!     .run()
//!     .await?;
//! # Ok(()) }
//! ```
//!
//! The transport translates and forwards: it holds no chat state and makes no decision
//! about rooms or users. Its own limits (frame size, heartbeat, idle and write timeouts)
//! come from [`chat_core::Limits`].
//!
//! # Layout
//! - `lib.rs`: [`WsChat`] (what the embedder builds) and [`configure`] (the `GET /ws` route:
//!   origin check, upgrade, one task per socket).
//! - [`protocol`]: the wire format: [`protocol::ClientFrame`] requests,
//!   [`protocol::ServerFrame`] replies and events, conversions from engine types.
//! - [`origin`]: the `Origin` allow-list against cross-site WebSocket hijacking.
//! - `session`: the per-connection loop (client frames, engine events, posts in flight,
//!   heartbeat, idle timeout, shutdown) in one task; bounded writes.
//! - `fragments`: reassembly of messages split into continuation frames.

#![warn(missing_docs)]

mod fragments;
pub mod origin;
pub mod protocol;
mod session;

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;

use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use chat_core::Engine;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::Instrument;

/// The WebSocket chat service: an engine, the origins allowed to connect, and the token
/// that closes every socket. Cheap to clone; clones share everything.
#[derive(Clone)]
pub struct WsChat {
    inner: Arc<Inner>,
}

struct Inner {
    /// The engine every connection logs in to.
    engine: Engine,
    /// Origins (`scheme://host[:port]`) whose pages may open a socket. Empty: the server's
    /// own origin only (see [`origin::is_allowed`]).
    allowed_origins: Vec<String>,
    /// Fires once, when the server stops: every socket gets `disconnected` and close 1001.
    shutdown: CancellationToken,
    /// Every socket's task, so the embedder can wait for them after shutdown.
    tasks: TaskTracker,
    /// Source of connection ids for logs; counts up from 1.
    next_conn: AtomicU64,
    /// Sockets open now, logged in or not; at most `Limits::max_connections`.
    open: Arc<AtomicUsize>,
}

/// One place among `Limits::max_connections`, given back when the socket's task ends.
struct ConnectionSlot(Arc<AtomicUsize>);

impl ConnectionSlot {
    fn take(open: &Arc<AtomicUsize>, max: usize) -> Option<ConnectionSlot> {
        open.fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
            (n < max).then_some(n + 1)
        })
        .ok()
        .map(|_| ConnectionSlot(open.clone()))
    }
}

impl Drop for ConnectionSlot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

impl std::fmt::Debug for WsChat {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WsChat")
            .field("allowed_origins", &self.inner.allowed_origins)
            .field("shutting_down", &self.inner.shutdown.is_cancelled())
            .field("open_sockets", &self.inner.tasks.len())
            .finish_non_exhaustive()
    }
}

impl WsChat {
    /// A service on `engine`. `allowed_origins` lists the origins (`http://host:port`)
    /// whose pages may connect; empty means only pages from the server's own origin. When
    /// `shutdown` fires, every open socket is sent a `disconnected` event with code
    /// `shutting_down` and a close frame with code 1001, and new upgrades get HTTP 503.
    pub fn new(engine: Engine, allowed_origins: Vec<String>, shutdown: CancellationToken) -> Self {
        WsChat {
            inner: Arc::new(Inner {
                engine,
                allowed_origins,
                shutdown,
                tasks: TaskTracker::new(),
                next_conn: AtomicU64::new(1),
                open: Arc::new(AtomicUsize::new(0)),
            }),
        }
    }

    /// The tracker of the socket tasks. After firing the shutdown token, an embedder can
    /// `close()` it and `wait()` (with a timeout) until every socket has been closed.
    pub fn tasks(&self) -> TaskTracker {
        self.inner.tasks.clone()
    }
}

/// Registers `GET /ws` on an actix-web app:
/// `App::new().configure(transport_ws::configure(chat.clone()))`.
pub fn configure(chat: WsChat) -> impl Fn(&mut web::ServiceConfig) + Clone + Send + 'static {
    move |config: &mut web::ServiceConfig| {
        let chat = chat.clone();
        config.route(
            "/ws",
            web::get().to(move |req: HttpRequest, body: web::Payload| {
                let chat = chat.clone();
                async move { upgrade(chat, req, body) }
            }),
        );
    }
}

/// Checks the origin, upgrades, and hands the socket to its own task.
fn upgrade(
    chat: WsChat,
    req: HttpRequest,
    body: web::Payload,
) -> Result<HttpResponse, actix_web::Error> {
    let inner = &chat.inner;
    let peer = req
        .peer_addr()
        .map(|a| a.to_string())
        .unwrap_or_else(|| "unknown".to_owned());
    // A header that is not valid text cannot match an allowed origin.
    let origin = req
        .headers()
        .get(header::ORIGIN)
        .map(|v| v.to_str().unwrap_or("\u{0}"));
    let host = req
        .headers()
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .or_else(|| req.uri().authority().map(|a| a.as_str()));
    if !origin::is_allowed(origin, host, &inner.allowed_origins) {
        tracing::warn!(%peer, origin = origin.unwrap_or(""), "WebSocket origin refused");
        return Ok(HttpResponse::Forbidden().body("origin not allowed"));
    }
    if inner.shutdown.is_cancelled() {
        return Ok(HttpResponse::ServiceUnavailable().body("the server is shutting down"));
    }
    let max = inner.engine.limits().max_connections;
    let Some(slot) = ConnectionSlot::take(&inner.open, max) else {
        tracing::warn!(%peer, max, "WebSocket refused: too many connections");
        return Ok(HttpResponse::ServiceUnavailable().body("too many connections"));
    };
    let (response, ws, stream) = actix_ws::handle(&req, body)?;
    let conn = inner.next_conn.fetch_add(1, Ordering::Relaxed);
    let span = tracing::info_span!(
        "ws",
        conn,
        %peer,
        session_id = tracing::field::Empty,
        user = tracing::field::Empty
    );
    let (engine, shutdown) = (inner.engine.clone(), inner.shutdown.clone());
    // `run` is created inside the task, not moved into it: a future moved into an async
    // block and awaited there is stored twice, and this one is an idle connection's cost.
    let task = async move {
        session::run(engine, shutdown, ws, stream).await;
        drop(slot);
    };
    actix_web::rt::spawn(inner.tasks.track_future(task.instrument(span)));
    Ok(response)
}
