//! The Redis broker's side of following rooms: which local rooms follow which pub/sub
//! channel, and the task that owns the pub/sub connection.
//!
//! The task routes each room's published changes to the local channel actors that follow
//! it, and cluster events to the registries. When the connection is lost it reconnects
//! with a doubling backoff, subscribes again to everything followed, and resynchronises
//! every followed room from its stored list, so local subscribers get what they missed.
//!
//! Called by the broker (`mod.rs`): `follow`, `add_registry`, and `run` once at connect.
//! The task holds the shared state weakly and ends when the broker is dropped; it must not
//! commit anything, only read and route.

use std::collections::HashMap;
use std::sync::{Mutex, Weak};
use std::time::Duration;

use futures_util::StreamExt;
use redis::aio::{ConnectionManager, PubSubSink, PubSubStream};
use redis::AsyncCommands;
use tokio::sync::mpsc;

use super::scripts::Scripts;
use super::{keys, unavailable, wire};
use crate::broker::{lock, Change, ClusterEvent, Follow, Stored};
use crate::error::ChatError;
use crate::model::{MessageId, Room};
use crate::telemetry;

/// Reconnection backoff of the pub/sub task: from the first to the last delay, doubling.
const BACKOFF_FIRST: Duration = Duration::from_millis(100);
pub(super) const BACKOFF_MAX: Duration = Duration::from_secs(5);

/// The local followers of one room's pub/sub channel.
struct RoomFollowers {
    room: Room,
    followers: Vec<mpsc::UnboundedSender<Change>>,
}

/// What the broker handle and its pub/sub task share.
#[derive(Default)]
pub(super) struct Shared {
    /// By pub/sub channel.
    rooms: Mutex<HashMap<String, RoomFollowers>>,
    registries: Mutex<Vec<mpsc::UnboundedSender<ClusterEvent>>>,
    /// The subscribing half of the current connection; `None` while it is down.
    sink: Mutex<Option<PubSubSink>>,
}

impl Shared {
    /// Follows `room`: its feed from now on, and its stored history.
    pub(super) async fn follow(
        &self,
        conn: &mut ConnectionManager,
        scripts: &Scripts,
        room: &Room,
    ) -> Result<Follow, ChatError> {
        let channel = keys::room_channel(room);
        let (tx, changes) = mpsc::unbounded_channel();
        let first = {
            let mut rooms = lock(&self.rooms);
            let entry = rooms
                .entry(channel.clone())
                .or_insert_with(|| RoomFollowers {
                    room: room.clone(),
                    followers: Vec::new(),
                });
            entry.followers.push(tx);
            entry.followers.len() == 1
        };
        let sink = lock(&self.sink).clone();
        // Subscribe before reading the list: a message in both is applied once (the
        // actor ignores ids it has), a message in neither cannot exist.
        if let (true, Some(mut sink)) = (first, sink) {
            if let Err(e) = sink.subscribe(&channel).await {
                tracing::warn!(error = %e, channel, "subscribe failed; the pub/sub task will retry");
            }
        }
        // A room that cannot read its history must not start as if it had none: it
        // fails, and the next request starts it again. The presence shares are read after
        // subscribing too: a change in both is applied twice, which changes nothing.
        let stored = read_stored(conn, room).await?;
        let lines: Vec<String> = scripts
            .shares
            .key(keys::room_nodes(&channel))
            .arg(&channel)
            .invoke_async(conn)
            .await
            .map_err(unavailable)?;
        Ok(Follow::new(stored, changes).with_presence(wire::stored_shares(&lines)))
    }

    /// Whether the pub/sub connection is up (for `RedisBroker::reachable`).
    pub(super) fn subscribed(&self) -> bool {
        lock(&self.sink).is_some()
    }

    /// A registry's receiver of the cluster events of every node.
    pub(super) fn add_registry(&self) -> mpsc::UnboundedReceiver<ClusterEvent> {
        let (tx, rx) = mpsc::unbounded_channel();
        lock(&self.registries).push(tx);
        rx
    }
}

