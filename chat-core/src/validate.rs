//! The rules for user-supplied text: display names (in `names`), channel names, message
//! texts.
//!
//! Pure functions, called by the session handle before anything reaches an actor, so that
//! actors only ever see valid data.

use std::borrow::Cow;
use std::sync::Arc;

use crate::error::ChatError;
use crate::ids::ChannelName;
use crate::limits::Limits;

mod names;

pub(crate) use names::is_bidi_control as reorders_text;
pub use names::{display_name, name_key};

/// Longest external user id ([`crate::Login::External`]), in bytes: room for a UUID, an
/// email address or an OpenID `sub` with its issuer.
pub const MAX_EXTERNAL_ID_BYTES: usize = 256;

/// Checks an embedder's external user id: 1 to [`MAX_EXTERNAL_ID_BYTES`] bytes, no
/// control character. It is compared exactly (no trimming, no case folding): it is the
/// embedder's key, not something a person types.
pub fn external_id(raw: &str) -> Result<&str, ChatError> {
    let refuse = |why: &str| Err(ChatError::InvalidExternalId(why.to_owned()));
    if raw.is_empty() {
        return refuse("empty");
    }
    if raw.len() > MAX_EXTERNAL_ID_BYTES {
        return refuse(&format!("longer than {MAX_EXTERNAL_ID_BYTES} bytes"));
    }
    if raw.chars().any(char::is_control) {
        return refuse("has a control character");
    }
    Ok(raw)
}

/// Checks a channel name: 1 to `max_channel_name_chars` characters of ASCII letters,
/// digits, `-` and `_`, starting with a letter or digit. A leading `#` is ignored.
/// Uniqueness is case-insensitive; the creator's casing is kept for display. Being ASCII,
/// a channel name has no invisible or look-alike characters to refuse, and ASCII
/// look-alikes (`l` and `1`, `rn` and `m`) stay distinct names.
pub fn channel_name(raw: &str, limits: &Limits) -> Result<ChannelName, ChatError> {
    let name = checked_channel_name(raw, limits)?;
    Ok(ChannelName {
        display: Arc::from(name),
        key: Arc::from(channel_key(name).as_ref()),
    })
}

/// Checks a channel name like [`channel_name`] and returns it as typed, without its `#`
/// and surrounding blanks. Allocates nothing: a post names its room every time.
pub(crate) fn checked_channel_name<'a>(
    raw: &'a str,
    limits: &Limits,
) -> Result<&'a str, ChatError> {
    let name = raw.trim();
    let name = name.strip_prefix('#').unwrap_or(name);
    let len = name.chars().count();
    if len == 0 || len > limits.max_channel_name_chars {
        return Err(ChatError::InvalidChannelName(format!(
            "a channel name has 1 to {} characters",
            limits.max_channel_name_chars
        )));
    }
    let mut chars = name.chars();
    let first_ok = chars.next().is_some_and(|c| c.is_ascii_alphanumeric());
    let rest_ok = chars.all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if !first_ok || !rest_ok {
        return Err(ChatError::InvalidChannelName(
            "use letters, digits, - and _, starting with a letter or digit".into(),
        ));
    }
    Ok(name)
}

/// The case-folded key of a name [`checked_channel_name`] accepted ([`ChannelName::key`]):
/// the name itself when it has no capitals, which is the usual case.
pub(crate) fn channel_key(name: &str) -> Cow<'_, str> {
    if name.bytes().any(|b| b.is_ascii_uppercase()) {
        Cow::Owned(name.to_ascii_lowercase())
    } else {
        Cow::Borrowed(name)
    }
}

/// Checks a message text: not blank, at most `max_message_bytes`, no control characters
/// but newline and tab.
pub fn message_text(text: &str, limits: &Limits) -> Result<(), ChatError> {
    post_text(text, false, limits)
}

/// Checks the text of a post with `files` or without: as [`message_text`], except that a
/// post that carries files may have no text.
pub fn post_text(text: &str, has_files: bool, limits: &Limits) -> Result<(), ChatError> {
    if text.len() > limits.max_message_bytes {
        return Err(ChatError::TooLong {
            limit: limits.max_message_bytes,
            actual: text.len(),
        });
    }
    if text.trim().is_empty() && !has_files {
        return Err(ChatError::Empty);
    }
    if text
        .chars()
        .any(|c| c.is_control() && c != '\n' && c != '\t')
    {
        return Err(ChatError::InvalidText);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn channel_names_follow_the_documented_rules() {
        let l = Limits::default();
        let n = channel_name("#Rust-Beginners_2", &l).unwrap();
        assert_eq!(n.as_str(), "Rust-Beginners_2");
        assert_eq!(n.key(), "rust-beginners_2");
        for bad in [
            "",
            "#",
            "-leading",
            "has space",
            "dot.name",
            "ünï",
            &"a".repeat(33),
        ] {
            assert_eq!(
                channel_name(bad, &l).unwrap_err().code(),
                "invalid_channel_name",
                "{bad:?}"
            );
        }
    }

    #[test]
    fn a_post_finds_its_channel_under_the_key_the_channel_was_created_with() {
        let l = Limits::default();
        for typed in [
            "#Rust-Beginners_2",
            " rust-beginners_2 ",
            "RUST-BEGINNERS_2",
        ] {
            let created = channel_name("Rust-Beginners_2", &l).unwrap();
            let checked = checked_channel_name(typed, &l).unwrap();
            assert_eq!(channel_key(checked), created.key(), "{typed:?}");
        }
        assert!(matches!(channel_key("general"), Cow::Borrowed("general")));
    }

    #[test]
    fn message_texts_are_checked() {
        let l = Limits::default();
        assert!(message_text("hello\n\tworld", &l).is_ok());
        assert_eq!(message_text(" \n ", &l).unwrap_err().code(), "empty");
        assert_eq!(
            message_text("a\u{1b}[31m", &l).unwrap_err().code(),
            "invalid_text"
        );
        assert!(message_text(&"a".repeat(4096), &l).is_ok());
        assert_eq!(
            message_text(&"a".repeat(4097), &l).unwrap_err().code(),
            "too_long"
        );
    }
}

#[cfg(test)]
mod external_id_tests {
    use super::{external_id, MAX_EXTERNAL_ID_BYTES};

    #[test]
    fn external_ids_are_bounded_and_printable() {
        assert_eq!(external_id("auth0|5f7c"), Ok("auth0|5f7c"));
        assert_eq!(external_id("").unwrap_err().code(), "invalid_external_id");
        assert!(external_id(&"x".repeat(MAX_EXTERNAL_ID_BYTES)).is_ok());
        assert!(external_id(&"x".repeat(MAX_EXTERNAL_ID_BYTES + 1)).is_err());
        assert!(external_id("a\nb").is_err());
    }
}
