//! # transport-ws: the chat engine over WebSocket
//!
//! Serves `chat-core` to browsers and other WebSocket clients as JSON text frames, one
//! object per frame, tagged by `type` (the protocol is `docs/protocol.md`). A [`WsChat`]
//! (an engine, a [`WsConfig`] and a shutdown token) is mounted wherever the embedder
//! serves HTTP; every entry point runs the same checks and the same connection loop:
//!
//! | entry point | feature | for |
//! |---|---|---|
//! | [`serve`], [`WsChat::serve`] | (always) | a bare tokio `TcpListener`, no framework |
//! | `WsChat::listen` | `actix` (default) | an actix-web `App` and `/ws` on one listener |
//! | `hyper::upgrade` | `hyper` | a request in the embedder's own hyper 1 service |
//! | `axum::router` | `axum` | an axum 0.8 app that merges our `/ws` route |
//!
//! Without a framework:
//!
//! ```no_run
//! use chat_core::Engine;
//! use tokio_util::sync::CancellationToken;
//! use transport_ws::WsConfig;
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let engine = Engine::builder().start().await?;
//! let listener = tokio::net::TcpListener::bind(("127.0.0.1", 8080)).await?;
//! let shutdown = CancellationToken::new();
//! transport_ws::serve(listener, engine.clone(), WsConfig::default(), shutdown).await?;
//! engine.shutdown().await;
//! # Ok(()) }
//! ```
//!
//! In an actix-web server, one call serves the embedder's `App` and the chat's `GET /ws`
//! on one listener (`demo-web` does this):
//!
//! ```no_run
//! # #[cfg(feature = "actix")]
//! # async fn serve() -> Result<(), Box<dyn std::error::Error>> {
//! use actix_web::App;
//! use chat_core::Engine;
//! use tokio_util::sync::CancellationToken;
//! use transport_ws::{WsChat, WsConfig};
//!
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
//! In axum, see `examples/axum.rs`; in plain hyper, `hyper::upgrade`.
//!
//! # Features
//! - `actix` (default): `WsChat::listen`, the actix-web entry point. Off, no actix-web or
//!   actix-server is built. actix-http itself is always a dependency: its WebSocket frame
//!   parser and handshake are what every entry point uses.
//! - `hyper`: the `hyper` module, an upgrade handler for a hyper 1 service.
//! - `axum`: the `axum` module, a `Router` with our `/ws` for an axum 0.8 app (built on
//!   the `hyper` adapter, which it turns on).
//!
//! # One loop for every entry point
//! Each entry point only reads the upgrade request in its own server's terms and writes
//! the answer: the checks are one function (`upgrade.rs`), and the admitted connection is
//! one task running one loop (`connection.rs`), generic over the upgraded byte stream
//! (any `AsyncRead + AsyncWrite + Unpin`: a `TcpStream` under actix and [`serve`],
//! hyper's `Upgraded` under hyper and axum). So the protocol, the limits, the origin and
//! host checks, the per-address limits and shutdown are the same whichever is used.
//!
//! Every entry point answers only for the host names it is configured with
//! ([`WsConfig::public_hosts`], plus `localhost`, the loopback addresses and the address
//! the connection arrived at): any other `Host` gets 421, so a page that makes its
//! domain resolve to this server (DNS rebinding) cannot reach it. Under actix, that holds
//! for the embedder's own pages too.
//!
//! The transport translates and forwards: it holds no chat state and makes no decision
//! about rooms or users. Its own settings (host names, origins, connection limits overall
//! and per client address, trusted proxies, frame size, heartbeat, idle and write
//! timeouts) are a [`WsConfig`]; the engine's limits (text size, rates) stay the
//! engine's. Each socket logs in from its client's address (`Engine::connect_from`): the
//! peer's, or the one a trusted proxy reports.
//!
//! # Layout
//! - `lib.rs`: [`WsChat`] (what the embedder builds).
//! - `config`: [`WsConfig`], every setting of the transport, and its check.
//! - `upgrade`: the checks every entry point shares, and the connection's task once the
//!   handshake is answered.
//! - `actix` (feature `actix`): `WsChat::listen`, the HTTP server with the upgrade on
//!   `/ws`, and the `Host` check in front of the `App`.
//! - `serve`: [`serve`], a bare `TcpListener` that reads upgrade requests itself.
//! - `hyper` (feature `hyper`): the upgrade of a hyper request.
//! - `axum` (feature `axum`): the `/ws` route for an axum app, on the hyper adapter.
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
//! - `wire`: WebSocket frames read from and written to the upgraded stream.
//! - `fragments`: reassembly of messages split into continuation frames.
//! - `buffers`: per-thread spare I/O buffers, lent to a connection while it has data.
//!
//! Modules depend downwards only: `axum` -> `hyper`; `actix`, `serve`, `hyper` ->
//! `upgrade` -> `connection` -> `dispatch` -> `protocol`; `actix`, `serve`, `upgrade`,
//! `config` -> `host`; `upgrade`, `config` -> `forwarded`; `upgrade` -> `origin`;
//! `connection` -> `close`, `shared_frame`, `wire` -> `fragments`, `buffers`.

#![warn(missing_docs)]
#![cfg_attr(docsrs, feature(doc_cfg))]

#[cfg(feature = "actix")]
mod actix;
#[cfg(feature = "axum")]
#[cfg_attr(docsrs, doc(cfg(feature = "axum")))]
pub mod axum;
mod buffers;
mod close;
mod config;
mod connection;
mod dispatch;
mod forwarded;
mod fragments;
mod host;
#[cfg(feature = "hyper")]
#[cfg_attr(docsrs, doc(cfg(feature = "hyper")))]
pub mod hyper;
mod keepalive;
pub mod origin;
pub mod protocol;
mod serve;
mod shared_frame;
mod upgrade;
mod wire;

use std::sync::Arc;

use chat_core::{Engine, InvalidLimit};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

pub use config::WsConfig;
pub use serve::{serve, MAX_REQUEST_HEAD_BYTES};
pub use upgrade::WS_PATH;

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

    /// The tracker of the socket tasks, from every entry point. Under actix each runs on
    /// the HTTP server worker that accepted its socket, so stopping the server ends them
    /// where they are: to close every socket properly, fire the shutdown token, `close()`
    /// the tracker and `wait()` for it (with a timeout, `write_timeout` + `close_linger`
    /// is enough), and only then stop the server.
    pub fn tasks(&self) -> TaskTracker {
        self.inner.tasks.clone()
    }
}
