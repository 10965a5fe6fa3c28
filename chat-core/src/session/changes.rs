//! A session's changes to messages already posted: edits (by their author) and
//! reactions (by anyone in the room), each checked here and decided by the room.

use crate::error::{room_gone, ChatError};
use crate::model::MessageId;
use crate::reaction::Emoji;
use crate::room::{Edit, React};
use crate::telemetry;
use crate::validate;

use super::{Session, Target};

impl Session {
    /// Replaces the text of one of this user's own messages that the room still keeps;
    /// anyone else's is refused with `not_author`, one the room no longer keeps with
    /// `no_such_message`. The new text follows the rules of a post's
    /// ([`validate::message_text`]) and takes a token of the user's `message_rate`, like a
    /// post. Every follower (this session included) gets [`Event::Edited`](crate::Event::Edited), and history
    /// and later joins carry the new text with `edited_at` set.
    pub async fn edit(
        &self,
        target: impl Into<Target>,
        id: MessageId,
        text: impl Into<String>,
    ) -> Result<(), ChatError> {
        telemetry::tally(self.edit_uncounted(target, id, text).await)
    }

    async fn edit_uncounted(
        &self,
        target: impl Into<Target>,
        id: MessageId,
        text: impl Into<String>,
    ) -> Result<(), ChatError> {
        self.ensure_open()?;
        let text = text.into();
        validate::message_text(&text, &self.limits)?;
        let addr = self.room_addr(target.into()).await?;
        self.buckets.take_message()?;
        addr.send(Edit {
            id,
            by: self.subscriber.user.id,
            text,
        })
        .await
        .map_err(room_gone)?
    }

    /// Adds this user's `emoji` to a message the room keeps, or takes it back if it is
    /// there. `emoji` is one of the set ([`crate::reaction`]), as the emoji or its short
    /// name; anything else is refused with `invalid_reaction`, a message the room does not
    /// keep with `no_such_message`. Takes a token of the user's `message_rate`. Every
    /// follower (this session included) gets [`Event::Reacted`](crate::Event::Reacted) with the new counts.
    pub async fn react(
        &self,
        target: impl Into<Target>,
        id: MessageId,
        emoji: &str,
    ) -> Result<(), ChatError> {
        telemetry::tally(self.react_uncounted(target, id, emoji).await)
    }

    async fn react_uncounted(
        &self,
        target: impl Into<Target>,
        id: MessageId,
        emoji: &str,
    ) -> Result<(), ChatError> {
        self.ensure_open()?;
        let emoji = Emoji::parse(emoji).ok_or_else(|| ChatError::InvalidReaction(emoji.into()))?;
        let addr = self.room_addr(target.into()).await?;
        self.buckets.take_message()?;
        addr.send(React {
            id,
            by: self.subscriber.user.id,
            emoji,
        })
        .await
        .map_err(room_gone)?
    }
}
