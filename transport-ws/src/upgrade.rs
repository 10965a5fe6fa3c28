//! The HTTP/1.1 upgrade to WebSocket, the same for every entry point: [`Upgrades::admit`]
//! checks the host name, the path, the handshake, the origin, shutdown, the client
//! address's limits (`ConnectionGate`: open sockets and upgrade rate per address, the
//! address read by `forwarded.rs`) and the connection limit; [`Upgrades::connection`]
//! makes the socket's task (`connection.rs`) once the `101 Switching Protocols` is out.
//!
//! Every entry point brings its request as an actix-http `RequestHead` and renders the
//! answer in its own server's terms: `actix.rs` (actix-http's codec), `serve.rs` (a bare
//! listener, which writes the bytes itself), `hyper.rs` (a hyper response). So the checks
//! and the connection loop exist once.
//!
//! It must not read or write WebSocket frames: the connection's task is the socket's only
//! writer from the 101 on.

use std::future::Future;
use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;

use actix_http::body::BoxBody;
use actix_http::header::{self, HeaderMap, HeaderValue};
use actix_http::{ws, RequestHead, Response, StatusCode};
use bytes::BytesMut;
use chat_core::telemetry::Transport;
use chat_core::{AddressSlot, ConnectionGate, Engine, GateRefusal, Login};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::Instrument;

use crate::config::WsConfig;
use crate::connection::{self, Stream};
use crate::forwarded::Proxies;
use crate::host::{ArrivedAt, Served};
use crate::origin;

/// The path of the chat's WebSocket endpoint.
pub const WS_PATH: &str = "/ws";

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
    /// Sockets open and upgrades per client address: `max_connections_per_address` and
    /// `connect_rate_per_address`.
    gate: ConnectionGate,
    /// Whose `forwarded_header` is believed (`trusted_proxies`).
    proxies: Proxies,
    /// The names served on a connection whose listener the transport does not know (the
    /// hyper and axum adapters): made on first use.
    #[cfg_attr(not(feature = "hyper"), allow(dead_code))]
    pub(crate) served_anywhere: std::sync::OnceLock<Served>,
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

/// A refused upgrade: the HTTP status, a line of text saying why, and when to retry (in
/// whole seconds, for `Retry-After`), if the client can know.
pub(crate) struct Refusal(pub(crate) StatusCode, pub(crate) String, Option<u64>);

impl Refusal {
    pub(crate) fn new(status: StatusCode, why: impl Into<String>) -> Refusal {
        Refusal(status, why.into(), None)
    }

    /// The headers of the answer, besides its length and `Connection: close` (which
    /// each server writes its own way): plain text, and `Retry-After` (in seconds) when
    /// the client can know when to retry.
    pub(crate) fn headers(&self) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; charset=utf-8"),
        );
        if let Some(seconds) = self.2 {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(seconds.max(1)));
        }
        headers
    }
}

/// The headers of the `101 Switching Protocols` answering `head`, a request
/// [`Upgrades::admit`] has admitted (so its `Sec-WebSocket-Key` is valid), for a server
/// that writes its own: actix-http's handshake answer, with its `Connection: Upgrade`
/// (a flag of actix-http's response head) written out.
pub(crate) fn switching_headers(head: &RequestHead) -> HeaderMap {
    let response = ws::handshake_response(head).finish();
    let mut headers = response.headers().clone();
    headers.insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
    headers
}

/// What an admitted upgrade holds while its socket is open, and the address its client
/// connects from.
pub(crate) struct Admitted {
    slot: ConnectionSlot,
    address_slot: AddressSlot,
    client: IpAddr,
}

impl Upgrades {
    /// The shared state of a service on `engine` with a `config` already checked.
    pub(crate) fn new(engine: Engine, config: WsConfig, shutdown: CancellationToken) -> Self {
        Upgrades {
            engine,
            shutdown,
            tasks: TaskTracker::new(),
            next_conn: AtomicU64::new(1),
            open: Arc::new(AtomicUsize::new(0)),
            gate: ConnectionGate::new(
                config.connect_rate_per_address,
                config.max_connections_per_address,
            ),
            proxies: Proxies::new(&config.trusted_proxies, &config.forwarded_header),
            served_anywhere: std::sync::OnceLock::new(),
            config: Arc::new(config),
        }
    }

