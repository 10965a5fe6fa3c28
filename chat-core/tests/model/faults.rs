//! The store's faults, drawn by `ops.rs`, and their healing: a node's feed cut (lossy
//! variant) and brought back a few operations later, its resynchronisation at once or a
//! little later; Redis pub/sub connections killed (every node's, or one); Redis stopped
//! and started again (its data survives).

#[cfg(feature = "redis")]
use crate::world::Store;
use crate::world::{Kind, World};

impl World {
    /// The store's feed to the nodes breaks: one node's (lossy variant) for a few
    /// operations, or Redis pub/sub connections.
    pub async fn cut_feed(&mut self) {
        self.stats.cuts += 1;
        match self.kind {
            Kind::Lossy => {
                let Some(slot) = self.rng.pick(&self.running()) else {
                    return;
                };
                if let Some(lossy) = &self.nodes[slot].as_ref().unwrap().lossy {
                    lossy.cut();
                    let ops = self.rng.below(10);
                    self.cuts.push((slot, ops));
                    self.note(format!("node {slot}'s feed cut for {ops} operations"));
                }
            }
            #[cfg(feature = "redis")]
            Kind::Redis => {
                if let Store::Redis { server, .. } = &self.store {
                    if !server.is_running() {
                        return;
                    }
                    // Every node's connection, or one node's while the others go on.
                    if self.rng.chance(50) {
                        let killed = server.kill_pubsub();
                        self.note(format!("{killed} pub/sub connections killed"));
                    } else if let Some(id) = self.rng.pick(&server.pubsub_clients()) {
                        let killed = server.kill_client(id);
                        self.note(format!("pub/sub connection {id} killed: {killed}"));
                    }
                }
            }
            _ => {}
        }
    }

    /// Redis stops (as a crash would) and comes back after zero to two operations.
    pub fn restart_store(&mut self) {
        #[cfg(feature = "redis")]
        if let Store::Redis { server, .. } = &mut self.store {
            if server.is_running() {
                server.stop();
                self.stats.restarts += 1;
                self.redis_down = self.rng.below(3);
                let down = self.redis_down;
                self.note(format!("redis stopped for {down} operations"));
                if down == 0 {
                    self.redis_up();
                }
            }
        }
    }

    /// The node in `slot` gets its feed back, and its rooms their stored history: at once,
    /// or a few operations later, read then or read now (older than what the feed
    /// delivers meanwhile).
    async fn reconnect_feed(&mut self, slot: usize) {
        let Some(lossy) = self.nodes[slot].as_ref().and_then(|n| n.lossy.clone()) else {
            return;
        };
        lossy.reconnect();
        let later = self.rng.below(4);
        let read_now = later > 0 && self.rng.chance(50);
        let when = if read_now { "read now" } else { "read then" };
        self.note(format!(
            "node {slot}'s feed back; resync in {later} operations, {when}"
        ));
        match later {
            0 => lossy.resync().await,
            _ => {
                let snapshot = match read_now {
                    true => Some(lossy.snapshot().await),
                    false => None,
                };
                self.resyncs.push((slot, later - 1, snapshot));
            }
        }
    }

    /// Every cut feed comes back and every room is resynchronised now.
    pub async fn heal_all(&mut self) {
        let cut: Vec<usize> = self.cuts.drain(..).map(|(slot, _)| slot).collect();
        let resyncs = std::mem::take(&mut self.resyncs);
        for (slot, _, snapshot) in resyncs {
            if let Some(snapshot) = snapshot {
                snapshot.deliver();
            }
            self.resync_now(slot).await;
        }
        for slot in cut {
            self.resync_now(slot).await;
        }
    }

    async fn resync_now(&mut self, slot: usize) {
        if let Some(lossy) = self.nodes[slot].as_ref().and_then(|n| n.lossy.clone()) {
            lossy.reconnect();
            lossy.resync().await;
            self.note(format!("node {slot}'s feed healed"));
        }
    }

    #[cfg(feature = "redis")]
    pub fn redis_up(&mut self) {
        if let Store::Redis { server, .. } = &mut self.store {
            if !server.is_running() {
                server.spawn();
                self.redis_down = 0;
                self.note("redis started again".into());
            }
        }
    }

    /// Counts the operations down: cut feeds come back, delayed resynchronisations are
    /// sent, a stopped Redis starts again.
    pub async fn advance_faults(&mut self) {
        for (slot, left) in std::mem::take(&mut self.cuts) {
            match left {
                0 => self.reconnect_feed(slot).await,
                _ => self.cuts.push((slot, left - 1)),
            }
        }
        for (slot, left, snapshot) in std::mem::take(&mut self.resyncs) {
            let lossy = self.nodes[slot].as_ref().and_then(|n| n.lossy.clone());
            match (left, lossy, snapshot) {
                (0, _, Some(snapshot)) => snapshot.deliver(),
                (0, Some(lossy), None) => lossy.resync().await,
                (0, None, None) => {}
                (_, _, snapshot) => self.resyncs.push((slot, left - 1, snapshot)),
            }
        }
        #[cfg(feature = "redis")]
        if self.redis_down > 0 {
            self.redis_down -= 1;
            if self.redis_down == 0 {
                self.redis_up();
            }
        }
    }
}
