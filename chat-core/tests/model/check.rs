//! The checker: every client's log against the model, and the store against the model.
//!
//! Per client and room it keeps what the client knows: up to which id everything is
//! accounted for (`vouched`), whether a gap was reported since the last message, and
//! which messages it shows. Then:
//! 1. messages seen live come in strictly increasing ids, none twice, each the post the
//!    model knows by that id (text and author);
//! 2. a live message that skips ids the model did not delete must follow an `Event::Gap`
//!    for the room (a room that missed changes tells its followers of what the store can
//!    no longer give), and a gap is needless before ids that were all deleted within the
//!    store's window (the store vouches for them); a join without `gap` leaves out only
//!    ids the model deleted;
//! 3. every id reported deleted (live, or in a join's `deleted`) was deleted; every join's
//!    messages are increasing, consistent with the model and within its `last_id`;
//! 4. after `settle`, every client has each of its rooms up to the store's last id (but
//!    for the newest ids when deleted, which a room that missed them cannot tell); and
//!    at each checkpoint (a `settle` during the run, and the one at the end) it shows no
//!    message within the store's window whose deletion was acknowledged before.
//!
//! On the lossless `MemoryBroker` it is stricter: no `Event::Gap` at all, and a join's
//! `gap` only when the store no longer keeps something after `after`.

use std::collections::{BTreeMap, BTreeSet};

use chat_core::broker::Stored;
use chat_core::MessageId;

use crate::client::{room_index, Entry, Reply};
use crate::truth::Truth;
use crate::world::{Kind, World};

#[derive(Default)]
struct View {
    subscribed: bool,
    vouched: MessageId,
    gap: bool,
    /// The lowest first id the store kept when the pending gaps were taken.
    gap_first: Option<MessageId>,
    shown: BTreeSet<MessageId>,
}

struct Checker<'a> {
    truth: &'a mut Truth,
    exact_gaps: bool,
    problems: Vec<String>,
}

/// Every problem found, the run's own first.
pub async fn check(world: &mut World) -> Vec<String> {
    let mut finals: Vec<Stored> = Vec::new();
    for room in 0..world.rooms.len() {
        match world.stored(room).await {
            Ok(stored) => finals.push(stored),
            Err(e) => {
                world.problem(format!("the store cannot be read at the end: {e}"));
                return world.problems.clone();
            }
        }
    }
    let mut checker = Checker {
        truth: &mut world.truth,
        exact_gaps: world.kind == Kind::Memory,
        problems: Vec::new(),
    };
    for c in &world.clients {
        let views = checker.client(&c.name, &c.log, &world.rooms);
        if c.online() {
            checker.converged(&c.name, &views, &finals);
        }
    }
    checker.store(&finals, world.kind != Kind::Redis);
    let mut problems = world.problems.clone();
    problems.extend(checker.problems);
    problems
}

