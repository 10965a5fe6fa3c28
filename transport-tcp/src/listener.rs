//! The accept loop: takes connections off a bound `TcpListener` until shutdown, one task
//! per connection (run on the engine's connection workers), and waits for those tasks before
//! returning.
//!
//! Called by [`serve`](crate::serve). It must never end on a failed `accept` (running out
//! of file descriptors is a reason to wait, not to stop serving): it retries with a
//! doubling backoff. It holds no chat state; `connection.rs` does the talking.

use std::sync::Arc;
use std::time::Duration;

use chat_core::Engine;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::Instrument;

use crate::connection;

/// First wait after a failed accept; doubled on each failure in a row, reset by a success.
const MIN_ACCEPT_BACKOFF: Duration = Duration::from_millis(10);
/// Longest wait between two accept attempts.
const MAX_ACCEPT_BACKOFF: Duration = Duration::from_secs(1);

/// Accepts until `shutdown` fires, then waits for every connection task to finish (each
/// tells its client and closes, within `Limits::write_timeout`).
pub(crate) async fn run(listener: TcpListener, engine: Engine, shutdown: CancellationToken) {
    let tracker = TaskTracker::new();
    // `max_connections` counts connections logged in or not. The permit is taken before
    // `accept`, so a full server leaves new clients in the listen backlog.
    let max = engine
        .limits()
        .max_connections
        .clamp(1, Semaphore::MAX_PERMITS);
    let permits = Arc::new(Semaphore::new(max));
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
                spawn_connection(&tracker, &engine, &shutdown, stream, permit, span);
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

/// Runs one connection on one of the engine's connection workers (`Engine::spawn` says why),
/// holding its `permit` until it ends: the socket moves to that thread's reactor.
fn spawn_connection(
    tracker: &TaskTracker,
    engine: &Engine,
    shutdown: &CancellationToken,
    stream: TcpStream,
    permit: OwnedSemaphorePermit,
    span: tracing::Span,
) {
    let stream = match stream.into_std() {
        Ok(stream) => stream,
        Err(e) => {
            tracing::debug!(parent: &span, error = %e, "could not hand the socket over");
            return;
        }
    };
    let (task_engine, shutdown) = (engine.clone(), shutdown.clone());
    let task = async move {
        match TcpStream::from_std(stream) {
            Ok(stream) => connection::run(stream, task_engine, shutdown).await,
            Err(e) => tracing::debug!(error = %e, "could not register the socket"),
        }
        drop(permit);
    };
    if let Err(e) = engine.spawn(tracker.track_future(task.instrument(span))) {
        tracing::debug!(error = %e, "no engine to run the connection");
    }
}
