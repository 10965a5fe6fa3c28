//! What makes several nodes behave as one beyond rooms' messages: each node's heartbeat
//! (and declaring the silent ones gone), each node's share of a room's presence (stored
//! and published in one step, read by a room that starts), and users' flood buckets
//! counted over every node.
//!
//! Called by the broker's commands (`mod.rs`), with the scripts of `scripts.rs` and the
//! keys of `keys.rs`. It only runs those scripts: it must not know about actors or rooms'
//! rosters.

use std::sync::Arc;
use std::time::Duration;

use super::{keys, unavailable, wire, RedisBroker, PREFIX};
use crate::broker::{Beat, HereState, NodeId, NodePresence, Signal};
use crate::error::ChatError;
use crate::limits::Rate;

impl RedisBroker {
    /// `node` is alive for `expiry` more; the nodes whose beat expired are declared gone
    /// (by the script, which publishes it).
    pub(super) async fn beat(&self, node: &NodeId, expiry: Duration) -> Result<Beat, ChatError> {
        let (added, live): (i64, Vec<String>) = self
            .scripts
            .heartbeat
            .key(keys::NODES)
            .arg(&**node)
            .arg(u64::try_from(expiry.as_millis()).unwrap_or(u64::MAX))
            .arg(keys::CLUSTER_CHANNEL)
            .arg(PREFIX)
            .invoke_async(&mut self.conn.clone())
            .await
            .map_err(unavailable)?;
        let live = live.into_iter().map(Arc::from).collect();
        Ok(Beat::new(added == 1, live))
    }

    /// `node` stops cleanly: forgotten now, and announced gone.
    pub(super) async fn leave(&self, node: &NodeId) -> Result<(), ChatError> {
        let _: i64 = self
            .scripts
            .leave
            .key(keys::NODES)
            .arg(&**node)
            .arg(keys::CLUSTER_CHANNEL)
            .arg(PREFIX)
            .invoke_async(&mut self.conn.clone())
            .await
            .map_err(unavailable)?;
        Ok(())
    }

    /// Takes a token from the cluster-wide bucket at `key` (`limit` names it in the
    /// refusal).
    pub(super) async fn take(
        &self,
        key: String,
        limit: &'static str,
        rate: Rate,
    ) -> Result<(), ChatError> {
        let wait_ms: u64 = self
            .scripts
            .take
            .key(key)
            .arg(rate.burst)
            .arg(per_ms(rate))
            .invoke_async(&mut self.conn.clone())
            .await
            .map_err(unavailable)?;
        match wait_ms {
            0 => Ok(()),
            ms => Err(rate_limited(limit, ms)),
        }
    }

    /// Stores `share` of the room whose pub/sub channel is `channel` (so that a room
    /// starting on another node reads it) and publishes it, in one step.
    pub(super) async fn store_share(
        &self,
        channel: &str,
        share: NodePresence,
    ) -> Result<(), ChatError> {
        let mut invocation = self
            .scripts
            .presence
            .key(keys::room_share(channel, &share.node));
        invocation
            .key(keys::room_nodes(channel))
            .key(keys::node_rooms(&share.node))
            .key(keys::NODES)
            .arg(&*share.node)
            .arg(channel)
            .arg(if share.full { "1" } else { "0" });
        let members = share.members.clone();
        let payload = wire::signal(Signal::Presence(share)).map_err(unavailable)?;
        invocation.arg(payload);
        for (user, state) in &members {
            let value = match state {
                HereState::Left => String::new(),
                _ => wire::share_value(user, *state).map_err(unavailable)?,
            };
            invocation.arg(user.id.0).arg(value);
        }
        let _: i64 = invocation
            .invoke_async(&mut self.conn.clone())
            .await
            .map_err(unavailable)?;
        Ok(())
    }
}

/// A bucket's refill in tokens per millisecond, as the scripts take it.
pub(super) fn per_ms(rate: Rate) -> f64 {
    rate.per_second / 1000.0
}

/// The refusal of a cluster-wide bucket that is empty for `wait_ms` more.
pub(super) fn rate_limited(limit: &'static str, wait_ms: u64) -> ChatError {
    ChatError::RateLimited {
        limit,
        retry_after: Duration::from_millis(wait_ms),
    }
}
