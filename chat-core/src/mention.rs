//! Mentions: which users a message's `@name` tokens name, by the key under which display
//! names are unique ([`name_key`]), so that `@ALICE` and `@аlice` (Cyrillic а) mention
//! alice as they would reach her as a room label.
//!
//! A message's mentions follow from its text alone: nothing is stored with the message,
//! history and recovery carry them for free, and every transport reads them the same way
//! ([`ChatMessage::mention_keys`](crate::ChatMessage::mention_keys),
//! [`ChatMessage::mentions`](crate::ChatMessage::mentions)). A token names a user whether or
//! not that user exists: a client compares the keys with its own user's key.
//!
//! A mention is `@` at the start of the text or after a character that is neither a
//! letter, a digit nor `@` (so `bob@example.com` mentions nobody), followed by the name.
//! Names may hold spaces, so the words after `@` (up to [`MAX_MENTION_WORDS`]) each end a
//! candidate: `@Ann Lee hi` names `Ann`, `Ann Lee` and `Ann Lee hi`. Punctuation that ends
//! a word ends the name (`@bob, hi` names `bob,` and `bob`): a candidate is also tried
//! without its trailing punctuation.

use crate::validate::name_key;

/// The most `@` tokens of one message that count as mentions; later ones are text.
pub const MAX_MENTIONS: usize = 20;

/// The most words after `@` that one mention may span (a display name with spaces).
pub const MAX_MENTION_WORDS: usize = 3;

/// The longest candidate name, in characters: longer ones are not names of this server
/// (display names have at most `Limits::max_display_name_chars`, 32 by default).
pub const MAX_MENTION_CHARS: usize = 64;

/// The keys of the names `text` mentions, each once, in the order they appear.
pub fn mention_keys(text: &str) -> Vec<String> {
    let mut keys: Vec<String> = Vec::new();
    if !text.contains('@') {
        return keys;
    }
    for start in mention_starts(text).take(MAX_MENTIONS) {
        for candidate in candidates(&text[start..]) {
            let key = name_key(candidate);
            if !key.trim().is_empty() && !keys.contains(&key) {
                keys.push(key);
            }
        }
    }
    keys
}

/// Whether `text` mentions the user whose display name has the key `key`.
pub fn mentions_key(text: &str, key: &str) -> bool {
    text.contains('@') && mention_keys(text).iter().any(|k| k == key)
}

/// The byte offsets just after each `@` that starts a mention.
fn mention_starts(text: &str) -> impl Iterator<Item = usize> + '_ {
    let mut before: Option<char> = None;
    text.char_indices().filter_map(move |(i, c)| {
        let starts = c == '@' && before.is_none_or(|b| !b.is_alphanumeric() && b != '@');
        before = Some(c);
        starts.then_some(i + c.len_utf8())
    })
}

/// The names `rest` (the text after an `@`) may start with: through the end of each of its
/// first words, with and without trailing punctuation.
fn candidates(rest: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut words = 0;
    let mut end = 0;
    for (i, c) in rest.char_indices() {
        if i > MAX_MENTION_CHARS * 4 || words == MAX_MENTION_WORDS {
            break;
        }
        if c == ' ' {
            if i == end {
                break; // two spaces, or a space right after `@`: no name goes on
            }
            push_candidate(&mut out, &rest[..i]);
            if rest[..i].ends_with(|c: char| !c.is_alphanumeric()) {
                return out; // `@bob, hi`: punctuation ends the name
            }
            words += 1;
            end = i + 1;
        } else if c.is_whitespace() || c == '@' {
            break;
        }
    }
    if words < MAX_MENTION_WORDS && end < rest.len() {
        let stop = rest[end..]
            .find(|c: char| c.is_whitespace() || c == '@')
            .map_or(rest.len(), |i| end + i);
        if stop > end {
            push_candidate(&mut out, &rest[..stop]);
        }
    }
    out
}

/// Adds `name` and, when it ends in punctuation, `name` without it.
fn push_candidate<'a>(out: &mut Vec<&'a str>, name: &'a str) {
    if name.chars().count() > MAX_MENTION_CHARS {
        return;
    }
    out.push(name);
    let bare = name.trim_end_matches(|c: char| !c.is_alphanumeric());
    if !bare.is_empty() && bare.len() < name.len() {
        out.push(bare);
    }
}

#[cfg(test)]
mod tests {
    use super::{mention_keys, mentions_key, MAX_MENTIONS};
    use crate::validate::name_key;

    fn mentions(text: &str, name: &str) -> bool {
        mentions_key(text, &name_key(name))
    }

    #[test]
    fn a_name_after_at_is_mentioned_whatever_its_case_or_look_alike() {
        assert!(mentions("hi @bob", "bob"));
        assert!(mentions("@BOB look", "bob"));
        assert!(mentions("ping @аlice", "alice")); // Cyrillic а
        assert!(mentions("ping @ａｌｉｃｅ!", "alice"));
        assert!(!mentions("hi @bobby", "bob"));
        assert!(!mentions("hi bob", "bob"));
    }

    #[test]
    fn punctuation_around_a_mention_does_not_hide_it() {
        assert!(mentions("(@bob) and @carol, see", "bob"));
        assert!(mentions("(@bob) and @carol, see", "carol"));
        assert!(mentions("thanks @dave!", "dave"));
        assert!(mentions("thanks @dave!", "dave!"));
    }

    #[test]
    fn an_at_inside_a_word_is_not_a_mention() {
        assert!(!mentions("mail bob@example.com", "example.com"));
        assert!(!mentions("@@bob", "bob"));
        assert!(mention_keys("no at sign here").is_empty());
    }

    #[test]
    fn a_name_with_spaces_is_mentioned_by_its_words() {
        assert!(mentions("hello @Ann Lee, welcome", "Ann Lee"));
        assert!(mentions("hello @Ann Lee, welcome", "Ann"));
        assert!(!mentions("hello @Ann  Lee", "Ann Lee"));
        assert!(!mentions("@a b c d", "a b c d"));
        assert!(!mentions("@Ann, Lee", "Ann, Lee"));
    }

    #[test]
    fn the_documented_example_has_these_keys() {
        assert_eq!(
            mention_keys("@Bob, lunch? cc @Ann Lee"),
            vec!["bob,", "bob", "ann", "ann lee"]
        );
    }

    #[test]
    fn each_key_comes_once_and_tokens_past_the_limit_are_text() {
        assert_eq!(mention_keys("@bob @BOB @bob"), vec![name_key("bob")]);
        let many: String = (0..MAX_MENTIONS + 5).map(|i| format!("@u{i}\n")).collect();
        assert!(mentions(&many, &format!("u{}", MAX_MENTIONS - 1)));
        assert!(!mentions(&many, &format!("u{MAX_MENTIONS}")));
    }
}
