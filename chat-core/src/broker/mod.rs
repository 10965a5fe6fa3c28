//! The broker seam: everything the nodes of one chat must agree on. Who the users are
//! (names, tokens), which channels and private rooms exist, the order of each room's
//! changes, where the shared copy of a room's history lives, and how changes reach the
//! other nodes.
//!
//! A channel actor never appends to its own history directly. It *commits* a proposal
//! (a post, a deletion, an edit, a reaction, a presence or typing signal) to the broker, and applies the
//! changes that come back on the room's *feed*, which carries the changes of every node in
//! one order.
//!
//! Called only by channel actors and the registry; it must not know about sessions.
//! Channel actors commit and follow rooms; the registry does users, names and private
//! rooms, and listens to [`ClusterEvent`]s.
//!
//! - this file: the [`Broker`] trait, the types that cross it, and the lock helper both
//!   brokers use;
//! - `memory`: [`MemoryBroker`], the default: the feed is this process, and a commit is
//!   decided, stored and delivered before its call returns;
//! - `sqlite/` (feature `sqlite`): `SqliteBroker`, the in-memory broker loaded from one
//!   SQLite file at start and written behind it by a thread of its own, in batches, so
//!   that a restart loses nothing acknowledged. Its `mod.rs` is the broker, `schema` the
//!   versioned tables and the checks made on opening, `load` what is read back at start,
//!   and `writer` the write-behind thread;
//! - `redis/` (feature `redis`): `RedisBroker`, the same trait over one shared Redis,
//!   where an atomic script allocates ids, trims the stored history and publishes, so
//!   nothing above this seam changes. Its `mod.rs` is the broker's commands, `keys` the
//!   key layout, `wire` the stored and published JSON, `scripts` the Lua scripts,
//!   `cluster` the nodes' heartbeats, presence shares and cluster-wide flood buckets,
//!   `post` a post and its files, `files` uploaded files, `setup` what connecting checks,
//!   and `pubsub` the task that feeds the local rooms and resynchronises them after an
//!   outage;
//! - `files`: `FileShelf`, the files the in-memory broker keeps (and the SQLite broker
//!   knows of), waiting for a post or attached to a kept message;
//! - `metered` (feature `redis`): `Metered`, a broker in front of another that times each
//!   operation and counts those that could not reach the store (the Redis command
//!   metrics of `telemetry`).
//!
//! Besides rooms, the seam carries what makes nodes one cluster: each node's share of a
//! room's presence (a [`NodePresence`] signal per room per node per presence tick), the
//! nodes' heartbeats ([`Broker::heartbeat`], [`ClusterEvent::NodeGone`]) and users' flood
//! buckets counted over every node ([`Broker::take_token`]).

mod files;
mod memory;
#[cfg(feature = "redis")]
pub(crate) mod metered;
#[cfg(feature = "redis")]
pub(crate) mod redis;
#[cfg(feature = "sqlite")]
pub(crate) mod sqlite;

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::sync::mpsc;

use crate::attachment::{FileId, StoredFile};
use crate::error::ChatError;
use crate::identity::{Identity, ResumeToken};
use crate::limits::Rate;
use crate::model::{ChannelName, ChatMessage, MessageId, Room, UserId, UserRef};
use crate::reaction::Emoji;

pub use memory::MemoryBroker;
#[cfg(feature = "sqlite")]
pub(crate) use memory::{Restored, RestoredRoom};

/// A channel as the cluster records it: its name and when it was created.
pub type ChannelRecord = (ChannelName, DateTime<Utc>);

