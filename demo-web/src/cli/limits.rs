//! The flags that set [`chat_core::Limits`], one per field, named after it.

use std::time::Duration;

use chat_core::{Limits, Rate};

use super::values::{parse_bytes, parse_duration, parse_rate};

/// One flag per field of [`chat_core::Limits`], named after it.
#[derive(Debug, Clone, clap::Args)]
#[command(next_help_heading = "Limits")]
pub struct LimitFlags {
    /// Messages kept per room (channel or private conversation); a join shows at most
    /// this many.
    #[arg(long, env = "FLACK_HISTORY", default_value_t = 100)]
    pub history: usize,

    /// Largest message text, in bytes of UTF-8.
    #[arg(long, env = "FLACK_MAX_MESSAGE_BYTES", default_value_t = 4096)]
    pub max_message_bytes: usize,

    /// Longest display name, in characters.
    #[arg(long, env = "FLACK_MAX_DISPLAY_NAME_CHARS", default_value_t = 32)]
    pub max_display_name_chars: usize,

    /// Longest channel name, in characters.
    #[arg(long, env = "FLACK_MAX_CHANNEL_NAME_CHARS", default_value_t = 32)]
    pub max_channel_name_chars: usize,

    /// Memory a client's waiting events may keep (a message counts its text and author);
    /// past it the client is disconnected as a slow consumer. Sizes like `16MiB`, `512KiB`
    /// or plain bytes.
    #[arg(long, env = "FLACK_SESSION_QUEUE_HARD_BYTES", default_value = "16MiB", value_parser = parse_bytes)]
    pub session_queue_hard_bytes: usize,

    /// A client whose waiting events stay above this much memory for longer than
    /// `--session-queue-soft-grace` is disconnected as a slow consumer: a burst passes, a
    /// client that stopped reading does not.
    #[arg(long, env = "FLACK_SESSION_QUEUE_SOFT_BYTES", default_value = "4MiB", value_parser = parse_bytes)]
    pub session_queue_soft_bytes: usize,

    /// How long a client may stay above `--session-queue-soft-bytes`.
    #[arg(long, env = "FLACK_SESSION_QUEUE_SOFT_GRACE", default_value = "30s", value_parser = parse_duration)]
    pub session_queue_soft_grace: Duration,

    /// Per-user rate of messages, edits and reactions together, as BURST/PER_SECOND.
    #[arg(long, env = "FLACK_MESSAGE_RATE", default_value = "20/5", value_parser = parse_rate)]
    pub message_rate: Rate,

    /// Per-user rate of channel creation, as BURST/PER_SECOND.
    #[arg(long, env = "FLACK_CHANNEL_CREATE_RATE", default_value = "5/0.1", value_parser = parse_rate)]
    pub channel_create_rate: Rate,

    /// Shortest interval between two "is typing" notices of one user in one room.
    #[arg(long, env = "FLACK_TYPING_INTERVAL", default_value = "2s", value_parser = parse_duration)]
    pub typing_interval: Duration,

    /// Most channels on the server.
    #[arg(long, env = "FLACK_MAX_CHANNELS", default_value_t = 10_000)]
    pub max_channels: usize,

    /// Most connected clients (WebSocket and TCP together).
    #[arg(long, env = "FLACK_MAX_SESSIONS", default_value_t = 100_000)]
    pub max_sessions: usize,

    /// A room with more members than this is large: its followers see its member and
    /// online counts (once a second at most, less often above 1,000) instead of each
    /// member joining, leaving and coming and going, and load the member list when they
    /// show it. Below it, every join costs a delivery to every member.
    #[arg(long, env = "FLACK_LARGE_ROOM", default_value_t = 1_000)]
    pub large_room: usize,

    /// Most "is typing" notices a large room passes on per `--typing-interval`, from all
    /// its members together.
    #[arg(long, env = "FLACK_LARGE_ROOM_TYPING", default_value_t = 3)]
    pub large_room_typing: usize,

    /// A room (channel or private conversation) nobody has followed for this long is
    /// unloaded from memory; the next visitor loads it again from the store.
    #[arg(long, env = "FLACK_ROOM_IDLE", default_value = "5m", value_parser = parse_duration)]
    pub room_idle: Duration,

    /// How long a display name stays reserved for a user who left, and how long their
    /// resume token stays valid.
    #[arg(long, env = "FLACK_NAME_HOLD", default_value = "7d", value_parser = parse_duration)]
    pub name_hold: Duration,

