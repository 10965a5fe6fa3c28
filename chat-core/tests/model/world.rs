//! `World`: the nodes, the store they share, the clients, the model and the trace of one
//! seeded run. `ops.rs` draws the operations; this file sets the world up, starts and
//! stops nodes, reads the store, and brings everything back together at the end
//! (`settle`), bounded in time.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use crate::client::{Client, Entry};
#[cfg(feature = "redis")]
use crate::common::redis_server::RedisServer;
use crate::lossy::{LossyBroker, Snapshot};
use crate::{rng::Rng, truth::Truth};
use chat_core::broker::Stored;
use chat_core::{
    Broker, ChatError, Engine, Limits, Login, MemoryBroker, MessageId, PendingPost, Rate, Room,
};

/// Longest any single call may take before the run reports it as hung.
const CALL_PATIENCE: Duration = Duration::from_secs(15);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Engines sharing one `MemoryBroker`: nothing is ever lost, so no gap is needed
    /// beyond what eviction explains.
    Memory,
    /// The same, with each node's feed cut now and then (`LossyBroker`).
    Lossy,
    /// Engines sharing a real `redis-server`, whose pub/sub connections are cut and which
    /// is restarted (append-only, synced on every write).
    Redis,
}

pub enum Store {
    Memory(Arc<MemoryBroker>),
    #[cfg(feature = "redis")]
    Redis {
        server: RedisServer,
        /// A broker of the test's own, to read what Redis stores.
        auditor: Option<chat_core::RedisBroker>,
    },
}

pub struct Node {
    pub engine: Engine,
    pub lossy: Option<Arc<LossyBroker>>,
}

#[derive(Debug, Default)]
pub struct Stats {
    pub posts: usize,
    pub unsure: usize,
    pub deletes: usize,
    /// `Event::Gap`s received.
    pub gaps: usize,
    /// Sessions the engine closed as slow consumers.
    pub slow: usize,
    pub gap_joins: usize,
    pub reconnects: usize,
    pub stops: usize,
    pub cuts: usize,
    #[cfg_attr(not(feature = "redis"), allow(dead_code))]
    pub restarts: usize,
}

pub struct World {
    pub kind: Kind,
    pub rng: Rng,
    pub limits: Limits,
    /// The channels, by case-folded name; a room is its index here.
    pub rooms: Vec<String>,
    /// Node slots; `None` while that node is stopped.
    pub nodes: Vec<Option<Node>>,
    pub clients: Vec<Client>,
    pub truth: Truth,
    pub store: Store,
    pub trace: Vec<String>,
    pub problems: Vec<String>,
    pub stats: Stats,
    /// Operations left before a stopped Redis comes back.
    #[cfg_attr(not(feature = "redis"), allow(dead_code))]
    pub redis_down: usize,
    /// Posts handed to their rooms and not answered yet (client, room, text), as a
    /// transport's pipeline holds them while it goes on.
    pub in_flight: Vec<(usize, usize, String, PendingPost)>,
    /// Nodes whose feed is cut (lossy variant), with the operations left until it comes
    /// back; then nodes whose rooms wait for their resynchronisation.
    pub cuts: Vec<(usize, usize)>,
    pub resyncs: Vec<(usize, usize, Option<Snapshot>)>,
    texts: u64,
    born: std::time::Instant,
}

/// `fut`, or `None` when it takes longer than `CALL_PATIENCE`.
pub async fn patient<T>(fut: impl Future<Output = T>) -> Option<T> {
    tokio::time::timeout(CALL_PATIENCE, fut).await.ok()
}

