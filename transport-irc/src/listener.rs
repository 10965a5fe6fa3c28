//! The accept loop: takes connections off a bound `TcpListener` until shutdown, one task
//! per connection on the caller's tokio runtime, and waits for those tasks before
//! returning.
//!
//! Called by [`serve`](crate::serve). It must never end on a failed `accept` (running out
//! of file descriptors is a reason to wait, not to stop serving): it retries with a
//! doubling backoff. It holds no chat state; `connection.rs` does the talking. It is the
//! same loop as transport-tcp's: IRC connections cost and fail the same way.

use std::sync::Arc;
use std::time::Duration;

use chat_core::telemetry::{self, Transport};
use chat_core::Engine;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::Instrument;

use crate::config::IrcConfig;
use crate::connection;

/// First wait after a failed accept; doubled on each failure in a row, reset by a success.
const MIN_ACCEPT_BACKOFF: Duration = Duration::from_millis(10);
/// Longest wait between two accept attempts.
const MAX_ACCEPT_BACKOFF: Duration = Duration::from_secs(1);

/// Accepts until `shutdown` fires, then waits for every connection task to finish (each
/// sends its client ERROR and closes, within `IrcConfig::write_timeout`).
pub(crate) async fn run(
    listener: TcpListener,
    engine: Engine,
    config: IrcConfig,
    shutdown: CancellationToken,
) {
    let tracker = TaskTracker::new();
    // `max_connections` counts connections logged in or not. The permit is taken before
    // `accept`, so a full server leaves new clients in the listen backlog.
    let max = config.max_connections.clamp(1, Semaphore::MAX_PERMITS);
    let permits = Arc::new(Semaphore::new(max));
    let mut backoff = MIN_ACCEPT_BACKOFF;
    match listener.local_addr() {
        Ok(addr) => tracing::info!(%addr, "irc transport listening"),
        Err(e) => tracing::info!(error = %e, "irc transport listening (address unknown)"),
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
                // IRC lines are small and latency-bound: no Nagle delay.
                if let Err(e) = stream.set_nodelay(true) {
                    tracing::debug!(error = %e, "cannot set TCP_NODELAY");
                }
                let span = tracing::info_span!(
                    "irc_connection",
                    %peer,
                    session_id = tracing::field::Empty
                );
                let task =
                    connection::run(stream, engine.clone(), config.clone(), shutdown.clone());
                // The permit moves into the task: the slot is free once the connection ends.
                let counted = telemetry::connection_opened(Transport::Irc);
                let task = async move {
                    task.await;
                    drop((permit, counted));
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
        "irc transport stopped accepting; closing connections"
    );
    tracker.wait().await;
    tracing::info!("irc transport stopped");
}
