//! `RedisBroker`: the broker for several nodes sharing one Redis (feature `redis`).
//!
//! Every decision that must be the same on every node is one atomic Redis operation: a
//! Lua script allocates a room's next id, appends the message to the room's list, trims
//! it to the history limit and publishes it, so ids never collide or go backwards and
//! every node sees one order (Redis delivers a connection's pub/sub messages in publish
//! order). Channel names are claimed with `HSETNX`, display names with `SET NX`. When
//! Redis goes away, commands fail fast with `unavailable`.
//!
//! Made by [`RedisBroker::connect`] (from `EngineBuilder::start`), then called only through
//! the [`Broker`] trait; it must not know about actors or sessions. This file holds the
//! broker handle: connecting, and the commands of the trait. The rest is one concept a
//! file, each used only from here (`pubsub` also uses `keys`, `wire` and `unavailable`):
//! - `keys`: the name of every key and pub/sub channel (the layout in
//!   `docs/architecture.md`);
//! - `wire`: the JSON stored and published, to and from the engine's types;
//! - `scripts`: the Lua scripts, each one atomic decision;
//! - `cluster`: nodes' heartbeats, their shares of rooms' presence, and users' flood
//!   buckets counted over every node;
//! - `pubsub`: the local followers of each room, and the task that owns the pub/sub
//!   connection: it routes changes and cluster events, reconnects with backoff and
//!   resynchronises the followed rooms;
//! - `post`: a post, its files and its one script run;
//! - `files`: uploaded files, each one hash until its message goes;
//! - `setup`: what connecting checks (the keyspace's epoch, Redis's persistence).

mod cluster;
mod files;
mod keys;
mod post;
mod pubsub;
mod scripts;
mod setup;
mod wire;

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::AsyncCommands;
use tokio::sync::mpsc;

use self::keys::PREFIX;
use self::pubsub::Shared;
use self::scripts::Scripts;
use crate::attachment::{FileId, StoredFile};
use crate::broker::{
    Beat, Broker, ChannelRecord, ClusterEvent, Follow, NodeId, Proposal, Receipt, Signal, Stored,
};
use crate::error::ChatError;
use crate::identity::{Identity, ResumeToken};
use crate::limits::{Limits, Rate};
use crate::model::{now_millis, ChannelName, Room, UserId, UserRef};

/// How long one Redis command may take before the caller gets `unavailable`.
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(2);
/// How long connecting may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);

/// How long `reachable` waits for Redis to answer a `PING`.
const HEALTH_TIMEOUT: Duration = Duration::from_secs(1);

/// How long connecting waits for the first pub/sub subscription.
const FIRST_SUBSCRIPTION_WAIT: Duration = Duration::from_secs(5);

/// A broker backed by one Redis server, shared by every node.
#[derive(Clone)]
pub struct RedisBroker {
    epoch: Arc<str>,
    conn: ConnectionManager,
    shared: Arc<Shared>,
    history_limit: usize,
    hold_secs: u64,
    max_users: usize,
    /// Each user's posts, counted over every node (`Limits::message_rate`).
    message_rate: Rate,
    /// What uploads and a post's files are checked against.
    limits: Arc<Limits>,
    scripts: Arc<Scripts>,
}

impl std::fmt::Debug for RedisBroker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisBroker").finish_non_exhaustive()
    }
}

impl RedisBroker {
    /// Connects to Redis at `url` (`redis://HOST:PORT`) and starts the pub/sub task on the
    /// current tokio runtime (`EngineBuilder::start` calls this on its first room worker).
    /// Fails with `unavailable` if Redis cannot be reached now.
    pub async fn connect(url: &str, limits: &Limits) -> Result<RedisBroker, ChatError> {
        let client = redis::Client::open(url).map_err(unavailable)?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(CONNECT_TIMEOUT))
            .set_response_timeout(Some(RESPONSE_TIMEOUT))
            .set_number_of_retries(1)
            .set_max_delay(pubsub::BACKOFF_MAX);
        let mut conn = ConnectionManager::new_with_config(client.clone(), config)
            .await
            .map_err(unavailable)?;
        let epoch = setup::keyspace_epoch(&mut conn).await?;
        setup::warn_without_persistence(&mut conn).await;
        let shared = Arc::new(Shared::default());
        let broker = RedisBroker {
            epoch: Arc::from(epoch),
            conn,
            shared: shared.clone(),
            history_limit: limits.history.max(1),
            hold_secs: limits.name_hold.as_secs().max(1),
            max_users: limits.max_users.max(1),
            message_rate: limits.message_rate,
            limits: Arc::new(limits.clone()),
            scripts: Arc::new(Scripts::new()),
        };
        let (subscribed, first_subscription) = tokio::sync::oneshot::channel();
        tokio::spawn(pubsub::run(
            client,
            Arc::downgrade(&shared),
            broker.conn.clone(),
            subscribed,
        ));
        // A node is ready once it hears the cluster: a channel another node creates right
        // after this one started must reach it. Bounded: a pub/sub connection that is slow
        // to come up is retried by its task, and the node serves meanwhile.
        if tokio::time::timeout(FIRST_SUBSCRIPTION_WAIT, first_subscription)
            .await
            .is_err()
        {
            tracing::warn!("redis pub/sub not subscribed yet; serving while it connects");
        }
        tracing::info!(url = %redact(url), "redis broker connected");
        Ok(broker)
    }

    /// Tells every node's registry (`payload` is a cluster event encoded by `wire`).
    async fn publish_cluster(&self, payload: String) -> Result<(), ChatError> {
        let _: i64 = self
            .conn
            .clone()
            .publish(keys::CLUSTER_CHANNEL, payload)
            .await
            .map_err(unavailable)?;
        Ok(())
    }
}

