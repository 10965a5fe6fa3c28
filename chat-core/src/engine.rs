//! `Engine`: the cloneable handle an embedder keeps, and the actor runtime behind it.
//!
//! `Engine::start` runs the actors on threads of their own (an actix system with one
//! registry and `Limits::channel_workers` arbiters for the channel actors), so the engine
//! works from any tokio runtime, or none: callers only ever await futures that resolve
//! through channels. No actix type appears in this API.

use std::sync::Arc;

use actix::prelude::*;

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
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("limits", &self.inner.limits)
            .finish_non_exhaustive()
    }
}

impl Engine {
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
                    let broker =
                        crate::redis_broker::RedisBroker::connect(&url, &config.limits).await?;
                    Engine::with_broker(config.limits, Arc::new(broker))
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

    /// Starts an engine whose rooms commit through `broker` (to share them between nodes).
    pub fn with_broker(limits: Limits, broker: Arc<dyn Broker>) -> Result<Engine, ChatError> {
        let limits = Arc::new(limits.sanitized());
        let (tx, rx) = std::sync::mpsc::channel();
        let workers = limits.channel_workers;
        let registry_limits = limits.clone();
        std::thread::Builder::new()
            .name("chat-engine".into())
            .spawn(move || run_actor_system(registry_limits, broker, workers, tx))
            .map_err(|e| ChatError::Unavailable(format!("cannot start engine thread: {e}")))?;
        let (system, registry) = rx.recv().map_err(|_| {
            ChatError::Unavailable("the engine's actor system failed to start".into())
        })?;
        tracing::info!(workers, "chat engine started");
        Ok(Engine {
            inner: Arc::new(Inner {
                registry,
                limits,
                system,
            }),
        })
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
    /// ones, and stops the actor threads. Calls on sessions fail with `shutting_down`
    /// afterwards.
    pub async fn shutdown(&self) {
        // An error here means the registry is already gone, which is the goal.
        let _ = self.inner.registry.send(Shutdown).await;
        self.inner.system.stop();
    }
}

impl Drop for Inner {
    /// The actor threads end on their own once the system stops; joining them here would
    /// block the caller's runtime.
    fn drop(&mut self) {
        self.system.stop();
    }
}

/// The engine thread: builds the actix system, starts the arbiters and the registry,
/// hands their addresses back, then runs until stopped.
fn run_actor_system(
    limits: Arc<Limits>,
    broker: Arc<dyn Broker>,
    workers: usize,
    started: std::sync::mpsc::Sender<(System, Addr<RegistryActor>)>,
) {
    let runner = System::new();
    let ready = runner.block_on(async move {
        let mut arbiters = Vec::with_capacity(workers);
        for _ in 0..workers {
            match Arbiter::try_new() {
                Ok(arbiter) => {
                    if limits.batch_scheduling {
                        arbiter.spawn_fn(scheduling::prefer_batches);
                    }
                    arbiters.push(arbiter);
                }
                Err(e) => {
                    tracing::error!(error = %e, "cannot start a channel worker");
                    return false;
                }
            }
        }
        let handles = arbiters.iter().map(Arbiter::handle).collect();
        let registry = RegistryActor::new(limits, broker, handles).start();
        started.send((System::current(), registry)).is_ok()
    });
    if ready {
        if let Err(e) = runner.run() {
            tracing::error!(error = %e, "chat engine stopped with an error");
        }
    }
}
