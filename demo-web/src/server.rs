//! `run`: the demo server once its sockets are bound. Starts the engine, serves the web
//! front end, `/ws` (transport-ws), the probes `/healthz` and `/readyz` and (unless it has
//! a listener of its own, or none) `/metrics` on one listener, the line protocol (transport-tcp)
//! on another and IRC (transport-irc) on a third, and shuts all of it down when the token
//! is cancelled.
//!
//! Called by `main.rs` (which parses flags, sets up tracing, binds and turns signals into
//! the token) and usable from tests with listeners on port 0. It owns the shutdown order
//! and nothing else: it must not parse flags, install signal handlers or print.
//!
//! # Shutdown
//! One [`CancellationToken`] drives everything, in the order `docs/architecture.md`
//! gives:
//! 1. the token is cancelled: the TCP and IRC listeners stop accepting and every TCP
//!    client gets its shutdown line, every IRC client its `ERROR`, every WebSocket close
//!    1001 (the transports watch the token);
//! 2. the HTTP server stops accepting; once every WebSocket task has sent its close and
//!    ended (they run on the server's workers), the server stops;
//! 3. the engine stops, and last its store writes what it has not written yet (so a
//!    SIGTERM loses nothing acknowledged).
//!
//! Steps 1–2 are bounded by [`Config::shutdown_timeout`] and step 3 by the same again, so
//! a stuck client cannot keep the process alive.

use std::net::TcpListener;
use std::path::PathBuf;
use std::time::Duration;

use actix_web::dev::ServerHandle;
use actix_web::{web, App};
use chat_core::{ChatError, Engine, InvalidLimit, Limits};
use metrics_exporter_prometheus::PrometheusHandle;
use tokio_util::sync::CancellationToken;
use transport_irc::IrcConfig;
use transport_tcp::TcpConfig;
use transport_ws::{WsChat, WsConfig};

use crate::{assets, exporter, files, probes};

/// What `run` needs besides its listeners.
#[derive(Debug, Clone)]
pub struct Config {
    /// The engine's limits.
    pub limits: Limits,
    /// The WebSocket transport's settings (origins, frame size, timeouts).
    pub ws: WsConfig,
    /// The line transport's settings.
    pub tcp: TcpConfig,
    /// The IRC transport's settings.
    pub irc: IrcConfig,
    /// Longest wait for clients to be closed on shutdown, and again for the engine.
    pub shutdown_timeout: Duration,
    /// Where the engine keeps users, channels and messages.
    pub store: Store,
    /// Channels to create at start-up unless they exist.
    pub channels: Vec<String>,
    /// The installed metrics recorder's handle, served at `/metrics` (on the web listener,
    /// or on the metrics listener `run` is given); `None` serves no metrics.
    pub metrics: Option<PrometheusHandle>,
}

/// Where the engine keeps users, channels and messages.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Store {
    /// In this process only: a restart starts from nothing.
    Memory,
    /// This SQLite file (its directory must exist): a restart loses nothing acknowledged.
    Sqlite(PathBuf),
    /// The Redis that several nodes share (`redis://HOST:PORT`).
    Redis(String),
}

/// Why the server could not start or stopped with a failure.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// A setting has a value the server cannot run with.
    #[error("invalid setting {0}")]
    Config(#[from] InvalidLimit),
    /// The chat engine refused to start.
    #[error("cannot start the chat engine: {0}")]
    Engine(#[from] ChatError),
    /// A listener could not be used, or the HTTP server failed.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: &'static str,
        /// The underlying error.
        source: std::io::Error,
    },
}

impl ServerError {
    fn io(context: &'static str) -> impl FnOnce(std::io::Error) -> ServerError {
        move |source| ServerError::Io { context, source }
    }
}

/// The listeners `run` serves, already bound; each optional one is `None` when it is
/// disabled.
#[derive(Debug)]
pub struct Listeners {
    /// The web front end, `/ws`, `/healthz`, `/readyz` and, without `metrics`,
    /// `/metrics`.
    pub http: TcpListener,
    /// The line protocol.
    pub tcp: Option<TcpListener>,
    /// IRC.
    pub irc: Option<TcpListener>,
    /// `/metrics` on an address of its own (used only with `Config::metrics`).
    pub metrics: Option<TcpListener>,
}

/// Runs the demo server on listeners that are already bound until `shutdown` is
/// cancelled, then shuts down in order and returns. Must be called from inside a
/// multi-threaded tokio runtime.
pub async fn run(
    config: Config,
    listeners: Listeners,
    shutdown: CancellationToken,
) -> Result<(), ServerError> {
    // Checked before anything starts: a bad value is refused, never a failure later.
    config.ws.validate()?;
    config.tcp.validate()?;
    config.irc.validate()?;
    let engine = Engine::builder().limits(config.limits.clone());
    let engine = match &config.store {
        Store::Memory => engine,
        Store::Sqlite(path) => engine.sqlite(path.clone()),
        Store::Redis(url) => engine.redis(url.clone()),
    };
    let engine = engine.start().await?;
    for name in &config.channels {
        match engine.create_channel(name).await {
            Ok(_) => tracing::info!(channel = %name, "created at start-up"),
            Err(ChatError::ChannelExists(_)) => {}
            Err(e) => return Err(ServerError::Engine(e)),
        }
    }
    if let Some(handle) = &config.metrics {
        tokio::spawn(exporter::upkeep(handle.clone(), shutdown.clone()));
    }
    let result = serve(&config, &engine, listeners, shutdown.clone()).await;
    // Whatever happened, the engine stops last, once no transport uses it any more.
    shutdown.cancel();
    if tokio::time::timeout(config.shutdown_timeout, engine.shutdown())
        .await
        .is_err()
    {
        tracing::warn!(timeout = ?config.shutdown_timeout, "the engine did not stop in time");
    }
    tracing::info!("stopped");
    result
}

