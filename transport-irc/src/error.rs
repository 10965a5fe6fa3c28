//! `IrcError`: what the IRC transport itself can refuse, beside the engine's
//! [`ChatError`]. Every variant has a stable code (the engine's codes pass through
//! unchanged), shown in the text of the numeric or notice that carries it
//! (`403 alice #nowhere :no_such_channel: no channel named "nowhere"`); `reply.rs` picks
//! the numeric.
//!
//! Built by `dispatch/` and `connection.rs`. It carries nothing secret.

use chat_core::ChatError;

/// An error shown to an IRC client.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum IrcError {
    /// The engine refused the request; its code is passed on unchanged.
    #[error(transparent)]
    Chat(#[from] ChatError),
    /// A command this server does not know (421). Never posted as chat.
    #[error("unknown command {0}")]
    UnknownCommand(String),
    /// A command without the parameters it needs (461).
    #[error("{0} needs more parameters")]
    NeedMoreParams(String),
    /// A line irc-proto could not read as a message (400).
    #[error("cannot read this line as an IRC message: {0}")]
    InvalidMessage(String),
    /// A command that needs registration first (451).
    #[error("register first: NICK and USER (and CAP END when negotiating)")]
    NotRegistered,
    /// `USER` or `PASS` after registration (462).
    #[error("you are already registered")]
    AlreadyRegistered,
    /// `NICK` without a nick (431).
    #[error("no nickname given")]
    NoNicknameGiven,
    /// A nick that is not the mapping of any display name (432).
    #[error("erroneous nickname: {0}")]
    ErroneousNickname(String),
    /// `NICK` after registration: the engine has no rename (400).
    #[error("renaming is not supported; reconnect to use another name")]
    RenameUnsupported,
    /// A line longer than IRC allows (417); it was dropped.
    #[error("input line too long: at most 512 bytes, tags excluded, and 8191 of tags")]
    LineTooLong,
    /// A line that was not UTF-8 (the server is `UTF8ONLY`); it was dropped.
    #[error("the line was not valid UTF-8 and was dropped")]
    InvalidUtf8,
    /// A CTCP request other than ACTION (400): other users may be on the web.
    #[error("CTCP {0} is not supported here; only ACTION (/me) is")]
    UnsupportedCtcp(String),
    /// `PRIVMSG` or `NOTICE` without a target (411).
    #[error("no recipient given ({0})")]
    NoRecipient(String),
    /// More than one target in `PRIVMSG` or `NOTICE` (407).
    #[error("one target per message (TARGMAX)")]
    TooManyTargets,
    /// A nick that is in none of the client's channels, for WHOIS (401).
    #[error("{0} is in none of your channels")]
    NoSuchNick(String),
    /// A mode change: nobody can change modes here (482, 501).
    #[error("modes cannot be changed here; channels are +nt and users +i")]
    ModesUnsupported,
    /// A mode query or change about another user (502).
    #[error("you can only see your own user modes")]
    UsersDontMatch,
    /// Setting a topic: channels have none here (482).
    #[error("channels have no topic here")]
    TopicUnsupported,
    /// A `CHATHISTORY` or `REDACT` request that is malformed (`FAIL ... INVALID_PARAMS`).
    #[error("{0}")]
    InvalidParams(String),
    /// A msgid that is not one of this room's (`FAIL ... INVALID_MSGREFID`/`UNKNOWN_MSGID`).
    #[error("{0} is not a message id of this conversation")]
    UnknownMsgid(String),
}

impl IrcError {
    /// The stable machine-readable code, e.g. `unknown_command` or the engine's
    /// `name_taken`.
    pub fn code(&self) -> &'static str {
        match self {
            IrcError::Chat(e) => e.code(),
            IrcError::UnknownCommand(_) => "unknown_command",
            IrcError::NeedMoreParams(_) => "need_more_params",
            IrcError::InvalidMessage(_) => "invalid_message",
            IrcError::NotRegistered => "not_registered",
            IrcError::AlreadyRegistered => "already_registered",
            IrcError::NoNicknameGiven => "no_nickname_given",
            IrcError::ErroneousNickname(_) => "invalid_nick",
            IrcError::RenameUnsupported => "rename_unsupported",
            IrcError::LineTooLong => "line_too_long",
            IrcError::InvalidUtf8 => "invalid_utf8",
            IrcError::UnsupportedCtcp(_) => "unsupported_ctcp",
            IrcError::NoRecipient(_) => "no_recipient",
            IrcError::TooManyTargets => "too_many_targets",
            IrcError::NoSuchNick(_) => "no_such_user",
            IrcError::ModesUnsupported => "modes_unsupported",
            IrcError::UsersDontMatch => "users_dont_match",
            IrcError::TopicUnsupported => "topic_unsupported",
            IrcError::InvalidParams(_) => "invalid_params",
            IrcError::UnknownMsgid(_) => "no_such_message",
        }
    }

    /// `code: message`, the text every refusal carries.
    pub fn text(&self) -> String {
        format!("{}: {self}", self.code())
    }
}
