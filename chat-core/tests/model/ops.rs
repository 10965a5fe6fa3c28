//! The random operations of a run, one at a time, each drawn from the seeded `Rng` and
//! followed by every client taking the events waiting for it: posts (awaited, or left in
//! flight as a transport's pipeline does), deletions of one's own messages, clients coming
//! back (anywhere) and joining with `after`, nodes stopping and starting, pauses, and the
//! store's faults (`faults.rs`).

use std::sync::Arc;
use std::time::Duration;

use chat_core::{ChatError, ChatMessage};
use futures_util::future::join_all;
use futures_util::FutureExt;

use crate::world::{patient, Kind, World};

impl World {
    /// One random operation, then every client drains its events.
    pub async fn step(&mut self) {
        let cut = if self.kind == Kind::Memory { 0 } else { 5 };
        let restart = if self.kind == Kind::Redis { 2 } else { 0 };
        // post, burst, delete, come back, rejoin, follow, pause, stop, start, cut, restart,
        // go away
        let weights = [40, 8, 12, 8, 6, 2, 4, 3, 4, cut, restart, 4];
        let op = match self.running().is_empty() {
            // With every node down nobody can do anything: one comes back.
            true => 8,
            false => self.rng.weighted(&weights),
        };
        match op {
            0 => self.post().await,
            1 => self.burst().await,
            2 => self.delete().await,
            3 => self.come_back().await,
            4 => self.rejoin().await,
            5 => self.follow().await,
            6 => self.pause().await,
            7 => self.stop_random_node().await,
            8 => self.start_random_node().await,
            9 => self.cut_feed().await,
            10 => self.restart_store(),
            _ => self.go_away(),
        }
        self.after_op().await;
    }

    /// What happens between operations: faults heal when their time is up, posts in
    /// flight are answered, clients take their events, and some of those told of a gap
    /// join again (as the web page does).
    pub async fn after_op(&mut self) {
        self.advance_faults().await;
        self.answered_in_flight();
        self.drain_all().await;
        for ci in 0..self.clients.len() {
            let gapped: Vec<usize> = self.clients[ci].gapped.iter().copied().collect();
            for room in gapped {
                if self.rng.chance(50) && self.clients[ci].joined.contains(&room) {
                    let after = self.clients[ci].after(room, false);
                    self.join(ci, room, after).await;
                }
            }
        }
    }

    /// Clients online and the rooms they have joined.
    fn posters(&self) -> Vec<(usize, usize)> {
        let mut all = Vec::new();
        for (ci, c) in self.clients.iter().enumerate().filter(|(_, c)| c.online()) {
            all.extend(c.joined.iter().map(|room| (ci, *room)));
        }
        all
    }

    /// A post, awaited now, or left in flight (answered in a later turn) a quarter of the
    /// time and always on a node whose feed is cut (its answer waits for the feed).
    async fn post(&mut self) {
        let Some((ci, room)) = self.rng.pick(&self.posters()) else {
            return;
        };
        let node = self.clients[ci].node;
        if self.rng.chance(25) || self.cuts.iter().any(|(slot, _)| *slot == node) {
            return self.start_post(ci, room).await;
        }
        let text = self.next_text();
        let session = self.clients[ci].session.as_ref().unwrap();
        let result = patient(session.post(self.rooms[room].as_str(), text.clone())).await;
        self.posted(ci, room, &text, result);
    }

    /// Records the posts in flight that have been answered by now.
    fn answered_in_flight(&mut self) {
        for (ci, room, text, mut pending) in std::mem::take(&mut self.in_flight) {
            match (&mut pending).now_or_never() {
                Some(outcome) => self.posted(ci, room, &text, Some(outcome)),
                None => self.in_flight.push((ci, room, text, pending)),
            }
        }
    }

    /// Waits for every post in flight. A post stored while its node's feed is down is
    /// answered only once the node has it from its feed, so every fault is healed first
    /// (a cut feed, a stopped Redis).
    pub async fn land_in_flight(&mut self) {
        if self.in_flight.is_empty() {
            return;
        }
        self.heal_all().await;
        #[cfg(feature = "redis")]
        self.redis_up();
        let (posts, pending): (Vec<_>, Vec<_>) = std::mem::take(&mut self.in_flight)
            .into_iter()
            .map(|(ci, room, text, pending)| ((ci, room, text), pending))
            .unzip();
        let outcomes = patient(join_all(pending)).await;
        for (i, (ci, room, text)) in posts.into_iter().enumerate() {
            let outcome = outcomes.as_ref().map(|all| all[i].clone());
            self.posted(ci, room, &text, outcome);
        }
    }

    /// Several posts from several clients (or several from one, pipelined) handed to their
    /// rooms at once, answered in later turns.
    async fn burst(&mut self) {
        for _ in 0..self.rng.between(2, 5) {
            let Some((ci, room)) = self.rng.pick(&self.posters()) else {
                return;
            };
            self.start_post(ci, room).await;
        }
    }

    /// Hands a post to its room and goes on; `answered_in_flight` records the outcome.
    async fn start_post(&mut self, ci: usize, room: usize) {
        let text = self.next_text();
        let session = self.clients[ci].session.as_ref().unwrap();
        match session
            .start_post(self.rooms[room].as_str(), text.clone())
            .await
        {
            Ok(pending) => {
                let name = &self.clients[ci].name;
                self.note(format!("{name} hands {text} to c{room}"));
                self.in_flight.push((ci, room, text, pending));
            }
            Err(e) => self.posted(ci, room, &text, Some(Err(e))),
        }
    }

