//! The engine's threads: one runs an actix `System` with the registry; `room_workers`
//! more (actix arbiters) run the room actors, placed round-robin.
//!
//! Callers only await futures that resolve through channels, so the engine works from any
//! tokio runtime, or none, and no actix type leaks into the API. The threads are plain
//! threads with their default scheduling: the engine never changes a thread or process
//! setting of its host.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use actix::prelude::*;
use tokio::sync::oneshot;

use crate::broker::Broker;
use crate::directory::RegistryActor;
use crate::error::ChatError;
use crate::limits::Limits;

/// What the engine thread hands back once it is running.
pub(crate) struct Started {
    pub(crate) system: System,
    pub(crate) registry: Addr<RegistryActor>,
    pub(crate) broker: Arc<dyn Broker>,
}

/// Makes a broker on the thread that calls it (its future need not be `Send`).
pub(crate) type MakeBroker =
    Box<dyn FnOnce() -> Pin<Box<dyn Future<Output = Result<Arc<dyn Broker>, ChatError>>>> + Send>;

/// Where the engine's broker comes from.
pub(crate) enum BrokerSource {
    /// Made already: in memory, an embedder's, or the SQLite store.
    Ready(Arc<dyn Broker>),
    /// Made on the first room worker, so that the tasks it starts (a Redis connection, its
    /// pub/sub reader) run beside the rooms they feed, and what one read brings reaches
    /// them as one batch.
    #[cfg_attr(not(feature = "redis"), allow(dead_code))]
    OnWorker(MakeBroker),
}

pub(crate) fn engine_failed() -> ChatError {
    ChatError::Unavailable("the engine's actor system failed to start".into())
}

/// Starts the engine thread with `room_workers` room threads (at least one) and waits
/// until it runs, or says why it could not start.
pub(crate) async fn start(
    limits: Arc<Limits>,
    room_workers: usize,
    broker: BrokerSource,
) -> Result<Started, ChatError> {
    let (report, started) = oneshot::channel();
    std::thread::Builder::new()
        .name("chat-engine".into())
        .spawn(move || {
            let runner = System::new();
            let started = runner.block_on(boot(limits, room_workers.max(1), broker));
            let ready = started.is_ok();
            let _ = report.send(started);
            if ready {
                if let Err(e) = runner.run() {
                    tracing::error!(error = %e, "chat engine stopped with an error");
                }
            }
        })
        .map_err(|e| ChatError::Unavailable(format!("cannot start engine thread: {e}")))?;
    started.await.map_err(|_| engine_failed())?
}

/// Starts the room workers, the broker (if it is made here) and the registry.
async fn boot(
    limits: Arc<Limits>,
    room_workers: usize,
    broker: BrokerSource,
) -> Result<Started, ChatError> {
    let workers = start_workers(room_workers)?;
    let broker = match broker {
        BrokerSource::Ready(broker) => Ok(broker),
        BrokerSource::OnWorker(make) => make_on(&workers[0], make).await,
    };
    let broker = broker.inspect_err(|_| stop_all(&workers))?;
    let handles = workers.iter().map(Arbiter::handle).collect();
    let registry = RegistryActor::new(limits, broker.clone(), handles).start();
    Ok(Started {
        system: System::current(),
        registry,
        broker,
    })
}

/// Starts `count` worker arbiters, each a thread of its own.
fn start_workers(count: usize) -> Result<Vec<Arbiter>, ChatError> {
    let mut arbiters = Vec::with_capacity(count);
    for _ in 0..count {
        match Arbiter::try_new() {
            Ok(arbiter) => arbiters.push(arbiter),
            Err(e) => {
                tracing::error!(error = %e, "cannot start an engine worker thread");
                stop_all(&arbiters);
                return Err(ChatError::Unavailable(format!(
                    "cannot start an engine worker thread: {e}"
                )));
            }
        }
    }
    Ok(arbiters)
}

/// Stops the workers of an engine that could not start.
fn stop_all(arbiters: &[Arbiter]) {
    for arbiter in arbiters {
        arbiter.stop();
    }
}

/// Runs `make` on `worker` and waits for the broker it makes.
async fn make_on(worker: &Arbiter, make: MakeBroker) -> Result<Arc<dyn Broker>, ChatError> {
    let (made, broker) = oneshot::channel();
    worker.spawn_fn(move || {
        actix::spawn(async move {
            let _ = made.send(make().await);
        });
    });
    broker.await.map_err(|_| engine_failed())?
}
