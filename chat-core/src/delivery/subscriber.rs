//! `Subscriber`: the engine's side of one connected session, shared by the actors that
//! deliver to it. Owns the pushing half of the session's bounded event queue and the
//! one-way switch that closes it.
//!
//! Actors call [`Subscriber::deliver`], which never waits: a full queue closes the session
//! as a slow consumer instead of stalling the room. Closing is idempotent and, whoever
//! triggers it (the transport dropping its `Session`, a full queue, shutdown), tells the
//! directory once with [`SessionClosed`]; the directory unsubscribes the session from its
//! rooms. A subscriber knows no actor type, so rooms and the directory can both use it.

use std::sync::{Arc, OnceLock};

use actix::{Message, Recipient};
use tokio_util::sync::CancellationToken;

use super::entry::{Entry, Queued, SharedEvents};
use super::queue::{QueueSender, Refused};
use crate::event::{DisconnectReason, Event};
use crate::model::{SessionId, UserRef};

/// Why a subscriber was closed: by its own side, or by the engine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CloseCause {
    /// The transport dropped or closed its session.
    Client,
    /// The engine disconnected it.
    Engine(DisconnectReason),
}

/// Told to the directory, once, when a subscriber closes.
#[derive(Message, Debug)]
#[rtype(result = "()")]
pub(crate) struct SessionClosed {
    pub(crate) session: SessionId,
    pub(crate) user: UserRef,
}

/// One session as the actors see it.
#[derive(Debug)]
pub(crate) struct Subscriber {
    pub(crate) id: SessionId,
    pub(crate) user: UserRef,
    queue: QueueSender,
    closed: CancellationToken,
    cause: OnceLock<CloseCause>,
    directory: Recipient<SessionClosed>,
}

impl Subscriber {
    pub(crate) fn new(
        id: SessionId,
        user: UserRef,
        queue: QueueSender,
        directory: Recipient<SessionClosed>,
    ) -> Arc<Self> {
        Arc::new(Subscriber {
            id,
            user,
            queue,
            closed: CancellationToken::new(),
            cause: OnceLock::new(),
            directory,
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
        self.push(events)
    }

    /// Queues a batch of events built once for several subscribers; false as for
    /// [`Subscriber::deliver`].
    pub(crate) fn deliver_shared(&self, events: &Arc<SharedEvents>) -> bool {
        self.push(std::iter::once(Entry::Shared(events.clone())))
    }

    fn push<E: Into<Entry>>(&self, events: impl Iterator<Item = E>) -> bool {
        match self.queue.push_all(events) {
            Ok(()) => true,
            Err(Refused::Full) => {
                crate::telemetry::slow_consumer();
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

    /// Closes the subscriber once and tells the directory. Later calls do nothing. A room
    /// that receives the subscriber after this refuses it (`is_closed`), so the directory's
    /// list of the session's rooms is complete.
    pub(crate) fn close(&self, cause: CloseCause) {
        if self.cause.set(cause).is_err() {
            return;
        }
        self.closed.cancel();
        self.queue.close();
        self.directory.do_send(SessionClosed {
            session: self.id,
            user: self.user.clone(),
        });
    }
}
