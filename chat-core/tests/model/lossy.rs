//! `LossyBroker`: one node's view of a shared `MemoryBroker` whose feed can be cut, the
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

use chat_core::broker::{Change, ChannelRecord, Follow, Proposal, Receipt, Stored};
use chat_core::{
    Broker, ChannelName, ChatError, ClusterEvent, Identity, MemoryBroker, ResumeToken, Room,
    UserId, UserRef,
};
use chrono::{DateTime, Utc};
use tokio::sync::mpsc;

pub struct LossyBroker {
    inner: Arc<MemoryBroker>,
    cut: Arc<AtomicBool>,
    /// Every room this node follows, with the sending half of its feed.
    feeds: Mutex<Vec<(Room, mpsc::UnboundedSender<Change>)>>,
}

impl LossyBroker {
    pub fn new(inner: Arc<MemoryBroker>) -> Arc<LossyBroker> {
        Arc::new(LossyBroker {
            inner,
            cut: Arc::new(AtomicBool::new(false)),
            feeds: Mutex::new(Vec::new()),
        })
    }

    /// Loses every change for this node until [`LossyBroker::reconnect`].
    pub fn cut(&self) {
        self.cut.store(true, Ordering::SeqCst);
    }

    /// Reconnects: changes flow again (a room may now see a change with a hole before it).
    pub fn reconnect(&self) {
        self.cut.store(false, Ordering::SeqCst);
    }

    /// Catches up after a reconnection: every followed room gets its stored history.
    pub async fn resync(&self) {
        self.snapshot().await.deliver();
    }

    /// Reads the stored history of every followed room now, to deliver later (a slow
    /// resynchronisation: changes stored meanwhile reach the rooms before it).
    pub async fn snapshot(&self) -> Snapshot {
        let feeds: Vec<_> = {
            let mut feeds = self.feeds.lock().unwrap();
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
impl Broker for LossyBroker {
    async fn register(&self, name: String) -> Result<Identity, ChatError> {
        self.inner.register(name).await
    }
    async fn resume(&self, token: ResumeToken) -> Result<Identity, ChatError> {
        self.inner.resume(token).await
    }
    fn session_ended(&self, user: UserId) {
        self.inner.session_ended(user)
    }
    async fn keep_alive(&self, online: Vec<UserId>) -> Result<(), ChatError> {
        self.inner.keep_alive(online).await
    }
    async fn find_user(&self, name: &str) -> Result<Option<UserRef>, ChatError> {
        self.inner.find_user(name).await
    }
    async fn claim_channel(
        &self,
        name: &ChannelName,
        created_at: DateTime<Utc>,
    ) -> Result<bool, ChatError> {
        self.inner.claim_channel(name, created_at).await
    }
    async fn lookup_channel(&self, key: &str) -> Result<Option<ChannelRecord>, ChatError> {
        self.inner.lookup_channel(key).await
    }
    async fn channels(&self) -> Result<Vec<ChannelRecord>, ChatError> {
        self.inner.channels().await
    }
    async fn open_direct(&self, pair: [UserRef; 2]) -> Result<(), ChatError> {
        self.inner.open_direct(pair).await
    }
    async fn directs_of(&self, user: UserId) -> Result<Vec<[UserRef; 2]>, ChatError> {
        self.inner.directs_of(user).await
    }

    /// The shared broker's feed, passed on through a task that drops what comes while cut.
    async fn follow(&self, room: &Room) -> Result<Follow, ChatError> {
        let follow = self.inner.follow(room).await?;
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

    async fn stored(&self, room: &Room) -> Result<Stored, ChatError> {
        self.inner.stored(room).await
    }
    async fn commit(&self, room: &Room, proposal: Proposal) -> Result<Receipt, ChatError> {
        self.inner.commit(room, proposal).await
    }
    fn cluster_events(&self) -> mpsc::UnboundedReceiver<ClusterEvent> {
        self.inner.cluster_events()
    }
    fn epoch(&self) -> &str {
        self.inner.epoch()
    }
}