/// Serves the transports until `shutdown` is cancelled (or the HTTP server fails), then
/// waits, bounded, for their clients to be closed.
async fn serve(
    config: &Config,
    engine: &Engine,
    listeners: Listeners,
    shutdown: CancellationToken,
) -> Result<(), ServerError> {
    let Listeners {
        http,
        tcp,
        irc,
        metrics,
    } = listeners;
    let tcp_task = match tcp {
        Some(listener) => Some(tokio::spawn(transport_tcp::serve(
            tokio_listener(listener, "cannot use the TCP listener")?,
            engine.clone(),
            config.tcp.clone(),
            shutdown.clone(),
        ))),
        None => None,
    };
    let irc_task = match irc {
        Some(listener) => Some(tokio::spawn(transport_irc::serve(
            tokio_listener(listener, "cannot use the IRC listener")?,
            engine.clone(),
            config.irc.clone(),
            shutdown.clone(),
        ))),
        None => None,
    };

    let chat = WsChat::new(engine.clone(), config.ws.clone(), shutdown.clone())?;
    let ws_tasks = chat.tasks();
    let builder = actix_server::Server::build()
        .disable_signals()
        .shutdown_timeout(config.shutdown_timeout.as_secs().max(1));
    // `/metrics` is on the web listener unless it has a listener of its own.
    let (metrics_here, metrics_own) = match (&config.metrics, metrics) {
        (Some(handle), Some(listener)) => (None, Some((handle.clone(), listener))),
        (handle, _) => (handle.clone(), None),
    };
    let (probed, stopping) = (engine.clone(), shutdown.clone());
    let app = move || {
        let (engine, shutdown, metrics) = (probed.clone(), stopping.clone(), metrics_here.clone());
        App::new().configure(|cfg| routes(cfg, engine, shutdown, metrics))
    };
    let server = chat
        .listen(builder, http, app)
        .map_err(ServerError::io("cannot use the HTTP listener"))?
        .run();
    let metrics_server = match metrics_own {
        Some((handle, listener)) => Some(own_metrics(listener, handle, config)?),
        None => None,
    };
    let handle = server.handle();
    let mut http_task = tokio::spawn(server);

    let http_result = tokio::select! {
        _ = shutdown.cancelled() => None,
        ended = &mut http_task => Some(ended),
    };
    tracing::info!("shutting down");
    shutdown.cancel();

    let closing = async {
        // Stop accepting, then wait for the socket tasks (each has seen the token and is
        // sending its close 1001; they run on the HTTP server's workers, so the server
        // stops only after them). Then wait for the TCP and IRC listeners (which close
        // their own clients).
        handle.pause().await;
        ws_tasks.close();
        ws_tasks.wait().await;
        handle.stop(true).await;
        if let Some(metrics) = metrics_server {
            metrics.stop(true).await;
        }
        let http = match http_result {
            Some(ended) => ended,
            None => http_task.await,
        };
        for (name, task) in [("TCP", tcp_task), ("IRC", irc_task)] {
            let Some(task) = task else { continue };
            match task.await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => tracing::error!(error = %e, "the {name} listener refused its config"),
                Err(e) => tracing::error!(error = %e, "the {name} listener task failed"),
            }
        }
        http
    };
    match tokio::time::timeout(config.shutdown_timeout, closing).await {
        Ok(Ok(result)) => result.map_err(ServerError::io("the HTTP server failed")),
        Ok(Err(join)) => {
            tracing::error!(error = %join, "the HTTP server task failed");
            Ok(())
        }
        Err(_) => {
            tracing::warn!(
                timeout = ?config.shutdown_timeout,
                "clients were still connected at the shutdown timeout"
            );
            Ok(())
        }
    }
}

/// The web listener's routes besides `/ws`: the front end, `/files`, and `/healthz`, `/readyz`, and
/// `/metrics` when `metrics` is given.
fn routes(
    cfg: &mut web::ServiceConfig,
    engine: Engine,
    shutdown: CancellationToken,
    metrics: Option<PrometheusHandle>,
) {
    assets::configure(cfg);
    files::configure(cfg, engine.clone());
    probes::configure(cfg, engine, shutdown);
    if let Some(handle) = metrics {
        exporter::configure(cfg, handle);
    }
}

/// Starts `/metrics` on its own listener; the handle stops it.
fn own_metrics(
    listener: TcpListener,
    handle: PrometheusHandle,
    config: &Config,
) -> Result<ServerHandle, ServerError> {
    let server = exporter::serve_own(listener, handle, config.ws.public_hosts.clone())
        .map_err(ServerError::io("cannot use the metrics listener"))?;
    let stop = server.handle();
    tokio::spawn(server);
    Ok(stop)
}

/// A bound std listener as tokio's, for a transport.
fn tokio_listener(
    listener: TcpListener,
    context: &'static str,
) -> Result<tokio::net::TcpListener, ServerError> {
    listener
        .set_nonblocking(true)
        .map_err(ServerError::io(context))?;
    tokio::net::TcpListener::from_std(listener).map_err(ServerError::io(context))
}
