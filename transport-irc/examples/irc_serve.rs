//! A standalone IRC server on the chat engine, for trying IRC clients by hand:
//! `cargo run -p transport-irc --example irc_serve -- 127.0.0.1:6667`, then
//! `irssi -c 127.0.0.1 -p 6667` (or WeeChat, HexChat). Ctrl-C stops it. The real server is
//! `demo-web`, which runs this transport beside the others; this example owns nothing else.

use std::error::Error;

use chat_core::{Engine, Limits};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use transport_irc::IrcConfig;

#[tokio::main]
async fn main() -> Result<(), Box<dyn Error + Send + Sync>> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:6667".into());
    let listener = TcpListener::bind(&addr).await?;
    eprintln!("listening on {}; Ctrl-C stops", listener.local_addr()?);
    let shutdown = CancellationToken::new();
    let stop = shutdown.clone();
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            stop.cancel();
        }
    });
    serve_until(listener, shutdown).await
}

/// Serves the chat on `listener` with an engine of its own until `shutdown` fires, then
/// stops the transport (every client is told) and the engine.
pub async fn serve_until(
    listener: TcpListener,
    shutdown: CancellationToken,
) -> Result<(), Box<dyn Error + Send + Sync>> {
    let engine = Engine::builder().limits(Limits::default()).start().await?;
    transport_irc::serve(listener, engine.clone(), IrcConfig::default(), shutdown).await?;
    engine.shutdown().await;
    Ok(())
}
