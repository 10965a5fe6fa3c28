//! `Limits`: every bound the engine enforces, in one documented struct with defaults,
//! and [`InvalidLimit`], what every config check (the engine's and the transports') says
//! about a value it cannot work with. Transports have config structs of their own
//! (frame and line sizes, timeouts); `demo-web` maps each field to a flag.

use std::time::Duration;

/// A limit set to a value the engine or a transport cannot work with, found when the
/// configuration is checked (at start-up), never later.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{name}: {reason}")]
#[non_exhaustive]
pub struct InvalidLimit {
    /// The limit's name, as its config field is called (`heartbeat_interval`).
    pub name: &'static str,
    /// What is wrong with its value.
    pub reason: String,
}

impl InvalidLimit {
    /// `name` is wrong because of `reason`.
    pub fn new(name: &'static str, reason: impl Into<String>) -> InvalidLimit {
        InvalidLimit {
            name,
            reason: reason.into(),
        }
    }

    /// Refuses a zero `value` of the limit `name`.
    pub fn nonzero<T: PartialEq + Default>(
        name: &'static str,
        value: T,
    ) -> Result<(), InvalidLimit> {
        if value == T::default() {
            Err(InvalidLimit::new(name, "must be greater than zero"))
        } else {
            Ok(())
        }
    }
}

/// A token bucket: `burst` actions at once, refilled at `per_second`.
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub struct Rate {
    /// How many actions may happen back to back (the bucket's size). At least 1.
    pub burst: u32,
    /// How many actions per second the bucket refills (may be fractional, > 0).
    pub per_second: f64,
}

impl Rate {
    /// A bucket of `burst` actions refilled at `per_second`.
    pub fn new(burst: u32, per_second: f64) -> Rate {
        Rate { burst, per_second }
    }
}

