//! What a session's event queue holds ([`Entry`]) and what each entry costs the bound.
//!
//! A room that has several events for all its subscribers at once (a burst of posts
//! applied in one pass) builds them once as [`SharedEvents`] and gives every subscriber
//! the same one: a fan-out to a thousand subscribers then writes a thousand entries, not a
//! thousand times the burst, and each subscriber's copy of a message is made by its own
//! session, as it takes it ([`super::queue`] unpacks a shared batch event by event).

use std::sync::Arc;

use crate::event::{Event, PresenceBatch};
use crate::model::ChatMessage;

/// One event as a queue holds it: a message or a presence batch as the shared pointer it
/// already is, any other event boxed. Entries stay 16 bytes where an `Event` takes 80,
/// and messages and presence batches, what a room fans out to every follower, are queued
/// without an allocation.
#[derive(Debug, Clone)]
pub(crate) enum Queued {
    Posted(Arc<ChatMessage>),
    Presence(Arc<PresenceBatch>),
    Other(Box<Event>),
}

impl From<Event> for Queued {
    fn from(event: Event) -> Self {
        match event {
            Event::Posted(message) => Queued::Posted(message),
            Event::PresenceBatch(batch) => Queued::Presence(batch),
            other => Queued::Other(Box::new(other)),
        }
    }
}

impl From<Queued> for Event {
    fn from(queued: Queued) -> Self {
        match queued {
            Queued::Posted(message) => Event::Posted(message),
            Queued::Presence(batch) => Event::PresenceBatch(batch),
            Queued::Other(event) => *event,
        }
    }
}

/// The size of one entry of a queue's buffer.
const ENTRY: usize = std::mem::size_of::<Entry>();

impl Queued {
    /// The bytes this event keeps alive: its entry, and for a message its text and author
    /// (shared with other sessions, but kept for as long as this one holds it). Other
    /// events are small and counted by their size with a little for their names.
    pub(crate) fn cost(&self) -> usize {
        match self {
            Queued::Posted(m) => ENTRY + message_cost(m),
            Queued::Presence(batch) => ENTRY + batch.cost(),
            Queued::Other(event) => match &**event {
                Event::Edited(m) | Event::Reacted(m) => {
                    ENTRY + std::mem::size_of::<Event>() + message_cost(m)
                }
                _ => ENTRY + std::mem::size_of::<Event>() + 64,
            },
        }
    }
}

/// What one message keeps alive: its text, its author's name and its reactions.
fn message_cost(m: &ChatMessage) -> usize {
    std::mem::size_of::<ChatMessage>() + m.text.len() + m.author.name.len() + m.reactions.cost()
}

/// Events a room gives every one of its subscribers, in order, built once.
#[derive(Debug)]
pub(crate) struct SharedEvents {
    pub(super) events: Vec<Queued>,
    /// What the events cost a queue that holds them all ([`Queued::cost`]).
    cost: usize,
}

impl SharedEvents {
    pub(crate) fn new(events: Vec<Queued>) -> Arc<Self> {
        let cost = events.iter().map(Queued::cost).sum();
        Arc::new(SharedEvents { events, cost })
    }
}

/// One entry of a session's queue: an event, or a batch shared with other sessions.
#[derive(Debug)]
pub(crate) enum Entry {
    One(Queued),
    Shared(Arc<SharedEvents>),
}

impl From<Queued> for Entry {
    fn from(event: Queued) -> Self {
        Entry::One(event)
    }
}

impl Entry {
    /// The bytes this entry keeps alive. A shared batch counts whole in every queue that
    /// holds it: it stays alive for as long as the slowest of them.
    pub(crate) fn cost(&self) -> usize {
        match self {
            Entry::One(event) => event.cost(),
            Entry::Shared(shared) => shared.cost,
        }
    }

    /// How many events it holds.
    pub(crate) fn len(&self) -> usize {
        match self {
            Entry::One(_) => 1,
            Entry::Shared(shared) => shared.events.len(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::test_message;

    #[test]
    fn an_entry_stays_two_words() {
        // Every event of every subscriber passes through one: an entry that grows costs
        // memory and copying per delivery.
        assert!(std::mem::size_of::<Entry>() <= 16);
        assert!(std::mem::size_of::<Queued>() <= 16);
    }

    #[test]
    fn a_message_costs_its_text_and_author_not_one_slot() {
        let short = Queued::Posted(test_message(1)).cost();
        let mut long = (*test_message(2)).clone();
        long.text = "x".repeat(4096);
        assert_eq!(Queued::Posted(Arc::new(long)).cost(), short - 2 + 4096);
    }

    #[test]
    fn a_shared_batch_costs_what_its_events_cost() {
        let events: Vec<Queued> = (1..=3).map(|n| Queued::Posted(test_message(n))).collect();
        let each: usize = events.iter().map(Queued::cost).sum();
        let shared = Entry::Shared(SharedEvents::new(events));
        assert_eq!((shared.cost(), shared.len()), (each, 3));
    }
}
