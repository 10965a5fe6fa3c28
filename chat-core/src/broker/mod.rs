//! The broker seam: everything the nodes of one chat must agree on. Who the users are
//! (names, tokens), which channels and private rooms exist, the order of each room's
//! changes, where the shared copy of a room's history lives, and how changes reach the
//! other nodes.
//!
//! A channel actor never appends to its own history directly. It *commits* a proposal
//! (a post, a deletion, a presence or typing signal) to the broker, and applies the
//! changes that come back on the room's *feed*, which carries the changes of every node in
//! one order. With [`MemoryBroker`], the default, the feed is this process; the Redis
//! broker (its own issue) implements the same trait with an atomic script that allocates
//! ids, trims the stored history and publishes, so nothing above this seam changes.
//!
//! Called only by channel actors and the registry; it must not know about sessions.
//! Channel actors commit and follow rooms; the registry does users, names and private
//! rooms, and listens to [`ClusterEvent`]s.

#[cfg(feature = "redis")]
pub(crate) mod redis;

use std::collections::HashMap;
use std::future::{ready, Future};
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use chrono::{DateTime, Utc};
use tokio::sync::mpsc;

use crate::directory::identity::{Directory, Identity, ResumeToken};
use crate::error::ChatError;
use crate::event::PresenceChange;
use crate::limits::Limits;
use crate::model::{
    now_millis, ChannelName, ChatMessage, MessageId, Room, RoomKey, UserId, UserRef,
};
use crate::room::history::History;

/// What broker calls return: a boxed future, so that a local broker can answer at once and
/// a networked one can wait on its server.
pub type BrokerFuture<T> = Pin<Box<dyn Future<Output = Result<T, ChatError>> + Send>>;

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
    },
    /// Delete a message; the broker checks that `by` wrote it.
    Delete {
        /// Which message.
        id: MessageId,
        /// Who asks.
        by: UserId,
    },
    /// An ephemeral signal: never stored, only relayed.
    Signal(Signal),
}

/// An ephemeral change relayed to every node's followers of a room.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum Signal {
    /// A member's presence changed.
    Presence(UserRef, PresenceChange),
    /// A member is typing.
    Typing(UserRef),
}

/// A committed change, as delivered on a room's feed.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum Change {
    /// A message was appended.
    Posted(Arc<ChatMessage>),
    /// A message was removed.
    Deleted(MessageId),
    /// A signal was relayed.
    Signal(Signal),
    /// The room's whole stored history, after the broker lost and regained its
    /// connection: apply what is new, drop what was deleted meanwhile.
    Resync(Vec<Arc<ChatMessage>>),
}

/// What the broker returns for a committed proposal.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum Receipt {
    /// The stored message (for `Proposal::Post`).
    Posted(Arc<ChatMessage>),
    /// Done (deletions and signals).
    Done,
}

/// A room's stored history at the moment of following it, and every change after it.
#[derive(Debug)]
pub struct Follow {
    /// The stored messages, oldest first.
    pub messages: Vec<Arc<ChatMessage>>,
    /// Changes committed after `messages` was read, in the one order every node sees.
    /// Unbounded because its consumer is an in-process actor that only moves pointers; the
    /// bounded queues are the sessions' own.
    pub changes: mpsc::UnboundedReceiver<Change>,
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
}

