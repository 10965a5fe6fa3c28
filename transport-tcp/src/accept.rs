//! The accept loop of a line-based listener: takes connections off a bound `TcpListener`
//! until shutdown, one task per connection on the caller's tokio runtime, and waits for
//! those tasks before returning. The line protocol ([`serve`](crate::serve)) and the IRC
//! transport (`transport-irc`) both run on it: their connections cost and fail the same
//! way, only what is said on them differs.
//!
//! It must never end on a failed `accept` (running out of file descriptors is a reason to
//! wait, not to stop serving): it retries with a doubling backoff. It holds no chat
//! state; the caller's `serve` does the talking.
//!
//! Every accepted connection passes the per-address gate first
//! ([`AcceptSettings::max_connections_per_address`],
//! [`AcceptSettings::connect_rate_per_address`]): a refused one is handed to the caller's
//! `refuse` (one line saying why) in a short task of its own, so the loop never waits on
//! a client.

use std::future::Future;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use chat_core::{ConnectionGate, GateRefusal, Rate};
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::Instrument;

/// First wait after a failed accept; doubled on each failure in a row, reset by a success.
const MIN_ACCEPT_BACKOFF: Duration = Duration::from_millis(10);
/// Longest wait between two accept attempts.
const MAX_ACCEPT_BACKOFF: Duration = Duration::from_secs(1);

/// How one listener admits connections: its caps overall and per client address. Both
/// line transports fill it from their configs.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct AcceptSettings {
    /// The transport's name in logs (`tcp`, `irc`).
    pub transport: &'static str,
    /// Most open connections, logged in or not; more wait in the listen backlog.
    pub max_connections: usize,
    /// Most open connections from one client address (an IPv6 address counts by its /64).
    pub max_connections_per_address: usize,
    /// Rate of new connections from one client address.
    pub connect_rate_per_address: Rate,
}

impl AcceptSettings {
    /// Settings for the transport named `transport`.
    pub fn new(
        transport: &'static str,
        max_connections: usize,
        max_connections_per_address: usize,
        connect_rate_per_address: Rate,
    ) -> AcceptSettings {
        AcceptSettings {
            transport,
            max_connections,
            max_connections_per_address,
            connect_rate_per_address,
        }
    }
}

/// Writes `line` (the refusal, with its line ending) to a refused connection within
/// `write_timeout`, and closes it. Nothing is read: the client's first line may be on its
/// way, and is dropped with the connection.
pub async fn refuse_with(mut stream: TcpStream, line: String, write_timeout: Duration) {
    let write = async {
        stream.write_all(line.as_bytes()).await?;
        stream.shutdown().await
    };
    match tokio::time::timeout(write_timeout, write).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => tracing::debug!(error = %e, "could not tell a refused connection why"),
        Err(_) => tracing::debug!("could not tell a refused connection why: write timed out"),
    }
}

/// Accepts until `shutdown` fires, then waits for every connection task to finish (each
/// tells its client and closes, within its transport's write timeout). `serve` talks to
/// an admitted connection from its client's address; `refuse` tells a connection the gate
/// refused why.
pub async fn accept_loop<S, SF, R, RF>(
    listener: TcpListener,
    settings: AcceptSettings,
    shutdown: CancellationToken,
    serve: S,
    refuse: R,
) where
    S: Fn(TcpStream, IpAddr) -> SF,
    SF: Future<Output = ()> + Send + 'static,
    R: Fn(TcpStream, GateRefusal) -> RF,
    RF: Future<Output = ()> + Send + 'static,
{
    let transport = settings.transport;
    let tracker = TaskTracker::new();
    // `max_connections` counts connections logged in or not. The permit is taken before
    // `accept`, so a full server leaves new clients in the listen backlog.
    let max = settings.max_connections.clamp(1, Semaphore::MAX_PERMITS);
    let permits = Arc::new(Semaphore::new(max));
    let gate = ConnectionGate::new(
        settings.connect_rate_per_address,
        settings.max_connections_per_address,
    );
    let mut backoff = MIN_ACCEPT_BACKOFF;
    match listener.local_addr() {
        Ok(addr) => tracing::info!(%addr, transport, "listening"),
        Err(e) => tracing::info!(error = %e, transport, "listening (address unknown)"),
    }

    loop {
        let permit = tokio::select! {
            _ = shutdown.cancelled() => break,
            permit = permits.clone().acquire_owned() => match permit {
                Ok(permit) => permit,
                // The semaphore is never closed; if it were, no connection could be served.
                Err(_) => break,
            },
        };
        let accepted = tokio::select! {
            _ = shutdown.cancelled() => break,
            accepted = listener.accept() => accepted,
        };
        let (stream, peer) = match accepted {
            Ok(accepted) => accepted,
            Err(e) => {
                tracing::warn!(error = %e, transport, retry_in_ms = backoff.as_millis() as u64, "accept failed");
                tokio::select! {
                    _ = shutdown.cancelled() => break,
                    _ = tokio::time::sleep(backoff) => {}
                }
                backoff = (backoff * 2).min(MAX_ACCEPT_BACKOFF);
                continue;
            }
        };
        backoff = MIN_ACCEPT_BACKOFF;
        // Lines are small and latency-bound: no Nagle delay.
        if let Err(e) = stream.set_nodelay(true) {
            tracing::debug!(error = %e, "cannot set TCP_NODELAY");
        }
        let span = tracing::info_span!(
            "connection",
            transport,
            %peer,
            session_id = tracing::field::Empty
        );
        let task = match gate.admit(peer.ip()) {
            // The permit and the address's slot move into the task: both are free once
            // the connection ends.
            Ok(slot) => {
                let serving = serve(stream, peer.ip());
                tokio::spawn(
                    tracker.track_future(
                        async move {
                            serving.await;
                            drop((permit, slot));
                        }
                        .instrument(span),
                    ),
                )
            }
            Err(refused) => {
                // Debug, not warn: a flood of refusals must not flood the log.
                tracing::debug!(%peer, transport, code = refused.code(), "connection refused");
                // The permit stays taken until the refusal is written (at most the write
                // timeout), so refusals are bounded like connections.
                let refusing = refuse(stream, refused);
                tokio::spawn(
                    tracker.track_future(
                        async move {
                            refusing.await;
                            drop(permit);
                        }
                        .instrument(span),
                    ),
                )
            }
        };
        drop(task);
    }

    drop(listener);
    tracker.close();
    tracing::info!(
        transport,
        connections = tracker.len(),
        "stopped accepting; closing connections"
    );
    tracker.wait().await;
    tracing::info!(transport, "stopped");
}
