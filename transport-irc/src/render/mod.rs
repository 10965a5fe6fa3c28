//! Rendering: engine messages and events to IRC lines, as one client sees them.
//!
//! Owns how chat looks on IRC: a user's prefix (`nick!u42@flack`), message ids
//! (`msgid`), `@time` tags, long and multi-line messages split into several lines that
//! each fit in 512 bytes, `/me` as CTCP ACTION, history as NOTICEs with an `[HH:MM]`
//! prefix for clients without `server-time`, presence as JOIN/PART, deletions as `REDACT`
//! or a notice, edits and reaction counts as notices (`changes.rs`). Called by the dispatcher (join replies, history) and `connection.rs`
//! (live events, through [`View`]). It decides nothing about chat; it only formats.
//!
//! A live message's lines are the same for every recipient with the same capabilities
//! (a private message names the recipient the same way for both sides), so they are
//! encoded once per message and capability set and shared ([`ChatMessage::encoded`]).

mod changes;

use std::sync::{Arc, OnceLock};

use chat_core::{ChatMessage, Event, MessageId, PresenceChange, Room, UserId, UserRef};
use irc_proto::message::Tag;
use irc_proto::{Command, Message, Prefix};

use crate::caps::{Cap, Caps};
use crate::config::MAX_LINE_BYTES;
use crate::nick;
use crate::reply::Server;

/// The host part of every user's prefix: users have no host to show.
pub const USER_HOST: &str = "flack";

/// What a message starting with this is on IRC: a CTCP ACTION (`/me waves`).
const ME: &str = "/me ";

/// A user's prefix: `nick!u<id>@flack`.
pub fn prefix_of(user: &UserRef) -> Prefix {
    Prefix::Nickname(
        nick::encode(&user.name),
        format!("u{}", user.id.0),
        USER_HOST.into(),
    )
}

/// The `msgid` of a message: `KEY.ID` in a channel (`general.42`), `A+B.ID` in the
/// private conversation of users `A` < `B`. Unique on the server, the same for everyone.
pub fn msgid(message: &ChatMessage) -> String {
    format!("{}.{}", room_tag(&message.room), message.id)
}

fn room_tag(room: &Room) -> String {
    match room {
        Room::Channel(name) => name.key().to_owned(),
        Room::Direct([a, b]) => format!("{}+{}", a.id.0, b.id.0),
        _ => "room".into(),
    }
}

/// The message id a `msgid` of `room` names; a bare number is read as an id too.
pub fn parse_msgid(room: &Room, msgid: &str) -> Option<MessageId> {
    match msgid.rsplit_once('.') {
        Some((tag, id)) if tag == room_tag(room) => id.parse().ok(),
        Some(_) => None,
        None => msgid.parse().ok(),
    }
}

/// The message id a `msgid` names when the client names the room as `target`
/// (`#general` or a nick), without the room at hand: a channel's msgid must carry that
/// channel's key; a private conversation's is taken by its id.
pub fn msgid_for_target(target: &str, msgid: &str) -> Option<MessageId> {
    match msgid.rsplit_once('.') {
        Some((tag, id)) => {
            let channel = target.strip_prefix('#');
            let fits = match channel {
                Some(name) => tag.eq_ignore_ascii_case(name),
                None => tag.contains('+'),
            };
            fits.then(|| id.parse().ok()).flatten()
        }
        None => msgid.parse().ok(),
    }
}

/// The `time` tag's value: `2024-05-01T14:03:22.123Z`.
pub fn time_of(message: &ChatMessage) -> String {
    message.sent_at.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
}

/// Where a message goes on IRC: `#channel`, or the nick of the participant who did not
/// write it (what `PRIVMSG nick` would have named).
pub fn target_of(message: &ChatMessage) -> String {
    match &message.room {
        Room::Channel(name) => format!("#{name}"),
        room => match room.peer_of(message.author.id) {
            Some(peer) => nick::encode(&peer.name),
            None => "*".into(),
        },
    }
}

/// How `me` names a room: `#channel`, or the other user's nick.
pub fn room_target(room: &Room, me: UserId) -> String {
    match room {
        Room::Channel(name) => format!("#{name}"),
        room => room
            .peer_of(me)
            .map(|p| nick::encode(&p.name))
            .unwrap_or_else(|| "*".into()),
    }
}

