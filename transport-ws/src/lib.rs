//! # transport-ws: the chat engine over WebSocket
//!
//! Serves `chat-core` to browsers and other WebSocket clients as JSON text frames, one
//! object per frame, tagged by `type` (the protocol is `docs/protocol.md`). An embedder
//! serves its own actix-web `App` and the chat's `GET /ws` on one listener with one call,
//! [`WsChat::listen`]; `demo-web` uses the same call:
//!
//! ```no_run
//! use actix_web::App;
//! use chat_core::{Engine, Limits};
//! use tokio_util::sync::CancellationToken;
//! use transport_ws::WsChat;
//!
//! # async fn serve() -> Result<(), Box<dyn std::error::Error>> {
//! let engine = Engine::start(Limits::default())?;
//! let shutdown = CancellationToken::new();
//! let chat = WsChat::new(engine, vec!["http://localhost:8080".into()], shutdown.clone());
//! let listener = std::net::TcpListener::bind(("127.0.0.1", 8080))?;
//! let builder = actix_server::Server::build().disable_signals();
//! chat.listen(builder, listener, App::new)?.run().await?;
//! # Ok(()) }
//! ```
//!
//! Why a listener and not an actix-web route: a route's WebSocket keeps actix-http's
//! connection buffers (16 KiB) for its whole life and passes every frame through a channel
//! and a copy. Upgraded here, the stream leaves the HTTP server: an idle socket holds no
//! buffer, and a batch of events is one `write` (`docs/performance.md` has the numbers).
//!
//! The transport translates and forwards: it holds no chat state and makes no decision
//! about rooms or users. Its own limits (frame size, heartbeat, idle and write timeouts)
//! come from [`chat_core::Limits`].
//!
//! # Layout
//! - `lib.rs`: [`WsChat`] (what the embedder builds) and [`WsChat::listen`] (the HTTP
//!   server with the upgrade on `/ws`).
//! - [`protocol`]: the wire format: [`protocol::ClientFrame`] requests,
//!   [`protocol::ServerFrame`] replies and events, conversions from engine types.
//! - [`origin`]: the `Origin` allow-list against cross-site WebSocket hijacking.
//! - `upgrade`: the checks and the handshake, then one task per socket, run on the
//!   engine's connection workers.
//! - `session`: the per-connection loop (client frames, engine events, posts in flight,
//!   heartbeat, idle timeout, shutdown) in one task; bounded writes.
//! - `lane`: one task per connection worker that writes channel messages to the
//!   connections of that worker that only listen, while their tasks wait for their
//!   clients.
//! - `shared_frame`: a channel message encoded once, for every follower's event and the
//!   author's reply.
//! - `wire`: WebSocket frames read from and written to the TCP stream.
//! - `fragments`: reassembly of messages split into continuation frames.
//! - `buffers`: per-thread spare I/O buffers, lent to a connection while it has data.

#![warn(missing_docs)]

mod buffers;
mod fragments;
mod lane;
pub mod origin;
pub mod protocol;
mod session;
mod shared_frame;
mod upgrade;
mod wire;

use std::sync::atomic::{AtomicU64, AtomicUsize};
use std::sync::Arc;

use actix_http::HttpService;
use actix_server::ServerBuilder;
use actix_service::{fn_service, map_config};
use actix_web::body::MessageBody;
use actix_web::dev::{AppConfig, ServiceFactory, ServiceRequest, ServiceResponse};
use actix_web::{web, App, HttpResponse};
use chat_core::Engine;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// The path of the chat's WebSocket endpoint.
pub const WS_PATH: &str = "/ws";

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
    /// `close()` it and `wait()` (with a timeout) until every socket has been closed. The
    /// socket tasks run on the engine's connection workers ([`Engine::spawn`]), not on the
    /// HTTP server's: stopping the server does not cut them off, and
    /// [`Engine::shutdown`] waits for them (bounded) before it stops its threads.
    pub fn tasks(&self) -> TaskTracker {
        self.inner.tasks.clone()
    }

    /// Adds an HTTP/1.1 listener to `builder`: WebSocket upgrades of `GET /ws` become chat
    /// connections, every other request goes to the `App` that `app` makes (once per
    /// worker thread). A `GET /ws` without the upgrade gets 400; an upgrade to another
    /// path gets 404. Sockets are set to `TCP_NODELAY`: chat frames are small and
    /// latency-bound, and Nagle's algorithm would hold each one back waiting for the
    /// previous one's ACK.
    ///
    /// The HTTP server does not wait for chat sockets when it stops (they have left it):
    /// fire the shutdown token and wait for [`WsChat::tasks`] for that.
    pub fn listen<F, T, B>(
        &self,
        builder: ServerBuilder,
        listener: std::net::TcpListener,
        app: F,
    ) -> std::io::Result<ServerBuilder>
    where
        F: Fn() -> App<T> + Send + Clone + 'static,
        T: ServiceFactory<
                ServiceRequest,
                Config = (),
                Response = ServiceResponse<B>,
                Error = actix_web::Error,
                InitError = (),
            > + 'static,
        B: MessageBody + 'static,
    {
        let chat = self.clone();
        let local_addr = listener.local_addr()?;
        builder.listen("http", listener, move || {
            let chat = chat.clone();
            let app = app().route(WS_PATH, web::get().to(upgrade_required));
            HttpService::build()
                .tcp_nodelay(true)
                .local_addr(local_addr)
                .upgrade(fn_service(move |request| {
                    upgrade::upgrade(chat.clone(), request)
                }))
                .finish(map_config(app, |_| AppConfig::default()))
                .tcp()
        })
    }
}

/// The answer to `GET /ws` without an upgrade (upgrades never reach the `App`).
async fn upgrade_required() -> HttpResponse {
    HttpResponse::BadRequest().body("this is a WebSocket endpoint: connect with a WebSocket client")
}
