//! `RedisBroker`: the broker for several nodes sharing one Redis (feature `redis`).
//!
//! Every decision that must be the same on every node is one atomic Redis operation: a
//! Lua script allocates a room's next id, appends the message to the room's list, trims
//! it to the history limit and publishes it, so ids never collide or go backwards and
//! every node sees one order (Redis delivers a connection's pub/sub messages in publish
//! order). Channel names are claimed with `HSETNX`, display names with `SET NX`.
//!
//! One task per broker owns the pub/sub connection: it routes each room's published
//! changes to the local channel actors that follow it, and cluster events to the
//! registry. When Redis goes away, commands fail fast with `unavailable`; the task
//! reconnects with backoff, resubscribes, and resynchronises every followed room from
//! the stored lists, so local subscribers get what was missed. The key layout is in
//! `docs/architecture.md`. Called only through the [`Broker`] trait.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures_util::StreamExt;
use redis::aio::{ConnectionManager, ConnectionManagerConfig, PubSubSink};
use redis::{AsyncCommands, Script};
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

use crate::broker::{
    Broker, Change, ChannelRecord, ClusterEvent, Follow, Proposal, Receipt, Signal,
};
use crate::directory::identity::{Identity, ResumeToken};
use crate::error::ChatError;
use crate::event::PresenceChange;
use crate::limits::Limits;
use crate::model::{now_millis, ChannelName, ChatMessage, Room, RoomKey, UserId, UserRef};
use crate::validate;

/// Every key and pub/sub channel starts with this.
const PREFIX: &str = "flack";
/// The pub/sub channel of cluster events.
const CLUSTER_CHANNEL: &str = "flack:cluster";
/// How long one Redis command may take before the caller gets `unavailable`.
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(2);
/// How long connecting may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);
/// Reconnection backoff of the pub/sub task: from the first to the last delay, doubling.
const BACKOFF_FIRST: Duration = Duration::from_millis(100);
const BACKOFF_MAX: Duration = Duration::from_secs(5);

/// Post: allocate the id, store, trim, publish. The message arrives as JSON whose first
/// field is `"id":0`; the script puts the real id there. A private room's keys get
/// `ARGV[4]` seconds to live (0: a channel's, which never expire).
const POST_SCRIPT: &str = r#"
local id = redis.call('INCR', KEYS[1])
local message = string.gsub(ARGV[2], '^{"id":0,', '{"id":' .. id .. ',', 1)
redis.call('RPUSH', KEYS[2], message)
redis.call('LTRIM', KEYS[2], -tonumber(ARGV[1]), -1)
if tonumber(ARGV[4]) > 0 then
  redis.call('EXPIRE', KEYS[1], ARGV[4])
  redis.call('EXPIRE', KEYS[2], ARGV[4])
end
redis.call('PUBLISH', ARGV[3], '{"posted":' .. message .. '}')
return message
"#;

/// Delete: only the author, only a stored message.
const DELETE_SCRIPT: &str = r#"
local items = redis.call('LRANGE', KEYS[1], 0, -1)
for _, item in ipairs(items) do
  local m = cjson.decode(item)
  if m.id == tonumber(ARGV[1]) then
    if m.author.id ~= tonumber(ARGV[2]) then return 'not_author' end
    redis.call('LREM', KEYS[1], 1, item)
    redis.call('PUBLISH', ARGV[3], '{"deleted":' .. ARGV[1] .. '}')
    return 'ok'
  end
end
return 'no_such_message'
"#;

/// Register: claim the display name (unless held), create the user and its token.
const REGISTER_SCRIPT: &str = r#"
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
local id = redis.call('INCR', KEYS[2])
local user = ARGV[5] .. ':user:' .. id
redis.call('SET', KEYS[1], id, 'EX', ARGV[1])
redis.call('SET', ARGV[5] .. ':token:' .. ARGV[3], id, 'EX', ARGV[1])
redis.call('HSET', user, 'name', ARGV[2], 'token', ARGV[3], 'name_key', KEYS[1])
redis.call('EXPIRE', user, ARGV[1])
return id
"#;

