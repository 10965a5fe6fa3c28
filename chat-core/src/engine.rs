//! `Engine`: the cloneable handle an embedder keeps, and [`EngineBuilder`], the one way to
//! start it.
//!
//! The engine runs its actors on threads of its own (`runtime.rs`), so it works from any
//! tokio runtime: callers only await futures that resolve through channels, and no actix
//! type appears in this API. Transports run their connections on their own runtime and
//! call [`Engine::connect_from`] for each client, with the address it connects from; an
//! embedder that has no address calls [`Engine::connect`].

use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use actix::prelude::*;

use crate::address::AddressRate;
use crate::attachment::{FileId, StoredFile};
use crate::broker::{Broker, MemoryBroker};
use crate::directory::{
    Connect, CreateChannel, ListChannels, LoginRequest, RegistryActor, Shutdown, Stats,
};
use crate::error::{registry_gone, ChatError};
use crate::health::Health;
use crate::identity::ResumeToken;
use crate::limits::Limits;
use crate::model::ChannelInfo;
use crate::runtime::{self, BrokerSource, Started};
use crate::session::Session;
use crate::telemetry;
use crate::upload::{UploadBudget, Uploader};
use crate::validate;

/// How a client identifies itself when it connects.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum Login {
    /// A first visit: the display name it picked.
    Name(String),
    /// A return: the resume token it was given before.
    Resume(String),
    /// A user the embedder's own service has authenticated (its accounts, its cookie or
    /// header): no resume token is needed. Only an embedder can say this; no transport
    /// offers it to its clients.
    ///
    /// The same `id` is the same user (the same user id) on every login, across
    /// connections and, with a durable store (SQLite, Redis), restarts. The user is made
    /// on the first login with `display_name`, which follows the rules of a new name
    /// ([`crate::validate::display_name`]; `name_taken` if another user holds it, or one
    /// that looks the same: the embedder decides what to try instead). While the engine
    /// keeps the user (online, or within `Limits::name_hold`), later logins come back
    /// with the name they have and a different `display_name` is not taken up: other
    /// users know them by it. A user away longer than the hold is made again, with the
    /// same id and the `display_name` given then. Each login issues a fresh resume token,
    /// replacing the user's previous one. Not limited by `login_rate_per_address`: the
    /// embedder authenticated them.
    External {
        /// The embedder's stable id for the user (1 to [`crate::MAX_EXTERNAL_ID_BYTES`]
        /// bytes, no control character; compared exactly).
        id: String,
        /// The name other users see.
        display_name: String,
    },
}

/// How an engine starts: its limits, its room threads, and where it keeps what the nodes
/// of one chat share (in memory by default, an embedder's [`Broker`], Redis, or one SQLite
/// file). Made by [`Engine::builder`].
#[must_use = "a builder does nothing until `start` is awaited"]
pub struct EngineBuilder {
    limits: Limits,
    store: Store,
    room_workers: usize,
}

/// Where the engine keeps what it shares: the last of `broker`, `redis` and `sqlite`
/// called on the builder.
enum Store {
    Memory,
    Broker(Arc<dyn Broker>),
    Redis(String),
    Sqlite(PathBuf),
}

impl std::fmt::Debug for EngineBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let store = match &self.store {
            Store::Memory => "memory".to_owned(),
            Store::Broker(_) => "broker".to_owned(),
            Store::Redis(url) => format!("redis {url}"),
            Store::Sqlite(path) => format!("sqlite {}", path.display()),
        };
        f.debug_struct("EngineBuilder")
            .field("limits", &self.limits)
            .field("store", &store)
            .field("room_workers", &self.room_workers)
            .finish()
    }
}

impl EngineBuilder {
    /// Every limit the engine enforces (default: [`Limits::default`]). Checked by `start`.
    pub fn limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    /// Commits every room through `broker`: engines sharing one broker behave as the
    /// nodes of one chat. Default: a [`MemoryBroker`] of this engine's own. Replaces an
    /// earlier `redis` or `sqlite`.
    pub fn broker(mut self, broker: Arc<dyn Broker>) -> Self {
        self.store = Store::Broker(broker);
        self
    }

