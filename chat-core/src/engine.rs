//! `Engine`: the cloneable handle an embedder keeps, and the actor runtime behind it.
//!
//! `Engine::start` runs the actors on threads of their own (an actix system with one
//! registry and `Limits::channel_workers` arbiters for the channel actors), so the engine
//! works from any tokio runtime, or none: callers only ever await futures that resolve
//! through channels. No actix type appears in this API.
//!
//! `Limits::connection_workers` more arbiters run the transports' connection tasks
//! ([`Engine::spawn`]), apart from the rooms so that a room never waits behind socket
//! writes to fan a post out (`scheduling.rs` says how the two kinds share a core), and
//! `Engine::shutdown` waits for those tasks to say goodbye to their clients before it
//! stops the threads.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

use actix::prelude::*;
use tokio::sync::oneshot;
use tokio_util::task::TaskTracker;

use crate::broker::{Broker, MemoryBroker};
use crate::error::ChatError;
use crate::identity::ResumeToken;
use crate::limits::Limits;
use crate::model::ChannelInfo;
use crate::registry::{
    Connect, CreateChannel, ListChannels, LoginRequest, RegistryActor, Shutdown,
};
use crate::scheduling;
use crate::session::Session;
use crate::validate;

/// How a client identifies itself when it connects.
#[derive(Debug, Clone)]
pub enum Login {
    /// A first visit: the display name it picked.
    Name(String),
    /// A return: the resume token it was given before.
    Resume(String),
}

/// Everything an embedder chooses about an engine: its limits and, optionally, the Redis
/// that several nodes share (`redis://HOST:PORT`; needs the `redis` feature).
#[derive(Debug, Clone, Default)]
pub struct EngineConfig {
    /// Every limit; see [`Limits`].
    pub limits: Limits,
    /// Share channels with other nodes through this Redis; `None` keeps everything in
    /// this process (the default).
    pub redis_url: Option<String>,
}

/// A running chat engine. Clones share it; it stops when [`Engine::shutdown`] is called or
/// the last clone is dropped.
#[derive(Clone)]
pub struct Engine {
    inner: Arc<Inner>,
}

struct Inner {
    registry: Addr<RegistryActor>,
    limits: Arc<Limits>,
    system: System,
    /// The connection workers, which run the tasks given to [`Engine::spawn`].
    workers: Vec<ArbiterHandle>,
    /// The worker the next spawned task goes to, modulo their number.
    next_worker: AtomicUsize,
    /// Every task given to [`Engine::spawn`], for `shutdown` to wait for.
    tasks: TaskTracker,
    /// Set by `shutdown` before it waits for the tasks: later ones stay off the workers.
    stopping: AtomicBool,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("limits", &self.inner.limits)
            .finish_non_exhaustive()
    }
}

/// How an engine starts: its limits, and where it keeps what the nodes of one chat share
/// (in memory by default, an embedder's [`Broker`], or Redis). Made by [`Engine::builder`].
#[must_use = "a builder does nothing until `start` is awaited"]
pub struct EngineBuilder {
    limits: Limits,
    broker: Option<Arc<dyn Broker>>,
    redis_url: Option<String>,
}

impl std::fmt::Debug for EngineBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EngineBuilder")
            .field("limits", &self.limits)
            .field("broker", &self.broker.is_some())
            .field("redis_url", &self.redis_url)
            .finish()
    }
}

impl EngineBuilder {
    /// Every limit the engine enforces (default: [`Limits::default`]).
    pub fn limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    /// Commits every room through `broker`: engines sharing one broker behave as the
    /// nodes of one chat. Default: a [`MemoryBroker`] of this engine's own.
    pub fn broker(mut self, broker: Arc<dyn Broker>) -> Self {
        self.broker = Some(broker);
        self
    }

    /// Shares channels with other nodes through the Redis at `url`
    /// (`redis://HOST:PORT`); `start` fails with `unavailable` when it cannot be reached,
    /// or when this build lacks the `redis` feature.
    pub fn redis(mut self, url: impl Into<String>) -> Self {
        self.redis_url = Some(url.into());
        self
    }

    /// Starts the engine's threads and returns its handle.
    pub async fn start(self) -> Result<Engine, ChatError> {
        match (self.broker, self.redis_url) {
            (Some(broker), _) => Engine::with_broker(self.limits, broker),
            (None, None) => Engine::start(self.limits),
            (None, Some(url)) => {
                Engine::from_config(EngineConfig {
                    limits: self.limits,
                    redis_url: Some(url),
                })
                .await
            }
        }
    }
}

