//! Reactions: the small fixed set of emoji a user may put on a message ([`Emoji`]), and
//! who put which on one message ([`Reactions`]).
//!
//! Used by the model (a [`ChatMessage`](crate::ChatMessage) carries its reactions), the
//! session (which parses what a client sent), the brokers (which toggle and store them)
//! and the transports (which show them). Plain data: it must not know about rooms or
//! sessions.
//!
//! The set is fixed so that a message's reactions stay small and every client can show
//! them: six emoji, each also known by a short name for clients that cannot type it (a
//! terminal on the line protocol).
//!
//! | emoji | name |
//! | --- | --- |
//! | 👍 | `+1` |
//! | ❤️ | `heart` |
//! | 😂 | `joy` |
//! | 🎉 | `tada` |
//! | 😮 | `open_mouth` |
//! | 👀 | `eyes` |

use std::fmt;

use crate::ids::UserId;

/// The set: each emoji as it is stored and shown, and its short name.
const SET: [(&str, &str); 6] = [
    ("\u{1F44D}", "+1"),
    ("\u{2764}\u{FE0F}", "heart"),
    ("\u{1F602}", "joy"),
    ("\u{1F389}", "tada"),
    ("\u{1F62E}", "open_mouth"),
    ("\u{1F440}", "eyes"),
];

/// One emoji of the reaction set (see the module's table).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Emoji(u8);

impl Emoji {
    /// Every emoji of the set, in the order clients show them.
    pub fn all() -> impl Iterator<Item = Emoji> {
        (0..SET.len() as u8).map(Emoji)
    }

    /// The emoji `text` names: the emoji itself (❤ with or without its emoji
    /// presentation selector), or its short name with or without colons (`heart`,
    /// `:heart:`), case-insensitively. `None` for anything outside the set.
    pub fn parse(text: &str) -> Option<Emoji> {
        let text = text.trim();
        let name = text
            .strip_prefix(':')
            .and_then(|t| t.strip_suffix(':'))
            .unwrap_or(text);
        let bare = text.trim_end_matches('\u{FE0F}');
        SET.iter()
            .position(|(emoji, short)| {
                emoji.trim_end_matches('\u{FE0F}') == bare || short.eq_ignore_ascii_case(name)
            })
            .map(|i| Emoji(i as u8))
    }