/// Resume: the token's user, if its name is still theirs; refreshes the hold.
const RESUME_SCRIPT: &str = r#"
local id = redis.call('GET', KEYS[1])
if not id then return false end
local user = ARGV[2] .. ':user:' .. id
local fields = redis.call('HMGET', user, 'name', 'name_key')
if not fields[1] or redis.call('GET', fields[2]) ~= id then return false end
redis.call('EXPIRE', KEYS[1], ARGV[1])
redis.call('EXPIRE', user, ARGV[1])
redis.call('EXPIRE', fields[2], ARGV[1])
return {tonumber(id), fields[1]}
"#;

/// Touch: restart the hold of a user's name, token and record, and of their private
/// conversations (so one lives while either of its users does).
const TOUCH_SCRIPT: &str = r#"
for i, id in ipairs(ARGV) do
  if i > 1 then
    local user = KEYS[1] .. ':user:' .. id
    local fields = redis.call('HMGET', user, 'name_key', 'token')
    if fields[1] then
      redis.call('EXPIRE', user, ARGV[1])
      redis.call('EXPIRE', fields[1], ARGV[1])
      redis.call('EXPIRE', KEYS[1] .. ':token:' .. fields[2], ARGV[1])
      local dms = KEYS[1] .. ':dms:' .. id
      for _, pair in ipairs(redis.call('SMEMBERS', dms)) do
        local p = cjson.decode(pair)
        local room = string.format('%s:room:d:%d:%d', KEYS[1], p[1].id, p[2].id)
        redis.call('EXPIRE', room .. ':seq', ARGV[1])
        redis.call('EXPIRE', room .. ':log', ARGV[1])
      end
      redis.call('EXPIRE', dms, ARGV[1])
    end
  end
end
return 1
"#;

#[derive(Serialize, Deserialize)]
struct WireUser {
    id: u64,
    name: String,
}

#[derive(Serialize, Deserialize)]
struct WireMessage {
    id: u64,
    author: WireUser,
    text: String,
    sent_at: i64,
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum WireChange {
    Posted(WireMessage),
    Deleted(u64),
    Presence { user: WireUser, change: String },
    Typing(WireUser),
}

#[derive(Serialize, Deserialize)]
struct WireChannel {
    name: String,
    created_at: i64,
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum WireCluster {
    ChannelCreated(WireChannel),
    DirectOpened([WireUser; 2]),
}

/// The local followers of one room's pub/sub channel.
struct RoomFollowers {
    room: Room,
    followers: Vec<mpsc::UnboundedSender<Change>>,
}

/// What the broker handle and its pub/sub task share.
struct Shared {
    rooms: Mutex<HashMap<String, RoomFollowers>>,
    registries: Mutex<Vec<mpsc::UnboundedSender<ClusterEvent>>>,
    sink: Mutex<Option<PubSubSink>>,
}

/// A broker backed by one Redis server, shared by every node.
#[derive(Clone)]
pub struct RedisBroker {
    conn: ConnectionManager,
    shared: Arc<Shared>,
    history_limit: usize,
    hold_secs: u64,
    scripts: Arc<Scripts>,
}

struct Scripts {
    post: Script,
    delete: Script,
    register: Script,
    resume: Script,
    touch: Script,
}

impl std::fmt::Debug for RedisBroker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisBroker").finish_non_exhaustive()
    }
}

impl RedisBroker {
    /// Connects to Redis at `url` (`redis://HOST:PORT`) and starts the pub/sub task on the
    /// current tokio runtime (`Engine::from_config` calls this on its first channel
    /// worker). Fails with `unavailable` if Redis cannot be reached now.
    pub async fn connect(url: &str, limits: &Limits) -> Result<RedisBroker, ChatError> {
        let client = redis::Client::open(url).map_err(unavailable)?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(CONNECT_TIMEOUT))
            .set_response_timeout(Some(RESPONSE_TIMEOUT))
            .set_number_of_retries(1)
            .set_max_delay(BACKOFF_MAX);
        let conn = ConnectionManager::new_with_config(client.clone(), config)
            .await
            .map_err(unavailable)?;
        let shared = Arc::new(Shared {
            rooms: Mutex::new(HashMap::new()),
            registries: Mutex::new(Vec::new()),
            sink: Mutex::new(None),
        });
        let broker = RedisBroker {
            conn,
            shared: shared.clone(),
            history_limit: limits.history.max(1),
            hold_secs: limits.name_hold.as_secs().max(1),
            scripts: Arc::new(Scripts {
                post: Script::new(POST_SCRIPT),
                delete: Script::new(DELETE_SCRIPT),
                register: Script::new(REGISTER_SCRIPT),
                resume: Script::new(RESUME_SCRIPT),
                touch: Script::new(TOUCH_SCRIPT),
            }),
        };
        tokio::spawn(run_pubsub(
            client,
            Arc::downgrade(&shared),
            broker.conn.clone(),
        ));
        tracing::info!(url = %redact(url), "redis broker connected");
        Ok(broker)
    }

    async fn publish_cluster(&self, event: WireCluster) -> Result<(), ChatError> {
        let payload = serde_json::to_string(&event).map_err(unavailable)?;
        let _: i64 = self
            .conn
            .clone()
            .publish(CLUSTER_CHANNEL, payload)
            .await
            .map_err(unavailable)?;
        Ok(())
    }
}