/// The pub/sub task: connect, subscribe to everything followed, route messages; on loss,
/// back off, reconnect, and resynchronise. Ends when the broker is dropped.
pub(super) async fn run(
    client: redis::Client,
    shared: Weak<Shared>,
    mut conn: ConnectionManager,
    subscribed: tokio::sync::oneshot::Sender<()>,
) {
    let mut subscribed = Some(subscribed);
    let mut delay = BACKOFF_FIRST;
    let mut reconnecting = false;
    loop {
        let Some(state) = shared.upgrade() else {
            return;
        };
        match subscribe_all(&client, &state).await {
            Ok(mut stream) => {
                telemetry::redis_connected(true);
                if let Some(subscribed) = subscribed.take() {
                    let _ = subscribed.send(());
                }
                // What the rooms missed is only recovered by the catch-up: if it fails,
                // the whole reconnection is tried again rather than going on without it.
                let caught_up = !reconnecting
                    || {
                        tracing::info!("redis pub/sub reconnected; resynchronising rooms");
                        let result = resync(&state, &mut conn).await;
                        if let Err(e) = &result {
                            tracing::warn!(error = %e, retry_in_ms = delay.as_millis() as u64, "resynchronising after the outage failed");
                        }
                        result.is_ok()
                    };
                drop(state);
                if caught_up {
                    delay = BACKOFF_FIRST;
                    while let Some(message) = stream.next().await {
                        let Some(state) = shared.upgrade() else {
                            return;
                        };
                        route(
                            &state,
                            message.get_channel_name(),
                            message.get_payload_bytes(),
                        );
                    }
                    tracing::warn!("redis pub/sub connection lost; reconnecting");
                }
                if let Some(state) = shared.upgrade() {
                    *lock(&state.sink) = None;
                }
                telemetry::redis_connected(false);
            }
            Err(e) => {
                drop(state);
                telemetry::redis_connected(false);
                tracing::warn!(error = %e, retry_in_ms = delay.as_millis() as u64, "redis pub/sub unavailable");
            }
        }
        reconnecting = true;
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(BACKOFF_MAX);
    }
}

async fn subscribe_all(client: &redis::Client, state: &Shared) -> redis::RedisResult<PubSubStream> {
    let (mut sink, stream) = client.get_async_pubsub().await?.split();
    sink.subscribe(keys::CLUSTER_CHANNEL).await?;
    let channels: Vec<String> = lock(&state.rooms).keys().cloned().collect();
    for channel in channels {
        sink.subscribe(&channel).await?;
    }
    *lock(&state.sink) = Some(sink);
    Ok(stream)
}

/// After an outage: every followed room gets its stored list again (the actors apply
/// what they missed, ignoring what they have), and the registries hear of every channel.
/// Fails on the first read that fails (the command connection may still be
/// reconnecting); the caller then tries again.
async fn resync(state: &Shared, conn: &mut ConnectionManager) -> Result<(), ChatError> {
    let rooms: Vec<Room> = lock(&state.rooms)
        .values()
        .map(|r| r.room.clone())
        .collect();
    for room in rooms {
        let stored = read_stored(conn, &room).await?;
        deliver(state, &keys::room_channel(&room), Change::Resync(stored));
    }
    let channels: Vec<String> = conn.hvals(keys::CHANNELS).await.map_err(unavailable)?;
    for (name, created_at) in channels.iter().filter_map(|j| wire::channel_record(j)) {
        announce(state, ClusterEvent::ChannelCreated { name, created_at });
    }
    Ok(())
}

fn route(state: &Shared, channel: &str, payload: &[u8]) {
    if channel == keys::CLUSTER_CHANNEL {
        match wire::cluster_event(payload) {
            Ok(Some(event)) => announce(state, event),
            Ok(None) => {}
            Err(e) => tracing::warn!(error = %e, "malformed cluster event"),
        }
        return;
    }
    let room = match lock(&state.rooms).get(channel) {
        Some(r) => r.room.clone(),
        None => return,
    };
    match wire::change(payload, &room) {
        Ok(Some(change)) => deliver(state, channel, change),
        Ok(None) => {}
        Err(e) => tracing::warn!(error = %e, channel, "malformed room change"),
    }
}

fn deliver(state: &Shared, channel: &str, change: Change) {
    if let Some(room) = lock(&state.rooms).get_mut(channel) {
        room.followers.retain(|f| f.send(change.clone()).is_ok());
    }
}

fn announce(state: &Shared, event: ClusterEvent) {
    lock(&state.registries).retain(|r| r.send(event.clone()).is_ok());
}

/// A room's stored history, oldest first; entries that do not parse are skipped.
/// A room's stored list and its last id, read together in one round trip, so the id is
/// never older than the list.
pub(super) async fn read_stored(
    conn: &mut ConnectionManager,
    room: &Room,
) -> Result<Stored, ChatError> {
    let channel = keys::room_channel(room);
    let (items, last_id): (Vec<String>, Option<MessageId>) = redis::pipe()
        .atomic()
        .lrange(keys::room_log(&channel), 0, -1)
        .get(keys::room_seq(&channel))
        .query_async(conn)
        .await
        .map_err(unavailable)?;
    let messages = items
        .iter()
        .filter_map(|j| wire::message(j, room))
        .collect();
    Ok(Stored::new(messages, last_id.unwrap_or(0)))
}
