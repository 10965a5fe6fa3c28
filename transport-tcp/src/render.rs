//! Rendering: engine events, replies and errors to output lines. Owns the output format of
//! the line protocol (documented in `docs/tcp.md`): one line per event, each starting
//! with a fixed prefix per kind, so that scripts can `grep` them.
//!
//! | prefix        | kind                                                   |
//! |---------------|--------------------------------------------------------|
//! | `[HH:MM:SS] #`| a channel message: `[14:03:22] #general <alice> hello (id 42)` |
//! | `[HH:MM:SS] @`| a private message, labelled with the other user       |
//! | `- `          | a deletion: `- #general message 42 deleted`            |
//! | `~ `          | an edit: `~ #general <alice> hello (id 42, edited)`    |
//! | `& `          | reactions: `& #general message 42: 👍 2, ❤️ 1` (`none` when none is left) |
//! | `* `          | presence: `* #general alice joined` (one line per change of a batch); a large room's counts: `* #general 15000 members, 9876 online` |
//! | `+ `          | a channel was created: `+ #rust created`              |
//! | `% `          | a file the message just shown carries: `% #general 42 cat.png (68 B) http://host/files/ID` |
//! | `^ `          | the message just shown mentions you: `^ #general 42 alice mentioned you` |
//! | `= `          | a reply to the client's own command                   |
//! | `! error `    | an error: `! error <code>: <message>`                 |
//! | `! closed `   | the server closes the connection: `! closed <code>: <why>` |
//!
//! Called by `dispatch.rs` (answers) and `connection.rs` (events). Every line returned here
//! has gone through [`sanitize`]: no control character, escape sequence or line break from
//! anyone's text ever reaches the client's terminal raw. Lines carry no terminator; the writer adds `\r\n`.

use chat_core::{ChatMessage, Event, PresenceBatch, PresenceChange, Room, UserId};

use crate::error::TcpError;

/// Makes text safe for a terminal, on one line: C0 controls, DEL and ESC become caret
/// notation (`^[`, `^M`, `^?`), a newline becomes the two characters `\n`, C1 controls and
/// the invisible Unicode format characters that reorder or hide text (bidi overrides,
/// zero-width) become `\u{..}`. Tab is kept.
pub fn sanitize(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '\t' => out.push('\t'),
            '\n' => out.push_str("\\n"),
            '\u{0}'..='\u{1f}' => {
                out.push('^');
                out.push(char::from(c as u8 + 0x40));
            }
            '\u{7f}' => out.push_str("^?"),
            '\u{80}'..='\u{9f}'
            | '\u{200b}'..='\u{200f}'
            | '\u{2028}'..='\u{202e}'
            | '\u{2060}'..='\u{2069}'
            | '\u{feff}' => out.push_str(&format!("\\u{{{:x}}}", c as u32)),
            _ => out.push(c),
        }
    }
    out
}

/// How `me` sees a room in output: `#general`, or `@alice` for the private conversation
/// with alice.
pub fn room_label(room: &Room, me: UserId) -> String {
    match room {
        Room::Channel(name) => format!("#{name}"),
        // A private conversation, or a kind of room this version does not know: the
        // engine's own label.
        _ => room.label_for(me),
    }
}

/// A message line: `[HH:MM:SS] #general <alice> hello (id 42)` (UTC time of the message);
/// an edited one ends `(id 42, edited)`, one with reactions `(id 42; 👍 2, ❤️ 1)`.
pub fn message(message: &ChatMessage, me: UserId) -> String {
    sanitize(&format!(
        "[{}] {} <{}> {} ({})",
        message.sent_at.format("%H:%M:%S"),
        room_label(&message.room, me),
        message.author.name,
        message.text,
        id_notes(message)
    ))
}

/// The lines that follow a message carrying files, one per file:
/// `% #general 42 cat.png (68 B) http://host/files/ID`, the URL being `files_url` with the
/// id appended (the id alone without it).
pub fn files(message: &ChatMessage, me: UserId, files_url: Option<&str>) -> Vec<String> {
    message
        .attachments
        .iter()
        .map(|file| {
            sanitize(&format!(
                "% {} {} {} ({}) {}{}",
                room_label(&message.room, me),
                message.id,
                file.name,
                file.size_text(),
                files_url.unwrap_or_default(),
                file.id
            ))
        })
        .collect()
}

/// The line that follows a message mentioning the reader (`@name`):
/// `^ #general 42 alice mentioned you`.
pub fn mention(message: &ChatMessage, me: UserId) -> String {
    sanitize(&format!(
        "^ {} {} {} mentioned you",
        room_label(&message.room, me),
        message.id,
        message.author.name
    ))
}

