//! The HTTP/1.1 upgrade to WebSocket: actix-http hands every request that asks for an
//! upgrade to [`Upgrades::upgrade`], with the connection itself. It checks the host name,
//! the path, the origin, shutdown, the client address's limits (`ConnectionGate`: open
//! sockets and upgrade rate per address, the address read by `forwarded.rs`) and the
//! connection limit, answers `101 Switching Protocols`, and starts the socket's task
//! (`connection.rs`) on the HTTP worker that accepted it; the HTTP server keeps nothing
//! of the connection after that.
//!
//! Called by `lib.rs` (the listener's upgrade service). It must not read or write
//! WebSocket frames: the connection's task is the socket's only writer from the 101 on.

use std::convert::Infallible;
use std::net::{IpAddr, Ipv6Addr};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;

use actix_codec::Framed;
use actix_http::body::{BodySize, BoxBody};
use actix_http::header::{self, HeaderValue};
use actix_http::{h1, ws, ConnectionType, HttpMessage, Request, Response, StatusCode};
use bytes::Bytes;
use chat_core::telemetry::Transport;
use chat_core::{AddressSlot, ConnectionGate, Engine, GateRefusal};
use futures_util::SinkExt;
use tokio::net::TcpStream;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::Instrument;

use crate::config::WsConfig;
use crate::forwarded::Proxies;
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
    /// Sockets open and upgrades per client address: `max_connections_per_address` and
    /// `connect_rate_per_address`.
    gate: ConnectionGate,
    /// Whose `forwarded_header` is believed (`trusted_proxies`).
    proxies: Proxies,
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
struct Refusal(StatusCode, String, Option<u64>);

impl Refusal {
    fn new(status: StatusCode, why: impl Into<String>) -> Refusal {
        Refusal(status, why.into(), None)
    }
}

/// What an admitted upgrade holds while its socket is open, and the address its client
/// connects from.
struct Admitted {
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
            config: Arc::new(config),
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
        let admitted = match self.admit(&req, &served, &peer) {
            Ok(admitted) => admitted,
            Err(Refusal(status, why, retry_after)) => {
                if let Err(e) = refuse(&mut framed, status, why, retry_after).await {
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
        let Admitted {
            slot,
            address_slot,
            client,
        } = admitted;
        let span = tracing::info_span!(
            "ws",
            conn,
            %peer,
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
            connection::run(engine, config, shutdown, stream, read_ahead, client).await;
            drop((slot, address_slot, counted));
        };
        // The task stays on this worker, whose reactor already has the socket: the worker
        // runs its tasks one at a time on its own thread, so nothing here needs `Send`,
        // and the worker's spare buffers (`buffers.rs`) serve all of its sockets.
        tokio::task::spawn_local(self.tasks.track_future(task.instrument(span)));
        Ok(())
    }

    /// Whether this request may become a chat connection: a host name the listener
    /// serves (`host.rs`: DNS rebinding), the right path, a valid WebSocket handshake, an
    /// allowed origin, a server that is not stopping, room for its client's address, and
    /// a free slot.
    fn admit(&self, req: &Request, served: &Served, peer: &str) -> Result<Admitted, Refusal> {
        let arrived = req.conn_data::<ArrivedAt>().copied();
        if let Err(refused) = served.check(req.headers(), req.uri(), req.version(), arrived) {
            let host = req.headers().get(header::HOST);
            tracing::warn!(%peer, ?host, "WebSocket upgrade refused: {}", refused.reason());
            return Err(Refusal::new(refused.status(), refused.reason()));
        }
        if req.path() != WS_PATH {
            return Err(Refusal::new(StatusCode::NOT_FOUND, "not found"));
        }
        if let Err(e) = ws::verify_handshake(req.head()) {
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
            .or_else(|| req.uri().authority().map(|a| a.as_str()));
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
            .peer_addr()
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

/// Answers `status` with `why` as plain text (and `Retry-After`, in seconds, when
/// given), and closes the connection.
async fn refuse(
    framed: &mut Framed<TcpStream, h1::Codec>,
    status: StatusCode,
    why: String,
    retry_after: Option<u64>,
) -> std::io::Result<()> {
    let body = Bytes::from(why);
    let mut head = Response::with_body(status, ());
    head.head_mut().set_connection_type(ConnectionType::Close);
    head.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    if let Some(seconds) = retry_after {
        head.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(seconds.max(1)));
    }
    let size = BodySize::Sized(body.len() as u64);
    framed.send(h1::Message::Item((head, size))).await?;
    framed.send(h1::Message::Chunk(Some(body))).await?;
    framed.send(h1::Message::Chunk(None)).await?;
    Ok(())
}