impl World {
    /// A world of `nodes` nodes (all started), one or two channels and three to six
    /// clients following them. `None` when the store cannot be had (no `redis-server`,
    /// outside CI).
    pub async fn new(kind: Kind, seed: u64, nodes: usize) -> Option<World> {
        let mut rng = Rng::new(seed);
        let mut limits = Limits::default();
        // A short history half the time, so that eviction, trimming and gaps happen; a
        // longer one otherwise, so that a deletion a client missed is still in the window
        // at the next checkpoint.
        limits.history = match rng.chance(50) {
            true => rng.between(3, 6),
            false => rng.between(10, 30),
        } as usize;
        limits.message_rate = Rate::new(10_000, 10_000.0);
        limits.room_idle = Duration::from_millis(rng.between(20, 200));
        let store = match kind {
            Kind::Memory | Kind::Lossy => Store::Memory(Arc::new(MemoryBroker::new(&limits))),
            #[cfg(feature = "redis")]
            Kind::Redis => Store::Redis {
                server: RedisServer::start(true)?,
                auditor: None,
            },
            #[cfg(not(feature = "redis"))]
            Kind::Redis => return None,
        };
        let rooms: Vec<String> = (0..rng.between(1, 2)).map(|i| format!("c{i}")).collect();
        let mut world = World {
            kind,
            rng,
            limits,
            truth: Truth::new(rooms.len()),
            rooms,
            nodes: (0..nodes).map(|_| None).collect(),
            clients: Vec::new(),
            store,
            trace: Vec::new(),
            problems: Vec::new(),
            stats: Stats::default(),
            redis_down: 0,
            in_flight: Vec::new(),
            cuts: Vec::new(),
            resyncs: Vec::new(),
            texts: 0,
            born: std::time::Instant::now(),
        };
        for slot in 0..nodes {
            assert!(world.start_node(slot).await, "node {slot} starts");
        }
        let first = world.engine(0).clone();
        for room in &world.rooms {
            first.create_channel(room).await.expect("channel created");
        }
        for i in 0..world.rng.between(3, 6) as usize {
            let node = world.rng.below(nodes);
            let name = format!("u{i}");
            let session = world
                .engine(node)
                .connect(Login::Name(name.clone()))
                .await
                .expect("client connects");
            world.clients.push(Client::new(name, session, node));
            for room in 0..world.rooms.len() {
                if room == 0 || world.rng.chance(50) {
                    world.join(i, room, None).await;
                }
            }
        }
        world.note(format!(
            "{kind:?}: {nodes} nodes, rooms {:?}, {} clients, history {}, room_idle {:?}",
            world.rooms,
            world.clients.len(),
            world.limits.history,
            world.limits.room_idle
        ));
        Some(world)
    }

    pub fn note(&mut self, line: String) {
        if std::env::var("MODEL_TRACE").as_deref() == Ok("live") {
            eprintln!("  {:>8.3?} {line}", self.born.elapsed());
        }
        self.trace.push(line);
    }

    pub fn problem(&mut self, what: String) {
        self.note(format!("PROBLEM: {what}"));
        self.problems.push(what);
    }

    /// Whether `e` is an outcome the variant allows: only Redis may be unreachable.
    pub fn tolerable(&self, e: &ChatError) -> bool {
        self.kind == Kind::Redis && e.code() == "unavailable"
    }

    pub fn next_text(&mut self) -> String {
        self.texts += 1;
        format!("p{}", self.texts)
    }

    pub fn engine(&self, slot: usize) -> &Engine {
        &self.nodes[slot].as_ref().expect("a running node").engine
    }

    pub fn running(&self) -> Vec<usize> {
        (0..self.nodes.len())
            .filter(|i| self.nodes[*i].is_some())
            .collect()
    }

    pub fn room_value(&self, room: usize) -> Room {
        Room::Channel(chat_core::validate::channel_name(&self.rooms[room], &self.limits).unwrap())
    }

    /// Starts the node in `slot`; false when Redis is down (any other failure is a problem).
    pub async fn start_node(&mut self, slot: usize) -> bool {
        let builder = Engine::builder()
            .limits(self.limits.clone())
            .room_workers(1);
        let (builder, lossy) = match &self.store {
            Store::Memory(shared) if self.kind == Kind::Lossy => {
                let lossy = LossyBroker::new(shared.clone());
                (builder.broker(lossy.clone()), Some(lossy))
            }
            Store::Memory(shared) => (builder.broker(shared.clone()), None),
            #[cfg(feature = "redis")]
            Store::Redis { server, .. } => (builder.redis(server.url()), None),
        };
        match patient(builder.start()).await {
            Some(Ok(engine)) => {
                self.nodes[slot] = Some(Node { engine, lossy });
                self.note(format!("node {slot} started"));
                true
            }
            Some(Err(e)) if self.tolerable(&e) => {
                self.note(format!("node {slot} cannot start: {e}"));
                false
            }
            Some(Err(e)) => {
                self.problem(format!("node {slot} failed to start: {e}"));
                false
            }
            None => {
                self.problem(format!("node {slot} start hung"));
                false
            }
        }
    }

    /// Stops the node in `slot`; its clients see `Disconnected` and are gone.
    pub async fn stop_node(&mut self, slot: usize) {
        if self.nodes[slot].is_none() {
            return;
        }
        // Posts in flight are answered first: stopping under them would leave them unsure.
        self.land_in_flight().await;
        let Some(node) = self.nodes[slot].take() else {
            return;
        };
        self.cuts.retain(|(s, _)| *s != slot);
        self.resyncs.retain(|(s, _, _)| *s != slot);
        self.drain_all().await;
        if patient(node.engine.shutdown()).await.is_none() {
            self.problem(format!("node {slot} shutdown hung"));
        }
        for c in self
            .clients
            .iter_mut()
            .filter(|c| c.online() && c.node == slot)
        {
            c.drain(&self.rooms);
            c.end("node stopped");
        }
        self.note(format!("node {slot} stopped"));
    }