#[async_trait::async_trait]
impl Broker for RedisBroker {
    async fn register(&self, name: String) -> Result<Identity, ChatError> {
        let token = ResumeToken::generate()?;
        let name_key = keys::name(&name);
        let id: i64 = self
            .scripts
            .register
            .key(&name_key)
            .key(keys::USER_SEQ)
            .key(keys::USERS)
            .arg(self.hold_secs)
            .arg(&name)
            .arg(token.expose())
            .arg(&name_key)
            .arg(PREFIX)
            .arg(self.max_users)
            .invoke_async(&mut self.conn.clone())
            .await
            .map_err(unavailable)?;
        let id = match id {
            0 => return Err(ChatError::NameTaken(name)),
            -1 => return Err(ChatError::TooManyUsers(self.max_users)),
            id => u64::try_from(id).map_err(unavailable)?,
        };
        Ok(Identity {
            user: UserRef {
                id: UserId(id),
                name: Arc::from(name),
            },
            token,
            new_user: true,
        })
    }

    async fn resume(&self, token: ResumeToken) -> Result<Identity, ChatError> {
        let mut conn = self.conn.clone();
        let found: Option<(u64, String)> = self
            .scripts
            .resume
            .key(keys::token(token.expose()))
            .key(keys::USERS)
            .arg(self.hold_secs)
            .arg(PREFIX)
            .invoke_async(&mut conn)
            .await
            .map_err(unavailable)?;
        let (id, name) = found.ok_or(ChatError::InvalidToken)?;
        // The user's private conversations are held again too.
        let _: i64 = self
            .scripts
            .touch
            .key(PREFIX)
            .arg(self.hold_secs)
            .arg(id)
            .invoke_async(&mut conn)
            .await
            .map_err(unavailable)?;
        Ok(Identity {
            user: UserRef {
                id: UserId(id),
                name: Arc::from(name),
            },
            token,
            new_user: false,
        })
    }

    async fn identify(&self, token: &ResumeToken) -> Result<Option<UserRef>, ChatError> {
        user_at(&mut self.conn.clone(), keys::token(token.expose())).await
    }

    async fn login_external(&self, external: &str, name: String) -> Result<Identity, ChatError> {
        let token = ResumeToken::generate()?;
        let name_key = keys::name(&name);
        let mut conn = self.conn.clone();
        let (id, kept_name, made): (i64, String, i64) = self
            .scripts
            .external
            .key(keys::external(external))
            .key(keys::USER_SEQ)
            .key(keys::USERS)
            .key(&name_key)
            .arg(self.hold_secs)
            .arg(&name)
            .arg(token.expose())
            .arg(&name_key)
            .arg(PREFIX)
            .arg(self.max_users)
            .invoke_async(&mut conn)
            .await
            .map_err(unavailable)?;
        let id = match id {
            0 => return Err(ChatError::NameTaken(name)),
            -1 => return Err(ChatError::TooManyUsers(self.max_users)),
            id => u64::try_from(id).map_err(unavailable)?,
        };
        if made == 0 {
            // Back within the hold: their private conversations are held again too.
            let _: i64 = self
                .scripts
                .touch
                .key(PREFIX)
                .arg(self.hold_secs)
                .arg(id)
                .invoke_async(&mut conn)
                .await
                .map_err(unavailable)?;
        }
        Ok(Identity {
            user: UserRef {
                id: UserId(id),
                name: Arc::from(kept_name),
            },
            token,
            new_user: made == 1,
        })
    }

    fn session_ended(&self, user: UserId) {
        let broker = self.clone();
        tokio::spawn(async move {
            if let Err(e) = broker.keep_alive(vec![user]).await {
                tracing::warn!(error = %e, "could not restart a name hold");
            }
        });
    }