/// Every limit of the engine, with documented defaults; checked by [`Limits::validate`].
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Limits {
    /// Messages kept per room (channel or private conversation); the next one evicts the
    /// oldest. Default 100.
    pub history: usize,
    /// Largest message text (a post's or an edit's), in bytes of UTF-8. Default 4096.
    pub max_message_bytes: usize,
    /// Longest display name, in characters (the shortest is 1). Default 32.
    pub max_display_name_chars: usize,
    /// Longest channel name, in characters (the shortest is 1). Default 32.
    pub max_channel_name_chars: usize,
    /// Bytes a session's waiting events may keep in memory (a message counts its text and
    /// author: it stays alive while this session holds it); one more and the session is
    /// disconnected as a slow consumer. A transport takes everything waiting in one go, so
    /// this bounds what piles up while it cannot write. Default 16 MiB.
    pub session_queue_hard_bytes: usize,
    /// A session whose waiting events stay above this many bytes for longer than
    /// `session_queue_soft_grace` is disconnected as a slow consumer: a burst passes, a
    /// client that stopped reading does not. Default 4 MiB.
    pub session_queue_soft_bytes: usize,
    /// How long a session may stay above `session_queue_soft_bytes`. Default 30 s.
    pub session_queue_soft_grace: Duration,
    /// Per-user rate of messages (channels and private messages together), edits and
    /// reactions: each takes one token. Default: bursts of 20, 5 per second.
    pub message_rate: Rate,
    /// Per-user rate of channel creation. Default: bursts of 5, one per 10 seconds.
    pub channel_create_rate: Rate,
    /// Shortest interval between two typing notices of one user in one room; the ones in
    /// between are dropped. Default 2 s.
    pub typing_interval: Duration,
    /// A room with more members than this (online or not) is *large*: its followers get
    /// its counts (`Event::RoomCounts`, at most once a second, less often above 1,000
    /// members) instead of every member's joins, departures and comings and goings, fetch
    /// the member list on demand, and the room relays at most `large_room_typing` typing
    /// notices per `typing_interval`.
    /// A smaller room fans each tick's presence changes out as one batch to every
    /// follower, which costs every join a delivery to every member: up to this size that
    /// is what people expect to see, beyond it it is what makes filling a room quadratic.
    /// A room that has become large stays so until it shrinks to three quarters of this,
    /// so a room at the edge does not flip back and forth. Default 1,000.
    pub large_room: usize,
    /// Most typing notices a large room relays per `typing_interval` (the others are
    /// dropped, as a throttled notice is): a client shows "several people are typing"
    /// beyond a few anyway, and each notice goes to every follower. Default 3.
    pub large_room_typing: usize,
    /// A room (channel or private conversation) that nobody has followed for this long
    /// stops, and its memory is freed; the next request for it starts it again from the
    /// broker's stored history. Its offline members are forgotten then. Default 5 minutes.
    pub room_idle: Duration,
    /// Most channels on the server. Default 10,000.
    pub max_channels: usize,
    /// Most connected sessions on the server. Default 100,000.
    pub max_sessions: usize,
    /// How long a display name stays reserved for a user who has left, and how long their
    /// resume token stays valid. Default 7 days.
    pub name_hold: Duration,
    /// Rate of new users (logins with a new display name) from one client address (an
    /// IPv6 address counts by its /64), for the logins a transport makes with
    /// [`Engine::connect_from`](crate::Engine::connect_from); over it the login is refused
    /// with `rate_limited`. Resuming with a token is not counted: it keeps nothing new,
    /// and a whole office behind one address comes back at once after a restart. Per
    /// node. Default: bursts of 20, one per 5 seconds, so one address can register at
    /// most about 121,000 users within a 7-day `name_hold`, an eighth of `max_users`.
    pub login_rate_per_address: Rate,
    /// Most users the server keeps, online or holding their name after leaving (each costs
    /// about 750 bytes in memory, or in Redis). A new name past it first forgets the user
    /// whose hold expired longest ago; when no hold has expired, the login is refused with
    /// `server_full` (returning users can still resume). Default 1,000,000: about 750 MB
    /// at most, ten times `max_sessions`.
    pub max_users: usize,
    /// How often a node tells the cluster it is alive (with a shared broker such as
    /// Redis; a single node's broker ignores it). Default 2 seconds.
    pub node_heartbeat: Duration,
    /// A node that has not beaten for this long is taken for dead: the other nodes show
    /// its users offline (those with no session elsewhere). So a node that dies takes its
    /// users offline everywhere within `node_expiry` plus one `node_heartbeat`. Must be
    /// at least twice `node_heartbeat`, so one late beat does not take a live node for
    /// dead. Default 10 seconds.
    pub node_expiry: Duration,
    /// Largest file one upload may keep, in bytes ([`crate::attachment`]); an upload
    /// beyond it is refused with `too_large` (a transport stops reading its body there).
    /// Default 10 MiB.
    pub max_file_bytes: u64,
    /// Most files one message may carry. Default 10.
    pub max_files_per_message: usize,
    /// Most bytes the files of one message may add up to. Default 25 MiB.
    pub max_message_file_bytes: u64,
    /// Bytes one user may upload per hour (a bucket that refills over the hour); over it,
    /// an upload is refused with `rate_limited`. Per node. Default 100 MiB.
    pub upload_bytes_per_hour: u64,
    /// How long an uploaded file waits for a post of its owner to carry it; then it is
    /// dropped. Default 1 hour.
    pub upload_wait: Duration,
    /// Most bytes of uploads the server receives at once, every user together: an upload
    /// reserves its size before its body is read, and one that finds no room is refused
    /// with `unavailable` (try again in a moment). This bounds the memory uploads take,
    /// however many arrive at once. At least `max_file_bytes`, at most 4 GiB. Default
    /// 256 MiB.
    pub upload_bytes_in_flight: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            history: 100,
            max_message_bytes: 4096,
            max_display_name_chars: 32,
            max_channel_name_chars: 32,
            session_queue_hard_bytes: 16 << 20,
            session_queue_soft_bytes: 4 << 20,
            session_queue_soft_grace: Duration::from_secs(30),
            message_rate: Rate {
                burst: 20,
                per_second: 5.0,
            },
            channel_create_rate: Rate {
                burst: 5,
                per_second: 0.1,
            },
            typing_interval: Duration::from_secs(2),
            large_room: 1_000,
            large_room_typing: 3,
            room_idle: Duration::from_secs(5 * 60),
            max_channels: 10_000,
            max_sessions: 100_000,
            name_hold: Duration::from_secs(7 * 24 * 3600),
            login_rate_per_address: Rate {
                burst: 20,
                per_second: 0.2,
            },
            max_users: 1_000_000,
            node_heartbeat: Duration::from_secs(2),
            node_expiry: Duration::from_secs(10),
            max_file_bytes: 10 << 20,
            max_files_per_message: 10,
            max_message_file_bytes: 25 << 20,
            upload_bytes_per_hour: 100 << 20,
            upload_wait: Duration::from_secs(3600),
            upload_bytes_in_flight: 256 << 20,
        }
    }
}

