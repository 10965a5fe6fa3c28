//! The model: what each room must hold, as the test's own calls decided it. A post the
//! engine acknowledged has its id; a deletion it acknowledged happened. A call that failed
//! with `unavailable` (the store went away) may or may not have happened: it is kept as
//! unsure, and settled by the first client that sees its effect.
//!
//! Texts are unique per post, so a message seen anywhere names the post it came from.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use chat_core::{ChatMessage, MessageId, UserId};

/// One room's truth.
#[derive(Debug, Default)]
pub struct RoomTruth {
    /// Message id -> the post it holds: acknowledged, or unsure and since seen.
    pub messages: BTreeMap<MessageId, Post>,
    /// Ids whose deletion was acknowledged (or unsure and since seen).
    pub deleted: BTreeSet<MessageId>,
    /// When each acknowledged deletion happened, by the model's clock.
    acked_at: BTreeMap<MessageId, u64>,
    /// Posts that failed as `unavailable`: text -> author.
    unsure_posts: HashMap<String, UserId>,
    /// Deletions that failed as `unavailable`.
    unsure_deletes: BTreeSet<MessageId>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Post {
    pub text: String,
    pub author: UserId,
}

#[derive(Debug, Default)]
pub struct Truth {
    pub rooms: Vec<RoomTruth>,
    /// Counts acknowledged deletions: a checkpoint notes it, to tell the deletions every
    /// client must have heard of by then.
    pub clock: u64,
}

impl Truth {
    pub fn new(rooms: usize) -> Truth {
        Truth {
            rooms: (0..rooms).map(|_| RoomTruth::default()).collect(),
            clock: 0,
        }
    }

    /// The engine acknowledged `message` for the post of `text` by `author`.
    pub fn acked_post(
        &mut self,
        room: usize,
        message: &ChatMessage,
        text: &str,
        author: UserId,
    ) -> Result<(), String> {
        if message.text != text || message.author.id != author {
            return Err(format!(
                "post {text:?} by {author} was acknowledged as {:?} by {} (id {})",
                message.text, message.author.id, message.id
            ));
        }
        let r = &mut self.rooms[room];
        if let Some(before) = r.messages.get(&message.id) {
            return Err(format!(
                "id {} given twice in room {room}: {:?} and {text:?}",
                message.id, before.text
            ));
        }
        if let Some((id, _)) = r.messages.iter().find(|(_, p)| p.text == text) {
            return Err(format!(
                "post {text:?} stored twice: ids {id} and {}",
                message.id
            ));
        }
        let post = Post {
            text: text.to_owned(),
            author,
        };
        r.messages.insert(message.id, post);
        Ok(())
    }

    pub fn unsure_post(&mut self, room: usize, text: &str, author: UserId) {
        self.rooms[room]
            .unsure_posts
            .insert(text.to_owned(), author);
    }

    pub fn acked_delete(&mut self, room: usize, id: MessageId) {
        self.clock += 1;
        self.rooms[room].deleted.insert(id);
        self.rooms[room].acked_at.insert(id, self.clock);
    }

    /// Whether a client that has everything of `room` up to `vouched` lacks nothing up
    /// to `last`: every id in between was deleted.
    pub fn caught_up(&self, room: usize, vouched: MessageId, last: MessageId) -> bool {
        (vouched + 1..=last).all(|id| self.is_deleted(room, id))
    }

    /// Whether the deletion of `id` was acknowledged by the time the clock read `clock`.
    pub fn deleted_by(&self, room: usize, id: MessageId, clock: u64) -> bool {
        self.rooms[room]
            .acked_at
            .get(&id)
            .is_some_and(|at| *at <= clock)
    }

    pub fn unsure_delete(&mut self, room: usize, id: MessageId) {
        self.rooms[room].unsure_deletes.insert(id);
    }

    pub fn is_deleted(&self, room: usize, id: MessageId) -> bool {
        self.rooms[room].deleted.contains(&id)
    }

    /// A client (or the store) shows `message` in `room`: it must be the post the model
    /// knows by that id, or an unsure post seen for the first time (which it then binds).
    pub fn observe(&mut self, room: usize, message: &ChatMessage) -> Result<(), String> {
        let r = &mut self.rooms[room];
        let seen = Post {
            text: message.text.clone(),
            author: message.author.id,
        };
        if let Some(known) = r.messages.get(&message.id) {
            return match *known == seen {
                true => Ok(()),
                false => Err(format!(
                    "id {} shows {:?} by {}, but it holds {:?} by {}",
                    message.id, seen.text, seen.author, known.text, known.author
                )),
            };
        }
        match r.unsure_posts.get(&seen.text) {
            Some(author) if *author == seen.author => {
                r.unsure_posts.remove(&seen.text);
                r.messages.insert(message.id, seen);
                Ok(())
            }
            _ => Err(format!(
                "id {} ({:?} by {}) was never posted",
                message.id, seen.text, seen.author
            )),
        }
    }

    /// Someone is told that `id` was deleted in `room`: it must have been (or be an unsure
    /// deletion, which this settles).
    pub fn observe_deletion(&mut self, room: usize, id: MessageId) -> Result<(), String> {
        let r = &mut self.rooms[room];
        if r.deleted.contains(&id) {
            return Ok(());
        }
        if r.unsure_deletes.remove(&id) {
            r.deleted.insert(id);
            return Ok(());
        }
        let what = match r.messages.get(&id) {
            Some(post) => format!("{:?} by {}, never deleted", post.text, post.author),
            None => "an id the model does not know".into(),
        };
        Err(format!("false deletion of id {id} ({what})"))
    }
}