    async fn keep_alive(&self, online: Vec<UserId>) -> Result<(), ChatError> {
        // Run even with nobody online here: the script also forgets the users whose hold
        // ended from the count (`flack:users`).
        let mut invocation = self.scripts.touch.key(PREFIX);
        invocation.arg(self.hold_secs);
        for id in online {
            invocation.arg(id.0);
        }
        let _: i64 = invocation
            .invoke_async(&mut self.conn.clone())
            .await
            .map_err(unavailable)?;
        Ok(())
    }

    async fn find_user(&self, name: &str) -> Result<Option<UserRef>, ChatError> {
        user_at(&mut self.conn.clone(), keys::name(name.trim())).await
    }

    async fn claim_channel(
        &self,
        name: &ChannelName,
        created_at: DateTime<Utc>,
    ) -> Result<bool, ChatError> {
        let json = wire::channel(name, created_at).map_err(unavailable)?;
        let claimed: bool = self
            .conn
            .clone()
            .hset_nx(keys::CHANNELS, name.key(), json)
            .await
            .map_err(unavailable)?;
        if claimed {
            let event = wire::channel_created(name, created_at).map_err(unavailable)?;
            self.publish_cluster(event).await?;
        }
        Ok(claimed)
    }

    async fn lookup_channel(&self, key: &str) -> Result<Option<ChannelRecord>, ChatError> {
        let json: Option<String> = self
            .conn
            .clone()
            .hget(keys::CHANNELS, key)
            .await
            .map_err(unavailable)?;
        Ok(json.and_then(|j| wire::channel_record(&j)))
    }

    async fn channels(&self) -> Result<Vec<ChannelRecord>, ChatError> {
        let all: Vec<String> = self
            .conn
            .clone()
            .hvals(keys::CHANNELS)
            .await
            .map_err(unavailable)?;
        Ok(all.iter().filter_map(|j| wire::channel_record(j)).collect())
    }

    async fn open_direct(&self, pair: [UserRef; 2]) -> Result<(), ChatError> {
        let mut conn = self.conn.clone();
        let pair = sorted(pair);
        let json = wire::pair(&pair).map_err(unavailable)?;
        let [a, b] = [pair[0].id, pair[1].id];
        let added: i64 = conn
            .sadd(keys::directs(a), &json)
            .await
            .map_err(unavailable)?;
        let _: i64 = conn
            .sadd(keys::directs(b), &json)
            .await
            .map_err(unavailable)?;
        // Held like their users' records (the peer may be offline: it would never be
        // touched otherwise); touching either user extends them.
        for user in [a, b] {
            let _: bool = conn
                .expire(keys::directs(user), self.hold_secs as i64)
                .await
                .map_err(unavailable)?;
        }
        if added == 1 {
            let event = wire::direct_opened(&pair).map_err(unavailable)?;
            self.publish_cluster(event).await?;
        }
        Ok(())
    }

    async fn directs_of(&self, user: UserId) -> Result<Vec<[UserRef; 2]>, ChatError> {
        let all: Vec<String> = self
            .conn
            .clone()
            .smembers(keys::directs(user))
            .await
            .map_err(unavailable)?;
        Ok(all.iter().filter_map(|j| wire::stored_pair(j)).collect())
    }

    async fn follow(&self, room: &Room) -> Result<Follow, ChatError> {
        self.shared
            .follow(&mut self.conn.clone(), &self.scripts, room)
            .await
    }

    async fn stored(&self, room: &Room) -> Result<Stored, ChatError> {
        pubsub::read_stored(&mut self.conn.clone(), room).await
    }

    async fn commit(&self, room: &Room, proposal: Proposal) -> Result<Receipt, ChatError> {
        let mut conn = self.conn.clone();
        let channel = keys::room_channel(room);
        match proposal {
            Proposal::Post {
                author,
                text,
                files,
            } => self.post(room, &channel, author, text, files).await,
            Proposal::Delete { id, by } => {
                let outcome: String = self
                    .scripts
                    .delete
                    .key(keys::room_log(&channel))
                    .arg(id)
                    .arg(by.0)
                    .arg(&channel)
                    .arg(PREFIX)
                    .invoke_async(&mut conn)
                    .await
                    .map_err(unavailable)?;
                match outcome.as_str() {
                    "ok" => Ok(Receipt::Done),
                    "not_author" => Err(ChatError::NotAuthor(id)),
                    _ => Err(ChatError::NoSuchMessage(id)),
                }
            }
            Proposal::Edit { id, by, text } => {
                let outcome: String = self
                    .scripts
                    .edit
                    .key(keys::room_log(&channel))
                    .arg(id)
                    .arg(by.0)
                    .arg(&channel)
                    .arg(text)
                    .arg(now_millis().timestamp_millis())
                    .invoke_async(&mut conn)
                    .await
                    .map_err(unavailable)?;
                match outcome.as_str() {
                    "not_author" => Err(ChatError::NotEditor(id)),
                    "no_such_message" => Err(ChatError::NoSuchMessage(id)),
                    json => updated(json, room),
                }
            }
            Proposal::React { id, by, emoji } => {
                let outcome: String = self
                    .scripts
                    .react
                    .key(keys::room_log(&channel))
                    .arg(id)
                    .arg(by.0)
                    .arg(&channel)
                    .arg(emoji.as_str())
                    .invoke_async(&mut conn)
                    .await
                    .map_err(unavailable)?;
                match outcome.as_str() {
                    "no_such_message" => Err(ChatError::NoSuchMessage(id)),
                    json => updated(json, room),
                }
            }
            Proposal::Signal(Signal::Presence(share)) => {
                self.store_share(&channel, share).await?;
                Ok(Receipt::Done)
            }
            Proposal::Signal(signal) => {
                let payload = wire::signal(signal).map_err(unavailable)?;
                let _: i64 = conn.publish(&channel, payload).await.map_err(unavailable)?;
                Ok(Receipt::Done)
            }
        }
    }

