//! `Hooked`: a broker for tests that changes how rooms follow their feed and read their
//! stored history, and leaves everything else to an in-memory broker. It is the one
//! place the whole `Broker` trait is passed on, so a test states only what it changes
//! (a scripted feed, a failing follow, a feed that can be cut, a slow commit) by implementing
//! [`RoomFeeds`].

use std::sync::Arc;
use std::time::Duration;

use chat_core::broker::{Beat, ChannelRecord, Follow, NodeId, Proposal, Receipt, Stored};
use chat_core::{
    Broker, ChannelName, ChatError, ClusterEvent, Identity, MemoryBroker, Rate, ResumeToken, Room,
    UserId, UserRef,
};
use chrono::{DateTime, Utc};
use tokio::sync::mpsc;

/// What a test changes of the in-memory broker: each method is given that broker and, by
/// default, passes the call on to it.
#[async_trait::async_trait]
pub trait RoomFeeds: Send + Sync + 'static {
    /// A room starts following its feed.
    async fn follow(&self, inner: &MemoryBroker, room: &Room) -> Result<Follow, ChatError> {
        inner.follow(room).await
    }

    /// A room reads its stored history (to fill a hole).
    async fn stored(&self, inner: &MemoryBroker, room: &Room) -> Result<Stored, ChatError> {
        inner.stored(room).await
    }

    /// A room commits a change (a post, a deletion, a signal).
    async fn commit(
        &self,
        inner: &MemoryBroker,
        room: &Room,
        proposal: Proposal,
    ) -> Result<Receipt, ChatError> {
        inner.commit(room, proposal).await
    }
}

/// The in-memory broker `inner` (possibly shared by several engines, as nodes), with its
/// rooms' feeds and stored history as `feeds` makes them.
pub struct Hooked<F> {
    pub inner: Arc<MemoryBroker>,
    pub feeds: F,
}

impl<F: RoomFeeds> Hooked<F> {
    pub fn wrap(inner: Arc<MemoryBroker>, feeds: F) -> Arc<Hooked<F>> {
        Arc::new(Hooked { inner, feeds })
    }
}

#[async_trait::async_trait]
impl<F: RoomFeeds> Broker for Hooked<F> {
    async fn register(&self, name: String) -> Result<Identity, ChatError> {
        self.inner.register(name).await
    }
    async fn resume(&self, token: ResumeToken) -> Result<Identity, ChatError> {
        self.inner.resume(token).await
    }
    async fn login_external(&self, external: &str, name: String) -> Result<Identity, ChatError> {
        self.inner.login_external(external, name).await
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
    async fn follow(&self, room: &Room) -> Result<Follow, ChatError> {
        self.feeds.follow(&self.inner, room).await
    }
    async fn stored(&self, room: &Room) -> Result<Stored, ChatError> {
        self.feeds.stored(&self.inner, room).await
    }
    async fn commit(&self, room: &Room, proposal: Proposal) -> Result<Receipt, ChatError> {
        self.feeds.commit(&self.inner, room, proposal).await
    }
    fn cluster_events(&self) -> mpsc::UnboundedReceiver<ClusterEvent> {
        self.inner.cluster_events()
    }
    async fn heartbeat(&self, node: &NodeId, expiry: Duration) -> Result<Beat, ChatError> {
        self.inner.heartbeat(node, expiry).await
    }
    async fn node_stopped(&self, node: &NodeId) -> Result<(), ChatError> {
        self.inner.node_stopped(node).await
    }
    async fn take_token(
        &self,
        user: UserId,
        limit: &'static str,
        rate: Rate,
    ) -> Result<(), ChatError> {
        self.inner.take_token(user, limit, rate).await
    }
    fn epoch(&self) -> &str {
        self.inner.epoch()
    }
    async fn flush(&self) -> Result<(), ChatError> {
        self.inner.flush().await
    }
    async fn close(&self) -> Result<(), ChatError> {
        self.inner.close().await
    }
    async fn reachable(&self) -> bool {
        self.inner.reachable().await
    }
}
