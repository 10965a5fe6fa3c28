//! The engine's one error type. Every variant has a stable machine-readable code
//! (`ChatError::code`) that transports send to clients unchanged, next to the
//! human-readable `Display` text.
//!
//! Called by every engine operation; it must not carry anything secret (a token, another
//! user's session) because transports show it to the client as it is.

use std::time::Duration;

/// Everything an engine operation can refuse or fail with.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ChatError {
    /// A display name breaks the rules of [`crate::validate::display_name`]: empty, too
    /// long, no letter or digit, or a character that is invisible, reorders text or has
    /// no agreed look. The text names the character.
    #[error("invalid display name: {0}")]
    InvalidName(String),
    /// Another user holds this display name, or one that looks the same
    /// ([`crate::validate::name_key`]).
    #[error("the display name {0:?} is taken, or looks like one that is")]
    NameTaken(String),
    /// The resume token is unknown or has expired.
    #[error("unknown or expired resume token")]
    InvalidToken,
    /// An embedder's external user id ([`crate::Login::External`]) is empty, longer than
    /// [`crate::MAX_EXTERNAL_ID_BYTES`], or has a control character.
    #[error("invalid external user id: {0}")]
    InvalidExternalId(String),
    /// A channel name breaks the naming rules.
    #[error("invalid channel name: {0}")]
    InvalidChannelName(String),
    /// A channel with this name (case-insensitively) exists already.
    #[error("a channel named {0:?} exists already")]
    ChannelExists(String),
    /// No channel has this name.
    #[error("no channel named {0:?}")]
    NoSuchChannel(String),
    /// No user has this display name.
    #[error("no user named {0:?}")]
    NoSuchUser(String),
    /// The operation needs the session to have joined the room first.
    #[error("join {0} first")]
    NotJoined(String),
    /// Only a message's author may delete it.
    #[error("only its author can delete message {0}")]
    NotAuthor(u64),
    /// Only a message's author may edit it. Code `not_author`, like
    /// [`ChatError::NotAuthor`].
    #[error("only its author can edit message {0}")]
    NotEditor(u64),
    /// A reaction outside the set ([`crate::reaction`]); the text names the set.
    #[error("{0:?} is not a reaction here; use one of {set}", set = crate::reaction::Emoji::describe_set())]
    InvalidReaction(String),
    /// No message with this id is in the room's history.
    #[error("no message {0} in this room's history")]
    NoSuchMessage(u64),
    /// A message text is empty or only white space.
    #[error("a message cannot be empty")]
    Empty,
    /// A message text is longer than the limit.
    #[error("a message may have at most {limit} bytes, this one has {actual}")]
    TooLong {
        /// The limit, in bytes of UTF-8.
        limit: usize,
        /// The size of the refused text, in bytes of UTF-8.
        actual: usize,
    },
    /// A message text has control characters other than newline and tab.
    #[error("a message may not contain control characters other than newline and tab")]
    InvalidText,
    /// A user addressed themselves where another user is needed.
    #[error("{0}")]
    InvalidTarget(String),
    /// The user sends faster than the named rate allows.
    #[error("slow down: {limit} allows another one in {} ms", retry_after.as_millis())]
    RateLimited {
        /// Which rate was exceeded (`message_rate`, `channel_create_rate`,
        /// `login_rate_per_address`): the name of its field in `Limits`.
        limit: &'static str,
        /// How long until the next attempt can succeed.
        retry_after: Duration,
    },
    /// The server has as many channels as `Limits::max_channels` allows.
    #[error("the server has reached its limit of {0} channels")]
    TooManyChannels(usize),
    /// The server has as many sessions as `Limits::max_sessions` allows.
    #[error("the server is full ({0} connections)")]
    ServerFull(usize),
    /// A new name was refused: the server keeps as many users as `Limits::max_users`
    /// allows, and every one of them is online or still holds their name. Code
    /// `server_full`, like [`ChatError::ServerFull`].
    #[error(
        "the server is full: it keeps {0} users, all online or holding their names; \
         new names are accepted again as name holds expire (returning users can resume)"
    )]
    TooManyUsers(usize),
    /// A post names a file that is not waiting for a post of this user: never uploaded,
    /// uploaded by someone else, attached already, or dropped (unclaimed for
    /// `Limits::upload_wait`, or its message is gone).
    #[error("no upload {0} is waiting for a message of yours")]
    NoSuchFile(String),
    /// A post names more files than `Limits::max_files_per_message` allows.
    #[error("a message may carry at most {0} files")]
    TooManyFiles(usize),
    /// A file, or a post's files together, are larger than the named limit allows.
    #[error("{limit} allows at most {bytes} bytes")]
    FileTooLarge {
        /// Which limit (`max_file_bytes`, `max_message_file_bytes`): the name of its field
        /// in `Limits`.
        limit: &'static str,
        /// The limit, in bytes.
        bytes: u64,
    },
    /// The session was closed; it can no longer be used.
    #[error("this session is closed")]
    SessionClosed,
    /// The engine is shutting down.
    #[error("the server is shutting down")]
    ShuttingDown,
    /// A limit given to the engine is one it cannot work with (refused at start).
    #[error("invalid limit: {0}")]
    InvalidLimit(String),
    /// A backing service (the broker) cannot be reached; retry later.
    #[error("service unavailable: {0}")]
    Unavailable(String),
    /// The store cannot be used as it is: a file that is corrupt, unreadable, not a Flack
    /// database, from a newer version, or in use by another server. The text names the
    /// file. Refused at start, so that a server never starts afresh over data it could
    /// not read.
    #[error("store: {0}")]
    Store(String),
}