    /// Records what a post of `text` by client `ci` came to.
    pub fn posted(
        &mut self,
        ci: usize,
        room: usize,
        text: &str,
        outcome: Option<Result<Arc<ChatMessage>, ChatError>>,
    ) {
        let (name, author) = (self.clients[ci].name.clone(), self.clients[ci].user.id);
        match outcome {
            Some(Ok(message)) => {
                self.stats.posts += 1;
                self.note(format!("{name} posts {text} in c{room}: id {}", message.id));
                if let Err(e) = self.truth.acked_post(room, &message, text, author) {
                    self.problem(e);
                }
                self.clients[ci].own.push((room, message.id));
            }
            Some(Err(e)) if self.tolerable(&e) => {
                self.stats.unsure += 1;
                self.note(format!("{name} posts {text} in c{room}: {e}"));
                self.truth.unsure_post(room, text, author);
            }
            Some(Err(e)) => {
                self.problem(format!("{name} could not post {text} in c{room}: {e}"));
            }
            None => {
                self.problem(format!("{name}'s post {text} in c{room} hung"));
                self.truth.unsure_post(room, text, author);
            }
        }
    }

    /// A client deletes one of its own messages, usually a recent one.
    async fn delete(&mut self) {
        let authors: Vec<usize> = (0..self.clients.len())
            .filter(|ci| {
                let c = &self.clients[*ci];
                c.online() && c.own.iter().any(|(room, _)| c.joined.contains(room))
            })
            .collect();
        let Some(ci) = self.rng.pick(&authors) else {
            return;
        };
        let c = &self.clients[ci];
        let mine: Vec<(usize, u64)> = c
            .own
            .iter()
            .copied()
            .filter(|(room, id)| c.joined.contains(room) && !self.truth.is_deleted(*room, *id))
            .collect();
        let recent = &mine[mine.len().saturating_sub(3)..];
        let pool = if self.rng.chance(80) {
            recent
        } else {
            &mine[..]
        };
        let Some((room, id)) = self.rng.pick(pool) else {
            return;
        };
        let name = c.name.clone();
        let session = c.session.as_ref().unwrap();
        let result = patient(session.delete(self.rooms[room].as_str(), id)).await;
        match result {
            Some(Ok(())) => {
                self.stats.deletes += 1;
                self.note(format!("{name} deletes {id} in c{room}"));
                self.truth.acked_delete(room, id);
            }
            Some(Err(e)) if e.code() == "no_such_message" => {
                self.note(format!("{name} deletes {id} in c{room}: {e}"));
            }
            Some(Err(e)) if self.tolerable(&e) => {
                self.note(format!("{name} deletes {id} in c{room}: {e}"));
                self.truth.unsure_delete(room, id);
            }
            Some(Err(e)) => self.problem(format!("{name} could not delete {id} in c{room}: {e}")),
            None => {
                self.problem(format!("{name}'s deletion of {id} in c{room} hung"));
                self.truth.unsure_delete(room, id);
            }
        }
    }

    /// A client (one that is away, more often than not) drops its session if it has one
    /// and comes back on any running node.
    async fn come_back(&mut self) {
        let away: Vec<usize> = (0..self.clients.len())
            .filter(|ci| !self.clients[*ci].online())
            .collect();
        let ci = match self.rng.pick(&away) {
            Some(ci) if self.rng.chance(70) => ci,
            _ => self.rng.below(self.clients.len()),
        };
        let Some(slot) = self.rng.pick(&self.running()) else {
            return;
        };
        self.reconnect(ci, slot).await;
    }

    /// A client drops its session and stays away until it comes back (an operation, or
    /// the next checkpoint).
    fn go_away(&mut self) {
        let online: Vec<usize> = (0..self.clients.len())
            .filter(|ci| self.clients[*ci].online())
            .collect();
        if let Some(ci) = self.rng.pick(&online) {
            self.clients[ci].end("went away");
            let name = &self.clients[ci].name;
            self.note(format!("{name} goes away"));
        }
    }

    /// A client joins one of its rooms again on the same session, resuming after the last
    /// id it has (or, now and then, from nothing).
    async fn rejoin(&mut self) {
        let online: Vec<usize> = (0..self.clients.len())
            .filter(|ci| self.clients[*ci].online() && !self.clients[*ci].rooms.is_empty())
            .collect();
        let Some(ci) = self.rng.pick(&online) else {
            return;
        };
        let rooms: Vec<usize> = self.clients[ci].rooms.iter().copied().collect();
        let room = self.rng.pick(&rooms).unwrap();
        let after = match self.rng.below(20) {
            0 => None,
            n => self.clients[ci].after(room, n % 2 == 0),
        };
        self.join(ci, room, after).await;
    }

    /// A client starts following a room it did not follow.
    async fn follow(&mut self) {
        let mut choices = Vec::new();
        for (ci, c) in self.clients.iter().enumerate().filter(|(_, c)| c.online()) {
            choices.extend(
                (0..self.rooms.len())
                    .filter(|room| !c.rooms.contains(room))
                    .map(|room| (ci, room)),
            );
        }
        if let Some((ci, room)) = self.rng.pick(&choices) {
            self.join(ci, room, None).await;
        }
    }

    /// Lets deliveries, idle rooms and reconnections run.
    async fn pause(&mut self) {
        let ms = self.rng.between(1, 25);
        self.note(format!("pause {ms} ms"));
        tokio::time::sleep(Duration::from_millis(ms)).await;
    }

    async fn stop_random_node(&mut self) {
        if let Some(slot) = self.rng.pick(&self.running()) {
            self.stats.stops += 1;
            self.stop_node(slot).await;
        }
    }

    async fn start_random_node(&mut self) {
        let stopped: Vec<usize> = (0..self.nodes.len())
            .filter(|i| self.nodes[*i].is_none())
            .collect();
        if let Some(slot) = self.rng.pick(&stopped) {
            self.start_node(slot).await;
        }
    }
}
