//! `History`: the last `Limits::history` messages of one room, oldest first, and the
//! bookkeeping that lets a reconnecting client learn exactly what it missed.
//!
//! Owned by a room actor (and, in memory, by the broker). Ids grow by one per message, so
//! any id above `evicted_up_to` that is missing from the ring was deleted, and any id at
//! or below it is unknown here: evicted, deleted before this history saw it, or lost.
//! That is the sequence rule every follower keeps: a client is told "deleted" only for an
//! id known to be deleted, and "gap" for anything it cannot be given.

use std::collections::VecDeque;
use std::sync::Arc;

use crate::broker::Stored;
use crate::model::{ChatMessage, MessageId};

/// What a (re)joining session gets from the history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Replay {
    /// The messages to show, oldest first.
    pub(crate) messages: Vec<Arc<ChatMessage>>,
    /// True when some messages the client has not seen are no longer kept: `messages` is
    /// then the whole history and the client should replace what it shows.
    pub(crate) gap: bool,
    /// Ids at or below the client's last seen id that were deleted since (only when
    /// resuming without a gap), so it can remove them too.
    pub(crate) deleted: Vec<MessageId>,
    /// Messages at or below the client's last seen id that were edited or carry
    /// reactions (only when resuming without a gap), in their latest form.
    pub(crate) updated: Vec<Arc<ChatMessage>>,
}

/// A bounded, id-ordered ring of messages.
#[derive(Debug)]
pub(crate) struct History {
    ring: VecDeque<Arc<ChatMessage>>,
    limit: usize,
    last_id: MessageId,
    evicted_up_to: MessageId,
}

impl History {
    pub(crate) fn new(limit: usize) -> Self {
        History {
            ring: VecDeque::with_capacity(limit.min(1024)),
            limit: limit.max(1),
            last_id: 0,
            evicted_up_to: 0,
        }
    }

    /// Starts from a store's history: ids below the first kept message (all of them, when
    /// none is kept), and every id up to the store's `unknown_through`, are unknown here,
    /// so a client that missed them is told of a gap, never that they were deleted.
    pub(crate) fn load(&mut self, stored: &Stored) {
        for message in &stored.messages {
            self.push(message.clone());
        }
        let first = stored.messages.first().map_or(stored.last_id + 1, |m| m.id);
        self.forget_through(first.saturating_sub(1).max(stored.unknown_through));
        self.advance_to(stored.last_id);
    }

    /// The highest id unknown here: every id up to it was evicted, forgotten, or unknown to
    /// the store this history was loaded from.
    pub(crate) fn unknown_through(&self) -> MessageId {
        self.evicted_up_to
    }

    /// Marks every id up to `id` as unknown here (evicted, or lost to a hole in the feed).
    pub(crate) fn forget_through(&mut self, id: MessageId) {
        self.evicted_up_to = self.evicted_up_to.max(id);
        self.last_id = self.last_id.max(id);
    }

    /// Notes that ids up to `id` were given (the newest of them deleted before this
    /// history saw them): the next message is above it.
    pub(crate) fn advance_to(&mut self, id: MessageId) {
        self.last_id = self.last_id.max(id);
    }

    /// The id the next message gets.
    pub(crate) fn next_id(&self) -> MessageId {
        self.last_id + 1
    }

    /// The highest id ever appended.
    pub(crate) fn last_id(&self) -> MessageId {
        self.last_id
    }

    /// Appends a message whose id is above every id so far, evicting the oldest when full.
    /// A message at or below `last_id` (a replay) is ignored and `false` returned.
    pub(crate) fn push(&mut self, message: Arc<ChatMessage>) -> bool {
        self.push_evicting(message, |_| {})
    }

    /// As [`History::push`], handing each message it evicts to `evicted` (a store drops
    /// the evicted message's files).
    pub(crate) fn push_evicting(
        &mut self,
        message: Arc<ChatMessage>,
        mut evicted: impl FnMut(Arc<ChatMessage>),
    ) -> bool {
        if message.id <= self.last_id {
            return false;
        }
        self.last_id = message.id;
        self.ring.push_back(message);
        while self.ring.len() > self.limit {
            if let Some(old) = self.ring.pop_front() {
                // A hole forgotten above the evicted message stays forgotten.
                self.evicted_up_to = self.evicted_up_to.max(old.id);
                evicted(old);
            }
        }
        true
    }