    /// Shares channels with other nodes through the Redis at `url`
    /// (`redis://HOST:PORT`); `start` fails with `unavailable` when it cannot be reached,
    /// or when this build lacks the `redis` feature. Replaces an earlier `broker` or
    /// `sqlite`.
    pub fn redis(mut self, url: impl Into<String>) -> Self {
        self.store = Store::Redis(url.into());
        self
    }

    /// Keeps everything in the SQLite file at `path` (created if missing; its directory
    /// must exist), so that a restart loses nothing acknowledged: the engine works from
    /// memory as without it, and a thread writes each change behind it, in batches
    /// (`SqliteBroker`). `start` fails with `store_error`, naming the file, when the file
    /// is corrupt, unreadable, from a newer version or in use by another process, and
    /// with `unavailable` when this build lacks the `sqlite` feature. Replaces an earlier
    /// `broker` or `redis`.
    pub fn sqlite(mut self, path: impl Into<PathBuf>) -> Self {
        self.store = Store::Sqlite(path.into());
        self
    }

    /// How many threads run the room actors (at least 1). Default: half the cores, at
    /// least 1, leaving the rest to the host's connections.
    pub fn room_workers(mut self, threads: usize) -> Self {
        self.room_workers = threads.max(1);
        self
    }

    /// Checks the limits, starts the engine's threads and returns its handle. Fails with
    /// `invalid_limit` for a limit the engine cannot work with, and with `unavailable`
    /// when the threads or the broker cannot be started.
    pub async fn start(self) -> Result<Engine, ChatError> {
        self.limits
            .validate()
            .map_err(|e| ChatError::InvalidLimit(e.to_string()))?;
        let limits = Arc::new(self.limits);
        let source = match self.store {
            Store::Broker(broker) => BrokerSource::Ready(broker),
            Store::Memory => BrokerSource::Ready(Arc::new(MemoryBroker::new(&limits))),
            Store::Redis(url) => redis_source(url, limits.clone())?,
            Store::Sqlite(path) => BrokerSource::Ready(open_sqlite(path, &limits).await?),
        };
        let started = runtime::start(limits.clone(), self.room_workers, source).await?;
        Ok(Engine::assemble(limits, started))
    }
}

/// Where a Redis broker comes from: made on the first room worker.
#[cfg(feature = "redis")]
fn redis_source(url: String, limits: Arc<Limits>) -> Result<BrokerSource, ChatError> {
    Ok(BrokerSource::OnWorker(Box::new(move || {
        Box::pin(async move {
            let broker = crate::broker::redis::RedisBroker::connect(&url, &limits).await?;
            Ok(crate::broker::metered::Metered::wrap(Arc::new(broker)))
        })
    })))
}

#[cfg(not(feature = "redis"))]
fn redis_source(url: String, _: Arc<Limits>) -> Result<BrokerSource, ChatError> {
    Err(ChatError::Unavailable(format!(
        "{url}: this build has no Redis support (feature `redis`)"
    )))
}

/// Opens the SQLite store at `path`, on a thread of its own (reading a large file back
/// must not block the caller's runtime).
#[cfg(feature = "sqlite")]
async fn open_sqlite(path: PathBuf, limits: &Limits) -> Result<Arc<dyn Broker>, ChatError> {
    let broker = crate::broker::sqlite::SqliteBroker::open(path, limits).await?;
    Ok(Arc::new(broker))
}

#[cfg(not(feature = "sqlite"))]
async fn open_sqlite(path: PathBuf, _: &Limits) -> Result<Arc<dyn Broker>, ChatError> {
    Err(ChatError::Unavailable(format!(
        "{}: this build has no SQLite support (feature `sqlite`)",
        path.display()
    )))
}