    /// The emoji as stored and shown, e.g. `👍`.
    pub fn as_str(self) -> &'static str {
        SET[usize::from(self.0)].0
    }

    /// Its short name, e.g. `+1`.
    pub fn name(self) -> &'static str {
        SET[usize::from(self.0)].1
    }

    /// The set as one line for error texts and help: `👍 (+1), ❤️ (heart), ...`.
    pub fn describe_set() -> String {
        Emoji::all()
            .map(|e| format!("{} ({})", e.as_str(), e.name()))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

impl fmt::Display for Emoji {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Who reacted with which emoji to one message: per emoji, in the set's order, the users
/// in the order they reacted. An emoji nobody uses is not listed. Bounded by the set's size
/// times the users who can see the message.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Reactions(Vec<(Emoji, Vec<UserId>)>);

impl Reactions {
    /// Reactions from any list of entries: sorted by emoji, each user once per emoji (the
    /// first time), emoji without users dropped.
    pub fn from_entries(entries: impl IntoIterator<Item = (Emoji, Vec<UserId>)>) -> Reactions {
        let mut reactions = Reactions::default();
        for (emoji, users) in entries {
            for user in users {
                if !reactions.users(emoji).contains(&user) {
                    reactions.toggle(emoji, user);
                }
            }
        }
        reactions
    }

    /// Whether nobody reacted.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Each emoji used, in the set's order, with who used it.
    pub fn iter(&self) -> impl Iterator<Item = (Emoji, &[UserId])> {
        self.0.iter().map(|(e, users)| (*e, users.as_slice()))
    }

    /// Who reacted with `emoji`, in the order they did.
    pub fn users(&self, emoji: Emoji) -> &[UserId] {
        self.0
            .iter()
            .find(|(e, _)| *e == emoji)
            .map_or(&[], |(_, users)| users.as_slice())
    }

    /// Adds `user`'s `emoji`, or takes it away if it was there; returns whether it is
    /// there now.
    pub fn toggle(&mut self, emoji: Emoji, user: UserId) -> bool {
        let at = self.0.partition_point(|(e, _)| *e < emoji);
        match self.0.get_mut(at) {
            Some((e, users)) if *e == emoji => {
                if let Some(i) = users.iter().position(|u| *u == user) {
                    users.remove(i);
                    if users.is_empty() {
                        self.0.remove(at);
                    }
                    false
                } else {
                    users.push(user);
                    true
                }
            }
            _ => {
                self.0.insert(at, (emoji, vec![user]));
                true
            }
        }
    }

    /// The bytes these reactions keep alive beyond their handle.
    pub(crate) fn cost(&self) -> usize {
        self.0
            .iter()
            .map(|(_, users)| std::mem::size_of::<(Emoji, Vec<UserId>)>() + users.len() * 8)
            .sum()
    }

    /// A compact text form for stores: `EMOJI=ID,ID;EMOJI=ID`, empty when nobody reacted.
    #[cfg_attr(not(feature = "sqlite"), allow(dead_code))]
    pub(crate) fn to_text(&self) -> String {
        self.0
            .iter()
            .map(|(emoji, users)| {
                let ids: Vec<String> = users.iter().map(|u| u.0.to_string()).collect();
                format!("{}={}", emoji.as_str(), ids.join(","))
            })
            .collect::<Vec<_>>()
            .join(";")
    }

    /// Reads what [`Reactions::to_text`] wrote, skipping any part it does not understand.
    #[cfg_attr(not(feature = "sqlite"), allow(dead_code))]
    pub(crate) fn from_text(text: &str) -> Reactions {
        let entries = text.split(';').filter_map(|part| {
            let (emoji, ids) = part.split_once('=')?;
            let users = ids.split(',').filter_map(|id| id.parse().ok()).map(UserId);
            Some((Emoji::parse(emoji)?, users.collect()))
        });
        Reactions::from_entries(entries)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_set_parses_by_emoji_and_by_name_and_nothing_else() {
        for emoji in Emoji::all() {
            assert_eq!(Emoji::parse(emoji.as_str()), Some(emoji));
            assert_eq!(Emoji::parse(emoji.name()), Some(emoji));
            assert_eq!(Emoji::parse(&format!(":{}:", emoji.name())), Some(emoji));
        }
        assert_eq!(Emoji::parse("\u{2764}").map(Emoji::name), Some("heart"));
        assert_eq!(Emoji::parse("HEART").map(Emoji::name), Some("heart"));
        for outside in ["", "x", "\u{1F4A9}", "+2", "heart eyes", "\u{FE0F}"] {
            assert_eq!(Emoji::parse(outside), None, "{outside:?}");
        }
    }

    #[test]
    fn toggling_adds_then_removes_and_keeps_the_set_order() {
        let (heart, up) = (Emoji::parse("heart").unwrap(), Emoji::parse("+1").unwrap());
        let mut r = Reactions::default();
        assert!(r.toggle(heart, UserId(1)));
        assert!(r.toggle(up, UserId(2)));
        assert!(r.toggle(heart, UserId(3)));
        let listed: Vec<_> = r.iter().map(|(e, u)| (e, u.to_vec())).collect();
        assert_eq!(
            listed,
            vec![(up, vec![UserId(2)]), (heart, vec![UserId(1), UserId(3)])]
        );
        assert!(!r.toggle(up, UserId(2)));
        assert!(r.users(up).is_empty());
        assert_eq!(r.iter().count(), 1, "an emoji nobody uses is not listed");
        assert_eq!(Reactions::from_text(&r.to_text()), r);
        assert_eq!(Reactions::from_text(""), Reactions::default());
    }
}
