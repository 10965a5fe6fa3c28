//! IRCv3 capabilities: the ones this server offers (`CAP LS`), and the set one client
//! enabled (`CAP REQ`). Pure data; the `CAP` command itself is in `dispatch/register.rs`,
//! and what each capability changes is in `render.rs` and the dispatcher.

/// One capability this server offers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cap {
    /// `server-time`: every message carries `@time=` (history replays too).
    ServerTime,
    /// `message-tags`: `@msgid=` on messages, `TAGMSG` (typing notices both ways).
    MessageTags,
    /// `echo-message`: the client's own messages come back to it, with their id and time.
    EchoMessage,
    /// `batch`: history (on join and from `CHATHISTORY`) comes in a `chathistory` batch.
    Batch,
    /// `draft/chathistory`: `CHATHISTORY LATEST/BEFORE/AFTER` by msgid or timestamp.
    ChatHistory,
    /// `draft/message-redaction`: deletions are `REDACT`, and `REDACT` deletes.
    Redaction,
}

impl Cap {
    /// Every capability, in the order `CAP LS` lists them.
    pub const ALL: [Cap; 6] = [
        Cap::ServerTime,
        Cap::MessageTags,
        Cap::EchoMessage,
        Cap::Batch,
        Cap::ChatHistory,
        Cap::Redaction,
    ];

    /// The capability's name on the wire.
    pub fn name(self) -> &'static str {
        match self {
            Cap::ServerTime => "server-time",
            Cap::MessageTags => "message-tags",
            Cap::EchoMessage => "echo-message",
            Cap::Batch => "batch",
            Cap::ChatHistory => "draft/chathistory",
            Cap::Redaction => "draft/message-redaction",
        }
    }

    fn bit(self) -> u8 {
        1 << (self as u8)
    }

    fn named(name: &str) -> Option<Cap> {
        Cap::ALL
            .into_iter()
            .find(|c| c.name().eq_ignore_ascii_case(name))
    }
}

/// The capabilities one client has enabled.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Caps(u8);

impl Caps {
    /// Whether `cap` is enabled.
    pub fn has(self, cap: Cap) -> bool {
        self.0 & cap.bit() != 0
    }

    /// The `CAP LS` list: every capability offered.
    pub fn offered() -> String {
        Cap::ALL.map(Cap::name).join(" ")
    }

    /// The `CAP LIST` list: the enabled ones.
    pub fn list(self) -> String {
        Cap::ALL
            .into_iter()
            .filter(|&c| self.has(c))
            .map(Cap::name)
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// Applies a `CAP REQ` list (`-name` disables): all of it, or nothing when one name is
    /// not offered (the client then gets `NAK`). Returns whether it was applied.
    pub fn request(&mut self, list: &str) -> bool {
        let mut next = *self;
        for word in list.split_whitespace() {
            let (off, name) = match word.strip_prefix('-') {
                Some(name) => (true, name),
                None => (false, word),
            };
            let Some(cap) = Cap::named(name) else {
                return false;
            };
            if off {
                next.0 &= !cap.bit();
            } else {
                next.0 |= cap.bit();
            }
        }
        *self = next;
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_are_all_or_nothing() {
        let mut caps = Caps::default();
        assert!(caps.request("server-time echo-message"));
        assert!(caps.has(Cap::ServerTime) && caps.has(Cap::EchoMessage));
        assert!(!caps.request("batch sasl"));
        assert!(
            !caps.has(Cap::Batch),
            "nothing of a refused request applies"
        );
        assert!(caps.request("-echo-message DRAFT/CHATHISTORY"));
        assert_eq!(caps.list(), "server-time draft/chathistory");
        assert!(Caps::offered().contains("draft/message-redaction"));
    }
}
