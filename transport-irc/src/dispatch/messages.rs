//! Sending: `PRIVMSG` and `NOTICE` to `#channel` or to a nick (the private conversation
//! with that user), `TAGMSG` (typing notices), and `REDACT` (deleting one's own message).
//!
//! Text is translated, never judged: IRC formatting codes (bold, colours, ...) are
//! dropped, since no other client can show them; CTCP ACTION becomes `/me ...`, which is
//! how it comes back; any other CTCP is refused, since the other side may be a browser.
//! What remains goes to the engine, which refuses what it refuses (control characters,
//! empty text, the flood limit) with its code.

use irc_proto::message::Tag;
use irc_proto::Message;

use super::{Dispatcher, PostTag, Reply};
use crate::caps::Cap;
use crate::error::IrcError;
use crate::render;

impl Dispatcher {
    /// `PRIVMSG`/`NOTICE target :text`: a post, answered in order by the connection.
    pub(super) async fn say(&mut self, verb: &'static str, target: String, text: String) -> Reply {
        if target.is_empty() {
            return self.answer_error(verb, "", IrcError::NoRecipient(verb.into()));
        }
        if target.contains(',') {
            return self.answer_error(verb, &target, IrcError::TooManyTargets);
        }
        let text = match translate(&text) {
            Ok(text) => text,
            Err(e) => return self.answer_error(verb, &target, e),
        };
        let to = match Self::engine_target(&target) {
            Ok(to) => to,
            Err(e) => return self.answer_error(verb, &target, e),
        };
        let Some(session) = &self.session else {
            return self.answer_error(verb, &target, IrcError::NotRegistered);
        };
        match session.start_post(to, text).await {
            Ok(post) => Reply::Post(PostTag { verb, target }, post),
            Err(e) => self.answer_error(verb, &target, e.into()),
        }
    }

    /// `@+typing=active TAGMSG target`: a typing notice. Other client tags are dropped.
    pub(super) async fn tagmsg(&mut self, params: &[String], tags: Option<&[Tag]>) -> Vec<Message> {
        let typing = tags
            .unwrap_or_default()
            .iter()
            .any(|Tag(k, v)| k == "+typing" && v.as_deref() == Some("active"));
        let (Some(target), true, Some(session)) = (params.first(), typing, &self.session) else {
            return Vec::new();
        };
        let Ok(to) = Self::engine_target(target) else {
            return Vec::new();
        };
        // A typing notice that cannot be relayed is not worth an error line.
        let _ = session.typing(to).await;
        Vec::new()
    }

    /// `REDACT target msgid [:reason]`: deletes one of the client's own messages; the
    /// deletion reaches everyone as an event (this client included), so success answers
    /// nothing.
    pub(super) async fn redact(
        &mut self,
        params: &[String],
    ) -> Result<Vec<Message>, (String, String, IrcError)> {
        let (Some(target), Some(msgid)) = (params.first(), params.get(1)) else {
            let e = IrcError::NeedMoreParams("REDACT".into());
            return Ok(vec![self.fail_or_numeric(
                "REDACT",
                "INVALID_PARAMS",
                &[],
                e,
            )]);
        };
        let result = async {
            let to = Self::engine_target(target)?;
            let session = self.me()?;
            let id = render::msgid_for_target(target, msgid)
                .ok_or_else(|| IrcError::UnknownMsgid(msgid.clone()))?;
            session.delete(to.as_str(), id).await?;
            Ok::<(), IrcError>(())
        }
        .await;
        match result {
            Ok(()) => Ok(Vec::new()),
            Err(e) => {
                let code = match &e {
                    IrcError::Chat(chat_core::ChatError::NotAuthor(_)) => "REDACT_FORBIDDEN",
                    IrcError::UnknownMsgid(_)
                    | IrcError::Chat(chat_core::ChatError::NoSuchMessage(_)) => "UNKNOWN_MSGID",
                    _ => "INVALID_TARGET",
                };
                let context = [target.as_str(), msgid.as_str()];
                Ok(vec![self.fail_or_numeric("REDACT", code, &context, e)])
            }
        }
    }