    /// The task of an admitted connection on `stream`, once its `101` is written:
    /// `read_ahead` is what was read past the request, `login` the embedder's login for
    /// it, if it made one. The caller spawns it (actix-http
    /// on its worker, the others on the runtime); it is tracked by [`Upgrades::tasks`].
    pub(crate) fn connection<S: Stream>(
        &self,
        stream: S,
        read_ahead: BytesMut,
        admitted: Admitted,
        peer: Option<SocketAddr>,
        login: Option<Login>,
    ) -> impl Future<Output = ()> {
        let conn = self.next_conn.fetch_add(1, Ordering::Relaxed);
        let Admitted {
            slot,
            address_slot,
            client,
        } = admitted;
        let span = tracing::info_span!(
            "ws",
            conn,
            peer = %PeerName(peer),
            %client,
            session_id = tracing::field::Empty,
            user = tracing::field::Empty
        );
        let (engine, config) = (self.engine.clone(), self.config.clone());
        let shutdown = self.shutdown.clone();
        // `run` is created inside the task, not moved into it: a future moved into an
        // async block and awaited there is stored twice, and this one is an idle
        // connection's cost.
        let counted = chat_core::telemetry::connection_opened(Transport::Ws);
        let task = async move {
            connection::run(engine, config, shutdown, stream, read_ahead, client, login).await;
            drop((slot, address_slot, counted));
        };
        self.tasks.track_future(task.instrument(span))
    }

    /// Whether this request may become a chat connection: a host name the listener
    /// serves (`host.rs`: DNS rebinding), the right path, a valid WebSocket handshake, an
    /// allowed origin, a server that is not stopping, room for its client's address, and
    /// a free slot.
    /// `arrived` is the address the connection reached, when its listener binds every
    /// address (`host.rs`); the socket's peer is `req.peer_addr`.
    pub(crate) fn admit(
        &self,
        req: &RequestHead,
        served: &Served,
        arrived: Option<ArrivedAt>,
    ) -> Result<Admitted, Refusal> {
        let peer = PeerName(req.peer_addr);
        if let Err(refused) = served.check(req.headers(), &req.uri, req.version, arrived) {
            let host = req.headers().get(header::HOST);
            tracing::warn!(%peer, ?host, "WebSocket upgrade refused: {}", refused.reason());
            return Err(Refusal::new(refused.status(), refused.reason()));
        }
        if req.uri.path() != WS_PATH {
            return Err(Refusal::new(StatusCode::NOT_FOUND, "not found"));
        }
        if let Err(e) = ws::verify_handshake(req) {
            let status = Response::<BoxBody>::from(e).status();
            return Err(Refusal::new(status, e.to_string()));
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
            .or_else(|| req.uri.authority().map(|a| a.as_str()));
        if !origin::is_allowed(origin, host, &self.config.allowed_origins) {
            tracing::warn!(%peer, origin = origin.unwrap_or(""), "WebSocket origin refused");
            return Err(Refusal::new(StatusCode::FORBIDDEN, "origin not allowed"));
        }
        if self.shutdown.is_cancelled() {
            return Err(Refusal::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "the server is shutting down",
            ));
        }
        // A TCP connection always has a peer; without one, all such clients share a
        // bucket rather than escape the limits.
        let socket_peer = req
            .peer_addr
            .map_or(IpAddr::V6(Ipv6Addr::UNSPECIFIED), |a| a.ip());
        let client = self.proxies.client(socket_peer, req.headers());
        let address_slot = self.gate.admit(client).map_err(|refused| {
            // Debug, not warn: a flood of refusals must not flood the log.
            tracing::debug!(%peer, %client, code = refused.code(), "WebSocket refused");
            let retry_after = match refused {
                GateRefusal::TooFast { retry_after } => {
                    Some(retry_after.as_secs() + u64::from(retry_after.subsec_nanos() > 0))
                }
                _ => None,
            };
            Refusal(
                StatusCode::TOO_MANY_REQUESTS,
                format!("{}: {refused}", refused.code()),
                retry_after,
            )
        })?;
        let max = self.config.max_connections;
        let slot = ConnectionSlot::take(&self.open, max).ok_or_else(|| {
            tracing::warn!(%peer, max, "WebSocket refused: too many connections");
            Refusal::new(StatusCode::SERVICE_UNAVAILABLE, "too many connections")
        })?;
        Ok(Admitted {
            slot,
            address_slot,
            client,
        })
    }
}

/// A socket's peer for logs: its address, or `unknown` (a Unix socket, or an adapter
/// that was not told).
#[derive(Clone, Copy)]
pub(crate) struct PeerName(pub(crate) Option<SocketAddr>);

impl std::fmt::Display for PeerName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0 {
            Some(addr) => addr.fmt(f),
            None => f.write_str("unknown"),
        }
    }
}