/// A change a channel actor asks the broker to commit to a room.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum Proposal {
    /// Post a new message; the broker assigns its id and timestamp.
    Post {
        /// The author.
        author: UserRef,
        /// The validated text.
        text: String,
        /// Files the author uploaded for it ([`Broker::put_file`]), each once: the broker
        /// attaches them, or refuses the post with `no_such_file` when one is not waiting
        /// for a post of `author`, or with the error of
        /// [`check_message_files`](crate::attachment::check_message_files).
        files: Vec<FileId>,
    },
    /// Delete a message; the broker checks that `by` wrote it.
    Delete {
        /// Which message.
        id: MessageId,
        /// Who asks.
        by: UserId,
    },
    /// Replace a kept message's text; the broker checks that `by` wrote it and stamps
    /// `edited_at`.
    Edit {
        /// Which message.
        id: MessageId,
        /// Who asks.
        by: UserId,
        /// The validated new text.
        text: String,
    },
    /// Add `by`'s `emoji` to a kept message, or take it away if it is there.
    React {
        /// Which message.
        id: MessageId,
        /// Who reacts.
        by: UserId,
        /// Which emoji of the set.
        emoji: Emoji,
    },
    /// An ephemeral signal: never stored, only relayed.
    Signal(Signal),
}

/// An ephemeral change relayed to every node's followers of a room.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum Signal {
    /// What changed in one node's share of the room's members over one presence tick (or
    /// its whole share): every node's room merges the shares into one member list.
    Presence(NodePresence),
    /// A member is typing.
    Typing(UserRef),
}

/// The id of one node of a cluster (one engine): random, made when the engine starts.
pub type NodeId = Arc<str>;

/// Where a member stands in a room *on one node* (the node's share of the room).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum HereState {
    /// At least one of the member's sessions on that node follows the room.
    Online,
    /// A member through that node, with no session there now.
    Offline,
    /// The member left the room on that node (on purpose): no longer a member there.
    Left,
}

/// One node's presence in a room, as one signal per presence tick: the cost of presence
/// between nodes is one publish per room per node per tick, whatever the number of
/// changes, and nothing on a message's path.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct NodePresence {
    /// The node whose share this is.
    pub node: NodeId,
    /// Whether `members` is the node's whole share (it replaces what the others knew of
    /// that node), or only what changed since its last signal.
    pub full: bool,
    /// Whether the node asks every other node for its whole share: its room has just
    /// started, or caught up after an outage, and knows nothing of the others.
    pub ask: bool,
    /// The members whose state on that node is new (or all of them, when `full`).
    pub members: Vec<(UserRef, HereState)>,
}

impl NodePresence {
    /// A share of `node`'s presence in a room.
    pub fn new(
        node: NodeId,
        full: bool,
        ask: bool,
        members: Vec<(UserRef, HereState)>,
    ) -> NodePresence {
        NodePresence {
            node,
            full,
            ask,
            members,
        }
    }
}

/// A committed change, as delivered on a room's feed.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum Change {
    /// A message was appended.
    Posted(Arc<ChatMessage>),
    /// A message was removed.
    Deleted(MessageId),
    /// A kept message was edited or reacted to: its whole new state, which replaces the
    /// one kept (applying it twice changes nothing).
    Updated(Arc<ChatMessage>),
    /// A signal was relayed.
    Signal(Signal),
    /// The room's whole stored history, after the broker lost and regained its
    /// connection: apply what is new, drop what was deleted meanwhile, and report as lost
    /// what the store no longer has. It may have been read before changes the feed has
    /// already delivered: ids above its `last_id` are newer than it, and left alone.
    Resync(Stored),
}

/// What the broker returns for a committed proposal.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum Receipt {
    /// The stored message (for `Proposal::Post`).
    Posted(Arc<ChatMessage>),
    /// The message's new state (for `Proposal::Edit` and `Proposal::React`).
    Updated(Arc<ChatMessage>),
    /// Done (deletions and signals).
    Done,
}

/// A room's stored history: the messages the store keeps, and the last id it ever gave.
///
/// The two together are what lets a follower tell a deletion from a loss: every id up to
/// `last_id` was given once, so an id within the kept range that is missing was deleted,
/// and an id below the first kept one is unknown (evicted, or deleted before anyone here
/// saw it). `unknown_through` widens the unknown ids: a store that restarted after an
/// unclean stop cannot say which of the ids it gave last were written.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Stored {
    /// The kept messages, oldest first.
    pub messages: Vec<Arc<ChatMessage>>,
    /// The highest id ever given in the room, kept or not.
    pub last_id: MessageId,
    /// Every id up to this one is unknown to the store, kept messages included: a follower
    /// that saw any of them is told of a gap, never that one was deleted. Usually 0.
    pub unknown_through: MessageId,
}