impl Engine {
    /// The way to start an engine: `Engine::builder().limits(..).start().await`.
    pub fn builder() -> EngineBuilder {
        EngineBuilder {
            limits: Limits::default(),
            broker: None,
            redis_url: None,
        }
    }

    /// Starts an engine with the in-memory broker: one process is the whole chat.
    pub fn start(limits: Limits) -> Result<Engine, ChatError> {
        let broker = Arc::new(MemoryBroker::new(&limits));
        Engine::with_broker(limits, broker)
    }

    /// Starts an engine as `config` says: in memory, or sharing its channels with other
    /// nodes through Redis. Fails with `unavailable` when Redis cannot be reached, or when
    /// a Redis URL is given to a build without the `redis` feature.
    pub async fn from_config(config: EngineConfig) -> Result<Engine, ChatError> {
        match config.redis_url {
            None => Engine::start(config.limits),
            Some(url) => {
                #[cfg(feature = "redis")]
                {
                    Engine::start_with_redis(config.limits, url).await
                }
                #[cfg(not(feature = "redis"))]
                {
                    Err(ChatError::Unavailable(format!(
                        "{url}: this build has no Redis support (feature `redis`)"
                    )))
                }
            }
        }
    }

    /// Starts an engine whose broker is Redis at `url`, connected from the first channel
    /// worker: the tasks the broker starts (the Redis connection's, the pub/sub reader)
    /// then run beside the rooms they feed, and a burst read from Redis reaches them as one
    /// batch (`docs/performance.md`, change 23).
    #[cfg(feature = "redis")]
    async fn start_with_redis(limits: Limits, url: String) -> Result<Engine, ChatError> {
        let limits = Arc::new(limits.sanitized());
        let connect_limits = limits.clone();
        let connect: MakeBroker = Box::new(move || {
            Box::pin(async move {
                let broker =
                    crate::redis_broker::RedisBroker::connect(&url, &connect_limits).await?;
                Ok(Arc::new(broker) as Arc<dyn Broker>)
            })
        });
        let (report, started) = oneshot::channel();
        spawn_engine_thread(
            limits.clone(),
            BrokerSource::OnWorker(connect),
            Box::new(move |result| {
                let _ = report.send(result);
            }),
        )?;
        let started = started.await.map_err(|_| engine_failed())??;
        Ok(Engine::assemble(limits, started))
    }

    /// Starts an engine whose rooms commit through `broker` (to share them between nodes).
    pub fn with_broker(limits: Limits, broker: Arc<dyn Broker>) -> Result<Engine, ChatError> {
        let limits = Arc::new(limits.sanitized());
        let (report, started) = std::sync::mpsc::channel();
        spawn_engine_thread(
            limits.clone(),
            BrokerSource::Ready(broker),
            Box::new(move |result| {
                let _ = report.send(result);
            }),
        )?;
        let started = started.recv().map_err(|_| engine_failed())??;
        Ok(Engine::assemble(limits, started))
    }

    /// The handle on an engine thread that has started.
    fn assemble(limits: Arc<Limits>, started: Started) -> Engine {
        let Started {
            system,
            registry,
            workers,
        } = started;
        tracing::info!(workers = workers.len(), "chat engine started");
        Engine {
            inner: Arc::new(Inner {
                registry,
                limits,
                system,
                workers,
                next_worker: AtomicUsize::new(0),
                tasks: TaskTracker::new(),
                stopping: AtomicBool::new(false),
            }),
        }
    }

