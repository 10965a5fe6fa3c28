//! # transport-tcp: the chat engine over plain TCP lines
//!
//! A line protocol for `nc` and `telnet` users: a client types UTF-8 lines (`/join general`,
//! `hello`), and sees one line per event (`[14:03:22] #general <alice> hello (id 42)`),
//! each with a fixed prefix per kind so scripts can `grep` them. The protocol is documented
//! in `docs/tcp.md`, with a sample session.
//!
//! The transport translates and forwards: every chat decision (names, channels, history,
//! rate limits, slow consumers) is the engine's, reached through one
//! [`chat_core::Session`] per logged-in connection, which logs in from the socket's peer
//! address (`Engine::connect_from`). Its own limits (connections, connections and their
//! rate per address, line length, idle and write timeouts) are a [`TcpConfig`]; its
//! connections run on the caller's tokio runtime.
//!
//! ```no_run
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let engine = chat_core::Engine::builder().start().await?;
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:7878").await?;
//! let mut config = transport_tcp::TcpConfig::default();
//! config.max_line_bytes = 4096;
//! config.validate()?;
//! let shutdown = tokio_util::sync::CancellationToken::new();
//! let server = tokio::spawn(transport_tcp::serve(listener, engine.clone(), config, shutdown.clone()));
//! // ... later:
//! shutdown.cancel();
//! server.await?; // every client was told and disconnected
//! engine.shutdown().await;
//! # Ok(()) }
//! ```
//!
//! # Layout
//! - [`serve`] (here): the entry point; checks the config and runs the listener until
//!   shutdown.
//! - [`config`]: [`TcpConfig`], the transport's own limits and timeouts, and their check.
//! - [`accept`]: the accept loop of both line-based listeners, this one and IRC's
//!   (backoff on errors, a connection cap, the per-address gate, one task per connection,
//!   waits for them on shutdown).
//! - `connection`: one client's loop: lines in, answers and engine events out, idle
//!   timeout, bounded writes, shutdown.
//! - `dispatch`: one command to [`Session`](chat_core::Session) calls and the lines that
//!   answer it; tested without sockets.
//! - [`codec`]: bytes to lines: length cap, UTF-8, telnet IAC sequences and Ctrl-C.
//! - [`command`]: a line to a [`Command`](command::Command).
//! - [`render`]: events, replies and errors to output lines, with terminal-safe text.
//! - [`TcpError`]: what the transport itself refuses, with stable codes.

#![warn(missing_docs)]

pub mod accept;
pub mod codec;
pub mod command;
pub mod config;
mod connection;
mod dispatch;
mod error;
pub mod render;

pub use accept::{accept_loop, AcceptSettings};
pub use config::TcpConfig;
pub use error::TcpError;

use chat_core::telemetry::{self, Transport};
use chat_core::{Engine, InvalidLimit};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// Serves the line protocol on `listener` until `shutdown` fires.
///
/// Accepts connections (retrying failed accepts with a backoff, never giving up), runs
/// one task per connection on the current tokio runtime, and, once `shutdown` is
/// cancelled, stops accepting, tells every connected client
/// `! closed shutting_down: server shutting down`, closes it, and returns when all
/// connection tasks have ended (each within [`TcpConfig::write_timeout`]). It does not
/// shut the engine down: the caller does, after this returns.
///
/// Fails at once, serving nothing, when `config` does not pass [`TcpConfig::validate`];
/// otherwise returns `Ok` once it has stopped.
pub async fn serve(
    listener: TcpListener,
    engine: Engine,
    config: TcpConfig,
    shutdown: CancellationToken,
) -> Result<(), InvalidLimit> {
    config.validate()?;
    let settings = AcceptSettings::new(
        "tcp",
        config.max_connections,
        config.max_connections_per_address,
        config.connect_rate_per_address,
    );
    let write_timeout = config.write_timeout;
    let serve = |stream, peer| {
        // Counted from here until the connection's task ends.
        let counted = telemetry::connection_opened(Transport::Tcp);
        let run = connection::run(
            stream,
            peer,
            engine.clone(),
            config.clone(),
            shutdown.clone(),
        );
        async move {
            run.await;
            drop(counted);
        }
    };
    let refuse = |stream, refused| connection::refuse(stream, refused, write_timeout);
    accept_loop(listener, settings, shutdown.clone(), serve, refuse).await;
    Ok(())
}
