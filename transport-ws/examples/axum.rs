//! The chat inside an axum app: the app's own routes (here `GET /hello`) and the chat's
//! WebSocket at `/ws`, merged into one `Router` on one listener (feature `axum`).
//!
//! Try it: `cargo run -p transport-ws --features axum --example axum` (it prints its
//! address), then `curl http://127.0.0.1:8080/hello`, and
//! `websocat ws://127.0.0.1:8080/ws` followed by `{"type":"login","id":1,"name":"alice"}`
//! (docs/protocol.md has the rest). From a browser, open the console on
//! `http://127.0.0.1:8080/hello` (the same origin) and run
//! `ws = new WebSocket("ws://127.0.0.1:8080/ws"); ws.onmessage = e => console.log(e.data)`.
//! Ctrl-C stops it: every socket gets its close frame before the engine stops.
//!
//! The app has accounts of its own (here a table of cookies): a socket that comes with
//! the cookie `account=key-ann` opens already logged in as that account's user
//! (`Login::External`), and the client sends no `login`; try
//! `websocat -H 'Cookie: account=key-ann' ws://127.0.0.1:8080/ws`. Without the cookie
//! the client logs in with the protocol's `login` as usual.
//!
//! What it shows: `transport_ws::axum::router_with_login` is an ordinary `Router` to
//! merge; the app is served with `ConnectInfo<ConnectionAddrs>` so the chat's
//! per-address limits and `Host` check know the connection's two ends; shutdown is one
//! token for both.

use std::time::Duration;

use axum::http::{header, HeaderMap};
use axum::routing::get;
use axum::Router;
use chat_core::{Engine, Login};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use transport_ws::hyper::ConnectionAddrs;
use transport_ws::{WsChat, WsConfig};

/// The embedder's own route.
async fn hello() -> &'static str {
    "hello from the embedding service\n"
}

/// The app's own accounts: cookie value -> (account id, display name).
const ACCOUNTS: &[(&str, &str, &str)] = &[
    ("key-ann", "acct-1001", "ann"),
    ("key-bo", "acct-1002", "bo"),
];

/// Who the upgrade request's `account` cookie says the client is, if anyone.
fn account(headers: &HeaderMap) -> Option<Login> {
    let cookies = headers.get_all(header::COOKIE).into_iter();
    let key = cookies
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .find_map(|pair| pair.trim().strip_prefix("account="))?;
    let (_, id, name) = ACCOUNTS.iter().find(|(k, _, _)| *k == key)?;
    Some(Login::External {
        id: (*id).to_owned(),
        display_name: (*name).to_owned(),
    })
}

/// Serves the app and the chat on `listener` until `shutdown` fires, then closes every
/// socket and stops the server and the engine, in that order.
pub async fn run(
    listener: TcpListener,
    shutdown: CancellationToken,
) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let engine = Engine::builder().start().await?;
    engine.create_channel("general").await?;
    let chat = WsChat::new(engine.clone(), WsConfig::default(), shutdown.clone())?;
    let app = Router::new()
        .route("/hello", get(hello))
        .merge(transport_ws::axum::router_with_login(chat.clone(), account));
    let service = app.into_make_service_with_connect_info::<ConnectionAddrs>();
    // axum stops taking requests when the token fires; the chat's sockets have left
    // hyper by then, and the same token tells each of them to close.
    axum::serve(listener, service)
        .with_graceful_shutdown(shutdown.clone().cancelled_owned())
        .await?;
    let sockets = chat.tasks();
    sockets.close();
    let _ = tokio::time::timeout(Duration::from_secs(5), sockets.wait()).await;
    engine.shutdown().await;
    Ok(())
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:8080".into());
    let listener = TcpListener::bind(&addr).await?;
    println!("listening on http://{}", listener.local_addr()?);
    let shutdown = CancellationToken::new();
    let stop = shutdown.clone();
    tokio::spawn(async move {
        let _ = tokio::signal::ctrl_c().await;
        stop.cancel();
    });
    run(listener, shutdown).await
}