    async fn put_file(&self, file: StoredFile) -> Result<(), ChatError> {
        files::put(&mut self.conn.clone(), &file, &self.limits).await
    }

    async fn file(&self, id: &FileId) -> Result<Option<StoredFile>, ChatError> {
        files::get(&mut self.conn.clone(), id).await
    }

    fn cluster_events(&self) -> mpsc::UnboundedReceiver<ClusterEvent> {
        self.shared.add_registry()
    }

    fn epoch(&self) -> &str {
        &self.epoch
    }

    async fn heartbeat(&self, node: &NodeId, expiry: Duration) -> Result<Beat, ChatError> {
        self.beat(node, expiry).await
    }

    async fn node_stopped(&self, node: &NodeId) -> Result<(), ChatError> {
        self.leave(node).await
    }

    async fn log_out(&self, user: UserId) -> Result<(), ChatError> {
        let _: i64 = self
            .scripts
            .logout
            .key(keys::user(user.0))
            .key(keys::USERS)
            .arg(user.0)
            .arg(PREFIX)
            .arg(keys::CLUSTER_CHANNEL)
            .invoke_async(&mut self.conn.clone())
            .await
            .map_err(unavailable)?;
        Ok(())
    }

    async fn take_token(
        &self,
        user: UserId,
        limit: &'static str,
        rate: Rate,
    ) -> Result<(), ChatError> {
        self.take(keys::bucket(limit, user), limit, rate).await
    }

    /// Both connections must work: the pub/sub one (changes from other nodes) is up, and
    /// the command one answers a `PING` within a second (`HEALTH_TIMEOUT`).
    async fn reachable(&self) -> bool {
        if !self.shared.subscribed() {
            return false;
        }
        let mut conn = self.conn.clone();
        let command = redis::cmd("PING");
        let ping = command.query_async::<String>(&mut conn);
        matches!(tokio::time::timeout(HEALTH_TIMEOUT, ping).await, Ok(Ok(_)))
    }
}

/// The receipt for a message an edit or react script rewrote and returned.
fn updated(json: &str, room: &Room) -> Result<Receipt, ChatError> {
    wire::message(json, room)
        .map(Receipt::Updated)
        .ok_or_else(|| ChatError::Unavailable("redis returned a malformed message".into()))
}

/// The user whose id `key` holds (a name's or a token's key), with their name, if both
/// are still there.
async fn user_at(conn: &mut ConnectionManager, key: String) -> Result<Option<UserRef>, ChatError> {
    let id: Option<u64> = conn.get(key).await.map_err(unavailable)?;
    let Some(id) = id else { return Ok(None) };
    let name: Option<String> = conn
        .hget(keys::user(id), "name")
        .await
        .map_err(unavailable)?;
    Ok(name.map(|name| UserRef {
        id: UserId(id),
        name: Arc::from(name),
    }))
}

/// Orders a private pair by user id, as the room's keys do: the touch script finds a
/// private room's keys from the pair stored in each user's set.
fn sorted(pair: [UserRef; 2]) -> [UserRef; 2] {
    let [a, b] = pair;
    if a.id <= b.id {
        [a, b]
    } else {
        [b, a]
    }
}

/// A Redis failure as callers see it, logged where it happens.
fn unavailable(e: impl std::fmt::Display) -> ChatError {
    tracing::warn!(error = %e, "redis unavailable");
    ChatError::Unavailable(format!("redis: {e}"))
}

/// The URL without a password, for logs.
fn redact(url: &str) -> String {
    match url.split_once('@') {
        Some((_, host)) => format!("redis://…@{host}"),
        None => url.to_owned(),
    }
}
