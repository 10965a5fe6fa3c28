//! The actix-web entry point: [`WsChat::listen`] adds an HTTP listener to an actix
//! server, whose upgrades of `GET /ws` leave actix-http's codec and become chat
//! connections, and whose other requests go to the embedder's `App` behind the `Host`
//! check. Behind the `actix` feature (on by default).
//!
//! Why a listener and not an actix-web route: a route's WebSocket keeps actix-http's
//! connection buffers (16 KiB) for its whole life and passes every frame through a channel
//! and a copy. Upgraded here, the stream leaves the HTTP server's codec: an idle socket
//! holds no buffer, and a batch of events is one `write` (`docs/performance.md` has the
//! numbers). The connection itself is the loop every entry point shares
//! (`connection.rs`), run on the raw `TcpStream`.
//!
//! It renders answers only; what is admitted is `upgrade.rs`'s decision.

use std::convert::Infallible;
use std::sync::Arc;

use actix_codec::Framed;
use actix_http::body::{BodySize, MessageBody};
use actix_http::{h1, ws, ConnectionType, Extensions, HttpService, Request, Response};
use actix_server::ServerBuilder;
use actix_service::{fn_service, map_config};
use actix_web::dev::{AppConfig, Service, ServiceFactory, ServiceRequest, ServiceResponse};
use actix_web::http::header;
use actix_web::{web, App, HttpResponse};
use bytes::Bytes;
use futures_util::future::{ready, Either, TryFutureExt};
use futures_util::SinkExt;
use tokio::net::TcpStream;

use crate::host::{ArrivedAt, Served};
use crate::upgrade::{PeerName, Refusal, Upgrades, WS_PATH};
use crate::WsChat;

/// A connection asking for an upgrade, as actix-http hands it over.
type UpgradeRequest = (Request, Framed<TcpStream, h1::Codec>);

impl WsChat {
    /// Adds an HTTP/1.1 listener to `builder`: WebSocket upgrades of `GET /ws` become chat
    /// connections, every other request goes to the `App` that `app` makes (once per
    /// worker thread). A `GET /ws` without the upgrade gets 400; an upgrade to another
    /// path gets 404. Sockets are set to `TCP_NODELAY`: chat frames are small and
    /// latency-bound, and Nagle's algorithm would hold each one back waiting for the
    /// previous one's ACK.
    ///
    /// Every request, upgrade or not, is answered only if its `Host` is a name this
    /// listener serves ([`WsConfig::public_hosts`](crate::WsConfig::public_hosts),
    /// `localhost`, the loopback addresses and `listener`'s address); any other gets 421
    /// Misdirected Request before the `App` sees it, and a missing or malformed `Host` on
    /// HTTP/1.1 gets 400. That includes the `App`'s health checks: an orchestrator that
    /// probes `IP:PORT` names the listen address, which is served.
    ///
    /// The HTTP server does not count chat sockets as its connections (they have left its
    /// codec), so a graceful stop does not wait for them: fire the shutdown token and wait
    /// for [`WsChat::tasks`] first.
    #[cfg_attr(docsrs, doc(cfg(feature = "actix")))]
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
                    upgrade(upgrades.clone(), request, served.clone())
                }))
                .finish(map_config(app, |_| AppConfig::default()))
                .tcp()
        })
    }
}

/// Upgrades the connection, which arrived at a listener serving the names `served`, or
/// answers why not. Never fails: a connection that cannot be answered is dropped (and
/// logged).
async fn upgrade(
    upgrades: Arc<Upgrades>,
    (req, mut framed): UpgradeRequest,
    served: Arc<Served>,
) -> Result<(), Infallible> {
    let peer = PeerName(req.peer_addr());
    let arrived = req.conn_data::<ArrivedAt>().copied();
    let admitted = match upgrades.admit(req.head(), &served, arrived) {
        Ok(admitted) => admitted,
        Err(refusal) => {
            if let Err(e) = refuse(&mut framed, refusal).await {
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
    let task = upgrades.connection(parts.io, parts.read_buf, admitted, req.peer_addr(), None);
    // The task stays on this worker, whose reactor already has the socket: the worker
    // runs its tasks one at a time on its own thread, and the worker's spare buffers
    // (`buffers.rs`) serve all of its sockets.
    tokio::task::spawn_local(task);
    Ok(())
}

/// Answers a refused upgrade and closes the connection.
async fn refuse(
    framed: &mut Framed<TcpStream, h1::Codec>,
    refusal: Refusal,
) -> std::io::Result<()> {
    let mut head = Response::with_body(refusal.0, ());
    head.head_mut().set_connection_type(ConnectionType::Close);
    *head.headers_mut() = refusal.headers();
    let body = Bytes::from(refusal.1);
    let size = BodySize::Sized(body.len() as u64);
    framed.send(h1::Message::Item((head, size))).await?;
    framed.send(h1::Message::Chunk(Some(body))).await?;
    framed.send(h1::Message::Chunk(None)).await?;
    Ok(())
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
