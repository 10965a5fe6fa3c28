//! What a session asks a room about one of its kept messages: edit it (its author only)
//! or toggle a reaction on it. Each message sits next to its handler.
//!
//! The room refuses what it can tell from its own history (a message it does not keep,
//! someone else's message to edit) and commits the rest to the broker, which checks again
//! against the shared copy. The change reaches every follower, the asker included, from
//! the room's feed (`Change::Updated`), so every node applies it in the room's one order.

use actix::prelude::*;

use super::actor::RoomActor;
use super::commit::Commit;
use crate::broker::Proposal;
use crate::error::ChatError;
use crate::model::{MessageId, UserId};
use crate::reaction::Emoji;

/// Replace the text of a message on behalf of `by`, its author.
#[derive(Message)]
#[rtype(result = "Result<(), ChatError>")]
pub(crate) struct Edit {
    pub(crate) id: MessageId,
    pub(crate) by: UserId,
    /// Already validated like a post's text.
    pub(crate) text: String,
}

impl Handler<Edit> for RoomActor {
    type Result = ResponseFuture<Result<(), ChatError>>;

    fn handle(&mut self, msg: Edit, _: &mut Context<Self>) -> Self::Result {
        let local = self.kept(msg.id).and_then(|author| {
            if author == msg.by {
                Ok(())
            } else {
                Err(ChatError::NotEditor(msg.id))
            }
        });
        let proposal = Proposal::Edit {
            id: msg.id,
            by: msg.by,
            text: msg.text,
        };
        self.commit_change(local, proposal)
    }
}

/// Add `by`'s `emoji` to a message, or take it away if it is there.
#[derive(Message)]
#[rtype(result = "Result<(), ChatError>")]
pub(crate) struct React {
    pub(crate) id: MessageId,
    pub(crate) by: UserId,
    pub(crate) emoji: Emoji,
}

impl Handler<React> for RoomActor {
    type Result = ResponseFuture<Result<(), ChatError>>;

    fn handle(&mut self, msg: React, _: &mut Context<Self>) -> Self::Result {
        let local = self.kept(msg.id).map(|_| ());
        let proposal = Proposal::React {
            id: msg.id,
            by: msg.by,
            emoji: msg.emoji,
        };
        self.commit_change(local, proposal)
    }
}

impl RoomActor {
    /// The author of kept message `id`; the room's load error, or `no_such_message`.
    fn kept(&self, id: MessageId) -> Result<UserId, ChatError> {
        if let Some(error) = &self.failed {
            return Err(error.clone());
        }
        self.history
            .get(id)
            .map(|m| m.author.id)
            .ok_or(ChatError::NoSuchMessage(id))
    }

    /// Commits `proposal` once the local check passed; answers when the broker has.
    fn commit_change(
        &mut self,
        local: Result<(), ChatError>,
        proposal: Proposal,
    ) -> ResponseFuture<Result<(), ChatError>> {
        let commit =
            local.map(|()| Commit::start(&self.broker, &self.room, proposal, &self.under_way));
        Box::pin(async move {
            match commit? {
                Commit::Settled(receipt) => receipt.map(|_| ()),
                Commit::UnderWay(commit) => commit.await.map(|_| ()),
            }
        })
    }
}