    /// Runs `task` on one of the engine's connection workers (each task on the next one
    /// in turn). This is where transports run each connection. Rooms run on workers of
    /// their own, so a room woken by a post does not wait behind the connections' socket
    /// writes to fan it out; after a turn that handed posts over, a connection worker
    /// yields its core to them (`Limits::post_yield_interval`; `docs/performance.md`,
    /// change 27).
    ///
    /// The task must not block its thread. [`Engine::shutdown`] waits for the tasks still
    /// running, for at most `Limits::write_timeout` plus `Limits::close_linger` (what a
    /// connection needs to tell its client and close), before it stops the workers.
    ///
    /// Once the engine is shutting down, a task runs on the caller's tokio runtime
    /// instead, where every engine call it makes fails with `shutting_down`: a late
    /// connection can still be told why it is refused. Without a runtime to run it on, it
    /// is dropped and this fails with `shutting_down`.
    pub fn spawn<F>(&self, task: F) -> Result<(), ChatError>
    where
        F: Future<Output = ()> + Send + 'static,
    {
        let inner = &self.inner;
        if inner.stopping.load(Ordering::Acquire) {
            let runtime =
                tokio::runtime::Handle::try_current().map_err(|_| ChatError::ShuttingDown)?;
            runtime.spawn(task);
            return Ok(());
        }
        let turn = inner.next_worker.fetch_add(1, Ordering::Relaxed);
        let worker = &inner.workers[turn % inner.workers.len()];
        let limits = &inner.limits;
        // A worker that hosts the rooms itself has no one to yield its core to.
        let backlog = match limits.channel_workers {
            0 => 0,
            _ => limits.post_yield_backlog,
        };
        let task = scheduling::Turns::new(task, limits.post_yield_interval, backlog);
        if worker.spawn(inner.tasks.track_future(task)) {
            Ok(())
        } else {
            Err(ChatError::ShuttingDown)
        }
    }

    /// Whether the caller runs on one of an engine's connection workers: in a task that
    /// [`Engine::spawn`] placed there, or one such a task started. A worker runs its tasks
    /// one at a time on its own thread (a `tokio::task::LocalSet`), so
    /// `tokio::task::spawn_local` works there, and a task it starts shares the thread
    /// with the connections placed on it: a transport can run one task per worker that
    /// serves all of them.
    pub fn on_connection_worker() -> bool {
        scheduling::on_connection_worker()
    }

    /// The limits this engine enforces (after [`Limits::sanitized`]).
    pub fn limits(&self) -> &Limits {
        &self.inner.limits
    }

    /// Connects a client: with a display name (a new user) or a resume token (the same
    /// user and name as before). Fails with `name_taken`, `invalid_name`,
    /// `invalid_token` or `server_full`.
    pub async fn connect(&self, login: Login) -> Result<Session, ChatError> {
        let request = match login {
            Login::Name(name) => {
                LoginRequest::Name(validate::display_name(&name, &self.inner.limits)?)
            }
            Login::Resume(token) => LoginRequest::Token(ResumeToken::from_client(&token)),
        };
        let connected = self.inner.registry.send(Connect(request)).await??;
        Ok(Session::new(
            connected,
            self.inner.limits.clone(),
            self.inner.registry.clone(),
        ))
    }

    /// Creates a channel on behalf of the server (no user, no rate limit), e.g. a default
    /// `general` at start-up. Every connected session gets `ChannelCreated`; fails with
    /// `channel_exists` if it exists (on any node).
    pub async fn create_channel(&self, name: &str) -> Result<ChannelInfo, ChatError> {
        let name = validate::channel_name(name, &self.inner.limits)?;
        self.inner.registry.send(CreateChannel(name)).await?
    }

    /// Every channel with its member count and last activity, by name.
    pub async fn channels(&self) -> Result<Vec<ChannelInfo>, ChatError> {
        Ok(self.inner.registry.send(ListChannels).await?)
    }

    /// Disconnects every session (each sees `Disconnected(ShuttingDown)`), refuses new
    /// ones, waits (bounded) for the tasks given to [`Engine::spawn`] to end, and stops the
    /// actor threads. Calls on sessions fail with `shutting_down` afterwards.
    pub async fn shutdown(&self) {
        self.inner.stopping.store(true, Ordering::Release);
        // The threads stop when this is dropped: at the end, or when the caller stops
        // waiting (a timeout around `shutdown`) while connections are still closing.
        let _stop = StopOnDrop(&self.inner.system);
        // An error here means the registry is already gone, which is the goal.
        let _ = self.inner.registry.send(Shutdown).await;
        self.wait_for_tasks().await;
    }

    /// Waits until every spawned task has ended, at most the time a connection needs to
    /// close. The timer runs on the engine's own thread: the caller may have no runtime
    /// with one.
    async fn wait_for_tasks(&self) {
        let tasks = self.inner.tasks.clone();
        tasks.close();
        if tasks.is_empty() {
            return;
        }
        let limits = &self.inner.limits;
        let grace = limits.write_timeout + limits.close_linger;
        let (done, waited) = oneshot::channel();
        let wait = async move {
            if tokio::time::timeout(grace, tasks.wait()).await.is_err() {
                tracing::warn!(
                    still_running = tasks.len(),
                    "stopping the engine before every connection has closed"
                );
            }
            let _ = done.send(());
        };
        if self.inner.system.arbiter().spawn(wait) {
            // An error means the engine thread is gone: nothing is left to wait for.
            let _ = waited.await;
        }
    }
}

