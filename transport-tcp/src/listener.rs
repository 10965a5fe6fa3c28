//! The accept loop: takes connections off a bound `TcpListener` until shutdown, one task
//! per connection on the caller's tokio runtime, and waits for those tasks before
//! returning.
//!
//! Called by [`serve`](crate::serve). It must never end on a failed `accept` (running out
//! of file descriptors is a reason to wait, not to stop serving): it retries with a
//! doubling backoff. It holds no chat state; `connection.rs` does the talking.
//!
//! Every accepted connection passes the per-address gate first
//! (`TcpConfig::max_connections_per_address`, `TcpConfig::connect_rate_per_address`): a
//! refused one gets its one `! closed` line from a short task of its own, so the loop
//! never waits on a client.

use std::sync::Arc;
use std::time::Duration;

use chat_core::telemetry::{self, Transport};
use chat_core::{ConnectionGate, Engine};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::Instrument;

use crate::config::TcpConfig;
use crate::connection;

/// First wait after a failed accept; doubled on each failure in a row, reset by a success.
const MIN_ACCEPT_BACKOFF: Duration = Duration::from_millis(10);
/// Longest wait between two accept attempts.
const MAX_ACCEPT_BACKOFF: Duration = Duration::from_secs(1);

/// Accepts until `shutdown` fires, then waits for every connection task to finish (each
/// tells its client and closes, within `TcpConfig::write_timeout`).
pub(crate) async fn run(
    listener: TcpListener,
    engine: Engine,
    config: TcpConfig,
    shutdown: CancellationToken,
) {
    let tracker = TaskTracker::new();
    // `max_connections` counts connections logged in or not. The permit is taken before
    // `accept`, so a full server leaves new clients in the listen backlog.
    let max = config.max_connections.clamp(1, Semaphore::MAX_PERMITS);
    let permits = Arc::new(Semaphore::new(max));
    let gate = ConnectionGate::new(
        config.connect_rate_per_address,
        config.max_connections_per_address,
    );
    let mut backoff = MIN_ACCEPT_BACKOFF;
    match listener.local_addr() {
        Ok(addr) => tracing::info!(%addr, "tcp transport listening"),
        Err(e) => tracing::info!(error = %e, "tcp transport listening (address unknown)"),
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
        match accepted {
            Ok((stream, peer)) => {
                backoff = MIN_ACCEPT_BACKOFF;
                // Lines are small and latency-bound: no Nagle delay.
                if let Err(e) = stream.set_nodelay(true) {
                    tracing::debug!(error = %e, "cannot set TCP_NODELAY");
                }
                let span = tracing::info_span!(
                    "tcp_connection",
                    %peer,
                    session_id = tracing::field::Empty
                );
                let slot = match gate.admit(peer.ip()) {
                    Ok(slot) => slot,
                    Err(refused) => {
                        // Debug, not warn: a flood of refusals must not flood the log.
                        tracing::debug!(%peer, code = refused.code(), "connection refused");
                        // The permit stays taken until the line is written (at most
                        // `write_timeout`), so refusals are bounded like connections.
                        let refuse = connection::refuse(stream, refused, config.write_timeout);
                        let task = async move {
                            refuse.await;
                            drop(permit);
                        };
                        tokio::spawn(tracker.track_future(task.instrument(span)));
                        continue;
                    }
                };
                let task = connection::run(
                    stream,
                    peer.ip(),
                    engine.clone(),
                    config.clone(),
                    shutdown.clone(),
                );
                // The permit and the address's slot move into the task: both are free once
                // the connection ends.
                let counted = telemetry::connection_opened(Transport::Tcp);
                let task = async move {
                    task.await;
                    drop((permit, slot, counted));
                };
                tokio::spawn(tracker.track_future(task.instrument(span)));
            }
            Err(e) => {
                tracing::warn!(error = %e, retry_in_ms = backoff.as_millis() as u64, "accept failed");
                tokio::select! {
                    _ = shutdown.cancelled() => break,
                    _ = tokio::time::sleep(backoff) => {}
                }
                backoff = (backoff * 2).min(MAX_ACCEPT_BACKOFF);
            }
        }
    }

    drop(listener);
    tracker.close();
    tracing::info!(
        connections = tracker.len(),
        "tcp transport stopped accepting; closing connections"
    );
    tracker.wait().await;
    tracing::info!("tcp transport stopped");
}
