//! The chat next to your own actix-web routes: one listener serves the embedder's `App`
//! (here `GET /hello`) and the chat's WebSocket at `/ws`.
//!
//! Try it: `cargo run -p transport-ws --example actix` (it prints its address), then
//! `curl http://127.0.0.1:8080/hello`, and `websocat ws://127.0.0.1:8080/ws` followed by
//! `{"type":"login","id":1,"name":"alice"}` (docs/protocol.md has the rest). Ctrl-C stops
//! it: every socket gets its close frame before the engine stops.

use std::time::Duration;

use actix_web::{web, App, HttpResponse};
use chat_core::Engine;
use tokio_util::sync::CancellationToken;
use transport_ws::{WsChat, WsConfig};

/// The embedder's own route.
async fn hello() -> HttpResponse {
    HttpResponse::Ok().body("hello from the embedding service\n")
}

/// Serves the app and the chat on `listener` until `shutdown` fires, then closes every
/// socket, stops the server and the engine, in that order.
pub async fn run(
    listener: std::net::TcpListener,
    shutdown: CancellationToken,
) -> Result<(), Box<dyn std::error::Error>> {
    let engine = Engine::builder().start().await?;
    engine.create_channel("general").await?;
    let chat = WsChat::new(engine.clone(), WsConfig::default(), shutdown.clone())?;
    let builder = actix_server::Server::build().disable_signals();
    let server = chat
        .listen(builder, listener, || {
            App::new().route("/hello", web::get().to(hello))
        })?
        .run();
    let handle = server.handle();
    let serving = tokio::spawn(server);
    shutdown.cancelled().await;
    // The order that loses nothing: stop accepting, let every socket say goodbye, then stop
    // the server and the engine.
    handle.pause().await;
    let sockets = chat.tasks();
    sockets.close();
    let _ = tokio::time::timeout(Duration::from_secs(5), sockets.wait()).await;
    handle.stop(true).await;
    serving.await??;
    engine.shutdown().await;
    Ok(())
}

#[actix_web::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:8080".into());
    let listener = std::net::TcpListener::bind(&addr)?;
    println!("listening on http://{}", listener.local_addr()?);
    let shutdown = CancellationToken::new();
    let stop = shutdown.clone();
    tokio::spawn(async move {
        let _ = tokio::signal::ctrl_c().await;
        stop.cancel();
    });
    run(listener, shutdown).await
}
