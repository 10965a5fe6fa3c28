//! `Metered`: a broker in front of another that times each operation and counts those
//! that could not reach the store (`unavailable`), as the Redis command metrics of
//! `telemetry` (`flack_redis_command_duration_seconds`, `..._failures_total`, labelled by
//! operation).
//!
//! Put in front of the Redis broker by `EngineBuilder::start`, where every operation is a
//! round trip worth timing; the in-memory broker answers in nanoseconds and is left bare.
//! It forwards every [`Broker`] method, the defaulted ones included, and must decide
//! nothing: a new method of the trait needs its line here too.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use tokio::sync::mpsc;

use super::{Beat, Broker, ChannelRecord, ClusterEvent, Follow, NodeId, Proposal, Receipt, Stored};
use crate::attachment::{FileId, StoredFile};
use crate::error::ChatError;
use crate::identity::{Identity, ResumeToken};
use crate::limits::Rate;
use crate::model::{ChannelName, Room, UserId, UserRef};
use crate::telemetry;

/// A broker whose operations are timed and their failures counted.
pub(crate) struct Metered {
    inner: Arc<dyn Broker>,
}

impl Metered {
    /// `inner`, metered.
    pub(crate) fn wrap(inner: Arc<dyn Broker>) -> Arc<dyn Broker> {
        Arc::new(Metered { inner })
    }
}

/// Runs `operation`, recording how long it took and whether it reached the store.
async fn timed<T>(
    command: &'static str,
    operation: impl Future<Output = Result<T, ChatError>>,
) -> Result<T, ChatError> {
    let started = Instant::now();
    let result = operation.await;
    let reached = !matches!(result, Err(ChatError::Unavailable(_)));
    telemetry::redis_command(command, started.elapsed(), reached);
    result
}

#[async_trait::async_trait]
impl Broker for Metered {
    async fn register(&self, name: String) -> Result<Identity, ChatError> {
        timed("register", self.inner.register(name)).await
    }

    async fn resume(&self, token: ResumeToken) -> Result<Identity, ChatError> {
        timed("resume", self.inner.resume(token)).await
    }

    async fn login_external(&self, external: &str, name: String) -> Result<Identity, ChatError> {
        timed("login_external", self.inner.login_external(external, name)).await
    }

    async fn identify(&self, token: &ResumeToken) -> Result<Option<UserRef>, ChatError> {
        timed("identify", self.inner.identify(token)).await
    }

    async fn log_out(&self, user: UserId) -> Result<(), ChatError> {
        timed("log_out", self.inner.log_out(user)).await
    }

    fn session_ended(&self, user: UserId) {
        self.inner.session_ended(user)
    }

    async fn keep_alive(&self, online: Vec<UserId>) -> Result<(), ChatError> {
        timed("keep_alive", self.inner.keep_alive(online)).await
    }

    async fn find_user(&self, name: &str) -> Result<Option<UserRef>, ChatError> {
        timed("find_user", self.inner.find_user(name)).await
    }

    async fn claim_channel(
        &self,
        name: &ChannelName,
        created_at: DateTime<Utc>,
    ) -> Result<bool, ChatError> {
        timed("claim_channel", self.inner.claim_channel(name, created_at)).await
    }

    async fn lookup_channel(&self, key: &str) -> Result<Option<ChannelRecord>, ChatError> {
        timed("lookup_channel", self.inner.lookup_channel(key)).await
    }

    async fn channels(&self) -> Result<Vec<ChannelRecord>, ChatError> {
        timed("channels", self.inner.channels()).await
    }

    async fn open_direct(&self, pair: [UserRef; 2]) -> Result<(), ChatError> {
        timed("open_direct", self.inner.open_direct(pair)).await
    }

    async fn directs_of(&self, user: UserId) -> Result<Vec<[UserRef; 2]>, ChatError> {
        timed("directs_of", self.inner.directs_of(user)).await
    }

    async fn follow(&self, room: &Room) -> Result<Follow, ChatError> {
        timed("follow", self.inner.follow(room)).await
    }

    async fn stored(&self, room: &Room) -> Result<Stored, ChatError> {
        timed("stored", self.inner.stored(room)).await
    }

    async fn commit(&self, room: &Room, proposal: Proposal) -> Result<Receipt, ChatError> {
        timed("commit", self.inner.commit(room, proposal)).await
    }

    async fn put_file(&self, file: StoredFile) -> Result<(), ChatError> {
        timed("put_file", self.inner.put_file(file)).await
    }

    async fn file(&self, id: &FileId) -> Result<Option<StoredFile>, ChatError> {
        timed("file", self.inner.file(id)).await
    }

    fn cluster_events(&self) -> mpsc::UnboundedReceiver<ClusterEvent> {
        self.inner.cluster_events()
    }

    fn epoch(&self) -> &str {
        self.inner.epoch()
    }

    async fn heartbeat(&self, node: &NodeId, expiry: Duration) -> Result<Beat, ChatError> {
        timed("heartbeat", self.inner.heartbeat(node, expiry)).await
    }

    async fn node_stopped(&self, node: &NodeId) -> Result<(), ChatError> {
        timed("node_stopped", self.inner.node_stopped(node)).await
    }

    async fn take_token(
        &self,
        user: UserId,
        limit: &'static str,
        rate: Rate,
    ) -> Result<(), ChatError> {
        timed("take_token", self.inner.take_token(user, limit, rate)).await
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