/// Stops the actor system when dropped.
struct StopOnDrop<'a>(&'a System);

impl Drop for StopOnDrop<'_> {
    fn drop(&mut self) {
        self.0.stop();
    }
}

impl Drop for Inner {
    /// The actor threads end on their own once the system stops; joining them here would
    /// block the caller's runtime.
    fn drop(&mut self) {
        self.system.stop();
    }
}

/// What the engine thread hands back once it is running.
struct Started {
    system: System,
    registry: Addr<RegistryActor>,
    workers: Vec<ArbiterHandle>,
}

/// Makes a broker on the thread that calls it (its future need not be `Send`).
type MakeBroker =
    Box<dyn FnOnce() -> Pin<Box<dyn Future<Output = Result<Arc<dyn Broker>, ChatError>>>> + Send>;

/// Where the engine's broker comes from.
enum BrokerSource {
    /// Made already: in memory, or an embedder's.
    Ready(Arc<dyn Broker>),
    /// Made on the first channel worker, so that the tasks it starts run there (only the
    /// Redis broker is made this way).
    #[cfg_attr(not(feature = "redis"), allow(dead_code))]
    OnWorker(MakeBroker),
}

/// Where the engine thread reports that it runs, or why it could not start.
type Report = Box<dyn FnOnce(Result<Started, ChatError>) + Send>;

fn engine_failed() -> ChatError {
    ChatError::Unavailable("the engine's actor system failed to start".into())
}

/// Starts the engine thread; it calls `report` once it runs, or fails.
fn spawn_engine_thread(
    limits: Arc<Limits>,
    broker: BrokerSource,
    report: Report,
) -> Result<(), ChatError> {
    std::thread::Builder::new()
        .name("chat-engine".into())
        .spawn(move || run_actor_system(limits, broker, report))
        .map(|_| ())
        .map_err(|e| ChatError::Unavailable(format!("cannot start engine thread: {e}")))
}

/// The engine thread: builds the actix system, starts the arbiters, the broker (if it is
/// made here) and the registry, reports their handles, then runs until stopped.
fn run_actor_system(limits: Arc<Limits>, broker: BrokerSource, report: Report) {
    let runner = System::new();
    let started = runner.block_on(async move {
        let connections = start_workers(limits.connection_workers, &limits)?;
        let rooms = start_workers(limits.channel_workers, &limits)
            .inspect_err(|_| stop_all(&connections))?;
        // No channel workers: the rooms share the connection workers.
        let room_hosts = if rooms.is_empty() {
            &connections
        } else {
            &rooms
        };
        let broker = match broker {
            BrokerSource::Ready(broker) => Ok(broker),
            BrokerSource::OnWorker(make) => make_on(&room_hosts[0], make).await,
        };
        let broker = broker.inspect_err(|_| {
            stop_all(&rooms);
            stop_all(&connections);
        })?;
        let room_workers = room_hosts.iter().map(Arbiter::handle).collect();
        let registry = RegistryActor::new(limits, broker, room_workers).start();
        Ok(Started {
            system: System::current(),
            registry,
            workers: connections.iter().map(Arbiter::handle).collect(),
        })
    });
    let ready = started.is_ok();
    report(started);
    if ready {
        if let Err(e) = runner.run() {
            tracing::error!(error = %e, "chat engine stopped with an error");
        }
    }
}

/// Starts `count` worker arbiters (batch threads if asked; see also
/// `Limits::park_yield_window`).
fn start_workers(count: usize, limits: &Limits) -> Result<Vec<Arbiter>, ChatError> {
    let mut arbiters: Vec<Arbiter> = Vec::with_capacity(count);
    for _ in 0..count {
        let window = limits.park_yield_window;
        let made = if window.is_zero() {
            Arbiter::try_new()
        } else {
            Arbiter::try_with_tokio_rt(move || scheduling::worker_runtime(window))
        };
        match made {
            Ok(arbiter) => {
                if limits.batch_scheduling {
                    arbiter.spawn_fn(scheduling::prefer_batches);
                }
                arbiters.push(arbiter);
            }
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