impl Stored {
    /// A stored history of `messages` (oldest first) whose highest id ever given is
    /// `last_id` (at least the last message's).
    pub fn new(messages: Vec<Arc<ChatMessage>>, last_id: MessageId) -> Stored {
        let newest = messages.last().map_or(0, |m| m.id);
        Stored {
            messages,
            last_id: last_id.max(newest),
            unknown_through: 0,
        }
    }

    /// The same history, where every id up to `id` (at most `last_id`) is unknown.
    pub fn with_unknown_through(mut self, id: MessageId) -> Stored {
        self.unknown_through = id.min(self.last_id);
        self
    }
}

/// A room's stored history at the moment of following it, and every change after it.
#[derive(Debug)]
#[non_exhaustive]
pub struct Follow {
    /// The stored history.
    pub stored: Stored,
    /// Changes committed after `messages` was read, in the one order every node sees.
    /// Unbounded because its consumer is an in-process actor that only moves pointers; the
    /// bounded queues are the sessions' own.
    pub changes: mpsc::UnboundedReceiver<Change>,
    /// Every node's whole share of the room's presence when it was followed, for a broker
    /// that keeps them (Redis); `None` when it does not (then the room asks the other
    /// nodes, which answer within a presence tick).
    pub presence: Option<Vec<NodePresence>>,
}

impl Follow {
    /// A room's stored history and its feed, with no presence kept.
    pub fn new(stored: Stored, changes: mpsc::UnboundedReceiver<Change>) -> Follow {
        Follow {
            stored,
            changes,
            presence: None,
        }
    }

    /// The same, with the nodes' shares of the room's presence as the broker keeps them.
    pub fn with_presence(mut self, shares: Vec<NodePresence>) -> Follow {
        self.presence = Some(shares);
        self
    }
}

/// Something that happened on one node that every node's registry must know.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum ClusterEvent {
    /// A channel was created (on any node).
    ChannelCreated {
        /// Its name.
        name: ChannelName,
        /// When.
        created_at: DateTime<Utc>,
    },
    /// Two users' private room was used for the first time (on any node).
    DirectOpened([UserRef; 2]),
    /// A node stopped beating ([`Broker::heartbeat`]): its members' presence is gone from
    /// every room.
    NodeGone(NodeId),
    /// A user logged out ([`Broker::log_out`]): every node closes their sessions.
    LoggedOut(UserId),
}

/// What a node's heartbeat found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Beat {
    /// The cluster did not know this node (its first beat, or it had been taken for dead
    /// after missing beats): every room here announces its whole share again.
    pub rejoined: bool,
    /// Every node alive now, this one included (empty for a broker without nodes): a node
    /// that was alive at the previous beat and is missing now is gone, even when its
    /// [`ClusterEvent::NodeGone`] was lost (this node's pub/sub was down at the time).
    pub live: Vec<NodeId>,
}

impl Beat {
    /// A beat that found this node `rejoined` or not, with the nodes `live` now.
    pub fn new(rejoined: bool, live: Vec<NodeId>) -> Beat {
        Beat { rejoined, live }
    }
}