/// The lines of one message: `command` (PRIVMSG or NOTICE) from its author to its target,
/// each line of its text on its own IRC line, each cut to fit 512 bytes (tags aside),
/// `/me` as ACTION, `lead` (an `[HH:MM] ` time) before each. `tags` go on the first
/// line; `every_line` tags (time, batch) on all of them.
pub fn message_lines(
    message: &ChatMessage,
    command: &str,
    lead: &str,
    first_tags: &[Tag],
    every_line: &[Tag],
) -> Vec<Message> {
    let prefix = prefix_of(&message.author);
    let target = target_of(message);
    let (text, action) = match message.text.strip_prefix(ME) {
        Some(rest) => (rest, true),
        None => (message.text.as_str(), false),
    };
    let overhead = format!(":{prefix} {command} {target} :").len()
        + 2
        + lead.len()
        + if action { 9 } else { 0 };
    let room = MAX_LINE_BYTES.saturating_sub(overhead).max(16);
    let mut out = Vec::new();
    for piece in text.split('\n').flat_map(|l| chunks(l, room)) {
        let body = if action {
            format!("\u{1}ACTION {lead}{piece}\u{1}")
        } else {
            format!("{lead}{piece}")
        };
        let mut tags: Vec<Tag> = if out.is_empty() {
            first_tags.to_vec()
        } else {
            Vec::new()
        };
        tags.extend_from_slice(every_line);
        let command = if command == "NOTICE" {
            Command::NOTICE(target.clone(), body)
        } else {
            Command::PRIVMSG(target.clone(), body)
        };
        out.push(Message {
            tags: (!tags.is_empty()).then_some(tags),
            prefix: Some(prefix.clone()),
            command,
        });
    }
    out
}

/// The lines that follow a message carrying files, one per file, from its author to its
/// target: `[file] cat.png (68 B) http://host/files/ID` (the URL is `files_url` with the
/// id appended; the id alone without it), each with the `every_line` tags.
pub fn file_lines(
    message: &ChatMessage,
    files_url: Option<&str>,
    every_line: &[Tag],
) -> Vec<Message> {
    let prefix = prefix_of(&message.author);
    let target = target_of(message);
    message
        .attachments
        .iter()
        .map(|file| {
            let text = format!(
                "[file] {} ({}) {}{}",
                file.name.replace(['\r', '\n'], " "),
                file.size_text(),
                files_url.unwrap_or_default(),
                file.id
            );
            Message {
                tags: (!every_line.is_empty()).then(|| every_line.to_vec()),
                prefix: Some(prefix.clone()),
                command: Command::PRIVMSG(target.clone(), text),
            }
        })
        .collect()
}

/// Splits `line` into pieces of at most `max` bytes, at a space in the second half of a
/// piece when there is one, else at a character boundary. Blank pieces are dropped: IRC
/// has no empty message.
fn chunks(line: &str, max: usize) -> Vec<&str> {
    let mut out = Vec::new();
    let mut rest = line;
    while rest.len() > max {
        let mut cut = max;
        while !rest.is_char_boundary(cut) {
            cut -= 1;
        }
        if let Some(space) = rest[..cut].rfind(' ').filter(|&s| s > max / 2) {
            cut = space + 1;
        }
        out.push(&rest[..cut]);
        rest = &rest[cut..];
    }
    out.push(rest);
    out.retain(|p| !p.trim().is_empty());
    out
}

/// The tags of a message for a client with `caps`: `time` with `server-time`, `msgid`
/// with `message-tags`.
pub fn tags_for(message: &ChatMessage, caps: Caps) -> (Vec<Tag>, Vec<Tag>) {
    let mut first = Vec::new();
    let mut every = Vec::new();
    if caps.has(Cap::ServerTime) {
        every.push(Tag("time".into(), Some(time_of(message))));
    }
    if caps.has(Cap::MessageTags) {
        first.push(Tag("msgid".into(), Some(msgid(message))));
    }
    (first, every)
}

/// A message's live lines, encoded once per capability set for all recipients.
#[derive(Default)]
struct Shared([OnceLock<Box<[u8]>>; 4]);

/// Appends the live lines of `message` for a client with `caps` to `out`.
pub fn live(message: &ChatMessage, caps: Caps, files_url: Option<&str>, out: &mut Vec<u8>) {
    let variant =
        usize::from(caps.has(Cap::ServerTime)) | usize::from(caps.has(Cap::MessageTags)) << 1;
    let shared = message.encoded(Shared::default);
    let bytes = shared.0[variant].get_or_init(|| {
        let (first, every) = tags_for(message, caps);
        let mut lines = message_lines(message, "PRIVMSG", "", &first, &every);
        lines.extend(file_lines(message, files_url, &every));
        lines
            .iter()
            .map(|l| l.to_string())
            .collect::<String>()
            .into_bytes()
            .into_boxed_slice()
    });
    out.extend_from_slice(bytes);
}

