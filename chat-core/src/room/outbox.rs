//! What this node has to tell the other nodes about its share of one room ([`Outbox`]):
//! the state of `share.rs`, owned by the room's actor, apart from the actor's methods that
//! use it so that the actor can hold it without a cycle of imports.

use crate::broker::HereState;
use crate::model::UserRef;

/// What this node has to tell the other nodes about its share of one room.
#[derive(Debug, Default)]
pub(super) struct Outbox {
    /// Changes of members' state here since the last signal, oldest first.
    pub(super) changes: Vec<(UserRef, HereState)>,
    /// Whether the next signal carries the whole share (asked for, or after a rejoin).
    pub(super) whole: bool,
    /// Whether the next signal asks the others for their whole shares.
    pub(super) ask: bool,
    /// Whether a publish is due (one is armed at a time).
    pub(super) armed: bool,
}

impl Outbox {
    /// Whether there is nothing to tell.
    pub(super) fn is_empty(&self) -> bool {
        self.changes.is_empty() && !self.whole && !self.ask
    }
}
