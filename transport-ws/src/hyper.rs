//! The hyper entry point (feature `hyper`): [`upgrade`] answers a WebSocket upgrade
//! request inside the embedder's own hyper 1 service, and runs the connection on hyper's
//! upgraded stream once hyper has written the `101`.
//!
//! The request is checked exactly as on the other entry points (`upgrade.rs`): its head
//! is copied into the shape those checks read, once per upgrade (never per frame). The
//! connection is the loop every entry point shares (`connection.rs`); hyper's
//! `Upgraded` keeps whatever it read past the request, so nothing is lost.
//!
//! Called by the embedder's service and by `axum.rs`. It writes no bytes itself: hyper
//! writes the response it returns.
//!
//! ```no_run
//! use std::convert::Infallible;
//!
//! use hyper::server::conn::http1;
//! use hyper::service::service_fn;
//! use hyper_util::rt::TokioIo;
//! use transport_ws::hyper::{upgrade, ConnectionAddrs};
//! use transport_ws::WsChat;
//!
//! # async fn run(chat: WsChat) -> std::io::Result<()> {
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:8080").await?;
//! loop {
//!     let (stream, peer) = listener.accept().await?;
//!     let addrs = ConnectionAddrs::new(peer, stream.local_addr()?);
//!     let chat = chat.clone();
//!     // Every request is the chat's here; a real service routes `/ws` to it.
//!     let service = service_fn(move |request| {
//!         let response = upgrade(&chat, request, addrs);
//!         async move { Ok::<_, Infallible>(response) }
//!     });
//!     let connection = http1::Builder::new()
//!         .serve_connection(TokioIo::new(stream), service)
//!         .with_upgrades();
//!     tokio::spawn(connection);
//! }
//! # }
//! ```

use std::net::{Ipv4Addr, SocketAddr};

use ::hyper::header::{HeaderName, HeaderValue};
use ::hyper::{Request, Response, StatusCode, Version};
use actix_http::header::HeaderMap;
use actix_http::RequestHead;
use bytes::{Bytes, BytesMut};
use chat_core::Login;
use http_body_util::Full;
use hyper_util::rt::TokioIo;

use crate::host::{ArrivedAt, Served};
use crate::upgrade::{switching_headers, PeerName, Refusal};
use crate::WsChat;

/// The two ends of the connection a request came on: the client's socket (its peer) and
/// the address it reached on this machine. The per-address limits count the peer (or
/// what a trusted proxy reports), and the `Host` check serves the reached address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct ConnectionAddrs {
    /// The socket's peer: the client, or the proxy in front of it.
    pub peer: SocketAddr,
    /// The local address the connection arrived at (`TcpStream::local_addr`).
    pub local: SocketAddr,
}

impl ConnectionAddrs {
    /// The addresses of a connection from `peer` that arrived at `local`.
    pub fn new(peer: SocketAddr, local: SocketAddr) -> ConnectionAddrs {
        ConnectionAddrs { peer, local }
    }
}

/// Answers `request`, a WebSocket upgrade of `GET /ws` (`WS_PATH`) that came on a
/// connection with `addrs`: the `101 Switching Protocols` to return from the service,
/// with the chat connection started on the upgraded stream once hyper has written it; or
/// the refusal (400, 403, 404, 421, 429 with `Retry-After`, 503) with a line of text
/// saying why. The checks are those of every entry point: the `Host` (a
/// [`WsConfig::public_hosts`](crate::WsConfig::public_hosts) name, `localhost`, a
/// loopback address or `addrs.local`), the origin allow-list, the handshake, shutdown,
/// the limits per client address and overall.
///
/// The connection must be served by hyper's HTTP/1.1 server with upgrades on
/// (`http1::Builder::serve_connection(..).with_upgrades()`), on a tokio runtime: the
/// connection's task is spawned there, tracked by [`WsChat::tasks`].
pub fn upgrade<B>(
    chat: &WsChat,
    request: Request<B>,
    addrs: ConnectionAddrs,
) -> Response<Full<Bytes>> {
    upgrade_with(chat, request, addrs, None)
}

/// Like [`upgrade`], for a client the embedder has authenticated itself (its cookie, its
/// header): the connection logs in as `login` (usually `Login::External`, the
/// embedder's account id and display name) right after `hello`, and the client gets
/// that login's reply (an `ok` without an `id`, as `docs/protocol.md` describes under
/// "Logged in by the embedder") instead of sending a `login` of its own. If the engine refuses the login
/// (a display name someone else holds, say), the `error` reply is the last frame before
/// the close (1008): the socket is that user or nothing.
pub fn upgrade_as<B>(
    chat: &WsChat,
    request: Request<B>,
    addrs: ConnectionAddrs,
    login: Login,
) -> Response<Full<Bytes>> {
    upgrade_with(chat, request, addrs, Some(login))
}

