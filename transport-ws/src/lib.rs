//! # transport-ws: the chat engine over WebSocket
//!
//! Serves `chat-core` to browsers and other WebSocket clients as JSON text frames, one
//! object per frame, tagged by `type` (the protocol is `docs/protocol.md`). An embedder
//! serves its own actix-web `App` and the chat's `GET /ws` on one listener with one call,
//! [`WsChat::listen`]; `demo-web` uses the same call:
//!
//! ```no_run
//! use actix_web::App;
//! use chat_core::Engine;
//! use tokio_util::sync::CancellationToken;
//! use transport_ws::{WsChat, WsConfig};
//!
//! # async fn serve() -> Result<(), Box<dyn std::error::Error>> {
//! let engine = Engine::builder().start().await?;
//! let shutdown = CancellationToken::new();
//! let mut config = WsConfig::default();
//! config.allowed_origins = vec!["http://localhost:8080".into()];
//! let chat = WsChat::new(engine, config, shutdown.clone())?;
//! let listener = std::net::TcpListener::bind(("127.0.0.1", 8080))?;
//! let builder = actix_server::Server::build().disable_signals();
//! chat.listen(builder, listener, App::new)?.run().await?;
//! # Ok(()) }
//! ```
//!
//! Why a listener and not an actix-web route: a route's WebSocket keeps actix-http's
//! connection buffers (16 KiB) for its whole life and passes every frame through a channel
//! and a copy. Upgraded here, the stream leaves the HTTP server's codec: an idle socket
//! holds no buffer, and a batch of events is one `write` (`docs/performance.md` has the
//! numbers).
//!
//! The listener answers only for the host names it is configured with
//! ([`WsConfig::public_hosts`], plus `localhost`, the loopback addresses and its own
//! address): any other `Host`, on the embedder's pages as on `/ws`, gets 421, so a page
//! that makes its domain resolve to this server (DNS rebinding) cannot reach it.
//!
//! The transport translates and forwards: it holds no chat state and makes no decision
//! about rooms or users. Its own settings (host names, origins, connection limits overall
//! and per client address, trusted proxies, frame size, heartbeat, idle and write
//! timeouts) are a [`WsConfig`]; the engine's limits (text size, rates) stay the
//! engine's. Each socket logs in from its client's address (`Engine::connect_from`): the
//! peer's, or the one a trusted proxy reports.
//!
//! # Layout
//! - `lib.rs`: [`WsChat`] (what the embedder builds) and [`WsChat::listen`] (the HTTP
//!   server with the upgrade on `/ws`, and the `Host` check in front of the `App`).
//! - `config`: [`WsConfig`], every setting of the transport, and its check.
//! - `upgrade`: the checks and the handshake, then one task per socket on the HTTP worker
//!   that accepted it.
//! - `host`: the `Host` check against DNS rebinding: the names a listener serves.
//! - `forwarded`: the client's address: the socket's peer, or what trusted proxies report
//!   (`WsConfig::trusted_proxies`, `WsConfig::forwarded_header`).
//! - [`origin`]: the `Origin` allow-list against cross-site WebSocket hijacking.
//! - `connection`: the socket's task: the loop over client frames, post outcomes, engine
//!   events, heartbeat, idle timeout and shutdown; bounded writes; the close handshake.
//! - `close`: why a connection ends, what its client is told (last frame, close code),
//!   and the linger after the close frame.
//! - `dispatch`: one client frame -> one engine call -> its reply frame; tested without
//!   a socket.
//! - [`protocol`]: the wire format: client frames ([`protocol::ClientFrame`]) and server
//!   frames ([`protocol::ServerFrame`]), conversions from engine types.
//! - `shared_frame`: a channel message encoded once, for every follower's event and the
//!   author's reply.
//! - `wire`: WebSocket frames read from and written to the TCP stream.
//! - `fragments`: reassembly of messages split into continuation frames.
//! - `buffers`: per-thread spare I/O buffers, lent to a connection while it has data.
//!
//! Modules depend downwards only: `lib` -> `upgrade` -> `connection` -> `dispatch` ->
//! `protocol`; `lib`, `upgrade`, `config` -> `host`; `upgrade`, `config` -> `forwarded`;
//! `upgrade` -> `origin`; `connection`
//! -> `close`, `shared_frame`, `wire` -> `fragments`, `buffers`.

#![warn(missing_docs)]

mod buffers;
mod close;
mod config;
mod connection;
mod dispatch;
mod forwarded;
mod fragments;
mod host;
pub mod origin;
pub mod protocol;
mod shared_frame;
mod upgrade;
mod wire;

use std::sync::Arc;

use actix_http::{Extensions, HttpService};
use actix_server::ServerBuilder;
use actix_service::{fn_service, map_config};
use actix_web::body::MessageBody;
use actix_web::dev::{AppConfig, Service, ServiceFactory, ServiceRequest, ServiceResponse};
use actix_web::http::header;
use actix_web::{web, App, HttpResponse};
use chat_core::{Engine, InvalidLimit};
use futures_util::future::{ready, Either, TryFutureExt};
use tokio::net::TcpStream;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

