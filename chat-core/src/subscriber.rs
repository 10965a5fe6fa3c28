//! `Subscriber`: the engine's side of one connected session, shared by the actors that
//! deliver to it. Owns the sending half of the session's bounded event queue, the rooms
//! the session follows, and the one-way switch that closes it.
//!
//! Actors call [`Subscriber::deliver`], which never waits: a full queue closes the session
//! as a slow consumer instead of stalling the room. Closing is idempotent and tells every
//! followed room and the registry, whoever triggers it (the transport dropping its
//! `Session`, a full queue, or shutdown).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use actix::Addr;
use tokio::sync::mpsc;
use tokio::sync::mpsc::error::TrySendError;
use tokio_util::sync::CancellationToken;

use crate::channel::{ChannelActor, Unsubscribe};
use crate::event::{DisconnectReason, Event};
use crate::model::{ChatMessage, RoomKey, SessionId, UserId, UserRef};
use crate::registry::{RegistryActor, SessionEnded};

/// Why a subscriber was closed: by its own side, or by the engine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CloseCause {
    /// The transport dropped or closed its session.
    Client,
    /// The engine disconnected it.
    Engine(DisconnectReason),
}

/// One entry of a session's event queue: a message as the shared pointer it already is,
/// any other event boxed. Entries stay 16 bytes where an `Event` takes 80: tokio allocates
/// a queue's slots 32 at a time, the first block up front, so this is most of an idle
/// session's queue memory (512 bytes instead of 2.6 KiB). Messages, the bulk of the
/// traffic, are queued without an allocation.
#[derive(Debug)]
pub(crate) enum Queued {
    Posted(Arc<ChatMessage>),
    Other(Box<Event>),
}

impl From<Event> for Queued {
    fn from(event: Event) -> Self {
        match event {
            Event::Posted(message) => Queued::Posted(message),
            other => Queued::Other(Box::new(other)),
        }
    }
}

impl From<Queued> for Event {
    fn from(queued: Queued) -> Self {
        match queued {
            Queued::Posted(message) => Event::Posted(message),
            Queued::Other(event) => *event,
        }
    }
}

/// One session as the actors see it.
#[derive(Debug)]
pub(crate) struct Subscriber {
    pub(crate) id: SessionId,
    pub(crate) user: UserRef,
    queue: mpsc::Sender<Queued>,
    closed: CancellationToken,
    cause: OnceLock<CloseCause>,
    rooms: Mutex<Followed>,
    registry: Addr<RegistryActor>,
}

/// The rooms a session follows and the actors serving them. Channels are keyed by their
/// case-folded name as a plain string so that a post finds its room from the name it
/// came with, without building a [`RoomKey`] (two allocations) on every message.
#[derive(Debug, Default)]
struct Followed {
    channels: HashMap<Arc<str>, Addr<ChannelActor>>,
    directs: HashMap<(UserId, UserId), Addr<ChannelActor>>,
}

impl Followed {
    fn insert(&mut self, room: RoomKey, addr: Addr<ChannelActor>) {
        match room {
            RoomKey::Channel(key) => self.channels.insert(key, addr),
            RoomKey::Direct(a, b) => self.directs.insert((a, b), addr),
        };
    }

    fn remove(&mut self, room: &RoomKey) -> Option<Addr<ChannelActor>> {
        match room {
            RoomKey::Channel(key) => self.channels.remove(key),
            RoomKey::Direct(a, b) => self.directs.remove(&(*a, *b)),
        }
    }

    fn drain(&mut self) -> Vec<Addr<ChannelActor>> {
        let channels = self.channels.drain().map(|(_, addr)| addr);
        channels
            .chain(self.directs.drain().map(|(_, addr)| addr))
            .collect()
    }
}

impl Subscriber {
    pub(crate) fn new(
        id: SessionId,
        user: UserRef,
        queue: mpsc::Sender<Queued>,
        registry: Addr<RegistryActor>,
    ) -> Arc<Self> {
        Arc::new(Subscriber {
            id,
            user,
            queue,
            closed: CancellationToken::new(),
            cause: OnceLock::new(),
            rooms: Mutex::default(),
            registry,
        })
    }

    /// Queues `event` without waiting. Returns false when the subscriber is closed, or
    /// has just been closed because its queue was full.
    pub(crate) fn deliver(&self, event: Event) -> bool {
        match self.queue.try_send(event.into()) {
            Ok(()) => true,
            Err(TrySendError::Full(_)) => {
                tracing::warn!(session = self.id.0, user = %self.user.name, "slow consumer: disconnecting");
                self.close(CloseCause::Engine(DisconnectReason::SlowConsumer));
                false
            }
            Err(TrySendError::Closed(_)) => false,
        }
    }

    /// Whether the subscriber is closed or closing. Reads the cause (one atomic load), not
    /// the token: `CancellationToken::is_cancelled` takes a mutex, and transports ask this
    /// once per delivered event.
    pub(crate) fn is_closed(&self) -> bool {
        self.cause.get().is_some()
    }

    /// The token that fires when this subscriber closes.
    pub(crate) fn closed_token(&self) -> &CancellationToken {
        &self.closed
    }

    /// Why it was closed, once it is.
    pub(crate) fn cause(&self) -> Option<CloseCause> {
        self.cause.get().copied()
    }

    /// Records that the session follows `room` (served by `addr`).
    /// Returns false if the subscriber is already closed (nothing recorded).
    pub(crate) fn add_room(&self, room: RoomKey, addr: Addr<ChannelActor>) -> bool {
        let mut rooms = self.rooms.lock().unwrap_or_else(|e| e.into_inner());
        if self.is_closed() {
            return false;
        }
        rooms.insert(room, addr);
        true
    }

    /// Calls `f` with the actor of the followed channel whose case-folded name is `key`;
    /// `None` when the session does not follow it. Lends the address rather than cloning
    /// it: an actix address clone allocates twice, and posts look their room up each time.
    pub(crate) fn with_channel<R>(
        &self,
        key: &str,
        f: impl FnOnce(&Addr<ChannelActor>) -> R,
    ) -> Option<R> {
        let rooms = self.rooms.lock().unwrap_or_else(|e| e.into_inner());
        rooms.channels.get(key).map(f)
    }

    pub(crate) fn remove_room(&self, room: &RoomKey) -> Option<Addr<ChannelActor>> {
        let mut rooms = self.rooms.lock().unwrap_or_else(|e| e.into_inner());
        rooms.remove(room)
    }

    /// Closes the subscriber once: leaves every room (as a drop, not a part) and tells the
    /// registry. Later calls do nothing.
    pub(crate) fn close(&self, cause: CloseCause) {
        if self.cause.set(cause).is_err() {
            return;
        }
        // Cancel under the rooms lock so `add_room` cannot slip a room in after we drained.
        let rooms: Vec<_> = {
            let mut rooms = self.rooms.lock().unwrap_or_else(|e| e.into_inner());
            self.closed.cancel();
            rooms.drain()
        };
        for addr in rooms {
            addr.do_send(Unsubscribe {
                session: self.id,
                parting: false,
            });
        }
        self.registry.do_send(SessionEnded {
            session: self.id,
            user: self.user.id,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::Queued;

    #[test]
    fn a_queue_entry_stays_two_words() {
        // Each session's queue allocates 32 entries up front: an entry that grows grows
        // every idle connection.
        assert!(std::mem::size_of::<Queued>() <= 16);
    }
}