fn upgrade_with<B>(
    chat: &WsChat,
    mut request: Request<B>,
    addrs: ConnectionAddrs,
    login: Option<Login>,
) -> Response<Full<Bytes>> {
    let upgrades = &chat.inner;
    let head = match to_head(&request, addrs.peer) {
        Ok(head) => head,
        Err(refusal) => return refused(refusal),
    };
    // An unknown local address (the unspecified one) names nothing.
    let local = addrs.local.ip();
    let arrived = (!local.is_unspecified()).then_some(ArrivedAt(local));
    let admitted = match upgrades.admit(&head, anywhere(chat), arrived) {
        Ok(admitted) => admitted,
        Err(refusal) => return refused(refusal),
    };
    let switching = switching_headers(&head);
    let on_upgrade = ::hyper::upgrade::on(&mut request);
    let (task_upgrades, peer) = (upgrades.clone(), addrs.peer);
    // The slots are held from here: an upgrade hyper has not finished counts as open.
    tokio::spawn(upgrades.tasks.track_future(async move {
        match on_upgrade.await {
            Ok(upgraded) => {
                let stream = TokioIo::new(upgraded);
                let task = task_upgrades.connection(stream, BytesMut::new(), admitted, Some(peer), login);
                task.await;
            }
            Err(e) => tracing::debug!(peer = %PeerName(Some(peer)), error = %e, "the upgrade did not complete"),
        }
    }));
    let mut response = Response::new(Full::new(Bytes::new()));
    *response.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    copy_headers(&switching, response.headers_mut());
    response
}

/// The names a hyper or axum connection is served for: the configured and built-in ones
/// plus the address it arrived at (hyper knows no listen address, so each request brings
/// its own).
fn anywhere(chat: &WsChat) -> &Served {
    chat.inner.served_anywhere.get_or_init(|| {
        // A loopback "listen address" adds no name: loopback is served anyway.
        let none = SocketAddr::from((Ipv4Addr::LOCALHOST, 0));
        Served::new(&chat.inner.config.public_hosts, none)
    })
}

/// The refusal as a response: its status, its line of text, and `Connection: close`.
pub(crate) fn refused(refusal: Refusal) -> Response<Full<Bytes>> {
    let headers = refusal.headers();
    let (status, why) = (refusal.0, refusal.1);
    let mut response = Response::new(Full::new(Bytes::from(why)));
    *response.status_mut() =
        StatusCode::from_u16(status.as_u16()).unwrap_or(StatusCode::BAD_REQUEST);
    copy_headers(&headers, response.headers_mut());
    response.headers_mut().insert(
        ::hyper::header::CONNECTION,
        HeaderValue::from_static("close"),
    );
    response
}

/// The request's head in the shape the shared checks read (actix-http's, whose `http`
/// types are another major version than hyper's: they are copied by their bytes).
fn to_head<B>(request: &Request<B>, peer: SocketAddr) -> Result<RequestHead, Refusal> {
    let malformed = |what: &str| {
        Refusal::new(
            actix_http::StatusCode::BAD_REQUEST,
            format!("malformed HTTP request: {what}"),
        )
    };
    let mut head = RequestHead::default();
    head.method = actix_http::Method::from_bytes(request.method().as_str().as_bytes())
        .map_err(|_| malformed("method"))?;
    head.uri = actix_http::Uri::try_from(request.uri().to_string())
        .map_err(|_| malformed("request target"))?;
    head.version = match request.version() {
        Version::HTTP_09 => actix_http::Version::HTTP_09,
        Version::HTTP_10 => actix_http::Version::HTTP_10,
        Version::HTTP_2 => actix_http::Version::HTTP_2,
        Version::HTTP_3 => actix_http::Version::HTTP_3,
        _ => actix_http::Version::HTTP_11,
    };
    for (name, value) in request.headers() {
        let name = actix_http::header::HeaderName::from_bytes(name.as_str().as_bytes())
            .map_err(|_| malformed("header name"))?;
        let value = actix_http::header::HeaderValue::from_bytes(value.as_bytes())
            .map_err(|_| malformed("header value"))?;
        head.headers.append(name, value);
    }
    head.peer_addr = Some(peer);
    Ok(head)
}

/// Copies actix-http headers into hyper's (the same bytes, valid in both).
fn copy_headers(from: &HeaderMap, to: &mut ::hyper::HeaderMap) {
    for (name, value) in from.iter() {
        let name = HeaderName::from_bytes(name.as_str().as_bytes());
        let value = HeaderValue::from_bytes(value.as_bytes());
        if let (Ok(name), Ok(value)) = (name, value) {
            to.append(name, value);
        }
    }
}
