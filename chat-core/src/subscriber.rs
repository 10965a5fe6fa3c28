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
use tokio_util::sync::CancellationToken;

use crate::channel::{ChannelActor, Unsubscribe};
use crate::event::{DisconnectReason, Event};
use crate::model::{RoomKey, SessionId, UserId, UserRef};
use crate::queue::{QueueSender, Queued, Refused};
use crate::registry::{RegistryActor, SessionEnded};

/// Why a subscriber was closed: by its own side, or by the engine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CloseCause {
    /// The transport dropped or closed its session.
    Client,
    /// The engine disconnected it.
    Engine(DisconnectReason),
}

/// One session as the actors see it.
#[derive(Debug)]
pub(crate) struct Subscriber {
    pub(crate) id: SessionId,
    pub(crate) user: UserRef,
    queue: QueueSender,
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
        queue: QueueSender,
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
        self.deliver_all(std::iter::once(event.into()))
    }

    /// Queues `events` together (one lock, one wake-up) without waiting; false as for
    /// [`Subscriber::deliver`], and then none of them was queued.
    pub(crate) fn deliver_all(&self, events: impl Iterator<Item = Queued>) -> bool {
        match self.queue.push_all(events) {
            Ok(()) => true,
            Err(Refused::Full) => {
                tracing::warn!(session = self.id.0, user = %self.user.name, "slow consumer: disconnecting");
                self.close(CloseCause::Engine(DisconnectReason::SlowConsumer));
                false
            }
            Err(Refused::Closed) => false,
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
        self.queue.close();
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