    /// Every client takes its events; each gap is noted with where the store's window
    /// starts now, to tell a gap the store could not fill from a needless one.
    pub async fn drain_all(&mut self) {
        let mut gaps = Vec::new();
        for (ci, c) in self.clients.iter_mut().enumerate() {
            let from = c.log.len();
            c.drain(&self.rooms);
            for (i, entry) in c.log.iter().enumerate().skip(from) {
                if let Entry::Gap { room, .. } = entry {
                    gaps.push((ci, i, *room));
                }
            }
        }
        for (ci, i, room) in gaps {
            let first = self.store_first(room).await;
            if let Entry::Gap { store_first, .. } = &mut self.clients[ci].log[i] {
                *store_first = first;
            }
        }
    }

    /// Counts what the clients' logs show.
    pub fn tally(&mut self) {
        let logs = self.clients.iter().flat_map(|c| &c.log);
        self.stats.gaps = logs.filter(|e| matches!(e, Entry::Gap { .. })).count();
        let ends = self.clients.iter().flat_map(|c| &c.ended);
        self.stats.slow = ends.filter(|why| **why == "slow_consumer").count();
    }

    /// What the store holds for `room` now.
    pub async fn stored(&mut self, room: usize) -> Result<Stored, ChatError> {
        let value = self.room_value(room);
        match &mut self.store {
            Store::Memory(shared) => shared.stored(&value).await,
            #[cfg(feature = "redis")]
            Store::Redis { server, auditor } => {
                if auditor.is_none() {
                    *auditor =
                        Some(chat_core::RedisBroker::connect(&server.url(), &self.limits).await?);
                }
                auditor.as_ref().unwrap().stored(&value).await
            }
        }
    }

    /// The first id the store keeps for `room` (the next one when it keeps none).
    pub async fn store_first(&mut self, room: usize) -> Option<MessageId> {
        let stored = self.stored(room).await.ok()?;
        Some(stored.messages.first().map_or(stored.last_id + 1, |m| m.id))
    }

    /// Client `ci` joins `room` (resuming after `after`) and logs the reply.
    pub async fn join(&mut self, ci: usize, room: usize, after: Option<MessageId>) -> bool {
        let c = &self.clients[ci];
        let Some(session) = &c.session else {
            return false;
        };
        let (name, node) = (c.name.clone(), c.node);
        let result = patient(session.join(self.rooms[room].as_str(), after)).await;
        match result {
            Some(Ok(joined)) => {
                let first = match self.kind {
                    Kind::Memory => self.store_first(room).await,
                    _ => None,
                };
                let ids: Vec<MessageId> = joined.messages.iter().map(|m| m.id).collect();
                self.note(format!(
                    "{name} joins c{room} on node {node} after {after:?}: {ids:?} gap {} deleted {:?} last {}",
                    joined.gap, joined.deleted, joined.last_id
                ));
                self.stats.gap_joins += usize::from(joined.gap);
                self.clients[ci].record_join(room, after, &joined, first);
                true
            }
            Some(Err(e)) if self.tolerable(&e) => {
                self.note(format!("{name} joins c{room}: {e}"));
                false
            }
            Some(Err(e)) => {
                self.problem(format!("{name} could not join c{room} on node {node}: {e}"));
                false
            }
            None => {
                self.problem(format!("{name} joining c{room} hung"));
                false
            }
        }
    }

    /// Client `ci` connects again (resuming its user) on `slot`, and joins its rooms.
    pub async fn reconnect(&mut self, ci: usize, slot: usize) -> bool {
        self.clients[ci].end("dropped");
        let token = self.clients[ci].token.clone();
        let name = self.clients[ci].name.clone();
        let result = patient(self.engine(slot).connect(Login::Resume(token))).await;
        match result {
            Some(Ok(session)) => {
                let c = &mut self.clients[ci];
                c.session = Some(session);
                c.node = slot;
                self.stats.reconnects += 1;
                self.note(format!("{name} reconnects on node {slot}"));
                let rooms: Vec<usize> = self.clients[ci].rooms.iter().copied().collect();
                for room in rooms {
                    let vouched = self.rng.chance(30);
                    let after = self.clients[ci].after(room, vouched);
                    self.join(ci, room, after).await;
                }
                true
            }
            Some(Err(e)) if self.tolerable(&e) => {
                self.note(format!("{name} cannot reconnect on node {slot}: {e}"));
                false
            }
            Some(Err(e)) => {
                self.problem(format!("{name} could not reconnect on node {slot}: {e}"));
                false
            }
            None => {
                self.problem(format!("{name} reconnecting hung"));
                false
            }
        }
    }
}