/// `id 42`, then `, edited` and `; 👍 2, ❤️ 1` when they apply.
fn id_notes(message: &ChatMessage) -> String {
    let mut notes = format!("id {}", message.id);
    if message.edited_at.is_some() {
        notes.push_str(", edited");
    }
    if !message.reactions.is_empty() {
        notes.push_str("; ");
        notes.push_str(&reaction_counts(message));
    }
    notes
}

/// `👍 2, ❤️ 1`, or `none`.
fn reaction_counts(message: &ChatMessage) -> String {
    if message.reactions.is_empty() {
        return "none".to_owned();
    }
    let counts: Vec<String> = message
        .reactions
        .iter()
        .map(|(emoji, users)| format!("{emoji} {}", users.len()))
        .collect();
    counts.join(", ")
}

/// The lines of a presence batch, one per change, oldest first. In a private
/// conversation only the peer coming and going is shown: the room has no join or part of
/// its own.
pub fn presence(batch: &PresenceBatch, me: UserId) -> Vec<String> {
    let room = &batch.room;
    let direct = matches!(room, Room::Direct(_));
    batch
        .changes
        .iter()
        .filter(|(user, change)| {
            !direct
                || (user.id != me
                    && matches!(change, PresenceChange::Online | PresenceChange::Offline))
        })
        .map(|(user, change)| {
            sanitize(&format!(
                "* {} {} {}",
                room_label(room, me),
                user.name,
                change.as_str()
            ))
        })
        .collect()
}

/// The line for an event, or `None` for events the TCP protocol does not show: typing
/// notices, and presence batches (their lines come from [`presence`]).
pub fn event(event: &Event, me: UserId) -> Option<String> {
    let line = match event {
        Event::Posted(m) => return Some(message(m, me)),
        Event::Deleted { room, id } => format!("- {} message {id} deleted", room_label(room, me)),
        Event::Edited(m) => format!(
            "~ {} <{}> {} ({})",
            room_label(&m.room, me),
            m.author.name,
            m.text,
            id_notes(m)
        ),
        Event::Reacted(m) => format!(
            "& {} message {}: {}",
            room_label(&m.room, me),
            m.id,
            reaction_counts(m)
        ),
        Event::ChannelCreated(info) => format!("+ #{} created", info.name),
        Event::RoomCounts {
            room,
            members,
            online,
        } => format!(
            "* {} {members} members, {online} online",
            room_label(room, me)
        ),
        Event::Typing { .. } | Event::PresenceBatch(_) => return None,
        Event::Gap { room } => format!(
            "! gap {}: some messages could not be delivered; /join {} shows the latest",
            room_label(room, me),
            room_label(room, me)
        ),
        Event::Disconnected(reason) => return Some(closed(reason.code(), &reason.to_string())),
        // An event this version does not know how to show.
        _ => return None,
    };
    Some(sanitize(&line))
}

/// A reply line: `= <text>`.
pub fn reply(text: &str) -> String {
    sanitize(&format!("= {text}"))
}

/// An error line: `! error <code>: <message>`.
pub fn error(error: &TcpError) -> String {
    sanitize(&format!("! error {}: {error}", error.code()))
}

/// The last line before the server closes the connection: `! closed <code>: <why>`.
pub fn closed(code: &str, why: &str) -> String {
    sanitize(&format!("! closed {code}: {why}"))
}

/// The answer to an IRC client that connected to the line port, in IRC's own `ERROR`
/// form so that the client shows it: where IRC is served, if anywhere.
pub fn not_irc(irc_address: Option<&str>) -> String {
    let line = match irc_address {
        Some(addr) => {
            format!("ERROR :this is the plain-text port; IRC clients connect to {addr}")
        }
        None => "ERROR :this is the plain-text port; this server has no IRC port".to_owned(),
    };
    sanitize(&line)
}

/// The greeting, sent on connect: with the store's epoch, so that someone who kept a token
/// can tell it may belong to a store that no longer exists.
pub fn greeting(epoch: &str) -> Vec<String> {
    vec![
        "= welcome to the chat (type /help for the commands)".to_owned(),
        sanitize(&format!(
            "= server epoch {epoch} (if this changed since you last connected, your old \
             ids and token may not work)"
        )),
        "= pick a display name: type it and press enter (or /resume TOKEN to come back)".to_owned(),
    ]
}

