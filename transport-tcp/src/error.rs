//! `TcpError`: what the TCP transport itself can refuse, beside the engine's
//! [`ChatError`]. Every variant has a stable code, shown to the client in
//! `! error <code>: <message>` lines (see `docs/tcp.md`); engine errors keep the engine's
//! code unchanged.
//!
//! Built by `command.rs`, `dispatch.rs` and `connection.rs`, rendered by `render.rs`. It
//! carries nothing secret: it is shown to the client as it is.

use chat_core::ChatError;

/// An error shown to a TCP client.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TcpError {
    /// The engine refused the request; its code is passed on unchanged.
    #[error(transparent)]
    Chat(#[from] ChatError),
    /// A line started with `/` but names no command.
    #[error("unknown command /{0}; /help lists them (start a message with // to post a /)")]
    UnknownCommand(String),
    /// A command's arguments are missing or malformed; carries the usage.
    #[error("usage: {0}")]
    Usage(&'static str),
    /// A line was longer than `TcpConfig::max_line_bytes`; the rest of it was discarded.
    #[error("line longer than {0} bytes; the rest of it was discarded")]
    LineTooLong(usize),
    /// A line was not valid UTF-8; it was dropped.
    #[error("the line was not valid UTF-8 and was dropped")]
    InvalidUtf8,
    /// The command needs a display name first.
    #[error("pick a display name first: type it, or /resume TOKEN")]
    NotLoggedIn,
    /// `/resume` (or a second login) on a connection that is already logged in.
    #[error("already logged in as {0}; reconnect to use another name")]
    AlreadyLoggedIn(String),
    /// `/nick` after login: the engine has no rename.
    #[error("renaming is not supported; reconnect to use another name")]
    RenameUnsupported,
}

impl TcpError {
    /// The stable machine-readable code, e.g. `unknown_command` or the engine's
    /// `name_taken`.
    pub fn code(&self) -> &'static str {
        match self {
            TcpError::Chat(e) => e.code(),
            TcpError::UnknownCommand(_) => "unknown_command",
            TcpError::Usage(_) => "usage",
            TcpError::LineTooLong(_) => "line_too_long",
            TcpError::InvalidUtf8 => "invalid_utf8",
            TcpError::NotLoggedIn => "not_logged_in",
            TcpError::AlreadyLoggedIn(_) => "already_logged_in",
            TcpError::RenameUnsupported => "rename_unsupported",
        }
    }
}
