//! A model client: one user, the session it has now (if any), the rooms it follows, and
//! everything it was shown, in order: join replies, live messages, deletions, gaps, and
//! the end of each session. The checker reads the log; the client itself only keeps what
//! a real one keeps to come back (its token and the last id it saw per room).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use chat_core::{ChatMessage, Event, Joined, MessageId, Room, Session, UserRef};
use futures_util::FutureExt;

/// What a join returned, as far as the model cares.
#[derive(Debug, Clone)]
pub struct Reply {
    pub messages: Vec<Arc<ChatMessage>>,
    pub gap: bool,
    pub deleted: Vec<MessageId>,
    pub last_id: MessageId,
}

/// One thing a client was shown (or did to its session).
#[derive(Debug, Clone)]
pub enum Entry {
    Joined {
        room: usize,
        after: Option<MessageId>,
        reply: Reply,
        /// The first id the store kept right after the join (lossless variant only), to
        /// tell a needed gap from a needless one.
        store_first: Option<MessageId>,
        node: usize,
    },
    Posted(Arc<ChatMessage>),
    Deleted {
        room: usize,
        id: MessageId,
    },
    Gap {
        room: usize,
        /// The first id the store kept when the client took the event (filled in by
        /// `World::drain_all`; `None` when the store could not be read).
        store_first: Option<MessageId>,
    },
    /// The session ended: dropped by the client, or disconnected by the engine.
    Ended,
    /// Everything was healed and every client caught up (`World::checkpoint`): the
    /// deletions acknowledged by `clock` must have reached the client, for every id from
    /// the store's first kept one in each room (`first`, by room).
    Checkpoint {
        clock: u64,
        first: Vec<MessageId>,
    },
}

pub struct Client {
    pub name: String,
    pub user: UserRef,
    pub token: String,
    pub session: Option<Session>,
    /// The node the current session is on.
    pub node: usize,
    /// Rooms this client follows (it joins them again whenever it comes back).
    pub rooms: BTreeSet<usize>,
    /// Rooms joined by the current session.
    pub joined: BTreeSet<usize>,
    /// Per room: the last message id shown, and the id everything up to which is
    /// accounted for (the last join's `last_id`, or a later live message).
    pub last_msg: BTreeMap<usize, MessageId>,
    pub vouched: BTreeMap<usize, MessageId>,
    /// Rooms with an `Event::Gap` since they were last joined: the client should join again.
    pub gapped: BTreeSet<usize>,
    /// This user's acknowledged messages, oldest first: what it may delete.
    pub own: Vec<(usize, MessageId)>,
    pub log: Vec<Entry>,
    /// Why each session ended, in order.
    pub ended: Vec<&'static str>,
}

impl Client {
    pub fn new(name: String, session: Session, node: usize) -> Client {
        Client {
            user: session.user().clone(),
            token: session.token().expose().to_owned(),
            name,
            session: Some(session),
            node,
            rooms: BTreeSet::new(),
            joined: BTreeSet::new(),
            last_msg: BTreeMap::new(),
            vouched: BTreeMap::new(),
            gapped: BTreeSet::new(),
            own: Vec::new(),
            log: Vec::new(),
            ended: Vec::new(),
        }
    }

    pub fn online(&self) -> bool {
        self.session.is_some()
    }

    /// Takes every event waiting now, without waiting; ends the session when the engine
    /// did. Returns how many were taken.
    pub fn drain(&mut self, rooms: &[String]) -> usize {
        let mut taken = 0;
        while let Some(session) = &mut self.session {
            let Some(event) = session.next_event().now_or_never() else {
                break;
            };
            taken += 1;
            match event {
                Some(Event::Posted(message)) => {
                    if let Some(room) = room_index(&message.room, rooms) {
                        self.last_msg.insert(room, message.id);
                        self.vouched.insert(room, message.id);
                    }
                    self.log.push(Entry::Posted(message));
                }
                Some(Event::Deleted { room, id }) => {
                    if let Some(room) = room_index(&room, rooms) {
                        self.log.push(Entry::Deleted { room, id });
                    }
                }
                Some(Event::Gap { room }) => {
                    if let Some(room) = room_index(&room, rooms) {
                        self.gapped.insert(room);
                        let store_first = None;
                        self.log.push(Entry::Gap { room, store_first });
                    }
                }
                Some(Event::Disconnected(reason)) => self.end(reason.code()),
                None => self.end("closed"),
                Some(_) => {}
            }
        }
        taken
    }

    /// Drops the session (if any); the rooms stay followed, to be joined again.
    pub fn end(&mut self, why: &'static str) {
        if self.session.take().is_some() {
            self.joined.clear();
            self.log.push(Entry::Ended);
            self.ended.push(why);
        }
    }

    /// The `after` to join `room` with: the last message seen, or the last id vouched
    /// for (both are what a client may keep), or nothing for a room never joined.
    pub fn after(&self, room: usize, use_vouched: bool) -> Option<MessageId> {
        match use_vouched {
            true => self.vouched.get(&room).copied(),
            false => self
                .last_msg
                .get(&room)
                .copied()
                .or_else(|| self.vouched.get(&room).map(|_| 0)),
        }
    }

    pub fn record_join(
        &mut self,
        room: usize,
        after: Option<MessageId>,
        joined: &Joined,
        store_first: Option<MessageId>,
    ) {
        let reply = Reply {
            messages: joined.messages.clone(),
            gap: joined.gap,
            deleted: joined.deleted.clone(),
            last_id: joined.last_id,
        };
        if let Some(last) = reply.messages.last() {
            self.last_msg.insert(room, last.id);
        } else if reply.gap || after.is_none() {
            self.last_msg.remove(&room);
        }
        self.vouched.insert(room, reply.last_id);
        self.gapped.remove(&room);
        self.joined.insert(room);
        self.rooms.insert(room);
        let node = self.node;
        self.log.push(Entry::Joined {
            room,
            after,
            reply,
            store_first,
            node,
        });
    }
}

/// The index of a channel among the test's rooms.
pub fn room_index(room: &Room, rooms: &[String]) -> Option<usize> {
    match room {
        Room::Channel(name) => rooms.iter().position(|r| r == name.key()),
        _ => None,
    }
}

impl Entry {
    /// A short form for traces: `+7` a message, `-7` a deletion, `gap`, `end`, and a join
    /// with what it gave.
    pub fn short(&self) -> String {
        match self {
            Entry::Joined {
                room,
                after,
                reply,
                node,
                ..
            } => {
                let ids: Vec<MessageId> = reply.messages.iter().map(|m| m.id).collect();
                let (gap, deleted, last) = (reply.gap, &reply.deleted, reply.last_id);
                format!("[join c{room}@{node} after {after:?}: {ids:?} gap {gap} deleted {deleted:?} last {last}]")
            }
            Entry::Posted(m) => format!("+{}", m.id),
            Entry::Deleted { id, .. } => format!("-{id}"),
            Entry::Gap { room, store_first } => format!("gap(c{room}, store from {store_first:?})"),
            Entry::Ended => "end".into(),
            Entry::Checkpoint { .. } => "checkpoint".into(),
        }
    }
}
