//! The broker seam: how channel actors agree on the order of a room's changes, where the
//! shared copy of a room's history lives, and how changes reach the other nodes.
//!
//! A channel actor never appends to its own history directly. It *commits* a proposal
//! (a post, a deletion, a presence or typing signal) to the broker, and applies the
//! changes that come back on the room's *feed*, which carries the changes of every node in
//! one order. With [`MemoryBroker`], the default, the feed is this process; the Redis
//! broker (its own issue) implements the same trait with an atomic script that allocates
//! ids, trims the stored history and publishes, so nothing above this seam changes.
//!
//! Called only by channel actors and the registry; it must not know about sessions.

use std::collections::{HashMap, HashSet};
use std::future::{ready, Future};
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::mpsc;

use crate::error::ChatError;
use crate::event::PresenceChange;
use crate::history::History;
use crate::model::{
    now_millis, ChannelName, ChatMessage, MessageId, Room, RoomKey, UserId, UserRef,
};

/// What broker calls return: a boxed future, so that a local broker can answer at once and
/// a networked one can wait on its server.
pub type BrokerFuture<T> = Pin<Box<dyn Future<Output = Result<T, ChatError>> + Send>>;

/// A change a channel actor asks the broker to commit to a room.
#[derive(Debug, Clone)]
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
pub enum Signal {
    /// A member's presence changed.
    Presence(UserRef, PresenceChange),
    /// A member is typing.
    Typing(UserRef),
}

/// A committed change, as delivered on a room's feed.
#[derive(Debug, Clone)]
pub enum Change {
    /// A message was appended.
    Posted(Arc<ChatMessage>),
    /// A message was removed.
    Deleted(MessageId),
    /// A signal was relayed.
    Signal(Signal),
}

/// What the broker returns for a committed proposal.
#[derive(Debug, Clone)]
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

/// The seam between channel actors and the rest of the cluster.
pub trait Broker: Send + Sync + 'static {
    /// Claims `name` for a new channel on every node; `Ok(false)` if it is taken.
    fn claim_channel(&self, name: &ChannelName) -> BrokerFuture<bool>;
    /// Starts following `room`: its stored history, and a feed of every later change.
    fn follow(&self, room: &Room) -> BrokerFuture<Follow>;
    /// Commits `proposal` to `room` and delivers the change to every follower.
    fn commit(&self, room: &Room, proposal: Proposal) -> BrokerFuture<Receipt>;
}

/// The in-memory broker: one process is the whole cluster. The default.
///
/// It keeps its own bounded copy of each room's history (shared pointers, not copies of
/// the text), so that a channel actor started later, or another engine in the same
/// process that shares this broker, starts from the stored messages.
#[derive(Debug, Default)]
pub struct MemoryBroker {
    history_limit: usize,
    channels: Mutex<HashSet<Arc<str>>>,
    rooms: Mutex<HashMap<RoomKey, Arc<Mutex<RoomLog>>>>,
}

#[derive(Debug)]
struct RoomLog {
    history: History,
    followers: Vec<mpsc::UnboundedSender<Change>>,
}

impl MemoryBroker {
    /// A broker that keeps `history_limit` messages per room.
    pub fn new(history_limit: usize) -> Self {
        MemoryBroker {
            history_limit,
            ..Default::default()
        }
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
    fn claim_channel(&self, name: &ChannelName) -> BrokerFuture<bool> {
        let claimed = lock(&self.channels).insert(name.key.clone());
        Box::pin(ready(Ok(claimed)))
    }

    fn follow(&self, room: &Room) -> BrokerFuture<Follow> {
        let log = self.room(room.key());
        let mut log = lock(&log);
        let (tx, changes) = mpsc::unbounded_channel();
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
}

/// Locks a mutex whose data stays consistent even if a holder panicked (every update here
/// is a single insert or push).
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}
