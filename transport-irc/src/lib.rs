//! # transport-irc: the chat engine over IRC
//!
//! Lets IRC clients (irssi, WeeChat, HexChat, bouncers) chat on the same engine as the web
//! and terminal users: the same users, channels, history, private messages, presence and
//! limits. A channel `general` is `#general`; a private conversation is a query with the
//! other user's nick; a display name that a nick cannot hold is escaped reversibly
//! (`Ann Lee` is `Ann\20Lee`, see [`nick`]). The protocol and what is supported are in
//! `docs/irc.md`.
//!
//! The transport translates and forwards: every chat decision (names, channels, history,
//! rate limits, slow consumers) is the engine's, reached through one
//! [`chat_core::Session`] per registered connection. Lines are parsed and written by
//! `irc-proto`; its own limits (connections, timeouts, names) are an [`IrcConfig`]; its
//! connections run on the caller's tokio runtime.
//!
//! ```no_run
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let engine = chat_core::Engine::builder().start().await?;
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:6667").await?;
//! let config = transport_irc::IrcConfig::default();
//! let shutdown = tokio_util::sync::CancellationToken::new();
//! let server = tokio::spawn(transport_irc::serve(listener, engine.clone(), config, shutdown.clone()));
//! // ... later:
//! shutdown.cancel();
//! server.await??; // every client got ERROR and was disconnected
//! engine.shutdown().await;
//! # Ok(()) }
//! ```
//!
//! # Layout
//! - [`serve`] (here): the entry point; checks the config and runs the listener until
//!   shutdown.
//! - [`config`]: [`IrcConfig`], the transport's own limits and names, and IRC's line limits.
//! - the accept loop is transport-tcp's (`transport_tcp::accept_loop`): IRC connections
//!   cost and fail like line connections (backoff on errors, a connection cap, the
//!   per-address gate answered with `ERROR`, one task per connection, waits for them on
//!   shutdown).
//! - `connection`: one client's loop: lines in, answers and engine events out, PING
//!   keep-alive, bounded writes, echo-message, shutdown.
//! - `dispatch/`: one IRC message to [`Session`](chat_core::Session) calls and the lines
//!   that answer it, tested without sockets: `register` (CAP, NICK, USER, PASS, the
//!   welcome burst), `channels` (JOIN, PART, NAMES, LIST, TOPIC, MODE), `users` (WHO,
//!   WHOIS, AWAY, USERHOST, ISON), `messages` (PRIVMSG, NOTICE, TAGMSG, REDACT) and
//!   `history` (CHATHISTORY).
//! - [`codec`]: bytes to lines: IRC's length limits, UTF-8.
//! - [`nick`]: the reversible mapping between display names and nicks.
//! - [`caps`]: the IRCv3 capabilities offered and enabled.
//! - [`render`]: messages and events to IRC lines (prefixes, tags, msgids, splitting).
//! - [`reply`]: numerics, notices and `ERROR` from the server; which numeric carries which
//!   refusal.
//! - [`IrcError`]: what the transport itself refuses, with stable codes.

#![warn(missing_docs)]

pub mod caps;
pub mod codec;
pub mod config;
mod connection;
mod dispatch;
mod error;
pub mod nick;
pub mod render;
pub mod reply;

pub use config::IrcConfig;
pub use error::IrcError;

use chat_core::telemetry::{self, Transport};
use chat_core::{Engine, InvalidLimit};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use transport_tcp::{accept_loop, AcceptSettings};

/// Serves IRC on `listener` until `shutdown` fires.
///
/// Accepts connections (retrying failed accepts with a backoff, never giving up), runs one
/// task per connection on the current tokio runtime, and, once `shutdown` is cancelled,
/// stops accepting, sends every client `ERROR :Closing link: shutting_down: ...`, closes
/// it, and returns when all connection tasks have ended (each within
/// [`IrcConfig::write_timeout`]). It does not shut the engine down: the caller does.
///
/// Fails at once, serving nothing, when `config` does not pass [`IrcConfig::validate`].
pub async fn serve(
    listener: TcpListener,
    engine: Engine,
    config: IrcConfig,
    shutdown: CancellationToken,
) -> Result<(), InvalidLimit> {
    config.validate()?;
    let settings = AcceptSettings::new(
        "irc",
        config.max_connections,
        config.max_connections_per_address,
        config.connect_rate_per_address,
    );
    let write_timeout = config.write_timeout;
    let serve = |stream, peer| {
        // Counted from here until the connection's task ends.
        let counted = telemetry::connection_opened(Transport::Irc);
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
