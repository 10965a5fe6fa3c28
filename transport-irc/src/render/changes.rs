//! How edits and reactions look on IRC, which has no standard for either: an edit is a
//! NOTICE from the message's author to its room, the new text led by `[edited MSGID]`
//! (split to fit like a message); a reaction change is a server NOTICE listing the
//! message's counts, `[reactions] message MSGID: 👍 2, ❤️ 1` (`none` when none is left).
//! Called by [`View::event`](super::View::event) for live events only; it decides
//! nothing, it only formats.

use chat_core::{ChatMessage, Room};

use super::{message_lines, msgid, room_target, View};

impl View {
    /// The NOTICE lines of an edit: the author's new text, led by `[edited MSGID] `.
    pub(super) fn edited(&self, message: &ChatMessage, out: &mut Vec<u8>) {
        let lead = format!("[edited {}] ", msgid(message));
        for line in message_lines(message, "NOTICE", &lead, &[], &[]) {
            out.extend_from_slice(line.to_string().as_bytes());
        }
    }

    /// The server NOTICE with a message's reaction counts now.
    pub(super) fn reacted(&self, message: &ChatMessage, out: &mut Vec<u8>) {
        let counts: Vec<String> = message
            .reactions
            .iter()
            .map(|(emoji, users)| format!("{emoji} {}", users.len()))
            .collect();
        let counts = if counts.is_empty() {
            "none".to_owned()
        } else {
            counts.join(", ")
        };
        // A channel's notice goes to the channel; a private one to this client's nick, as
        // a notice to the peer would read as sent to them.
        let to = match &message.room {
            Room::Channel(_) => room_target(&message.room, self.me),
            _ => self.nick.clone(),
        };
        let text = format!("[reactions] message {}: {counts}", msgid(message));
        out.extend_from_slice(self.server.notice(&to, &text).to_string().as_bytes());
    }
}