impl ChatError {
    /// The stable, machine-readable code of this error, e.g. `name_taken`.
    ///
    /// Codes never change meaning; clients may match on them.
    pub fn code(&self) -> &'static str {
        match self {
            ChatError::InvalidName(_) => "invalid_name",
            ChatError::NameTaken(_) => "name_taken",
            ChatError::InvalidToken => "invalid_token",
            ChatError::InvalidExternalId(_) => "invalid_external_id",
            ChatError::InvalidChannelName(_) => "invalid_channel_name",
            ChatError::ChannelExists(_) => "channel_exists",
            ChatError::NoSuchChannel(_) => "no_such_channel",
            ChatError::NoSuchUser(_) => "no_such_user",
            ChatError::NotJoined(_) => "not_joined",
            ChatError::NotAuthor(_) | ChatError::NotEditor(_) => "not_author",
            ChatError::InvalidReaction(_) => "invalid_reaction",
            ChatError::NoSuchMessage(_) => "no_such_message",
            ChatError::Empty => "empty",
            ChatError::TooLong { .. } => "too_long",
            ChatError::InvalidText => "invalid_text",
            ChatError::InvalidTarget(_) => "invalid_target",
            ChatError::RateLimited { .. } => "rate_limited",
            ChatError::TooManyChannels(_) => "too_many_channels",
            ChatError::ServerFull(_) | ChatError::TooManyUsers(_) => "server_full",
            ChatError::NoSuchFile(_) => "no_such_file",
            ChatError::TooManyFiles(_) => "too_many_files",
            ChatError::FileTooLarge { .. } => "too_large",
            ChatError::SessionClosed => "session_closed",
            ChatError::ShuttingDown => "shutting_down",
            ChatError::InvalidLimit(_) => "invalid_limit",
            ChatError::Unavailable(_) => "unavailable",
            ChatError::Store(_) => "store_error",
        }
    }
}

/// The directory no longer answers: only an engine that is stopping loses it.
pub(crate) fn registry_gone(_: actix::MailboxError) -> ChatError {
    ChatError::ShuttingDown
}

/// A room no longer answers: it stopped (idle, or unable to load its history) after its
/// address was handed out. The next request for it starts it again.
pub(crate) fn room_gone(_: actix::MailboxError) -> ChatError {
    ChatError::Unavailable("the room stopped before it answered; try again".into())
}
