//! `LossyBroker` (a [`Hooked`] broker with [`Lossy`] feeds): one node's view of a shared `MemoryBroker` whose feed can be cut, the
//! way a Redis node loses its pub/sub connection. While cut, every change meant for this
//! node's rooms is lost. Reconnecting lets changes flow again, and the resynchronisation
//! sends each followed room its stored history (`Change::Resync`): at once, a little
//! later (as when the Redis broker's first read after resubscribing fails and is
//! retried), or read now and delivered later, after changes stored meanwhile (a slow read:
//! the broker contract allows a snapshot older than what the feed already delivered).
//! Everything else goes straight to the shared broker.
//!
//! It lets the fast in-memory variant exercise what a real outage does to the rooms: holes
//! filled from the store, and gaps where the store no longer has what was lost.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use chat_core::broker::{Change, Follow, Stored};
use chat_core::{Broker, ChatError, MemoryBroker, Room};
use tokio::sync::mpsc;

use crate::common::hooked::{Hooked, RoomFeeds};

/// One node's feeds: cut or flowing, and every room followed with the sending half of
/// its feed.
#[derive(Default)]
pub struct Lossy {
    cut: Arc<AtomicBool>,
    feeds: Mutex<Vec<(Room, mpsc::UnboundedSender<Change>)>>,
}

/// A shared `MemoryBroker` seen through one node's [`Lossy`] feeds.
pub type LossyBroker = Hooked<Lossy>;

impl Hooked<Lossy> {
    pub fn new(inner: Arc<MemoryBroker>) -> Arc<LossyBroker> {
        Hooked::wrap(inner, Lossy::default())
    }

    /// Loses every change for this node until [`LossyBroker::reconnect`].
    pub fn cut(&self) {
        self.feeds.cut.store(true, Ordering::SeqCst);
    }

    /// Reconnects: changes flow again (a room may now see a change with a hole before it).
    pub fn reconnect(&self) {
        self.feeds.cut.store(false, Ordering::SeqCst);
    }

    /// Catches up after a reconnection: every followed room gets its stored history.
    pub async fn resync(&self) {
        self.snapshot().await.deliver();
    }

    /// Reads the stored history of every followed room now, to deliver later (a slow
    /// resynchronisation: changes stored meanwhile reach the rooms before it).
    pub async fn snapshot(&self) -> Snapshot {
        let feeds: Vec<_> = {
            let mut feeds = self.feeds.feeds.lock().unwrap();
            feeds.retain(|(_, tx)| !tx.is_closed());
            feeds.clone()
        };
        let mut read = Vec::new();
        for (room, tx) in feeds {
            if let Ok(stored) = self.inner.stored(&room).await {
                read.push((tx, stored));
            }
        }
        Snapshot(read)
    }
}

/// Stored histories read for a resynchronisation, with the feeds they are for.
pub struct Snapshot(Vec<(mpsc::UnboundedSender<Change>, Stored)>);

impl Snapshot {
    pub fn deliver(self) {
        for (tx, stored) in self.0 {
            let _ = tx.send(Change::Resync(stored));
        }
    }
}

#[async_trait::async_trait]
impl RoomFeeds for Lossy {
    /// The shared broker's feed, passed on through a task that drops what comes while cut.
    async fn follow(&self, inner: &MemoryBroker, room: &Room) -> Result<Follow, ChatError> {
        let follow = inner.follow(room).await?;
        let (stored, mut from_store) = (follow.stored, follow.changes);
        let (tx, changes) = mpsc::unbounded_channel();
        let (cut, to_room) = (self.cut.clone(), tx.clone());
        tokio::spawn(async move {
            while let Some(change) = from_store.recv().await {
                if !cut.load(Ordering::SeqCst) && to_room.send(change).is_err() {
                    return;
                }
            }
        });
        self.feeds.lock().unwrap().push((room.clone(), tx));
        Ok(Follow::new(stored, changes))
    }
}
