//! The engine's metrics: every name it reports through the [`metrics`] facade, and the
//! small calls the engine makes to report them.
//!
//! The facade does nothing until the embedder installs a recorder (demo-web installs the
//! Prometheus one); without one each call below is a load of the global recorder and a
//! return, so an embedder that wants no metrics pays next to nothing. The engine never
//! installs a recorder itself: that is a process setting, the host's to make.
//!
//! Labels come from fixed sets only (a transport, an error code, a limit's name, a broker
//! command), never a room or a user: their number is unbounded. Counts that grow with the
//! recipients of a message are added once per fan-out batch, not once per recipient.
//!
//! Called from the engine's actors, sessions and brokers, and by transports through
//! [`connection_opened`]; it must not decide anything.

use std::time::Instant;

use metrics::{counter, gauge, histogram, Unit};

use crate::error::ChatError;

/// Connections open now, by transport (gauge, label `transport`: `ws`, `tcp`, `irc`).
pub const CONNECTIONS_OPEN: &str = "flack_connections_open";
/// Successful logins (counter, label `kind`: `new` for a new user, `resume` for a token).
pub const LOGINS: &str = "flack_logins_total";
/// Sessions connected to this node (gauge).
pub const SESSIONS: &str = "flack_sessions";
/// Room actors running on this node: channels and private conversations (gauge).
pub const ROOMS_LIVE: &str = "flack_rooms_live";
/// Messages posted by this node's sessions and stored (counter).
pub const MESSAGES_POSTED: &str = "flack_messages_posted_total";
/// Messages handed to this node's sessions: one per message and recipient (counter).
pub const MESSAGES_DELIVERED: &str = "flack_messages_delivered_total";
/// Recipients on this node per message (histogram).
pub const MESSAGE_DELIVERIES: &str = "flack_message_deliveries";
/// From a join request to its snapshot (histogram, seconds).
pub const JOIN_DURATION: &str = "flack_join_duration_seconds";
/// From a post request to the stored message (histogram, seconds).
pub const POST_DURATION: &str = "flack_post_duration_seconds";
/// Sessions disconnected because their queue was full (counter).
pub const SLOW_CONSUMER_DISCONNECTS: &str = "flack_slow_consumer_disconnects_total";
/// Requests and connections refused by a rate or cap (counter, label `limit`: the name of
/// the setting, e.g. `message_rate`, `connect_rate_per_address`).
pub const RATE_LIMITED: &str = "flack_rate_limited_total";
/// Requests that failed, by protocol error code (counter, label `code`).
pub const ERRORS: &str = "flack_errors_total";
/// One batch written by the SQLite store (histogram, seconds).
pub const STORE_WRITE_DURATION: &str = "flack_store_write_duration_seconds";
/// SQLite batches that failed and are retried (counter).
pub const STORE_WRITE_FAILURES: &str = "flack_store_write_failures_total";
/// One Redis broker operation, its commands included (histogram, seconds, label
/// `command`: the broker operation, e.g. `commit`, `register`).
pub const REDIS_COMMAND_DURATION: &str = "flack_redis_command_duration_seconds";
/// Redis broker operations that failed because Redis could not be reached (counter,
/// label `command`).
pub const REDIS_COMMAND_FAILURES: &str = "flack_redis_command_failures_total";
/// Whether the Redis pub/sub connection is up: 1 or 0 (gauge).
pub const REDIS_CONNECTED: &str = "flack_redis_connected";

/// Gives every metric its help text and unit in the recorder, and makes the counters and
/// gauges without a label (and the connections of each transport) appear at 0 before
/// anything happened, so that a dashboard's rates start from the first scrape. An
/// embedder calls it once, after installing its recorder (before that it does nothing).
pub fn describe() {
    use metrics::{describe_counter, describe_gauge, describe_histogram};
    for transport in [Transport::Ws, Transport::Tcp, Transport::Irc] {
        gauge!(CONNECTIONS_OPEN, "transport" => transport.label()).increment(0.0);
    }
    for gauge in [SESSIONS, ROOMS_LIVE] {
        gauge!(gauge).increment(0.0);
    }
    for counter in [
        MESSAGES_POSTED,
        MESSAGES_DELIVERED,
        SLOW_CONSUMER_DISCONNECTS,
    ] {
        counter!(counter).increment(0);
    }
    for kind in ["new", "resume"] {
        counter!(LOGINS, "kind" => kind).increment(0);
    }
    describe_gauge!(CONNECTIONS_OPEN, "Connections open now, by transport.");
    describe_counter!(LOGINS, "Successful logins, new users and resumes.");
    describe_gauge!(SESSIONS, "Sessions connected to this node.");
    describe_gauge!(ROOMS_LIVE, "Room actors running on this node.");
    describe_counter!(MESSAGES_POSTED, "Messages posted by this node's sessions.");
    describe_counter!(
        MESSAGES_DELIVERED,
        "Messages handed to this node's sessions (one per recipient)."
    );
    describe_histogram!(
        MESSAGE_DELIVERIES,
        Unit::Count,
        "Recipients on this node per message."
    );
    describe_histogram!(JOIN_DURATION, Unit::Seconds, "Join request to snapshot.");
    describe_histogram!(
        POST_DURATION,
        Unit::Seconds,
        "Post request to stored message."
    );
    describe_counter!(
        SLOW_CONSUMER_DISCONNECTS,
        "Sessions disconnected because their queue was full."
    );
    describe_counter!(RATE_LIMITED, "Requests refused by a rate or cap, by limit.");
    describe_counter!(ERRORS, "Failed requests, by error code.");
    describe_histogram!(
        STORE_WRITE_DURATION,
        Unit::Seconds,
        "One SQLite write batch."
    );
    describe_counter!(STORE_WRITE_FAILURES, "SQLite write batches that failed.");
    describe_histogram!(
        REDIS_COMMAND_DURATION,
        Unit::Seconds,
        "One Redis broker operation, by command."
    );
    describe_counter!(
        REDIS_COMMAND_FAILURES,
        "Redis broker operations that could not reach Redis."
    );
    describe_gauge!(
        REDIS_CONNECTED,
        "1 while the Redis pub/sub connection is up."
    );
}