impl Checker<'_> {
    fn client(&mut self, name: &str, log: &[Entry], rooms: &[String]) -> BTreeMap<usize, View> {
        let mut views: BTreeMap<usize, View> = BTreeMap::new();
        for (i, entry) in log.iter().enumerate() {
            let at = format!("{name}, entry {i}");
            match entry {
                Entry::Ended => views.values_mut().for_each(|v| v.subscribed = false),
                Entry::Joined {
                    room,
                    after,
                    reply,
                    store_first,
                    node,
                } => {
                    let at = format!("{at} (join c{room} on node {node} after {after:?})");
                    let v = views.entry(*room).or_default();
                    self.join(&at, *room, *after, reply, *store_first);
                    let ids = reply.messages.iter().map(|m| m.id);
                    if reply.gap || after.is_none() {
                        v.shown = ids.collect();
                    } else {
                        reply.deleted.iter().for_each(|id| {
                            v.shown.remove(id);
                        });
                        v.shown.extend(ids);
                    }
                    v.vouched = reply.last_id;
                    v.gap = false;
                    v.gap_first = None;
                    v.subscribed = true;
                }
                Entry::Posted(m) => {
                    let Some(room) = room_index(&m.room, rooms) else {
                        continue;
                    };
                    let v = views.entry(room).or_default();
                    let at = format!("{at} (live {} in c{room})", m.id);
                    if let Err(e) = self.truth.observe(room, m) {
                        self.problems.push(format!("{at}: {e}"));
                    }
                    if !v.subscribed {
                        self.problems
                            .push(format!("{at}: not joined in this session"));
                    }
                    let skipped = v.vouched + 1..m.id;
                    let all_deleted = skipped.clone().all(|id| self.truth.is_deleted(room, id));
                    if let (true, false, Some(first)) = (v.gap, skipped.is_empty(), v.gap_first) {
                        if all_deleted && skipped.start >= first {
                            let skipped = self.describe(room, skipped.clone());
                            self.problems.push(format!(
                                "{at}: a gap before {skipped}, all deleted within the store's \
                                 window (from {first}): they are deleted, not lost"
                            ));
                        }
                    }
                    if m.id <= v.vouched {
                        let vouched = v.vouched;
                        self.problems.push(format!(
                            "{at}: seen again or out of order (had everything up to {vouched})"
                        ));
                    } else if !skipped.is_empty() && !v.gap && !all_deleted {
                        let skipped = self.describe(room, skipped);
                        self.problems
                            .push(format!("{at}: skips {skipped} without a gap"));
                    }
                    if m.id > v.vouched {
                        v.vouched = m.id;
                    }
                    v.gap = false;
                    v.gap_first = None;
                    v.shown.insert(m.id);
                }
                Entry::Deleted { room, id } => {
                    let at = format!("{at} (live deletion of {id} in c{room})");
                    if let Err(e) = self.truth.observe_deletion(*room, *id) {
                        self.problems.push(format!("{at}: {e}"));
                    }
                    views.entry(*room).or_default().shown.remove(id);
                }
                Entry::Checkpoint { clock, first } => {
                    for (room, v) in views.iter().filter(|(_, v)| v.subscribed) {
                        let stale: Vec<&MessageId> = v
                            .shown
                            .range(first[*room]..)
                            .filter(|id| self.truth.deleted_by(*room, **id, *clock))
                            .collect();
                        if !stale.is_empty() {
                            self.problems.push(format!(
                                "{at} (checkpoint): still shows deleted {stale:?} in c{room}"
                            ));
                        }
                    }
                }
                Entry::Gap { room, store_first } => {
                    if self.exact_gaps {
                        self.problems.push(format!(
                            "{at}: Event::Gap in c{room}, but this broker loses nothing"
                        ));
                    }
                    let v = views.entry(*room).or_default();
                    v.gap = true;
                    v.gap_first = match (v.gap_first, *store_first) {
                        (Some(a), Some(b)) => Some(a.min(b)),
                        (a, b) => a.or(b),
                    };
                }
            }
        }
        views
    }

    /// Checks one join reply against the model.
    fn join(
        &mut self,
        at: &str,
        room: usize,
        after: Option<MessageId>,
        reply: &Reply,
        store_first: Option<MessageId>,
    ) {
        let (truth, problems, exact_gaps) = (&mut *self.truth, &mut self.problems, self.exact_gaps);
        let ids: Vec<MessageId> = reply.messages.iter().map(|m| m.id).collect();
        for m in &reply.messages {
            if let Err(e) = truth.observe(room, m) {
                problems.push(format!("{at}: {e}"));
            }
        }
        if ids.windows(2).any(|w| w[0] >= w[1]) || ids.last() > Some(&reply.last_id) {
            let last = reply.last_id;
            problems.push(format!(
                "{at}: messages {ids:?} not in order within last id {last}"
            ));
        }
        for id in &reply.deleted {
            if let Err(e) = truth.observe_deletion(room, *id) {
                problems.push(format!("{at}: in `deleted`: {e}"));
            }
        }
        let Some(after) = after else {
            if reply.gap || !reply.deleted.is_empty() {
                problems.push(format!("{at}: a join from nothing has a gap or deletions"));
            }
            return;
        };
        if reply.gap {
            // On the lossless broker a room forgets only what the store evicted, so a
            // gap means the store's first kept id is past `after + 1` (or `after` is
            // from the future, for a room a little behind on another node).
            if let (true, Some(first)) = (exact_gaps, store_first) {
                if after + 1 >= first && after <= reply.last_id {
                    problems.push(format!(
                        "{at}: gap, but the store still keeps everything after {after} (from {first})"
                    ));
                }
            }
            return;
        }
        if ids.first().is_some_and(|first| *first <= after) {
            problems.push(format!("{at}: messages {ids:?} at or before {after}"));
        }
        if let Some(late) = reply.deleted.iter().find(|id| **id > after) {
            problems.push(format!("{at}: `deleted` has {late}, after {after}"));
        }
        let left_out: Vec<MessageId> = (after + 1..=reply.last_id)
            .filter(|id| ids.binary_search(id).is_err() && !truth.is_deleted(room, *id))
            .collect();
        if !left_out.is_empty() {
            problems.push(format!(
                "{at}: leaves out {left_out:?}, not deleted, without a gap (got {ids:?})"
            ));
        }
    }

    /// Check 4: a client online at the end has every room it follows up to the store's
    /// last id (but for the newest ids, when deleted).
    fn converged(&mut self, name: &str, views: &BTreeMap<usize, View>, finals: &[Stored]) {
        for (room, v) in views.iter().filter(|(_, v)| v.subscribed) {
            let last = finals[*room].last_id;
            if !self.truth.caught_up(*room, v.vouched, last) {
                let vouched = v.vouched;
                self.problems.push(format!(
                    "{name}: c{room} only up to {vouched} at the end; the store is at {last}"
                ));
            }
        }
    }

    /// The store against the model: what it keeps is what was posted and not deleted,
    /// and it keeps every such message of its window. Where no call can fail (`exact`),
    /// every id it gave is one the model knows.
    fn store(&mut self, finals: &[Stored], exact: bool) {
        for (room, stored) in finals.iter().enumerate() {
            let kept: BTreeSet<MessageId> = stored.messages.iter().map(|m| m.id).collect();
            for m in &stored.messages {
                if let Err(e) = self.truth.observe(room, m) {
                    self.problems.push(format!("store, c{room}: {e}"));
                }
                if self.truth.is_deleted(room, m.id) {
                    let id = m.id;
                    self.problems
                        .push(format!("store, c{room}: keeps {id}, which was deleted"));
                }
            }
            let first = kept.first().copied().unwrap_or(stored.last_id + 1);
            let r = &self.truth.rooms[room];
            let lost: Vec<&MessageId> = r
                .messages
                .range(first..)
                .map(|(id, _)| id)
                .filter(|id| !kept.contains(id) && !r.deleted.contains(id))
                .collect();
            if !lost.is_empty() {
                self.problems
                    .push(format!("store, c{room}: lost {lost:?} from its window"));
            }
            let unknown = (1..=stored.last_id)
                .filter(|id| !r.messages.contains_key(id))
                .count();
            if exact && unknown > 0 {
                self.problems.push(format!(
                    "store, c{room}: {unknown} of its ids were never acknowledged"
                ));
            }
        }
    }

    /// The ids of `range` with what the model knows of them, for a report.
    fn describe(&self, room: usize, range: std::ops::Range<MessageId>) -> String {
        let r = &self.truth.rooms[room];
        let ids: Vec<String> = range
            .map(|id| match r.messages.get(&id) {
                Some(post) if r.deleted.contains(&id) => format!("{id} ({}, deleted)", post.text),
                Some(post) => format!("{id} ({})", post.text),
                None => format!("{id} (unknown)"),
            })
            .collect();
        format!("[{}]", ids.join(", "))
    }
}