#[async_trait::async_trait]
impl Broker for RedisBroker {
    async fn register(&self, name: String) -> Result<Identity, ChatError> {
        let token = ResumeToken::generate()?;
        let name_key = format!("{PREFIX}:name:{}", validate::name_key(&name));
        let id: u64 = self
            .scripts
            .register
            .key(&name_key)
            .key(format!("{PREFIX}:user:next"))
            .arg(self.hold_secs)
            .arg(&name)
            .arg(token.expose())
            .arg(&name_key)
            .arg(PREFIX)
            .invoke_async(&mut self.conn.clone())
            .await
            .map_err(unavailable)?;
        if id == 0 {
            return Err(ChatError::NameTaken(name));
        }
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
            .key(format!("{PREFIX}:token:{}", token.expose()))
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

    fn session_ended(&self, user: UserId) {
        let broker = self.clone();
        tokio::spawn(async move {
            if let Err(e) = broker.keep_alive(vec![user]).await {
                tracing::warn!(error = %e, "could not restart a name hold");
            }
        });
    }

    async fn keep_alive(&self, online: Vec<UserId>) -> Result<(), ChatError> {
        if online.is_empty() {
            return Ok(());
        }
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
        let mut conn = self.conn.clone();
        let name_key = format!("{PREFIX}:name:{}", validate::name_key(name.trim()));
        let id: Option<u64> = conn.get(&name_key).await.map_err(unavailable)?;
        let Some(id) = id else { return Ok(None) };
        let name: Option<String> = conn
            .hget(format!("{PREFIX}:user:{id}"), "name")
            .await
            .map_err(unavailable)?;
        Ok(name.map(|name| UserRef {
            id: UserId(id),
            name: Arc::from(name),
        }))
    }

    async fn claim_channel(
        &self,
        name: &ChannelName,
        created_at: DateTime<Utc>,
    ) -> Result<bool, ChatError> {
        let record = WireChannel {
            name: name.as_str().to_owned(),
            created_at: created_at.timestamp_millis(),
        };
        let json = serde_json::to_string(&record).map_err(unavailable)?;
        let claimed: bool = self
            .conn
            .clone()
            .hset_nx(format!("{PREFIX}:channels"), name.key(), json)
            .await
            .map_err(unavailable)?;
        if claimed {
            self.publish_cluster(WireCluster::ChannelCreated(record))
                .await?;
        }
        Ok(claimed)
    }

    async fn lookup_channel(&self, key: &str) -> Result<Option<ChannelRecord>, ChatError> {
        let json: Option<String> = self
            .conn
            .clone()
            .hget(format!("{PREFIX}:channels"), key)
            .await
            .map_err(unavailable)?;
        Ok(json.and_then(|j| parse_channel(&j)))
    }

    async fn channels(&self) -> Result<Vec<ChannelRecord>, ChatError> {
        let all: Vec<String> = self
            .conn
            .clone()
            .hvals(format!("{PREFIX}:channels"))
            .await
            .map_err(unavailable)?;
        Ok(all.iter().filter_map(|j| parse_channel(j)).collect())
    }

    async fn open_direct(&self, pair: [UserRef; 2]) -> Result<(), ChatError> {
        let mut conn = self.conn.clone();
        let [a, b] = sorted(pair);
        let wire = [wire_user(&a), wire_user(&b)];
        let json = serde_json::to_string(&wire).map_err(unavailable)?;
        let added: i64 = conn
            .sadd(format!("{PREFIX}:dms:{}", a.id.0), &json)
            .await
            .map_err(unavailable)?;
        let _: i64 = conn
            .sadd(format!("{PREFIX}:dms:{}", b.id.0), &json)
            .await
            .map_err(unavailable)?;
        // Held like their users' records (the peer may be offline: it would never be
        // touched otherwise); touching either user extends them.
        for user in [a.id, b.id] {
            let _: bool = conn
                .expire(format!("{PREFIX}:dms:{}", user.0), self.hold_secs as i64)
                .await
                .map_err(unavailable)?;
        }
        if added == 1 {
            self.publish_cluster(WireCluster::DirectOpened(wire))
                .await?;
        }
        Ok(())
    }

    async fn directs_of(&self, user: UserId) -> Result<Vec<[UserRef; 2]>, ChatError> {
        let all: Vec<String> = self
            .conn
            .clone()
            .smembers(format!("{PREFIX}:dms:{}", user.0))
            .await
            .map_err(unavailable)?;
        Ok(all
            .iter()
            .filter_map(|j| serde_json::from_str::<[WireUser; 2]>(j).ok())
            .map(|[a, b]| [user_ref(a), user_ref(b)])
            .collect())
    }

    async fn follow(&self, room: &Room) -> Result<Follow, ChatError> {
        let channel = room_channel(room);
        let (tx, changes) = mpsc::unbounded_channel();
        let first = {
            let mut rooms = lock(&self.shared.rooms);
            let entry = rooms
                .entry(channel.clone())
                .or_insert_with(|| RoomFollowers {
                    room: room.clone(),
                    followers: Vec::new(),
                });
            entry.followers.push(tx);
            entry.followers.len() == 1
        };
        let sink = lock(&self.shared.sink).clone();
        // Subscribe before reading the list: a message in both is applied once (the
        // actor ignores ids it has), a message in neither cannot exist.
        if let (true, Some(mut sink)) = (first, sink) {
            if let Err(e) = sink.subscribe(&channel).await {
                tracing::warn!(error = %e, channel, "subscribe failed; the pub/sub task will retry");
            }
        }
        let messages = match read_log(&mut self.conn.clone(), room).await {
            Ok(messages) => messages,
            Err(e) => {
                tracing::warn!(error = %e, channel, "history not loaded; it will be resynchronised");
                Vec::new()
            }
        };
        Ok(Follow { messages, changes })
    }

    async fn commit(&self, room: &Room, proposal: Proposal) -> Result<Receipt, ChatError> {
        let mut conn = self.conn.clone();
        let channel = room_channel(room);
        match proposal {
            Proposal::Post { author, text } => {
                // A private conversation lives while one of its users is held (see
                // TOUCH_SCRIPT).
                let expiry = match room {
                    Room::Channel(_) => 0,
                    Room::Direct(_) => self.hold_secs,
                };
                let draft = WireMessage {
                    id: 0,
                    author: wire_user(&author),
                    text,
                    sent_at: now_millis().timestamp_millis(),
                };
                let draft = serde_json::to_string(&draft).map_err(unavailable)?;
                let stored: String = self
                    .scripts
                    .post
                    .key(format!("{channel}:seq"))
                    .key(format!("{channel}:log"))
                    .arg(self.history_limit)
                    .arg(draft)
                    .arg(&channel)
                    .arg(expiry)
                    .invoke_async(&mut conn)
                    .await
                    .map_err(unavailable)?;
                let message = parse_message(&stored, room).ok_or_else(|| {
                    ChatError::Unavailable("redis returned a malformed message".into())
                })?;
                Ok(Receipt::Posted(message))
            }
            Proposal::Delete { id, by } => {
                let outcome: String = self
                    .scripts
                    .delete
                    .key(format!("{channel}:log"))
                    .arg(id)
                    .arg(by.0)
                    .arg(&channel)
                    .invoke_async(&mut conn)
                    .await
                    .map_err(unavailable)?;
                match outcome.as_str() {
                    "ok" => Ok(Receipt::Done),
                    "not_author" => Err(ChatError::NotAuthor(id)),
                    _ => Err(ChatError::NoSuchMessage(id)),
                }
            }
            Proposal::Signal(signal) => {
                let wire = match signal {
                    Signal::Presence(user, change) => WireChange::Presence {
                        user: wire_user(&user),
                        change: change.as_str().to_owned(),
                    },
                    Signal::Typing(user) => WireChange::Typing(wire_user(&user)),
                };
                let payload = serde_json::to_string(&wire).map_err(unavailable)?;
                let _: i64 = conn.publish(&channel, payload).await.map_err(unavailable)?;
                Ok(Receipt::Done)
            }
        }
    }

    fn cluster_events(&self) -> mpsc::UnboundedReceiver<ClusterEvent> {
        let (tx, rx) = mpsc::unbounded_channel();
        lock(&self.shared.registries).push(tx);
        rx
    }
}

/// The pub/sub task: connect, subscribe to everything followed, route messages; on loss,
/// back off, reconnect, and resynchronise. Ends when the broker is dropped.
async fn run_pubsub(client: redis::Client, shared: Weak<Shared>, mut conn: ConnectionManager) {
    let mut delay = BACKOFF_FIRST;
    let mut reconnecting = false;
    loop {
        let Some(state) = shared.upgrade() else {
            return;
        };
        match subscribe_all(&client, &state).await {
            Ok(mut stream) => {
                // What the rooms missed is only recovered by the catch-up: if it fails,
                // the whole reconnection is tried again rather than going on without it.
                let caught_up = !reconnecting
                    || {
                        tracing::info!("redis pub/sub reconnected; resynchronising rooms");
                        let result = resync(&state, &mut conn).await;
                        if let Err(e) = &result {
                            tracing::warn!(error = %e, retry_in_ms = delay.as_millis() as u64, "resynchronising after the outage failed");
                        }
                        result.is_ok()
                    };
                drop(state);
                if caught_up {
                    delay = BACKOFF_FIRST;
                    while let Some(message) = stream.next().await {
                        let Some(state) = shared.upgrade() else {
                            return;
                        };
                        route(
                            &state,
                            message.get_channel_name(),
                            message.get_payload_bytes(),
                        );
                    }
                    tracing::warn!("redis pub/sub connection lost; reconnecting");
                }
                if let Some(state) = shared.upgrade() {
                    *lock(&state.sink) = None;
                }
            }
            Err(e) => {
                drop(state);
                tracing::warn!(error = %e, retry_in_ms = delay.as_millis() as u64, "redis pub/sub unavailable");
            }
        }
        reconnecting = true;
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(BACKOFF_MAX);
    }
}

async fn subscribe_all(
    client: &redis::Client,
    state: &Shared,
) -> redis::RedisResult<redis::aio::PubSubStream> {
    let (mut sink, stream) = client.get_async_pubsub().await?.split();
    sink.subscribe(CLUSTER_CHANNEL).await?;
    let channels: Vec<String> = lock(&state.rooms).keys().cloned().collect();
    for channel in channels {
        sink.subscribe(&channel).await?;
    }
    *lock(&state.sink) = Some(sink);
    Ok(stream)
}

/// After an outage: every followed room gets its stored list again (the actors apply
/// what they missed, ignoring what they have), and the registries hear of every channel.
/// Fails on the first read that fails (the command connection may still be
/// reconnecting); the caller then tries again.
async fn resync(state: &Shared, conn: &mut ConnectionManager) -> Result<(), ChatError> {
    let rooms: Vec<Room> = lock(&state.rooms)
        .values()
        .map(|r| r.room.clone())
        .collect();
    for room in rooms {
        let messages = read_log(conn, &room).await?;
        deliver(state, &room_channel(&room), Change::Resync(messages));
    }
    let channels: Vec<String> = conn
        .hvals(format!("{PREFIX}:channels"))
        .await
        .map_err(unavailable)?;
    for (name, created_at) in channels.iter().filter_map(|j| parse_channel(j)) {
        announce(state, ClusterEvent::ChannelCreated { name, created_at });
    }
    Ok(())
}

fn route(state: &Shared, channel: &str, payload: &[u8]) {
    if channel == CLUSTER_CHANNEL {
        match serde_json::from_slice::<WireCluster>(payload) {
            Ok(WireCluster::ChannelCreated(c)) => {
                if let Some((name, created_at)) = channel_record(c) {
                    announce(state, ClusterEvent::ChannelCreated { name, created_at });
                }
            }
            Ok(WireCluster::DirectOpened([a, b])) => announce(
                state,
                ClusterEvent::DirectOpened([user_ref(a), user_ref(b)]),
            ),
            Err(e) => tracing::warn!(error = %e, "malformed cluster event"),
        }
        return;
    }
    let room = match lock(&state.rooms).get(channel) {
        Some(r) => r.room.clone(),
        None => return,
    };
    let change = match serde_json::from_slice::<WireChange>(payload) {
        Ok(WireChange::Posted(m)) => Change::Posted(Arc::new(chat_message(m, &room))),
        Ok(WireChange::Deleted(id)) => Change::Deleted(id),
        Ok(WireChange::Typing(u)) => Change::Signal(Signal::Typing(user_ref(u))),
        Ok(WireChange::Presence { user, change }) => match presence(&change) {
            Some(change) => Change::Signal(Signal::Presence(user_ref(user), change)),
            None => return,
        },
        Err(e) => {
            tracing::warn!(error = %e, channel, "malformed room change");
            return;
        }
    };
    deliver(state, channel, change);
}

fn deliver(state: &Shared, channel: &str, change: Change) {
    if let Some(room) = lock(&state.rooms).get_mut(channel) {
        room.followers.retain(|f| f.send(change.clone()).is_ok());
    }
}

fn announce(state: &Shared, event: ClusterEvent) {
    lock(&state.registries).retain(|r| r.send(event.clone()).is_ok());
}

async fn read_log(
    conn: &mut ConnectionManager,
    room: &Room,
) -> Result<Vec<Arc<ChatMessage>>, ChatError> {
    let items: Vec<String> = conn
        .lrange(format!("{}:log", room_channel(room)), 0, -1)
        .await
        .map_err(unavailable)?;
    Ok(items
        .iter()
        .filter_map(|j| parse_message(j, room))
        .collect())
}

/// The pub/sub channel of a room; its keys add `:seq` (last id) and `:log` (history).
fn room_channel(room: &Room) -> String {
    match room.key() {
        RoomKey::Channel(key) => format!("{PREFIX}:room:c:{key}"),
        RoomKey::Direct(a, b) => format!("{PREFIX}:room:d:{}:{}", a.0, b.0),
    }
}

fn parse_message(json: &str, room: &Room) -> Option<Arc<ChatMessage>> {
    let wire: WireMessage = serde_json::from_str(json).ok()?;
    Some(Arc::new(chat_message(wire, room)))
}

fn chat_message(m: WireMessage, room: &Room) -> ChatMessage {
    ChatMessage {
        encodings: Default::default(),
        id: m.id,
        room: room.clone(),
        author: user_ref(m.author),
        text: m.text,
        sent_at: DateTime::from_timestamp_millis(m.sent_at).unwrap_or_default(),
    }
}

fn parse_channel(json: &str) -> Option<ChannelRecord> {
    channel_record(serde_json::from_str(json).ok()?)
}

fn channel_record(c: WireChannel) -> Option<ChannelRecord> {
    let name = validate::channel_name(
        &c.name,
        &Limits {
            max_channel_name_chars: usize::MAX,
            ..Limits::default()
        },
    )
    .ok()?;
    Some((name, DateTime::from_timestamp_millis(c.created_at)?))
}

fn presence(change: &str) -> Option<PresenceChange> {
    [
        PresenceChange::Joined,
        PresenceChange::Left,
        PresenceChange::Online,
        PresenceChange::Offline,
    ]
    .into_iter()
    .find(|c| c.as_str() == change)
}

fn sorted(pair: [UserRef; 2]) -> [UserRef; 2] {
    let [a, b] = pair;
    if a.id <= b.id {
        [a, b]
    } else {
        [b, a]
    }
}

fn wire_user(u: &UserRef) -> WireUser {
    WireUser {
        id: u.id.0,
        name: u.name.to_string(),
    }
}

fn user_ref(u: WireUser) -> UserRef {
    UserRef {
        id: UserId(u.id),
        name: Arc::from(u.name),
    }
}

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

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}