/// The lines of a history message: with `server-time`, the live lines (tagged, in
/// `batch` when given); without, a NOTICE with the `[HH:MM]` it was sent at.
pub fn history(
    message: &ChatMessage,
    caps: Caps,
    batch: Option<&str>,
    files_url: Option<&str>,
) -> Vec<Message> {
    let (first, mut every) = tags_for(message, caps);
    if let Some(batch) = batch {
        every.push(Tag("batch".into(), Some(batch.to_owned())));
    }
    let mut lines = if caps.has(Cap::ServerTime) {
        message_lines(message, "PRIVMSG", "", &first, &every)
    } else {
        let lead = format!("[{}] ", message.sent_at.format("%H:%M"));
        message_lines(message, "NOTICE", &lead, &first, &every)
    };
    lines.extend(file_lines(message, files_url, &every));
    lines
}

/// One client's view for rendering live events: who it is and what it enabled.
#[derive(Debug, Clone)]
pub struct View {
    /// The client's user id.
    pub me: UserId,
    /// The client's nick.
    pub nick: String,
    /// Its capabilities.
    pub caps: Caps,
    /// The server, as the source of notices.
    pub server: Server,
    /// Where files are served (`IrcConfig::files_url`).
    pub files_url: Option<Arc<str>>,
}

