//! The end of a run, and its checkpoints: every fault healed, every client back and
//! joined, and the wait (bounded) until each has caught up with the store; then one more
//! message per room, which every client must get live (after every deletion before it),
//! and the wait again.

use std::time::{Duration, Instant};

use crate::client::Entry;
use crate::world::{patient, Kind, World};

impl World {
    pub async fn settle(&mut self) {
        #[cfg(feature = "redis")]
        self.redis_up();
        self.heal_all().await;
        let patience = match self.kind {
            Kind::Redis => Duration::from_secs(20),
            _ => Duration::from_secs(5),
        };
        self.note("settling".into());
        self.land_in_flight().await;
        self.converge(patience, "after the last operation").await;
        for room in 0..self.rooms.len() {
            self.last_post(room, patience).await;
        }
        self.converge(patience, "after one more message per room")
            .await;
    }

    /// Settles, and marks in every online client's log what it must show by now.
    pub async fn checkpoint(&mut self) {
        self.settle().await;
        let mut first = Vec::new();
        for room in 0..self.rooms.len() {
            match self.stored(room).await {
                Ok(s) => first.push(s.messages.first().map_or(s.last_id + 1, |m| m.id)),
                Err(e) => return self.problem(format!("the store cannot be read: {e}")),
            }
        }
        self.drain_all().await;
        let clock = self.truth.clock;
        for c in self.clients.iter_mut().filter(|c| c.online()) {
            let first = first.clone();
            c.log.push(Entry::Checkpoint { clock, first });
        }
        self.note(format!("checkpoint at deletion {clock}"));
    }

    /// Brings every client back (reconnecting, joining, rejoining after a gap) until each
    /// has every room it follows up to the store's last id, or `patience` runs out.
    async fn converge(&mut self, patience: Duration, when: &str) {
        let deadline = Instant::now() + patience;
        loop {
            self.drain_all().await;
            if self.running().is_empty() {
                self.start_node(0).await;
            }
            for ci in 0..self.clients.len() {
                if !self.clients[ci].online() {
                    if let Some(slot) = self.rng.pick(&self.running()) {
                        self.reconnect(ci, slot).await;
                    }
                    continue;
                }
                let c = &self.clients[ci];
                let missing: Vec<usize> = c
                    .rooms
                    .iter()
                    .copied()
                    .filter(|room| !c.joined.contains(room) || c.gapped.contains(room))
                    .collect();
                for room in missing {
                    let after = self.clients[ci].after(room, false);
                    self.join(ci, room, after).await;
                }
            }
            let lagging = self.lagging().await;
            if lagging.is_empty() {
                return;
            }
            if Instant::now() > deadline {
                let lagging = lagging.join("; ");
                self.problem(format!(
                    "no convergence {when} within {patience:?}: {lagging}"
                ));
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Who has not caught up yet, and where: a client has caught up with a room when it
    /// has everything up to the store's last id, but for the newest ids deleted meanwhile
    /// (a room that missed them has nothing to tell).
    async fn lagging(&mut self) -> Vec<String> {
        let mut lasts = Vec::new();
        for room in 0..self.rooms.len() {
            match self.stored(room).await {
                Ok(stored) => lasts.push(stored.last_id),
                Err(e) => return vec![format!("the store cannot be read: {e}")],
            }
        }
        let mut lagging = Vec::new();
        for c in &self.clients {
            if !c.online() {
                lagging.push(format!("{} offline", c.name));
                continue;
            }
            for room in &c.rooms {
                let vouched = c.vouched.get(room).copied().unwrap_or(0);
                if !c.joined.contains(room) {
                    lagging.push(format!("{} not in c{room}", c.name));
                } else if !self.truth.caught_up(*room, vouched, lasts[*room]) {
                    let node = c.node;
                    let last = lasts[*room];
                    lagging.push(format!(
                        "{} on node {node} has c{room} up to {vouched} of {last}",
                        c.name
                    ));
                }
            }
        }
        lagging
    }

    /// One more message in `room`, retried while the store is coming back.
    async fn last_post(&mut self, room: usize, patience: Duration) {
        let deadline = Instant::now() + patience;
        loop {
            let joined: Vec<usize> = (0..self.clients.len())
                .filter(|ci| {
                    let c = &self.clients[*ci];
                    c.online() && c.joined.contains(&room)
                })
                .collect();
            let Some(ci) = self.rng.pick(&joined) else {
                return;
            };
            let text = self.next_text();
            let session = self.clients[ci].session.as_ref().unwrap();
            let outcome = patient(session.post(self.rooms[room].as_str(), text.clone())).await;
            let stored = matches!(outcome, Some(Ok(_)));
            self.posted(ci, room, &text, outcome);
            if stored || Instant::now() > deadline {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}