/// What an engine holds on this node at one moment ([`Engine::stats`]): each number
/// returns to its baseline once the users are gone and their rooms have been idle for
/// `Limits::room_idle`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct EngineStats {
    /// Sessions connected to this node.
    pub sessions: usize,
    /// Users whose flood buckets are kept (connected, or gone for less than ten minutes,
    /// so that reconnecting does not refill them).
    pub users: usize,
    /// Channels known (they are never forgotten; at most `Limits::max_channels`).
    pub channels: usize,
    /// Room actors running (channels and private conversations someone follows, or
    /// followed less than `Limits::room_idle` ago).
    pub rooms_running: usize,
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
    /// `Limits::login_rate_per_address`: new users per client address, checked here
    /// before the registry is asked (like the per-user buckets in the session handle).
    new_users: AddressRate,
    system: System,
    broker: Arc<dyn Broker>,
    /// Set when `shutdown` begins, for `health`.
    stopping: AtomicBool,
    /// `Limits::upload_bytes_per_hour`: each user's bytes left to upload.
    uploads: Arc<UploadBudget>,
    /// `Limits::upload_bytes_in_flight`: the bytes uploads may reserve now, a permit each.
    uploads_in_flight: Arc<tokio::sync::Semaphore>,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("limits", &self.inner.limits)
            .finish_non_exhaustive()
    }
}

impl Engine {
    /// The way to start an engine: `Engine::builder().limits(..).start().await`.
    pub fn builder() -> EngineBuilder {
        EngineBuilder {
            limits: Limits::default(),
            store: Store::Memory,
            room_workers: half_the_cores(),
        }
    }

    fn assemble(limits: Arc<Limits>, started: Started) -> Engine {
        tracing::info!(epoch = started.broker.epoch(), "chat engine started");
        Engine {
            inner: Arc::new(Inner {
                registry: started.registry,
                new_users: AddressRate::new(limits.login_rate_per_address),
                system: started.system,
                broker: started.broker,
                stopping: AtomicBool::new(false),
                uploads: Arc::new(UploadBudget::new(&limits)),
                uploads_in_flight: Arc::new(tokio::sync::Semaphore::new(
                    usize::try_from(limits.upload_bytes_in_flight).unwrap_or(usize::MAX >> 3),
                )),
                limits,
            }),
        }
    }

    /// The limits this engine enforces.
    pub fn limits(&self) -> &Limits {
        &self.inner.limits
    }

    /// The epoch of the store this engine works from: a random id made when the store was
    /// created (a new SQLite file, an empty Redis keyspace, an in-memory engine's start).
    /// Transports tell it to clients when they connect; a client that saw another one
    /// before drops the ids, rooms and token it kept, because they belong to a store that
    /// no longer exists.
    pub fn epoch(&self) -> &str {
        self.inner.broker.epoch()
    }

    /// Connects a client: with a display name (a new user) or a resume token (the same
    /// user and name as before). Fails with `name_taken`, `invalid_name`,
    /// `invalid_token` or `server_full` (too many sessions, or a new name when the server
    /// keeps `Limits::max_users` users whose holds have not expired).
    ///
    /// For an embedder that does not know where its clients are: no per-address limit
    /// applies. A transport calls [`Engine::connect_from`].
    pub async fn connect(&self, login: Login) -> Result<Session, ChatError> {
        self.login(login, None).await
    }

    /// Connects a client from the address `from` (its socket's peer, or the address a
    /// trusted proxy reports): as [`Engine::connect`], and a new name is also refused with
    /// `rate_limited` (`login_rate_per_address`) when `from`'s address registers users
    /// faster than `Limits::login_rate_per_address`. A resume is never refused for its
    /// address. The check comes after the name's own (an invalid name costs nothing) and
    /// before the registry is asked, so a refused login changes nothing.
    pub async fn connect_from(&self, login: Login, from: IpAddr) -> Result<Session, ChatError> {
        self.login(login, Some(from)).await
    }

    async fn login(&self, login: Login, from: Option<IpAddr>) -> Result<Session, ChatError> {
        let session = telemetry::tally(self.login_once(login, from).await)?;
        telemetry::logged_in(session.is_new_user());
        Ok(session)
    }