impl View {
    /// Appends the lines for `event` (anything but a message, which [`live`] writes) to
    /// `out`; nothing for events IRC does not show (a channel created, one's own presence,
    /// presence in private conversations, typing without `message-tags`).
    pub fn event(&self, event: &Event, out: &mut Vec<u8>) {
        let mut push = |m: Message| out.extend_from_slice(m.to_string().as_bytes());
        match event {
            Event::Posted(message) => live(message, self.caps, self.files_url.as_deref(), out),
            Event::Deleted { room, id } => {
                let target = room_target(room, self.me);
                let msgid = format!("{}.{id}", room_tag(room));
                if self.caps.has(Cap::Redaction) {
                    push(
                        self.server
                            .message(Command::Raw("REDACT".into(), vec![target, msgid])),
                    );
                } else {
                    let to = if matches!(room, Room::Channel(_)) {
                        target.clone()
                    } else {
                        self.nick.clone()
                    };
                    push(self.server.notice(
                        &to,
                        &format!("[deleted] message {msgid} in {target} was deleted by its author"),
                    ));
                }
            }
            Event::Edited(message) => self.edited(message, out),
            Event::Reacted(message) => self.reacted(message, out),
            Event::PresenceBatch(batch) => {
                // Each change of the tick as IRC shows it: a JOIN or a PART.
                let Room::Channel(name) = &batch.room else {
                    return;
                };
                let channel = format!("#{name}");
                for (user, change) in &batch.changes {
                    if user.id == self.me {
                        continue;
                    }
                    let command = match change {
                        PresenceChange::Joined | PresenceChange::Online => {
                            Command::JOIN(channel.clone(), None, None)
                        }
                        PresenceChange::Left => Command::PART(channel.clone(), None),
                        _ => Command::PART(channel.clone(), Some("offline".into())),
                    };
                    push(Message {
                        tags: None,
                        prefix: Some(prefix_of(user)),
                        command,
                    });
                }
            }
            Event::Typing { room, user } => {
                if user.id == self.me || !self.caps.has(Cap::MessageTags) {
                    return;
                }
                let target = match room {
                    Room::Channel(name) => format!("#{name}"),
                    _ => self.nick.clone(),
                };
                push(Message {
                    tags: Some(vec![Tag("+typing".into(), Some("active".into()))]),
                    prefix: Some(prefix_of(user)),
                    command: Command::Raw("TAGMSG".into(), vec![target]),
                });
            }
            Event::Gap { room } => {
                let target = room_target(room, self.me);
                let to = if matches!(room, Room::Channel(_)) {
                    target.clone()
                } else {
                    self.nick.clone()
                };
                push(self.server.notice(
                    &to,
                    &format!("gap: some messages of {target} could not be delivered; CHATHISTORY LATEST {target} * 100 (or PART and JOIN) shows the latest"),
                ));
            }
            Event::Disconnected(reason) => {
                push(self.server.closing(reason.code(), &reason.to_string()));
            }
            // A channel created, and events this version does not know how to show.
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{TimeZone, Utc};
    use std::sync::Arc;

    fn user(id: u64, name: &str) -> UserRef {
        UserRef {
            id: UserId(id),
            name: Arc::from(name),
        }
    }

    fn direct(text: &str) -> ChatMessage {
        ChatMessage::new(
            7,
            Room::Direct([user(1, "Ann Lee"), user(2, "bob")]),
            user(1, "Ann Lee"),
            text.into(),
            Utc.with_ymd_and_hms(2024, 5, 1, 14, 3, 22).unwrap(),
        )
    }

    fn text(out: &[u8]) -> String {
        String::from_utf8(out.to_vec()).unwrap()
    }

    #[test]
    fn a_message_with_files_is_followed_by_a_line_per_file() {
        use chat_core::{Attachment, FileId, FileKind};
        let id = FileId::parse("0123456789abcdef0123456789abcdef").unwrap();
        let file = Attachment::new(id, "notes.pdf", 100, FileKind::Pdf);
        let message = direct("see this").with_attachments(vec![file]);
        let mut out = Vec::new();
        live(&message, Caps::default(), Some("http://h/files/"), &mut out);
        let lines: Vec<String> = text(&out).lines().map(str::to_owned).collect();
        assert_eq!(lines.len(), 2, "{lines:?}");
        assert!(lines[0].ends_with(":see this"), "{lines:?}");
        assert!(
            lines[1].ends_with(
                " :[file] notes.pdf (100 B) http://h/files/0123456789abcdef0123456789abcdef"
            ),
            "{lines:?}"
        );
        let history = history(&message, Caps::default(), None, None);
        assert!(history[1]
            .to_string()
            .contains("[file] notes.pdf (100 B) 0123"));
    }

    #[test]
    fn a_private_message_reads_the_same_for_both_sides() {
        let m = direct("hi bob");
        let mut out = Vec::new();
        live(&m, Caps::default(), None, &mut out);
        assert_eq!(text(&out), ":Ann\\20Lee!u1@flack PRIVMSG bob :hi bob\r\n");
        let mut caps = Caps::default();
        assert!(caps.request("server-time message-tags"));
        out.clear();
        live(&m, caps, None, &mut out);
        assert_eq!(
            text(&out),
            "@msgid=1+2.7;time=2024-05-01T14:03:22.000Z :Ann\\20Lee!u1@flack PRIVMSG bob :hi bob\r\n"
        );
        assert_eq!(parse_msgid(&m.room, "1+2.7"), Some(7));
        assert_eq!(parse_msgid(&m.room, "general.7"), None);
        assert_eq!(parse_msgid(&m.room, "7"), Some(7));
    }

    #[test]
    fn long_and_multi_line_messages_become_lines_that_fit() {
        let long = format!(
            "{}\nsecond line\n\n/me is not an action here",
            "word ".repeat(300)
        );
        let m = direct(&long);
        let lines = message_lines(&m, "PRIVMSG", "", &[], &[]);
        assert!(lines.len() >= 4, "{lines:?}");
        for l in &lines {
            let s = l.to_string();
            assert!(s.len() <= MAX_LINE_BYTES, "{} bytes: {s}", s.len());
            assert_eq!(s.matches("\r\n").count(), 1);
        }
        let joined: Vec<String> = lines
            .iter()
            .map(|l| match &l.command {
                Command::PRIVMSG(_, t) => t.clone(),
                _ => unreachable!(),
            })
            .collect();
        assert_eq!(joined.concat().matches("word").count(), 300);
        assert_eq!(joined[joined.len() - 2], "second line");

        let action = message_lines(&direct("/me waves"), "PRIVMSG", "", &[], &[]);
        assert_eq!(
            action[0].to_string(),
            ":Ann\\20Lee!u1@flack PRIVMSG bob :\u{1}ACTION waves\u{1}\r\n"
        );
    }

    #[test]
    fn history_without_server_time_is_a_notice_with_the_time() {
        let lines = history(&direct("earlier"), Caps::default(), None, None);
        assert_eq!(
            lines[0].to_string(),
            ":Ann\\20Lee!u1@flack NOTICE bob :[14:03] earlier\r\n"
        );
    }
}