/// The `/help` text.
pub fn help() -> Vec<String> {
    [
        "= commands:",
        "=   /help               this text",
        "=   /nick NAME          pick your display name (before login; a plain line does too)",
        "=   /resume TOKEN       log in as the user the token was given to",
        "=   /list               list the channels",
        "=   /create NAME        create a channel",
        "=   /join NAME          show a channel's history and follow it (/join @USER: a private conversation)",
        "=   /part [NAME]        leave a channel (default: the current one)",
        "=   /who [NAME]         members of a channel, a page at a time (default: the current one; /members too)",
        "=   /more               the next page of members after /who",
        "=   /msg USER TEXT      send a private message",
        "=   /delete [ROOM] ID   delete one of your messages (default room: the current one)",
        "=   /edit [ROOM] ID TEXT  replace the text of one of your messages",
        "=   /react [ROOM] ID EMOJI  add or take back a reaction: +1 heart joy tada open_mouth eyes (or the emoji)",
        "=   /quit               disconnect (come back with /resume TOKEN)",
        "=   /logout             log out everywhere: your token stops working, your name is free",
        "= any other line is a message to the current channel (start it with // to post a /)",
    ]
    .map(String::from)
    .to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;
    use chat_core::UserRef;
    use chrono::{TimeZone, Utc};
    use std::sync::Arc;

    fn user(id: u64, name: &str) -> UserRef {
        UserRef {
            id: UserId(id),
            name: Arc::from(name),
        }
    }

    fn direct_message(text: &str) -> ChatMessage {
        ChatMessage::new(
            7,
            Room::Direct([user(1, "alice"), user(2, "bob")]),
            user(1, "alice"),
            text.into(),
            Utc.with_ymd_and_hms(2024, 5, 1, 14, 3, 22).unwrap(),
        )
    }

    #[test]
    fn each_file_is_a_line_with_its_name_size_and_link() {
        use chat_core::{Attachment, FileId, FileKind};
        let id = FileId::parse("0123456789abcdef0123456789abcdef").unwrap();
        let cat = Attachment::new(id, "cat.png", 2048, FileKind::Png);
        let message = direct_message("").with_attachments(vec![cat]);
        assert_eq!(
            files(&message, UserId(2), Some("http://h/files/")),
            ["% @alice 7 cat.png (2.0 KiB) http://h/files/0123456789abcdef0123456789abcdef"]
        );
        assert_eq!(
            files(&message, UserId(2), None),
            ["% @alice 7 cat.png (2.0 KiB) 0123456789abcdef0123456789abcdef"]
        );
        assert!(files(&direct_message("hi"), UserId(2), None).is_empty());
    }

    #[test]
    fn sanitize_escapes_controls() {
        assert_eq!(sanitize("a\u{1b}[31mred"), "a^[[31mred");
        assert_eq!(sanitize("x\r\ny\u{7}\u{7f}"), "x^M\\ny^G^?");
        assert_eq!(
            sanitize("\u{9b}31m \u{202e}evil"),
            "\\u{9b}31m \\u{202e}evil"
        );
        assert_eq!(sanitize("tab\there, é ✓"), "tab\there, é ✓");
        assert!(!sanitize("\u{0}\u{1f}\u{85}").chars().any(char::is_control));
    }

    #[test]
    fn private_messages_are_labelled_with_the_peer() {
        let m = direct_message("hi\nthere");
        assert_eq!(
            message(&m, UserId(1)),
            "[14:03:22] @bob <alice> hi\\nthere (id 7)"
        );
        assert_eq!(
            message(&m, UserId(2)),
            "[14:03:22] @alice <alice> hi\\nthere (id 7)"
        );
    }

    #[test]
    fn private_rooms_show_only_the_peer_online_offline_and_typing_is_hidden() {
        let room = Room::Direct([user(1, "alice"), user(2, "bob")]);
        let changes = vec![
            (user(1, "alice"), PresenceChange::Joined),
            (user(1, "alice"), PresenceChange::Online),
        ];
        let own = PresenceBatch::new(room.clone(), changes, 2, 2);
        assert!(presence(&own, UserId(1)).is_empty());
        assert_eq!(presence(&own, UserId(2)), ["* @alice alice online"]);
        let typing = Event::Typing {
            room,
            user: user(2, "bob"),
        };
        assert_eq!(event(&typing, UserId(1)), None);
    }

    #[test]
    fn a_batch_is_a_line_per_change_and_counts_one_line() {
        let general = Room::Channel(
            chat_core::validate::channel_name("general", &chat_core::Limits::default()).unwrap(),
        );
        let changes = vec![
            (user(2, "bob"), PresenceChange::Joined),
            (user(3, "c\u{1b}[31m"), PresenceChange::Offline),
        ];
        let batch = PresenceBatch::new(general.clone(), changes, 3, 2);
        assert_eq!(
            presence(&batch, UserId(1)),
            ["* #general bob joined", "* #general c^[[31m offline"]
        );
        let counts = Event::RoomCounts {
            room: general,
            members: 15_000,
            online: 9_876,
        };
        assert_eq!(
            event(&counts, UserId(1)).as_deref(),
            Some("* #general 15000 members, 9876 online")
        );
    }

    #[test]
    fn errors_carry_the_engine_code() {
        let e = TcpError::from(chat_core::ChatError::NotAuthor(3));
        assert_eq!(
            error(&e),
            "! error not_author: only its author can delete message 3"
        );
    }
}