/// The seam between the engine's actors and the rest of the cluster: users, channel
/// names, private rooms, and every room's ordered log.
pub trait Broker: Send + Sync + 'static {
    /// Creates a user with a validated display name, unless someone holds the name
    /// (`name_taken`). The user counts as connected (one session).
    fn register(&self, name: String) -> BrokerFuture<Identity>;
    /// Logs in again the user a token was issued to (`invalid_token` if unknown or
    /// expired). The user counts one more session.
    fn resume(&self, token: ResumeToken) -> BrokerFuture<Identity>;
    /// One session of `user` ended; when it was the last, the name hold starts.
    fn session_ended(&self, user: UserId);
    /// Called periodically with this node's connected users, so their names stay held
    /// and expired users are forgotten.
    fn keep_alive(&self, online: Vec<UserId>) -> BrokerFuture<()>;
    /// The user holding display name `name` (case-insensitively), if any.
    fn find_user(&self, name: &str) -> BrokerFuture<Option<UserRef>>;

    /// Claims `name` for a new channel on every node; `Ok(false)` if it is taken. On
    /// success every node's [`Broker::cluster_events`] gets `ChannelCreated`.
    fn claim_channel(&self, name: &ChannelName, created_at: DateTime<Utc>) -> BrokerFuture<bool>;
    /// One channel by case-folded key, with its creation time, if it exists anywhere.
    fn lookup_channel(&self, key: &str) -> BrokerFuture<Option<ChannelRecord>>;
    /// Every channel, with its creation time.
    fn channels(&self) -> BrokerFuture<Vec<ChannelRecord>>;

    /// Records that two users have a private room and tells every node
    /// (`DirectOpened`).
    fn open_direct(&self, pair: [UserRef; 2]) -> BrokerFuture<()>;
    /// The private rooms `user` is part of.
    fn directs_of(&self, user: UserId) -> BrokerFuture<Vec<[UserRef; 2]>>;

    /// Starts following `room`: its stored history, and a feed of every later change.
    fn follow(&self, room: &Room) -> BrokerFuture<Follow>;
    /// Commits `proposal` to `room` and delivers the change to every follower.
    fn commit(&self, room: &Room, proposal: Proposal) -> BrokerFuture<Receipt>;

    /// Events from every node (this one included) that registries act on.
    fn cluster_events(&self) -> mpsc::UnboundedReceiver<ClusterEvent>;
}

/// The in-memory broker: one process is the whole cluster. The default.
///
/// It keeps its own bounded copy of each room's history (shared pointers, not copies of
/// the text), so that a channel actor started later, or another engine in the same
/// process that shares this broker, starts from the stored messages. Several engines may
/// share one `MemoryBroker`: they then behave as the nodes of one chat.
#[derive(Debug)]
pub struct MemoryBroker {
    history_limit: usize,
    directory: Mutex<Directory>,
    channels: Mutex<HashMap<Arc<str>, ChannelRecord>>,
    directs: Mutex<HashMap<UserId, Vec<[UserRef; 2]>>>,
    rooms: Mutex<HashMap<RoomKey, Arc<Mutex<RoomLog>>>>,
    registries: Mutex<Vec<mpsc::UnboundedSender<ClusterEvent>>>,
}

#[derive(Debug)]
struct RoomLog {
    history: History,
    followers: Vec<mpsc::UnboundedSender<Change>>,
}

impl MemoryBroker {
    /// A broker that keeps `limits.history` messages per room and holds display names
    /// for `limits.name_hold`.
    pub fn new(limits: &Limits) -> Self {
        MemoryBroker {
            history_limit: limits.history.max(1),
            directory: Mutex::new(Directory::new(limits.name_hold)),
            channels: Mutex::default(),
            directs: Mutex::default(),
            rooms: Mutex::default(),
            registries: Mutex::default(),
        }
    }

    fn announce(&self, event: ClusterEvent) {
        lock(&self.registries).retain(|r| r.send(event.clone()).is_ok());
    }

    fn room(&self, key: RoomKey) -> Arc<Mutex<RoomLog>> {
        let mut rooms = lock(&self.rooms);
        rooms
            .entry(key)
            .or_insert_with(|| {
                Arc::new(Mutex::new(RoomLog {
                    history: History::new(self.history_limit),
                    followers: Vec::new(),
                }))
            })
            .clone()
    }

    fn apply(
        log: &mut RoomLog,
        room: &Room,
        proposal: Proposal,
    ) -> Result<(Change, Receipt), ChatError> {
        Ok(match proposal {
            Proposal::Post { author, text } => {
                let message = Arc::new(ChatMessage {
                    encodings: Default::default(),
                    id: log.history.next_id(),
                    room: room.clone(),
                    author,
                    text,
                    sent_at: now_millis(),
                });
                log.history.push(message.clone());
                (Change::Posted(message.clone()), Receipt::Posted(message))
            }
            Proposal::Delete { id, by } => {
                let message = log.history.get(id).ok_or(ChatError::NoSuchMessage(id))?;
                if message.author.id != by {
                    return Err(ChatError::NotAuthor(id));
                }
                log.history.remove(id);
                (Change::Deleted(id), Receipt::Done)
            }
            Proposal::Signal(signal) => (Change::Signal(signal), Receipt::Done),
        })
    }
}

impl Broker for MemoryBroker {
    fn register(&self, name: String) -> BrokerFuture<Identity> {
        let result = lock(&self.directory).login_with_name(name, Instant::now());
        Box::pin(ready(result))
    }