    /// Rate of new users (new display names) from one client address, as
    /// BURST/PER_SECOND; a faster one is refused with `rate_limited`. Resuming with a
    /// token is not counted. An IPv6 address counts by its /64.
    #[arg(long, env = "FLACK_LOGIN_RATE_PER_ADDRESS", default_value = "20/0.2", value_parser = parse_rate)]
    pub login_rate_per_address: Rate,

    /// Most users kept, online or holding their name (about 750 bytes each); past it a
    /// new name forgets the user whose hold expired longest ago, or is refused with
    /// `server_full` when every hold is live.
    #[arg(long, env = "FLACK_MAX_USERS", default_value_t = 1_000_000)]
    pub max_users: usize,

    /// With `--redis`: how often this node tells the others it is alive.
    #[arg(long, env = "FLACK_NODE_HEARTBEAT", default_value = "2s", value_parser = parse_duration)]
    pub node_heartbeat: Duration,

    /// With `--redis`: a node silent for this long is taken for dead, and its users go
    /// offline on every other node (within this plus one `--node-heartbeat`). At least
    /// twice `--node-heartbeat`.
    #[arg(long, env = "FLACK_NODE_EXPIRY", default_value = "10s", value_parser = parse_duration)]
    pub node_expiry: Duration,

    /// Largest file one upload may keep; the server stops reading a body past it.
    #[arg(long, env = "FLACK_MAX_FILE_BYTES", default_value = "10MiB", value_parser = parse_bytes)]
    pub max_file_bytes: usize,

    /// Most files one message may carry.
    #[arg(long, env = "FLACK_MAX_FILES_PER_MESSAGE", default_value_t = 10)]
    pub max_files_per_message: usize,

    /// Most bytes the files of one message may add up to.
    #[arg(long, env = "FLACK_MAX_MESSAGE_FILE_BYTES", default_value = "25MiB", value_parser = parse_bytes)]
    pub max_message_file_bytes: usize,

    /// Bytes one user may upload per hour (at most 4 GiB).
    #[arg(long, env = "FLACK_UPLOAD_BYTES_PER_HOUR", default_value = "100MiB", value_parser = parse_bytes)]
    pub upload_bytes_per_hour: usize,

    /// How long an uploaded file waits for a post of its owner to carry it before it is
    /// dropped.
    #[arg(long, env = "FLACK_UPLOAD_WAIT", default_value = "1h", value_parser = parse_duration)]
    pub upload_wait: Duration,

    /// Most bytes of uploads the server receives at once, every user together (at least
    /// `--max-file-bytes`, at most 4 GiB); an upload that finds no room is refused with 503
    /// and `Retry-After`. Bounds the memory uploads take.
    #[arg(long, env = "FLACK_UPLOAD_BYTES_IN_FLIGHT", default_value = "256MiB", value_parser = parse_bytes)]
    pub upload_bytes_in_flight: usize,
}

impl LimitFlags {
    /// The engine's limits as these flags set them.
    pub fn to_limits(&self) -> Limits {
        let mut limits = Limits::default();
        limits.history = self.history;
        limits.max_message_bytes = self.max_message_bytes;
        limits.max_display_name_chars = self.max_display_name_chars;
        limits.max_channel_name_chars = self.max_channel_name_chars;
        limits.session_queue_hard_bytes = self.session_queue_hard_bytes;
        limits.session_queue_soft_bytes = self.session_queue_soft_bytes;
        limits.session_queue_soft_grace = self.session_queue_soft_grace;
        limits.message_rate = self.message_rate;
        limits.channel_create_rate = self.channel_create_rate;
        limits.typing_interval = self.typing_interval;
        limits.large_room = self.large_room;
        limits.large_room_typing = self.large_room_typing;
        limits.room_idle = self.room_idle;
        limits.max_channels = self.max_channels;
        limits.max_sessions = self.max_sessions;
        limits.name_hold = self.name_hold;
        limits.login_rate_per_address = self.login_rate_per_address;
        limits.max_users = self.max_users;
        limits.node_heartbeat = self.node_heartbeat;
        limits.node_expiry = self.node_expiry;
        limits.max_file_bytes = self.max_file_bytes as u64;
        limits.max_files_per_message = self.max_files_per_message;
        limits.max_message_file_bytes = self.max_message_file_bytes as u64;
        limits.upload_bytes_per_hour = self.upload_bytes_per_hour as u64;
        limits.upload_wait = self.upload_wait;
        limits.upload_bytes_in_flight = self.upload_bytes_in_flight as u64;
        limits
    }
}