/// The transport a connection came in by: the value of the `transport` label.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Transport {
    /// The WebSocket JSON protocol.
    Ws,
    /// The line protocol.
    Tcp,
    /// IRC.
    Irc,
}

impl Transport {
    fn label(self) -> &'static str {
        match self {
            Transport::Ws => "ws",
            Transport::Tcp => "tcp",
            Transport::Irc => "irc",
        }
    }
}

/// One open connection, counted in [`CONNECTIONS_OPEN`] until it is dropped.
#[derive(Debug)]
#[must_use = "the connection is counted only while this is held"]
pub struct OpenConnection(Transport);

impl Drop for OpenConnection {
    fn drop(&mut self) {
        gauge!(CONNECTIONS_OPEN, "transport" => self.0.label()).decrement(1.0);
    }
}

/// Counts a connection a transport accepted; hold the result as long as it is open.
pub fn connection_opened(transport: Transport) -> OpenConnection {
    gauge!(CONNECTIONS_OPEN, "transport" => transport.label()).increment(1.0);
    OpenConnection(transport)
}

/// Counts `result`'s error, if any, by code (and by limit when it is a rate), and passes
/// it on.
pub(crate) fn tally<T>(result: Result<T, ChatError>) -> Result<T, ChatError> {
    if let Err(e) = &result {
        counter!(ERRORS, "code" => e.code()).increment(1);
        if let ChatError::RateLimited { limit, .. } = e {
            rate_limited(limit);
        }
    }
    result
}

/// A request or connection refused by the limit named `limit`.
pub(crate) fn rate_limited(limit: &'static str) {
    counter!(RATE_LIMITED, "limit" => limit).increment(1);
}

/// A successful login.
pub(crate) fn logged_in(new_user: bool) {
    let kind = if new_user { "new" } else { "resume" };
    counter!(LOGINS, "kind" => kind).increment(1);
}

/// A session connected to this node.
pub(crate) fn session_opened() {
    gauge!(SESSIONS).increment(1.0);
}

/// A session of this node ended.
pub(crate) fn session_closed() {
    gauge!(SESSIONS).decrement(1.0);
}

/// A room actor started on this node.
pub(crate) fn room_started() {
    gauge!(ROOMS_LIVE).increment(1.0);
}

/// A room actor of this node stopped.
pub(crate) fn room_stopped() {
    gauge!(ROOMS_LIVE).decrement(1.0);
}

/// A join answered, `started` when it was asked.
pub(crate) fn joined(started: Instant) {
    histogram!(JOIN_DURATION).record(started.elapsed());
}

/// A post stored, `started` when it was asked.
pub(crate) fn posted(started: Instant) {
    counter!(MESSAGES_POSTED).increment(1);
    histogram!(POST_DURATION).record(started.elapsed());
}

/// One fan-out batch: `messages` messages, each to `recipients` sessions.
pub(crate) fn delivered(messages: usize, recipients: usize) {
    if messages == 0 {
        return;
    }
    counter!(MESSAGES_DELIVERED).increment((messages * recipients) as u64);
    histogram!(MESSAGE_DELIVERIES).record_many(recipients as f64, messages);
}

/// A session disconnected because it could not keep up.
pub(crate) fn slow_consumer() {
    counter!(SLOW_CONSUMER_DISCONNECTS).increment(1);
}

/// One SQLite batch written in `took`, or failed.
#[cfg(feature = "sqlite")]
pub(crate) fn store_write(took: std::time::Duration, ok: bool) {
    if ok {
        histogram!(STORE_WRITE_DURATION).record(took);
    } else {
        counter!(STORE_WRITE_FAILURES).increment(1);
    }
}

/// One Redis broker operation that took `took` and could (`ok`) or could not reach Redis.
#[cfg(feature = "redis")]
pub(crate) fn redis_command(command: &'static str, took: std::time::Duration, ok: bool) {
    histogram!(REDIS_COMMAND_DURATION, "command" => command).record(took);
    if !ok {
        counter!(REDIS_COMMAND_FAILURES, "command" => command).increment(1);
    }
}

/// The Redis pub/sub connection went up or down.
#[cfg(feature = "redis")]
pub(crate) fn redis_connected(up: bool) {
    gauge!(REDIS_CONNECTED).set(if up { 1.0 } else { 0.0 });
}
