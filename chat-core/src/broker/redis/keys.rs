//! The Redis key layout: the name of every key and pub/sub channel the Redis broker uses
//! (the table in `docs/architecture.md`, "Redis key layout").
//!
//! Called by the broker's commands (`mod.rs`) and its pub/sub task (`pubsub.rs`). It only
//! names things: it must not talk to Redis nor know what the values hold. The Lua
//! scripts (`scripts.rs`) build a few of these names themselves from [`PREFIX`] (a
//! user's record, token and private pairs, a private room's keys); a change here is a
//! change there.

use crate::attachment::FileId;
use crate::model::{Room, RoomKey, UserId};
use crate::validate;

/// Every key and pub/sub channel starts with this.
pub(super) const PREFIX: &str = "flack";
/// The pub/sub channel of cluster events.
pub(super) const CLUSTER_CHANNEL: &str = "flack:cluster";
/// The last user id given out (`INCR`).
pub(super) const USER_SEQ: &str = "flack:user:next";
/// The sorted set of every user kept, scored by when their hold ends (Unix milliseconds):
/// how `Limits::max_users` is counted, and which hold expired first. The scripts build
/// it themselves as `PREFIX:users` where they take the prefix.
pub(super) const USERS: &str = "flack:users";
/// The hash of every channel: case-folded name -> the channel's record.
pub(super) const CHANNELS: &str = "flack:channels";
/// The keyspace's epoch: a random id set (`SET NX`) by the first node that connects to it.
pub(super) const EPOCH: &str = "flack:epoch";

/// The sorted set of live nodes, scored by when each one's heartbeat expires (Unix
/// milliseconds from Redis's `TIME`).
pub(super) const NODES: &str = "flack:nodes";

/// A user's cluster-wide flood bucket for `limit` (`message_rate`,
/// `channel_create_rate`).
pub(super) fn bucket(limit: &str, user: UserId) -> String {
    format!("{PREFIX}:rate:{limit}:{}", user.0)
}

/// Who holds display name `name` (case-insensitively): the user's id.
pub(super) fn name(name: &str) -> String {
    format!("{PREFIX}:name:{}", validate::name_key(name))
}

/// A user's record: display name, token and name key.
pub(super) fn user(id: u64) -> String {
    format!("{PREFIX}:user:{id}")
}

/// The user a resume token was issued to.
pub(super) fn token(token: &str) -> String {
    format!("{PREFIX}:token:{token}")
}

/// The user an embedder's external id (`Login::External`) is: kept for good.
pub(super) fn external(id: &str) -> String {
    format!("{PREFIX}:external:{id}")
}

/// An uploaded file: a hash of `owner`, `name`, `size`, `kind`, `data`, and `attached`
/// (the message id) once a post carries it. The post and delete scripts build it
/// themselves as `PREFIX:file:ID` when they drop a message's files.
pub(super) fn file(id: &FileId) -> String {
    format!("{PREFIX}:file:{id}")
}

/// The set of a user's private pairs.
pub(super) fn directs(user: UserId) -> String {
    format!("{PREFIX}:dms:{}", user.0)
}

/// The pub/sub channel of a room; its keys add `:seq` ([`room_seq`]) and `:log`
/// ([`room_log`]).
pub(super) fn room_channel(room: &Room) -> String {
    match room.key() {
        RoomKey::Channel(key) => format!("{PREFIX}:room:c:{key}"),
        RoomKey::Direct(a, b) => format!("{PREFIX}:room:d:{}:{}", a.0, b.0),
    }
}

/// `node`'s share of the presence of the room whose pub/sub channel is `channel`: a hash
/// of user id -> `[user, state]`.
pub(super) fn room_share(channel: &str, node: &str) -> String {
    format!("{channel}:here:{node}")
}

/// The nodes with a share of the presence of the room whose pub/sub channel is `channel`.
pub(super) fn room_nodes(channel: &str) -> String {
    format!("{channel}:nodes")
}

/// The rooms (pub/sub channels) `node` has a share of: what goes when the node is gone.
pub(super) fn node_rooms(node: &str) -> String {
    format!("{PREFIX}:node:{node}:rooms")
}

/// The last message id of the room whose pub/sub channel is `channel`.
pub(super) fn room_seq(channel: &str) -> String {
    format!("{channel}:seq")
}

/// The stored history of the room whose pub/sub channel is `channel`, oldest first.
pub(super) fn room_log(channel: &str) -> String {
    format!("{channel}:log")
}
