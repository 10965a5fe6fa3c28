//! `CHATHISTORY` (IRCv3 `draft/chathistory`): `LATEST`, `BEFORE` and `AFTER` a msgid or a
//! timestamp, mapped onto the engine's recovery by id (`Session::join` with the last id
//! the client has), answered in a `chathistory` batch. `TARGETS` answers an empty list;
//! `AROUND` and `BETWEEN` are refused.
//!
//! Asking the engine again follows the room again, and the engine then drops the live
//! events the new snapshot covers from this session's queue. So the messages of the
//! snapshot that the client was not shown live yet are written after the batch, as live
//! messages: nothing is lost and nothing comes twice.

use std::sync::Arc;

use chat_core::{ChatMessage, MessageId};
use chrono::{DateTime, Utc};
use irc_proto::{Command, Message};

use super::Dispatcher;
use crate::caps::Cap;
use crate::error::IrcError;
use crate::render;

/// Where a history request starts.
enum Anchor {
    /// `*`: now (LATEST only).
    Now,
    /// `msgid=...`.
    Id(MessageId),
    /// `timestamp=...`.
    Time(DateTime<Utc>),
}

impl Dispatcher {
    /// `CHATHISTORY LATEST|BEFORE|AFTER target reference limit`.
    pub(super) async fn chathistory(
        &mut self,
        params: &[String],
    ) -> Result<Vec<Message>, (String, String, IrcError)> {
        let invalid = |this: &Self, why: &str| {
            let e = IrcError::InvalidParams(why.to_owned());
            Ok(vec![this.fail_or_numeric(
                "CHATHISTORY",
                "INVALID_PARAMS",
                &[],
                e,
            )])
        };
        let sub = params
            .first()
            .map(|s| s.to_ascii_uppercase())
            .unwrap_or_default();
        if sub == "TARGETS" {
            return Ok(self.empty_batch("draft/chathistory-targets", None));
        }
        if !matches!(sub.as_str(), "LATEST" | "BEFORE" | "AFTER") {
            return invalid(
                self,
                "supported: CHATHISTORY LATEST|BEFORE|AFTER target msgid=ID|timestamp=TIME|* limit",
            );
        }
        let [_, target, reference, limit] = params else {
            return invalid(self, "CHATHISTORY needs a target, a reference and a limit");
        };
        let most = self.engine.limits().history;
        let Some(limit) = limit
            .parse::<usize>()
            .ok()
            .filter(|l| (1..=most).contains(l))
        else {
            return invalid(self, &format!("the limit is 1 to {most}"));
        };
        let anchor = if reference == "*" && sub == "LATEST" {
            Some(Anchor::Now)
        } else if let Some(msgid) = reference.strip_prefix("msgid=") {
            render::msgid_for_target(target, msgid).map(Anchor::Id)
        } else if let Some(time) = reference.strip_prefix("timestamp=") {
            DateTime::parse_from_rfc3339(time)
                .ok()
                .map(|t| Anchor::Time(t.with_timezone(&Utc)))
        } else {
            None
        };
        let Some(anchor) = anchor else {
            let e = IrcError::UnknownMsgid(reference.clone());
            let context = ["CHATHISTORY", target.as_str(), reference.as_str()];
            return Ok(vec![self.fail_or_numeric(
                "CHATHISTORY",
                "INVALID_MSGREFID",
                &context[1..],
                e,
            )]);
        };
        if target.starts_with('#') && self.joined(target).is_none() {
            let e = IrcError::Chat(chat_core::ChatError::NotJoined(target.clone()));
            return Ok(vec![self.fail_or_numeric(
                "CHATHISTORY",
                "INVALID_TARGET",
                &[&sub, target],
                e,
            )]);
        }
        let to = match Self::engine_target(target) {
            Ok(to) => to,
            Err(e) => {
                return Ok(vec![self.fail_or_numeric(
                    "CHATHISTORY",
                    "INVALID_TARGET",
                    &[&sub, target],
                    e,
                )])
            }
        };
        let after = match (&sub[..], &anchor) {
            ("LATEST" | "AFTER", Anchor::Id(id)) => Some(*id),
            _ => None,
        };
        let session = self
            .me()
            .map_err(|e| ("CHATHISTORY".into(), target.clone(), e))?;
        let joined = match session.join(to.as_str(), after).await {
            Ok(joined) => joined,
            Err(e) => {
                let e = IrcError::Chat(e);
                return Ok(vec![self.fail_or_numeric(
                    "CHATHISTORY",
                    "MESSAGE_ERROR",
                    &[&sub, target],
                    e,
                )]);
            }
        };
        let kept = &joined.messages;
        let wanted = |m: &&Arc<ChatMessage>| match (&sub[..], &anchor) {
            (_, Anchor::Now) => true,
            ("BEFORE", Anchor::Id(id)) => m.id < *id,
            ("BEFORE", Anchor::Time(t)) => m.sent_at < *t,
            (_, Anchor::Id(id)) => m.id > *id,
            (_, Anchor::Time(t)) => m.sent_at > *t,
        };
        let matching: Vec<Arc<ChatMessage>> = kept.iter().filter(wanted).cloned().collect();
        let chosen: &[Arc<ChatMessage>] = if sub == "AFTER" {
            &matching[..limit.min(matching.len())]
        } else {
            &matching[matching.len().saturating_sub(limit)..]
        };
        let shown = self.seen_in(&joined.room);
        let label = render::room_target(&joined.room, session.user().id);
        let mut lines = if chosen.is_empty() {
            self.empty_batch("chathistory", Some(&label))
        } else {
            self.history_lines(&label, chosen)
        };
        // What the new snapshot took from the live queue and the client has not seen yet.
        for m in kept.iter().filter(|m| shown.is_none_or(|s| m.id > s)) {
            if !self.echoes() && self.take_own(m) {
                continue;
            }
            let (first, every) = render::tags_for(m, self.caps);
            lines.extend(render::message_lines(m, "PRIVMSG", "", &first, &every));
            let files_url = self.config.files_url.as_deref();
            lines.extend(render::file_lines(m, files_url, &every));
            self.saw(m);
        }
        Ok(lines)
    }

    /// An empty batch of `kind` (nothing without the `batch` capability).
    fn empty_batch(&mut self, kind: &str, target: Option<&str>) -> Vec<Message> {
        if !self.caps.has(Cap::Batch) {
            return Vec::new();
        }
        let batch = self.next_batch();
        let mut open = vec![format!("+{batch}"), kind.to_owned()];
        open.extend(target.map(str::to_owned));
        vec![
            self.server.message(Command::Raw("BATCH".into(), open)),
            self.server
                .message(Command::Raw("BATCH".into(), vec![format!("-{batch}")])),
        ]
    }
}