impl Limits {
    /// Refuses a value the engine cannot work with, naming the limit: a zero history, an
    /// empty queue, a bucket that never refills. Called by
    /// [`EngineBuilder::start`](crate::EngineBuilder::start); a front end calls it where it
    /// parses its flags, to say which one is wrong before anything starts.
    pub fn validate(&self) -> Result<(), InvalidLimit> {
        InvalidLimit::nonzero("history", self.history)?;
        InvalidLimit::nonzero("max_message_bytes", self.max_message_bytes)?;
        InvalidLimit::nonzero("max_display_name_chars", self.max_display_name_chars)?;
        InvalidLimit::nonzero("max_channel_name_chars", self.max_channel_name_chars)?;
        InvalidLimit::nonzero("session_queue_hard_bytes", self.session_queue_hard_bytes)?;
        InvalidLimit::nonzero("session_queue_soft_bytes", self.session_queue_soft_bytes)?;
        if self.session_queue_soft_bytes > self.session_queue_hard_bytes {
            return Err(InvalidLimit::new(
                "session_queue_soft_bytes",
                "must not be above session_queue_hard_bytes",
            ));
        }
        InvalidLimit::nonzero("max_channels", self.max_channels)?;
        InvalidLimit::nonzero("max_sessions", self.max_sessions)?;
        InvalidLimit::nonzero("name_hold", self.name_hold)?;
        InvalidLimit::nonzero("max_users", self.max_users)?;
        InvalidLimit::nonzero("room_idle", self.room_idle)?;
        InvalidLimit::nonzero("large_room", self.large_room)?;
        InvalidLimit::nonzero("large_room_typing", self.large_room_typing)?;
        InvalidLimit::nonzero("node_heartbeat", self.node_heartbeat)?;
        if self.node_expiry < self.node_heartbeat * 2 {
            return Err(InvalidLimit::new(
                "node_expiry",
                "must be at least twice node_heartbeat",
            ));
        }
        InvalidLimit::nonzero("max_file_bytes", self.max_file_bytes)?;
        InvalidLimit::nonzero("max_files_per_message", self.max_files_per_message)?;
        InvalidLimit::nonzero("max_message_file_bytes", self.max_message_file_bytes)?;
        InvalidLimit::nonzero("upload_wait", self.upload_wait)?;
        // Both hold at least the largest file, and stay within `u32` (the reservation's
        // permits; a tokio semaphore holds far more).
        self.file_budget("upload_bytes_per_hour", self.upload_bytes_per_hour)?;
        self.file_budget("upload_bytes_in_flight", self.upload_bytes_in_flight)?;
        self.message_rate.validate("message_rate")?;
        self.channel_create_rate.validate("channel_create_rate")?;
        self.login_rate_per_address
            .validate("login_rate_per_address")?;
        Ok(())
    }
}

impl Limits {
    /// Refuses a byte budget for uploads (`name`, worth `bytes`) below `max_file_bytes`
    /// (no file of the largest size could ever be taken in) or above 4 GiB.
    fn file_budget(&self, name: &'static str, bytes: u64) -> Result<(), InvalidLimit> {
        if bytes < self.max_file_bytes {
            return Err(InvalidLimit::new(
                name,
                "must be at least max_file_bytes, or no file of the largest size could ever be taken in",
            ));
        }
        if bytes > u64::from(u32::MAX) {
            return Err(InvalidLimit::new(
                name,
                "must be at most 4 GiB (4294967295 bytes)",
            ));
        }
        Ok(())
    }
}

impl Rate {
    /// Refuses a bucket that holds nothing (a zero burst) or never refills, naming the
    /// limit `name` it is the value of. Transports check their own rates with it.
    pub fn validate(&self, name: &'static str) -> Result<(), InvalidLimit> {
        if self.burst == 0 {
            return Err(InvalidLimit::new(name, "the burst must be at least 1"));
        }
        if !(self.per_second.is_finite() && self.per_second > 0.0) {
            return Err(InvalidLimit::new(
                name,
                "the refill rate must be a positive number per second",
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_defaults_are_valid() {
        assert_eq!(Limits::default().validate(), Ok(()));
    }

    #[test]
    fn a_zero_or_broken_limit_is_refused_by_name() {
        let refused = |limits: Limits| limits.validate().map_err(|e| e.name);
        let d = Limits::default;
        assert_eq!(refused(Limits { history: 0, ..d() }), Err("history"));
        let no_idle = Limits {
            room_idle: Duration::ZERO,
            ..d()
        };
        assert_eq!(refused(no_idle), Err("room_idle"));
        let never_refills = Limits {
            message_rate: Rate::new(5, f64::NAN),
            ..d()
        };
        assert_eq!(refused(never_refills), Err("message_rate"));
        let no_burst = Limits {
            channel_create_rate: Rate::new(0, 1.0),
            ..d()
        };
        assert_eq!(refused(no_burst), Err("channel_create_rate"));
        let no_logins = Limits {
            login_rate_per_address: Rate::new(3, 0.0),
            ..d()
        };
        assert_eq!(refused(no_logins), Err("login_rate_per_address"));
        assert_eq!(
            refused(Limits {
                max_users: 0,
                ..d()
            }),
            Err("max_users")
        );
    }
}