    async fn login_once(&self, login: Login, from: Option<IpAddr>) -> Result<Session, ChatError> {
        let request = match login {
            Login::Name(name) => {
                let name = validate::display_name(&name, &self.inner.limits)?;
                if let Some(from) = from {
                    self.inner.new_users.check(from).map_err(|retry_after| {
                        ChatError::RateLimited {
                            limit: "login_rate_per_address",
                            retry_after,
                        }
                    })?;
                }
                LoginRequest::Name(name)
            }
            Login::Resume(token) => LoginRequest::Token(ResumeToken::from_client(&token)),
            Login::External { id, display_name } => {
                let id = validate::external_id(&id)?.to_owned();
                let name = validate::display_name(&display_name, &self.inner.limits)?;
                LoginRequest::External { id, name }
            }
        };
        let connected = self
            .inner
            .registry
            .send(Connect(request))
            .await
            .map_err(registry_gone)??;
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
        self.inner
            .registry
            .send(CreateChannel(name, None))
            .await
            .map_err(registry_gone)?
    }

    /// Every channel with its member count and last activity, by name.
    pub async fn channels(&self) -> Result<Vec<ChannelInfo>, ChatError> {
        self.inner
            .registry
            .send(ListChannels)
            .await
            .map_err(registry_gone)
    }

    /// The user a resume token was issued to, allowed to upload files
    /// ([`Uploader::upload`]); fails with `invalid_token` for a token that is unknown or
    /// expired. Logs nobody in: a transport calls it for an upload request, before it
    /// reads the body.
    pub async fn uploader(&self, token: &str) -> Result<Uploader, ChatError> {
        let token = ResumeToken::from_client(token);
        let user = self
            .inner
            .broker
            .identify(&token)
            .await?
            .ok_or(ChatError::InvalidToken)?;
        Ok(Uploader::new(
            user,
            self.inner.limits.clone(),
            self.inner.broker.clone(),
            self.inner.uploads.clone(),
            self.inner.uploads_in_flight.clone(),
        ))
    }

    /// A kept file with its bytes (attached to a kept message, or waiting for its
    /// post), for a transport to serve: with `Content-Type` from its
    /// [`FileKind`](crate::attachment::FileKind), inline only when it is an image. `None`
    /// once its message is deleted or evicted, or for an id never given.
    pub async fn file(&self, id: &FileId) -> Result<Option<StoredFile>, ChatError> {
        self.inner.broker.file(id).await
    }

    /// How much the engine holds on this node now: sessions, users with flood buckets,
    /// known channels, and room actors running.
    pub async fn stats(&self) -> Result<EngineStats, ChatError> {
        self.inner.registry.send(Stats).await.map_err(registry_gone)
    }

    /// Whether this node can take traffic now, for a readiness probe: the store answers
    /// (the SQLite writer is not failing, Redis answers a `PING` within a second) and
    /// shutdown has not begun. Cheap enough to be asked every few seconds.
    pub async fn health(&self) -> Health {
        Health {
            store_reachable: self.inner.broker.reachable().await,
            shutting_down: self.inner.stopping.load(Ordering::Relaxed),
        }
    }

    /// Disconnects every session (each sees `Disconnected(ShuttingDown)`), refuses new
    /// ones, stops the engine's threads, and last waits until the store has made durable
    /// everything committed and let go of its file ([`Broker::close`]): once this returns,
    /// the store can be opened again. Calls on sessions fail with
    /// `session_closed` or `shutting_down` afterwards. A transport tells its clients
    /// first, from its own tasks: the events were queued before the threads stop.
    pub async fn shutdown(&self) {
        self.inner.stopping.store(true, Ordering::Relaxed);
        // An error here means the registry is already gone, which is the goal.
        let _ = self.inner.registry.send(Shutdown).await;
        self.inner.system.stop();
        if let Err(e) = self.inner.broker.close().await {
            tracing::error!(error = %e, "the store could not write everything before stopping");
        }
    }
}

impl Drop for Inner {
    /// The actor threads end on their own once the system stops; joining them here would
    /// block the caller's runtime.
    fn drop(&mut self) {
        self.system.stop();
    }
}

/// Half the cores this process may run on, at least 1.
fn half_the_cores() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(2)
        .div_ceil(2)
}
