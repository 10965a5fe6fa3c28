//! The HTTP/1.1 upgrade to WebSocket: actix-http hands every request that asks for an
//! upgrade to [`Upgrades::upgrade`], with the connection itself. It checks the host name,
//! the path, the origin, shutdown and the connection limit, answers `101 Switching
//! Protocols`, and starts the socket's task (`connection.rs`) on the HTTP worker that
//! accepted it; the HTTP server keeps nothing of the connection after that.
//!
//! Called by `lib.rs` (the listener's upgrade service). It must not read or write
//! WebSocket frames: the connection's task is the socket's only writer from the 101 on.

use std::convert::Infallible;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;

use actix_codec::Framed;
use actix_http::body::{BodySize, BoxBody};
use actix_http::header::{self, HeaderValue};
use actix_http::{h1, ws, ConnectionType, HttpMessage, Request, Response, StatusCode};
use bytes::Bytes;
use chat_core::Engine;
use futures_util::SinkExt;
use tokio::net::TcpStream;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::Instrument;

use crate::config::WsConfig;
use crate::host::{ArrivedAt, Served};
use crate::{connection, origin};

/// The path of the chat's WebSocket endpoint.
pub const WS_PATH: &str = "/ws";

/// A connection asking for an upgrade, as actix-http hands it over.
pub(crate) type UpgradeRequest = (Request, Framed<TcpStream, h1::Codec>);

/// What every upgrade of one service shares: the engine, the configuration, the shutdown
/// token, the sockets' tasks and how many are open.
pub(crate) struct Upgrades {
    /// The engine every connection logs in to.
    engine: Engine,
    /// Checked by `WsChat::new`; shared with every connection's task.
    pub(crate) config: Arc<WsConfig>,
    /// Fires once, when the server stops: every socket gets `disconnected` and close 1001,
    /// and upgrades are refused with 503.
    pub(crate) shutdown: CancellationToken,
    /// Every socket's task, so the embedder can wait for them after shutdown.
    pub(crate) tasks: TaskTracker,
    /// Source of connection ids for logs; counts up from 1.
    next_conn: AtomicU64,
    /// Sockets open now, logged in or not; at most `WsConfig::max_connections`.
    open: Arc<AtomicUsize>,
}

/// One place among `WsConfig::max_connections`, given back when the socket's task ends.
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

/// A refused upgrade: the HTTP status and a line of text saying why.
struct Refusal(StatusCode, String);

impl Upgrades {
    /// The shared state of a service on `engine` with a `config` already checked.
    pub(crate) fn new(engine: Engine, config: WsConfig, shutdown: CancellationToken) -> Self {
        Upgrades {
            engine,
            config: Arc::new(config),
            shutdown,
            tasks: TaskTracker::new(),
            next_conn: AtomicU64::new(1),
            open: Arc::new(AtomicUsize::new(0)),
        }
    }

    /// Upgrades the connection, which arrived at a listener serving the names `served`,
    /// or answers why not. Never fails: a connection that cannot be answered is dropped
    /// (and logged).
    pub(crate) async fn upgrade(
        self: Arc<Self>,
        (req, mut framed): UpgradeRequest,
        served: Arc<Served>,
    ) -> Result<(), Infallible> {
        let peer = req
            .peer_addr()
            .map(|a| a.to_string())
            .unwrap_or_else(|| "unknown".to_owned());
        let slot = match self.admit(&req, &served, &peer) {
            Ok(slot) => slot,
            Err(Refusal(status, why)) => {
                if let Err(e) = refuse(&mut framed, status, why).await {
                    tracing::debug!(%peer, error = %e, "could not answer a refused upgrade");
                }
                return Ok(());
            }
        };
        let switching = ws::handshake_response(req.head()).finish().drop_body();
        if let Err(e) = framed.send((switching, BodySize::None).into()).await {
            tracing::debug!(%peer, error = %e, "could not answer the upgrade");
            return Ok(());
        }
        // What the HTTP server read past the request is the start of the WebSocket stream.
        let parts = framed.into_parts();
        let (stream, read_ahead) = (parts.io, parts.read_buf);
        let conn = self.next_conn.fetch_add(1, Ordering::Relaxed);
        let span = tracing::info_span!(
            "ws",
            conn,
            %peer,
            session_id = tracing::field::Empty,
            user = tracing::field::Empty
        );
        let (engine, config) = (self.engine.clone(), self.config.clone());
        let shutdown = self.shutdown.clone();
        // `run` is created inside the task, not moved into it: a future moved into an
        // async block and awaited there is stored twice, and this one is an idle
        // connection's cost.
        let task = async move {
            connection::run(engine, config, shutdown, stream, read_ahead).await;
            drop(slot);
        };
        // The task stays on this worker, whose reactor already has the socket: the worker
        // runs its tasks one at a time on its own thread, so nothing here needs `Send`,
        // and the worker's spare buffers (`buffers.rs`) serve all of its sockets.
        tokio::task::spawn_local(self.tasks.track_future(task.instrument(span)));
        Ok(())
    }

    /// Whether this request may become a chat connection: a host name the listener
    /// serves (`host.rs`: DNS rebinding), the right path, a valid WebSocket handshake, an
    /// allowed origin, a server that is not stopping, and a free slot.
    fn admit(&self, req: &Request, served: &Served, peer: &str) -> Result<ConnectionSlot, Refusal> {
        let arrived = req.conn_data::<ArrivedAt>().copied();
        if let Err(refused) = served.check(req.headers(), req.uri(), req.version(), arrived) {
            let host = req.headers().get(header::HOST);
            tracing::warn!(%peer, ?host, "WebSocket upgrade refused: {}", refused.reason());
            return Err(Refusal(refused.status(), refused.reason().to_owned()));
        }
        if req.path() != WS_PATH {
            return Err(Refusal(StatusCode::NOT_FOUND, "not found".to_owned()));
        }
        if let Err(e) = ws::verify_handshake(req.head()) {
            let status = Response::<BoxBody>::from(e).status();
            return Err(Refusal(status, e.to_string()));
        }
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
        if !origin::is_allowed(origin, host, &self.config.allowed_origins) {
            tracing::warn!(%peer, origin = origin.unwrap_or(""), "WebSocket origin refused");
            return Err(Refusal(
                StatusCode::FORBIDDEN,
                "origin not allowed".to_owned(),
            ));
        }
        if self.shutdown.is_cancelled() {
            return Err(Refusal(
                StatusCode::SERVICE_UNAVAILABLE,
                "the server is shutting down".to_owned(),
            ));
        }
        let max = self.config.max_connections;
        ConnectionSlot::take(&self.open, max).ok_or_else(|| {
            tracing::warn!(%peer, max, "WebSocket refused: too many connections");
            Refusal(
                StatusCode::SERVICE_UNAVAILABLE,
                "too many connections".to_owned(),
            )
        })
    }
}

/// Answers `status` with `why` as plain text, and closes the connection.
async fn refuse(
    framed: &mut Framed<TcpStream, h1::Codec>,
    status: StatusCode,
    why: String,
) -> std::io::Result<()> {
    let body = Bytes::from(why);
    let mut head = Response::with_body(status, ());
    head.head_mut().set_connection_type(ConnectionType::Close);
    head.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    let size = BodySize::Sized(body.len() as u64);
    framed.send(h1::Message::Item((head, size))).await?;
    framed.send(h1::Message::Chunk(Some(body))).await?;
    framed.send(h1::Message::Chunk(None)).await?;
    Ok(())
}