    fn resume(&self, token: ResumeToken) -> BrokerFuture<Identity> {
        let result = lock(&self.directory).login_with_token(&token, Instant::now());
        Box::pin(ready(result))
    }

    fn session_ended(&self, user: UserId) {
        lock(&self.directory).session_ended(user, Instant::now());
    }

    fn keep_alive(&self, _online: Vec<UserId>) -> BrokerFuture<()> {
        // Online users never expire here (the directory counts their sessions); this is
        // the moment to forget the expired ones.
        let mut directory = lock(&self.directory);
        let forgotten = directory.sweep(Instant::now());
        if forgotten > 0 {
            tracing::debug!(forgotten, "released expired display names");
            // A private conversation lives while either of its users does.
            lock(&self.directs).retain(|user, _| directory.knows(*user));
            lock(&self.rooms).retain(|key, _| match key {
                RoomKey::Direct(a, b) => directory.knows(*a) || directory.knows(*b),
                RoomKey::Channel(_) => true,
            });
        }
        Box::pin(ready(Ok(())))
    }

    fn find_user(&self, name: &str) -> BrokerFuture<Option<UserRef>> {
        let found = lock(&self.directory)
            .find_by_name(name, Instant::now())
            .cloned();
        Box::pin(ready(Ok(found)))
    }

    fn claim_channel(&self, name: &ChannelName, created_at: DateTime<Utc>) -> BrokerFuture<bool> {
        let claimed = {
            let mut channels = lock(&self.channels);
            if channels.contains_key(&name.key) {
                false
            } else {
                channels.insert(name.key.clone(), (name.clone(), created_at));
                true
            }
        };
        if claimed {
            self.announce(ClusterEvent::ChannelCreated {
                name: name.clone(),
                created_at,
            });
        }
        Box::pin(ready(Ok(claimed)))
    }

    fn lookup_channel(&self, key: &str) -> BrokerFuture<Option<ChannelRecord>> {
        let found = lock(&self.channels).get(key).cloned();
        Box::pin(ready(Ok(found)))
    }

    fn channels(&self) -> BrokerFuture<Vec<ChannelRecord>> {
        let all = lock(&self.channels).values().cloned().collect();
        Box::pin(ready(Ok(all)))
    }

    fn open_direct(&self, pair: [UserRef; 2]) -> BrokerFuture<()> {
        let added = {
            let mut directs = lock(&self.directs);
            let first = directs.entry(pair[0].id).or_default();
            if first
                .iter()
                .any(|p| p[0].id == pair[0].id && p[1].id == pair[1].id)
            {
                false
            } else {
                first.push(pair.clone());
                directs.entry(pair[1].id).or_default().push(pair.clone());
                true
            }
        };
        if added {
            self.announce(ClusterEvent::DirectOpened(pair));
        }
        Box::pin(ready(Ok(())))
    }

    fn directs_of(&self, user: UserId) -> BrokerFuture<Vec<[UserRef; 2]>> {
        let found = lock(&self.directs).get(&user).cloned().unwrap_or_default();
        Box::pin(ready(Ok(found)))
    }

    fn follow(&self, room: &Room) -> BrokerFuture<Follow> {
        let log = self.room(room.key());
        let mut log = lock(&log);
        let (tx, changes) = mpsc::unbounded_channel();
        // Rooms that stopped following leave their closed feeds behind.
        log.followers.retain(|f| !f.is_closed());
        log.followers.push(tx);
        let messages = log.history.all();
        Box::pin(ready(Ok(Follow { messages, changes })))
    }

    fn commit(&self, room: &Room, proposal: Proposal) -> BrokerFuture<Receipt> {
        let log = self.room(room.key());
        let mut log = lock(&log);
        let result = Self::apply(&mut log, room, proposal).map(|(change, receipt)| {
            // Sending under the room's lock is what makes every follower see one order.
            log.followers.retain(|f| f.send(change.clone()).is_ok());
            receipt
        });
        Box::pin(ready(result))
    }

    fn cluster_events(&self) -> mpsc::UnboundedReceiver<ClusterEvent> {
        let (tx, rx) = mpsc::unbounded_channel();
        lock(&self.registries).push(tx);
        rx
    }
}

/// Locks a mutex whose data stays consistent even if a holder panicked (every update here
/// is a single insert or push).
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}
