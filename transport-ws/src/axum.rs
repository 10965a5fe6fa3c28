//! The axum entry point (feature `axum`): [`router`] is a `Router` with our `GET /ws`
//! (`WS_PATH`), to merge into the embedder's axum 0.8 app beside its own routes. Built
//! on the hyper adapter (`hyper.rs`): the same checks, the same connection loop.
//!
//! The route needs the connection's addresses: serve the app with
//! `into_make_service_with_connect_info::<ConnectionAddrs>()` (the peer and the address
//! it reached). With `ConnectInfo<SocketAddr>` only, the local address is unknown and
//! the `Host` check serves just the configured and built-in names; with neither, every
//! upgrade is refused with 500 and a line saying what is missing.

use std::net::{Ipv6Addr, SocketAddr};

use ::axum::body::Body;
use ::axum::extract::connect_info::{ConnectInfo, Connected};
use ::axum::extract::{Request, State};
use ::axum::response::Response;
use ::axum::routing::get;
use ::axum::serve::IncomingStream;
use ::axum::Router;
use tokio::net::TcpListener;

use crate::hyper::{refused, upgrade, ConnectionAddrs};
use crate::upgrade::{Refusal, WS_PATH};
use crate::WsChat;

/// A router serving `GET /ws` for `chat`; merge it into the app
/// (`Router::new().route("/", ..).merge(transport_ws::axum::router(chat))`), whatever
/// the app's own state.
pub fn router<S>(chat: WsChat) -> Router<S>
where
    S: Clone + Send + Sync + 'static,
{
    Router::new().route(WS_PATH, get(ws)).with_state(chat)
}

/// The `/ws` handler: a WebSocket upgrade, through the hyper adapter.
async fn ws(State(chat): State<WsChat>, request: Request) -> Response {
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
    upgrade(&chat, request, addrs).map(Body::new)
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