/// The seam between the engine's actors and the rest of the cluster: users, channel
/// names, private rooms, and every room's ordered log.
///
/// Implement it with `#[async_trait::async_trait]`: each `async fn` returns a boxed future,
/// so a local broker can answer at once and a networked one can wait on its server. A
/// channel actor polls a [`commit`](Broker::commit) once as soon as it asks for it, so a
/// broker that decides on that first poll (as [`MemoryBroker`] does) commits each room's
/// proposals in the order the actor made them.
#[async_trait::async_trait]
pub trait Broker: Send + Sync + 'static {
    /// Creates a user with a validated display name, unless someone holds the name
    /// (`name_taken`). The user counts as connected (one session).
    async fn register(&self, name: String) -> Result<Identity, ChatError>;
    /// Logs in again the user a token was issued to (`invalid_token` if unknown or
    /// expired). The user counts one more session.
    async fn resume(&self, token: ResumeToken) -> Result<Identity, ChatError>;
    /// Logs in the user an embedder authenticated as `external` (a checked external id),
    /// with a validated display `name` (`Login::External`). The same external id is the
    /// same user id for good, across restarts of a durable store. A user the store keeps
    /// comes back with the name they have; otherwise the user is made (again) with `name`,
    /// under the rules of [`Broker::register`] (`name_taken`, `server_full`). Each login
    /// issues a fresh resume token, which replaces the user's previous one; the user
    /// counts one more session.
    ///
    /// The default refuses (`unavailable`), for brokers written before external users.
    async fn login_external(&self, external: &str, name: String) -> Result<Identity, ChatError> {
        let _ = (external, name);
        Err(ChatError::Unavailable(
            "this broker does not support external users".to_owned(),
        ))
    }
    /// The user `token` was issued to, without logging in (no session is counted): for
    /// requests made beside a session, such as an upload over HTTP. `None` for a token
    /// that is unknown or expired. The default knows no one.
    async fn identify(&self, token: &ResumeToken) -> Result<Option<UserRef>, ChatError> {
        let _ = token;
        Ok(None)
    }
    /// Forgets `user` now, as if their name hold had run out: their token no longer
    /// resumes, their name is free for anyone, and every node gets
    /// [`ClusterEvent::LoggedOut`] (and closes the user's sessions). An embedder's
    /// external id keeps its user id. The default refuses (`unavailable`).
    async fn log_out(&self, user: UserId) -> Result<(), ChatError> {
        let _ = user;
        Err(ChatError::Unavailable(
            "this broker cannot log users out".to_owned(),
        ))
    }
    /// One session of `user` ended; when it was the last, the name hold starts.
    fn session_ended(&self, user: UserId);
    /// Called periodically with this node's connected users, so their names stay held
    /// and expired users are forgotten.
    async fn keep_alive(&self, online: Vec<UserId>) -> Result<(), ChatError>;
    /// The user holding display name `name` (case-insensitively), if any.
    async fn find_user(&self, name: &str) -> Result<Option<UserRef>, ChatError>;

    /// Claims `name` for a new channel on every node; `Ok(false)` if it is taken. On
    /// success every node's [`Broker::cluster_events`] gets `ChannelCreated`.
    async fn claim_channel(
        &self,
        name: &ChannelName,
        created_at: DateTime<Utc>,
    ) -> Result<bool, ChatError>;
    /// One channel by case-folded key, with its creation time, if it exists anywhere.
    async fn lookup_channel(&self, key: &str) -> Result<Option<ChannelRecord>, ChatError>;
    /// Every channel, with its creation time.
    async fn channels(&self) -> Result<Vec<ChannelRecord>, ChatError>;

    /// Records that two users have a private room and tells every node
    /// (`DirectOpened`).
    async fn open_direct(&self, pair: [UserRef; 2]) -> Result<(), ChatError>;
    /// The private rooms `user` is part of.
    async fn directs_of(&self, user: UserId) -> Result<Vec<[UserRef; 2]>, ChatError>;

    /// Starts following `room`: its stored history, and a feed of every later change.
    async fn follow(&self, room: &Room) -> Result<Follow, ChatError>;
    /// The stored history of `room` now: what a follower reads to fill a hole in its
    /// feed (a change it never got).
    async fn stored(&self, room: &Room) -> Result<Stored, ChatError>;
    /// Commits `proposal` to `room` and delivers the change to every follower.
    async fn commit(&self, room: &Room, proposal: Proposal) -> Result<Receipt, ChatError>;

    /// Keeps an uploaded file, waiting for a post of its owner to attach it
    /// ([`Proposal::Post`]); a file no post attaches within `Limits::upload_wait` is
    /// dropped. Once attached, the file lives as long as its message: the broker drops it
    /// when the message is deleted or evicted from the kept history. Answers once the
    /// file is kept as durably as the broker keeps messages. The default refuses
    /// (`unavailable`), for brokers written before attachments.
    async fn put_file(&self, file: StoredFile) -> Result<(), ChatError> {
        let _ = file;
        Err(ChatError::Unavailable(
            "this broker does not keep files".to_owned(),
        ))
    }

    /// The file with this id, with its bytes, while it is kept (waiting for its post, or
    /// attached to a kept message); `None` otherwise.
    async fn file(&self, id: &FileId) -> Result<Option<StoredFile>, ChatError> {
        let _ = id;
        Ok(None)
    }

    /// Events from every node (this one included) that registries act on.
    fn cluster_events(&self) -> mpsc::UnboundedReceiver<ClusterEvent>;

    /// Says that `node` is alive for `expiry` more; a node that has not beaten within its
    /// expiry is taken for dead and every node gets [`ClusterEvent::NodeGone`] (within
    /// one heartbeat interval of another node). The default does nothing: the nodes of an
    /// in-process broker live and die with it.
    async fn heartbeat(&self, node: &NodeId, expiry: Duration) -> Result<Beat, ChatError> {
        let _ = (node, expiry);
        Ok(Beat::default())
    }

    /// `node` stops cleanly (its engine shuts down): the other nodes show its users
    /// offline now, rather than once its heartbeat expires. The default does nothing.
    async fn node_stopped(&self, node: &NodeId) -> Result<(), ChatError> {
        let _ = node;
        Ok(())
    }

    /// Takes one token from `user`'s cluster-wide bucket of `limit` (the registry asks it
    /// for `channel_create_rate`), refilled at `rate`: so a user spread over several
    /// nodes gets one rate, not one per node; `rate_limited` when it is empty. A broker
    /// counts posts (`message_rate`) where it commits them: Redis in its post script, with
    /// no extra round trip. The default allows everything: a single node's own buckets
    /// already hold every session of the user.
    async fn take_token(
        &self,
        user: UserId,
        limit: &'static str,
        rate: Rate,
    ) -> Result<(), ChatError> {
        let _ = (user, limit, rate);
        Ok(())
    }

    /// The store's epoch: a random id made when the store was created (a new SQLite file,
    /// an empty Redis keyspace, a new in-memory broker). Clients compare it with the one
    /// they saw before: when it changed, the ids, rooms and tokens they kept belong to a
    /// store that no longer exists.
    fn epoch(&self) -> &str;

    /// Makes everything committed so far durable, waiting until it is, so that a server
    /// stopped with SIGTERM loses nothing it acknowledged (`Engine::shutdown` does it
    /// through [`Broker::close`]). The default does nothing: a broker that writes before
    /// it answers (Redis) has nothing left to write.
    async fn flush(&self) -> Result<(), ChatError> {
        Ok(())
    }

    /// Flushes as [`Broker::flush`], then lets go of what the broker holds of its store
    /// (a file and the lock that keeps other servers out), so that the store can be
    /// opened again as soon as this returns: by an engine started anew in the same
    /// process, or by another server. Called last by `Engine::shutdown`; writes asked of
    /// the broker afterwards fail. The default flushes: a broker that holds its store by
    /// nothing exclusive (memory, Redis) has nothing more to let go of.
    async fn close(&self) -> Result<(), ChatError> {
        self.flush().await
    }

    /// Whether the store answers now, for a readiness probe (`Engine::health`): quick
    /// (bounded by about a second) and changing nothing. The default says yes: an
    /// in-memory broker has nothing to lose touch with.
    async fn reachable(&self) -> bool {
        true
    }
}

/// A fresh epoch: 128 random bits as 32 hex digits. When the OS random generator fails
/// (it does not, short of a broken system), the time and process id stand in: an epoch
/// only has to differ from the ones before it.
pub(crate) fn new_epoch() -> String {
    crate::identity::random_hex().unwrap_or_else(|_| {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        format!("{nanos:x}{:x}", std::process::id())
    })
}

/// Locks a mutex whose data stays consistent even if a holder panicked (every update here
/// is a single insert or push).
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}