    /// A refusal of an IRCv3 command: `FAIL` to a client that enabled the capability the
    /// command belongs to, else the numeric with the same code.
    pub(super) fn fail_or_numeric(
        &self,
        verb: &str,
        fail_code: &str,
        context: &[&str],
        e: IrcError,
    ) -> Message {
        let cap = if verb == "REDACT" {
            Cap::Redaction
        } else {
            Cap::ChatHistory
        };
        if self.caps.has(cap) {
            self.server.fail(verb, fail_code, context, &e)
        } else {
            self.refusal(verb, context.first().copied().unwrap_or(""), &e)
        }
    }
}

/// IRC text to the engine's: formatting codes dropped, CTCP ACTION to `/me`, any other
/// CTCP refused.
fn translate(text: &str) -> Result<String, IrcError> {
    if let Some(ctcp) = text.strip_prefix('\u{1}') {
        let ctcp = ctcp.strip_suffix('\u{1}').unwrap_or(ctcp);
        let (kind, rest) = ctcp.split_once(' ').unwrap_or((ctcp, ""));
        if !kind.eq_ignore_ascii_case("ACTION") {
            let kind: String = kind.chars().filter(|c| !c.is_control()).take(32).collect();
            return Err(IrcError::UnsupportedCtcp(kind));
        }
        return Ok(format!("/me {}", strip_formatting(rest)));
    }
    Ok(strip_formatting(text))
}

/// Drops mIRC formatting: bold, italics, underline, strike, monospace, reverse, reset,
/// and colours with their `fg,bg` digits (`\x03`) or hex (`\x04`).
fn strip_formatting(text: &str) -> String {
    if !text.contains([
        '\u{2}', '\u{3}', '\u{4}', '\u{f}', '\u{11}', '\u{16}', '\u{1d}', '\u{1e}', '\u{1f}',
    ]) {
        return text.to_owned();
    }
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\u{2}' | '\u{f}' | '\u{11}' | '\u{16}' | '\u{1d}' | '\u{1e}' | '\u{1f}' => {}
            '\u{3}' => skip_colour(&mut chars, 2, |d| d.is_ascii_digit()),
            '\u{4}' => skip_colour(&mut chars, 6, |d| d.is_ascii_hexdigit()),
            c => out.push(c),
        }
    }
    out
}

/// Skips a colour's `fg[,bg]` (each at most `max` characters that are `digit`), leaving
/// a comma that no colour follows.
fn skip_colour(
    chars: &mut std::iter::Peekable<std::str::Chars>,
    max: usize,
    digit: fn(&char) -> bool,
) {
    let take = |chars: &mut std::iter::Peekable<std::str::Chars>| {
        let mut n = 0;
        while n < max && chars.peek().is_some_and(digit) {
            chars.next();
            n += 1;
        }
        n
    };
    if take(chars) > 0 && chars.peek() == Some(&',') {
        let mut ahead = chars.clone();
        ahead.next();
        if ahead.peek().is_some_and(digit) {
            chars.next();
            take(chars);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formatting_is_dropped_and_ctcp_action_is_me() {
        assert_eq!(translate("plain").unwrap(), "plain");
        assert_eq!(
            translate("\u{2}bold\u{2} \u{3}4,12red on blue\u{3} \u{3}99,x \u{1d}it\u{f}").unwrap(),
            "bold red on blue ,x it"
        );
        assert_eq!(translate("\u{4}ff0000hex").unwrap(), "hex");
        assert_eq!(translate("\u{1}ACTION waves\u{1}").unwrap(), "/me waves");
        assert_eq!(translate("\u{1}action waves").unwrap(), "/me waves");
        let e = translate("\u{1}VERSION\u{1}").unwrap_err();
        assert_eq!(e.code(), "unsupported_ctcp");
        assert!(e.to_string().contains("VERSION"));
        // Other control characters are left for the engine to refuse.
        assert_eq!(translate("bell\u{7}").unwrap(), "bell\u{7}");
    }
}