    /// The message with `id`, if it is still kept.
    pub(crate) fn get(&self, id: MessageId) -> Option<&Arc<ChatMessage>> {
        self.position(id).map(|i| &self.ring[i])
    }

    /// Removes the message with `id`; returns it if it was kept.
    pub(crate) fn remove(&mut self, id: MessageId) -> Option<Arc<ChatMessage>> {
        let i = self.position(id)?;
        self.ring.remove(i)
    }

    /// Keeps `message` in place of the kept one with its id (an edit, a reaction);
    /// returns the one it replaced, or `None` (and keeps nothing) when no message with
    /// that id is kept or the kept one is the same.
    pub(crate) fn replace(&mut self, message: Arc<ChatMessage>) -> Option<Arc<ChatMessage>> {
        let i = self.position(message.id)?;
        if self.ring[i] == message {
            return None;
        }
        Some(std::mem::replace(&mut self.ring[i], message))
    }

    /// Everything kept, oldest first.
    pub(crate) fn all(&self) -> Vec<Arc<ChatMessage>> {
        self.ring.iter().cloned().collect()
    }

    /// What a client that last saw `after` needs (everything when `after` is `None`).
    pub(crate) fn replay(&self, after: Option<MessageId>) -> Replay {
        let Some(after) = after else {
            return Replay {
                messages: self.all(),
                gap: false,
                deleted: Vec::new(),
                updated: Vec::new(),
            };
        };
        // The client knows ids we never issued (e.g. the server restarted): start over.
        // Or messages after `after` were evicted: it cannot be caught up exactly.
        if after > self.last_id || after < self.evicted_up_to {
            return Replay {
                messages: self.all(),
                gap: true,
                deleted: Vec::new(),
                updated: Vec::new(),
            };
        }
        let start = self.ring.partition_point(|m| m.id <= after);
        let kept_below: Vec<MessageId> = self.ring.range(..start).map(|m| m.id).collect();
        let deleted = (self.evicted_up_to + 1..=after)
            .filter(|id| kept_below.binary_search(id).is_err())
            .collect();
        let updated = self
            .ring
            .range(..start)
            .filter(|m| m.is_changed())
            .cloned()
            .collect();
        Replay {
            messages: self.ring.range(start..).cloned().collect(),
            gap: false,
            deleted,
            updated,
        }
    }

