//! The axum entry point (feature `axum`): [`router`] is a `Router` with our `GET /ws`
//! (`WS_PATH`), to merge into the embedder's axum 0.8 app beside its own routes;
//! [`router_with_login`] is the same for an app whose users are its own (their sockets
//! open logged in). Built on the hyper adapter (`hyper.rs`): the same checks, the same
//! connection loop.
//!
//! The route needs the connection's addresses: serve the app with
//! `into_make_service_with_connect_info::<ConnectionAddrs>()` (the peer and the address
//! it reached). With `ConnectInfo<SocketAddr>` only, the local address is unknown and
//! the `Host` check serves just the configured and built-in names; with neither, every
//! upgrade is refused with 500 and a line saying what is missing.

use std::net::{Ipv6Addr, SocketAddr};
use std::sync::Arc;

use ::axum::body::Body;
use ::axum::extract::connect_info::{ConnectInfo, Connected};
use ::axum::extract::{Request, State};
use ::axum::http::HeaderMap;
use ::axum::response::Response;
use ::axum::routing::get;
use ::axum::serve::IncomingStream;
use ::axum::Router;
use tokio::net::TcpListener;

use chat_core::Login;

use crate::hyper::{refused, upgrade, upgrade_as, ConnectionAddrs};
use crate::upgrade::{Refusal, WS_PATH};
use crate::WsChat;

/// A router serving `GET /ws` for `chat`; merge it into the app
/// (`Router::new().route("/", ..).merge(transport_ws::axum::router(chat))`), whatever
/// the app's own state. Clients log in with the protocol's `login` request.
pub fn router<S>(chat: WsChat) -> Router<S>
where
    S: Clone + Send + Sync + 'static,
{
    Router::new()
        .route(
            WS_PATH,
            get(|State(chat): State<WsChat>, request: Request| async move { ws(&chat, request, None) }),
        )
        .with_state(chat)
}

/// Like [`router`], for an app with users of its own: `login` reads the upgrade
/// request's headers (the app's session cookie, an `Authorization` header) and says who
/// the client is, usually `Login::External` with the app's account id and display name.
/// Such a socket is logged in as that user before the client says anything
/// ([`crate::hyper::upgrade_as`]); where `login` gives `None`, the client logs in with
/// the protocol's `login` request as under [`router`] (to refuse anonymous clients,
/// answer them in the app's own middleware first).
pub fn router_with_login<S, F>(chat: WsChat, login: F) -> Router<S>
where
    S: Clone + Send + Sync + 'static,
    F: Fn(&HeaderMap) -> Option<Login> + Send + Sync + 'static,
{
    let login = Arc::new(login);
    let handler = move |State(chat): State<WsChat>, request: Request| {
        let as_user = login(request.headers());
        async move { ws(&chat, request, as_user) }
    };
    Router::new().route(WS_PATH, get(handler)).with_state(chat)
}

/// The `/ws` handler: a WebSocket upgrade through the hyper adapter, logged in as
/// `login` when the app said who the client is.
fn ws(chat: &WsChat, request: Request, login: Option<Login>) -> Response {
    let addrs = match addresses(&request) {
        Some(addrs) => addrs,
        None => {
            tracing::error!(
                "WebSocket upgrade without the connection's address: serve the app with \
                 into_make_service_with_connect_info::<transport_ws::hyper::ConnectionAddrs>()"
            );
            let why = "the server does not know the client's address (ConnectInfo is missing)";
            let status = actix_http::StatusCode::INTERNAL_SERVER_ERROR;
            return refused(Refusal::new(status, why)).map(Body::new);
        }
    };
    match login {
        Some(login) => upgrade_as(chat, request, addrs, login).map(Body::new),
        None => upgrade(chat, request, addrs).map(Body::new),
    }
}

/// The connection's addresses, from whichever `ConnectInfo` the app was served with.
fn addresses(request: &Request) -> Option<ConnectionAddrs> {
    let extensions = request.extensions();
    if let Some(ConnectInfo(addrs)) = extensions.get::<ConnectInfo<ConnectionAddrs>>() {
        return Some(*addrs);
    }
    let ConnectInfo(peer) = extensions.get::<ConnectInfo<SocketAddr>>()?;
    // Unknown local address: the unspecified one, which no `Host` names.
    let unknown = SocketAddr::from((Ipv6Addr::UNSPECIFIED, 0));
    Some(ConnectionAddrs::new(*peer, unknown))
}

impl Connected<IncomingStream<'_, TcpListener>> for ConnectionAddrs {
    fn connect_info(stream: IncomingStream<'_, TcpListener>) -> Self {
        let peer = *stream.remote_addr();
        // A connected socket has a local address; should the call fail, the unspecified
        // address matches no `Host`, so the check only gets stricter.
        let local = stream
            .io()
            .local_addr()
            .unwrap_or_else(|_| SocketAddr::from((Ipv6Addr::UNSPECIFIED, 0)));
        ConnectionAddrs::new(peer, local)
    }
}