pub use config::WsConfig;
pub use upgrade::WS_PATH;

use host::{ArrivedAt, Served};
use upgrade::Upgrades;

/// The WebSocket chat service: an engine, its [`WsConfig`], and the token that closes
/// every socket. Cheap to clone; clones share everything.
#[derive(Clone)]
pub struct WsChat {
    inner: Arc<Upgrades>,
}

impl std::fmt::Debug for WsChat {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WsChat")
            .field("config", &self.inner.config)
            .field("shutting_down", &self.inner.shutdown.is_cancelled())
            .field("open_sockets", &self.inner.tasks.len())
            .finish_non_exhaustive()
    }
}

impl WsChat {
    /// A service on `engine`, configured by `config`, which is checked first
    /// ([`WsConfig::validate`]): an invalid one is refused here, naming the field, rather
    /// than failing on every socket later. When `shutdown` fires, every open socket is
    /// sent a `disconnected` event with code `shutting_down` and a close frame with code
    /// 1001, and new upgrades get HTTP 503.
    pub fn new(
        engine: Engine,
        config: WsConfig,
        shutdown: CancellationToken,
    ) -> Result<WsChat, InvalidLimit> {
        config.validate()?;
        Ok(WsChat {
            inner: Arc::new(Upgrades::new(engine, config, shutdown)),
        })
    }

    /// The configuration this service runs with.
    pub fn config(&self) -> &WsConfig {
        &self.inner.config
    }

    /// The tracker of the socket tasks. Each runs on the HTTP server worker that accepted
    /// its socket, so stopping the server ends them where they are: to close every socket
    /// properly, fire the shutdown token, `close()` the tracker and `wait()` for it (with a
    /// timeout, `write_timeout` + `close_linger` is enough), and only then stop the server.
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
    /// Every request, upgrade or not, is answered only if its `Host` is a name this
    /// listener serves ([`WsConfig::public_hosts`], `localhost`, the loopback addresses
    /// and `listener`'s address); any other gets 421 Misdirected Request before the `App`
    /// sees it, and a missing or malformed `Host` on HTTP/1.1 gets 400. That includes the
    /// `App`'s health checks: an orchestrator that probes `IP:PORT` names the listen
    /// address, which is served.
    ///
    /// The HTTP server does not count chat sockets as its connections (they have left its
    /// codec), so a graceful stop does not wait for them: fire the shutdown token and wait
    /// for [`WsChat::tasks`] first.
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
        let upgrades = self.inner.clone();
        let local_addr = listener.local_addr()?;
        let served = Arc::new(Served::new(&self.inner.config.public_hosts, local_addr));
        builder.listen("http", listener, move || {
            let upgrades = upgrades.clone();
            let (served, app_served) = (served.clone(), served.clone());
            let app = app()
                .route(WS_PATH, web::get().to(upgrade_required))
                .wrap_fn(move |request, app| {
                    let arrived = request.conn_data::<ArrivedAt>().copied();
                    let (head, uri) = (request.headers(), request.uri());
                    match app_served.check(head, uri, request.version(), arrived) {
                        Ok(()) => Either::Left(
                            app.call(request)
                                .map_ok(ServiceResponse::map_into_left_body),
                        ),
                        Err(refused) => {
                            let (peer, host) = (request.peer_addr(), head.get(header::HOST));
                            let why = refused.reason();
                            tracing::warn!(?peer, ?host, "HTTP request refused: {why}");
                            let answer = HttpResponse::build(refused.status())
                                .content_type("text/plain; charset=utf-8")
                                .body(refused.reason());
                            Either::Right(ready(Ok(request
                                .into_response(answer)
                                .map_into_right_body())))
                        }
                    }
                });
            let mut service = HttpService::build()
                .tcp_nodelay(true)
                .local_addr(local_addr);
            if served.binds_any() {
                // Only a connection knows which of the machine's addresses it reached.
                service = service.on_connect_ext(record_arrival);
            }
            service
                .upgrade(fn_service(move |request| {
                    upgrades.clone().upgrade(request, served.clone())
                }))
                .finish(map_config(app, |_| AppConfig::default()))
                .tcp()
        })
    }
}

/// Records the address a connection arrived at, for the `Host` check of a listener on
/// every address (`host.rs`).
fn record_arrival(stream: &TcpStream, data: &mut Extensions) {
    if let Ok(local) = stream.local_addr() {
        data.insert(ArrivedAt(local.ip()));
    }
}

/// The answer to `GET /ws` without an upgrade (upgrades never reach the `App`).
async fn upgrade_required() -> HttpResponse {
    HttpResponse::BadRequest().body("this is a WebSocket endpoint: connect with a WebSocket client")
}