    fn position(&self, id: MessageId) -> Option<usize> {
        self.ring.binary_search_by_key(&id, |m| m.id).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::test_message;

    fn msg(id: MessageId) -> Arc<ChatMessage> {
        test_message(id)
    }

    fn ids(v: &[Arc<ChatMessage>]) -> Vec<MessageId> {
        v.iter().map(|m| m.id).collect()
    }

    #[test]
    fn keeps_only_the_newest_limit_messages() {
        let mut h = History::new(100);
        for id in 1..=150 {
            assert!(h.push(msg(id)));
        }
        assert_eq!(ids(&h.all()), (51..=150).collect::<Vec<_>>());
        assert!(!h.push(msg(150)), "replays are ignored");
        assert_eq!(h.next_id(), 151);
    }

    #[test]
    fn replay_after_an_id_returns_exactly_the_missed_messages() {
        let mut h = History::new(5);
        for id in 1..=8 {
            h.push(msg(id));
        }
        // ring holds 4..=8, evicted up to 3
        let r = h.replay(Some(5));
        assert_eq!((ids(&r.messages), r.gap), (vec![6, 7, 8], false));
        let r = h.replay(Some(3));
        assert_eq!((ids(&r.messages), r.gap), (vec![4, 5, 6, 7, 8], false));
        let r = h.replay(Some(8));
        assert!(r.messages.is_empty() && !r.gap);
        let r = h.replay(Some(2));
        assert_eq!((ids(&r.messages), r.gap), (vec![4, 5, 6, 7, 8], true));
        let r = h.replay(Some(99));
        assert!(
            r.gap,
            "an id from the future means the client must start over"
        );
    }

    #[test]
    fn an_edit_replaces_the_kept_message_and_resume_reports_it() {
        let mut h = History::new(5);
        for id in 1..=4 {
            h.push(msg(id));
        }
        let mut edited = ChatMessage::clone(&msg(2));
        edited.text = "fixed".into();
        edited.edited_at = Some(edited.sent_at);
        let edited = Arc::new(edited);
        assert!(h.replace(edited.clone()).is_some());
        assert!(
            h.replace(edited.clone()).is_none(),
            "the same state again is no change"
        );
        assert_eq!(h.get(2).map(|m| m.text.as_str()), Some("fixed"));
        let r = h.replay(Some(3));
        assert_eq!((ids(&r.messages), ids(&r.updated)), (vec![4], vec![2]));
        let r = h.replay(Some(1));
        assert!(r.updated.is_empty(), "message 2 comes whole, in `messages`");
        h.remove(2);
        let mut gone = ChatMessage::clone(&edited);
        gone.text = "again".into();
        assert!(
            h.replace(Arc::new(gone)).is_none(),
            "a deleted message stays gone"
        );
    }

    #[test]
    fn deletions_leave_holes_that_resume_reports() {
        let mut h = History::new(5);
        for id in 1..=5 {
            h.push(msg(id));
        }
        assert_eq!(h.remove(2).map(|m| m.id), Some(2));
        assert!(h.remove(2).is_none());
        assert!(h.get(3).is_some());
        let r = h.replay(Some(4));
        assert_eq!((ids(&r.messages), r.deleted), (vec![5], vec![2]));
        assert!(r.updated.is_empty(), "nothing was edited");
        // A deletion frees a slot: the next push evicts nothing.
        h.push(msg(6));
        assert_eq!(ids(&h.all()), vec![1, 3, 4, 5, 6]);
    }

    #[test]
    fn a_loaded_history_knows_nothing_below_its_first_message() {
        // The store kept 6..=10 of ten messages (history 5).
        let mut h = History::new(5);
        h.load(&Stored::new((6..=10).map(msg).collect(), 10));
        let r = h.replay(Some(2));
        assert_eq!((ids(&r.messages), r.gap), ((6..=10).collect(), true));
        assert!(r.deleted.is_empty(), "nothing is reported deleted");
        let r = h.replay(Some(5));
        assert_eq!((ids(&r.messages), r.gap), ((6..=10).collect(), false));
        let r = h.replay(Some(7));
        assert_eq!((ids(&r.messages), r.deleted), (vec![8, 9, 10], vec![]));
        assert_eq!(h.next_id(), 11);
    }

    #[test]
    fn a_loaded_history_counts_the_newest_deleted_ids_as_given() {
        // 1..=4 kept, 5 and 6 given and deleted since.
        let mut h = History::new(100);
        h.load(&Stored::new((1..=4).map(msg).collect(), 6));
        assert_eq!(h.next_id(), 7);
        let r = h.replay(Some(6));
        assert!(!r.gap && r.messages.is_empty());
        // All given, none kept: everything is unknown.
        let mut empty = History::new(100);
        empty.load(&Stored::new(Vec::new(), 9));
        assert!(empty.replay(Some(3)).gap);
        assert!(!empty.replay(Some(9)).gap);
    }

    #[test]
    fn ids_a_store_cannot_vouch_for_are_a_gap_even_below_kept_messages() {
        // 1..=4 kept; the store gave ids up to 40 and cannot say which it wrote.
        let mut h = History::new(100);
        h.load(&Stored::new((1..=4).map(msg).collect(), 40).with_unknown_through(40));
        assert_eq!(h.next_id(), 41);
        let r = h.replay(Some(2));
        assert_eq!((ids(&r.messages), r.gap), (vec![1, 2, 3, 4], true));
        let r = h.replay(Some(30));
        assert!(r.gap && r.deleted.is_empty(), "lost, never deleted");
        assert!(!h.replay(Some(40)).gap);
        assert_eq!(h.unknown_through(), 40);
    }

    #[test]
    fn a_hole_forgotten_is_a_gap_for_those_who_missed_it() {
        let mut h = History::new(5);
        h.push(msg(1));
        h.forget_through(6);
        h.push(msg(7));
        let r = h.replay(Some(1));
        assert!(r.gap && r.deleted.is_empty());
        let r = h.replay(Some(7));
        assert!(!r.gap && r.messages.is_empty());
        // Evicting the message below the hole does not bring the hole back.
        for id in 8..=12 {
            h.push(msg(id));
        }
        assert!(h.replay(Some(1)).gap);
        assert!(h.replay(Some(5)).gap);
    }
}
