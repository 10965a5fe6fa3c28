//! `RegistryActor`: the engine's directory on this node. Knows the channels (and which
//! actor serves each, while one runs), the private rooms, the connected sessions with the
//! rooms each follows, and each user's flood buckets; asks the broker about users, names
//! and what other nodes created.
//!
//! Sessions ask it to connect, to find or create a channel, and to open a private
//! conversation (`requests.rs`); after that they talk to the rooms directly, so the
//! registry is never on the path of a message. It starts room actors on the room workers
//! round-robin, starts them again after they stop (idle, or failed), and unsubscribes a
//! closed session from its rooms. Requests that wait on the broker are atomic
//! (`AtomicResponse`): no other request runs in between, so checks and updates cannot
//! interleave.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::prelude::*;
use actix_rt::ArbiterHandle;
use chrono::{DateTime, Utc};
use tokio::sync::mpsc;

use super::rate::UserBuckets;
use crate::broker::{new_epoch, Broker, ClusterEvent, NodeId};
use crate::delivery::queue::{self, QueueReceiver};
use crate::delivery::{CloseCause, SessionClosed, Subscriber};
use crate::event::{DisconnectReason, Event};
use crate::identity::Identity;
use crate::limits::Limits;
use crate::model::{ChannelInfo, ChannelName, Room, RoomKey, SessionId, UserId, UserRef};
use crate::room::{
    post_handoff, PostHandoff, RoomActor, RoomAddr, RoomStats, RoomStopped, Subscribe, Unsubscribe,
};
use crate::telemetry;

/// How often connected users are reported to the broker (which keeps their names held
/// and forgets expired users), and idle flood buckets are dropped: every minute, or twice
/// per `Limits::name_hold` when that is shorter, so a connected user's hold never lapses.
const KEEP_ALIVE_INTERVAL: Duration = Duration::from_secs(60);

/// A user's flood buckets outlive their sessions this long, so reconnecting does not
/// refill them.
const BUCKET_LINGER: Duration = Duration::from_secs(600);

/// A channel known on this node, and its actor while one runs.
pub(super) struct ChannelEntry {
    pub(super) name: ChannelName,
    pub(super) addr: Option<RoomAddr>,
    pub(super) stats: Arc<RoomStats>,
    pub(super) created_at: DateTime<Utc>,
}

impl ChannelEntry {
    pub(super) fn info(&self) -> ChannelInfo {
        let last = self.stats.last_activity_ms.load(Ordering::Relaxed);
        ChannelInfo {
            name: self.name.clone(),
            members: self.stats.members.load(Ordering::Relaxed),
            created_at: self.created_at,
            last_activity: DateTime::from_timestamp_millis(last)
                .filter(|_| last > 0)
                .unwrap_or(self.created_at),
        }
    }
}

pub(super) struct UserEntry {
    pub(super) buckets: Arc<UserBuckets>,
    pub(super) sessions: Vec<SessionId>,
    pub(super) last_seen: Instant,
}

/// A connected session and the rooms it follows, so that closing it unsubscribes it.
pub(super) struct SessionEntry {
    pub(super) subscriber: Arc<Subscriber>,
    pub(super) rooms: HashMap<RoomKey, RoomAddr>,
}

/// What a successful connection gets.
pub(crate) struct Connected {
    pub(crate) subscriber: Arc<Subscriber>,
    pub(crate) events: QueueReceiver,
    pub(crate) identity: Identity,
    pub(crate) buckets: Arc<UserBuckets>,
}

/// The directory actor; one per engine.
pub(crate) struct RegistryActor {
    /// This node's id in the cluster: random, new each time the engine starts.
    pub(super) node: NodeId,
    /// The nodes alive at the last heartbeat.
    pub(super) live: HashSet<NodeId>,
    pub(super) limits: Arc<Limits>,
    pub(super) broker: Arc<dyn Broker>,
    /// The room workers, each with the handoff that carries posts to it.
    workers: Vec<(ArbiterHandle, Arc<PostHandoff>)>,
    next_worker: usize,
    pub(super) channels: HashMap<Arc<str>, ChannelEntry>,
    pub(super) directs: HashMap<(UserId, UserId), (Room, RoomAddr)>,
    pub(super) sessions: HashMap<SessionId, SessionEntry>,
    pub(super) users: HashMap<UserId, UserEntry>,
    next_session: u64,
    pub(super) shutting_down: bool,
}

impl RegistryActor {
    pub(crate) fn new(
        limits: Arc<Limits>,
        broker: Arc<dyn Broker>,
        arbiters: Vec<ArbiterHandle>,
    ) -> Self {
        RegistryActor {
            node: Arc::from(new_epoch()),
            live: HashSet::new(),
            limits,
            broker,
            workers: Self::or_here(arbiters)
                .into_iter()
                .map(|arbiter| {
                    let handoff = post_handoff(&arbiter);
                    (arbiter, handoff)
                })
                .collect(),
            next_worker: 0,
            channels: HashMap::new(),
            directs: HashMap::new(),
            sessions: HashMap::new(),
            users: HashMap::new(),
            next_session: 1,
            shutting_down: false,
        }
    }

    /// The room workers; with none given, the rooms run on the registry's own thread.
    fn or_here(arbiters: Vec<ArbiterHandle>) -> Vec<ArbiterHandle> {
        if arbiters.is_empty() {
            vec![Arbiter::current()]
        } else {
            arbiters
        }
    }

    /// Starts the actor for `room` on the next worker, so rooms spread over the cores.
    fn start_room(
        &mut self,
        room: Room,
        stats: Arc<RoomStats>,
        me: Recipient<RoomStopped>,
    ) -> RoomAddr {
        let actor = RoomActor::new(
            room,
            self.node.clone(),
            self.broker.clone(),
            self.limits.clone(),
            stats,
            me,
        );
        let (arbiter, handoff) = &self.workers[self.next_worker % self.workers.len()];
        self.next_worker = self.next_worker.wrapping_add(1);
        RoomAddr::new(
            RoomActor::start_in_arbiter(arbiter, move |_| actor),
            handoff.clone(),
        )
    }

    /// Makes a channel known here (once); tells the local sessions when `announce`. Its
    /// actor starts when someone first asks for the room.
    pub(super) fn add_channel(
        &mut self,
        name: ChannelName,
        created_at: DateTime<Utc>,
        announce: bool,
    ) -> ChannelInfo {
        if let Some(entry) = self.channels.get(&name.key) {
            return entry.info();
        }
        let entry = ChannelEntry {
            name: name.clone(),
            addr: None,
            stats: Arc::new(RoomStats::default()),
            created_at,
        };
        let info = entry.info();
        self.channels.insert(name.key.clone(), entry);
        if announce {
            tracing::info!(channel = %name, "channel created");
            for entry in self.sessions.values() {
                entry
                    .subscriber
                    .deliver(Event::ChannelCreated(info.clone()));
            }
        }
        info
    }

    /// The actor of a known channel, started (again) if none runs; records that `session`
    /// is about to follow it.
    pub(super) fn channel_room(
        &mut self,
        key: &str,
        session: SessionId,
        me: Recipient<RoomStopped>,
    ) -> Option<RoomAddr> {
        let entry = self.channels.get(key)?;
        let running = entry.addr.clone().filter(|addr| addr.connected());
        let addr = match running {
            Some(addr) => addr,
            None => {
                let (name, stats) = (entry.name.clone(), entry.stats.clone());
                let addr = self.start_room(Room::Channel(name), stats, me);
                if let Some(entry) = self.channels.get_mut(key) {
                    entry.addr = Some(addr.clone());
                }
                addr
            }
        };
        if let Some(entry) = self.sessions.get_mut(&session) {
            entry
                .rooms
                .insert(RoomKey::Channel(Arc::from(key)), addr.clone());
        }
        Some(addr)
    }

    /// The private room of a pair, started here (and followed by every local session of
    /// both users) the first time this node needs it; `catch_up` as in `follow_quietly`.
    pub(super) fn direct_room(
        &mut self,
        pair: [UserRef; 2],
        catch_up: bool,
        me: Recipient<RoomStopped>,
    ) -> (Room, RoomAddr) {
        let [a, b] = pair;
        let (a, b) = if a.id <= b.id { (a, b) } else { (b, a) };
        let key = (a.id, b.id);
        if let Some(found) = self.directs.get(&key).filter(|(_, addr)| addr.connected()) {
            return found.clone();
        }
        let room = Room::Direct([a.clone(), b.clone()]);
        let addr = self.start_room(room.clone(), Arc::new(RoomStats::default()), me);
        for user in [a.id, b.id] {
            let sessions = self
                .users
                .get(&user)
                .map(|u| u.sessions.clone())
                .unwrap_or_default();
            for session in sessions {
                self.follow_quietly(session, &room, &addr, catch_up);
            }
        }
        self.directs.insert(key, (room.clone(), addr.clone()));
        (room, addr)
    }

    /// Makes a session follow a private room without asking for its history (the session
    /// asks when it opens the conversation). With `catch_up`, the messages already in the
    /// room are queued to it as events: the room was opened on another node, and they were
    /// posted before this node started following it.
    fn follow_quietly(&mut self, session: SessionId, room: &Room, addr: &RoomAddr, catch_up: bool) {
        let Some(entry) = self.sessions.get_mut(&session) else {
            return;
        };
        entry.rooms.insert(room.key(), addr.clone());
        addr.do_send(Subscribe {
            subscriber: entry.subscriber.clone(),
            after: None,
            deliver_replay: catch_up,
        });
    }

    /// Registers a logged-in client as a session of this node.
    pub(super) fn admit(
        &mut self,
        identity: Identity,
        directs: Vec<[UserRef; 2]>,
        ctx: &mut Context<Self>,
    ) -> Connected {
        let id = SessionId(self.next_session);
        self.next_session += 1;
        let (tx, events) = queue::bounded(queue::Bound {
            hard_bytes: self.limits.session_queue_hard_bytes,
            soft_bytes: self.limits.session_queue_soft_bytes,
            soft_grace: self.limits.session_queue_soft_grace,
        });
        let me = ctx.address();
        let subscriber = Subscriber::new(id, identity.user.clone(), tx, me.clone().recipient());
        let limits = &self.limits;
        let user = self
            .users
            .entry(identity.user.id)
            .or_insert_with(|| UserEntry {
                buckets: Arc::new(UserBuckets::new(limits)),
                sessions: Vec::new(),
                last_seen: Instant::now(),
            });
        user.sessions.push(id);
        let buckets = user.buckets.clone();
        let entry = SessionEntry {
            subscriber: subscriber.clone(),
            rooms: HashMap::new(),
        };
        self.sessions.insert(id, entry);
        telemetry::session_opened();
        for pair in directs {
            let running = self
                .directs
                .get(&sorted_ids(&pair))
                .map(|(room, addr)| (room.clone(), addr.clone()))
                .filter(|(_, addr)| addr.connected());
            match running {
                Some((room, addr)) => self.follow_quietly(id, &room, &addr, false),
                None => {
                    self.direct_room(pair, false, me.clone().recipient());
                }
            }
        }
        tracing::debug!(session = id.0, user = %identity.user.name, "session connected");
        Connected {
            subscriber,
            events,
            identity,
            buckets,
        }
    }

    pub(super) fn stats(&self) -> crate::EngineStats {
        let channel_rooms = self
            .channels
            .values()
            .filter(|c| c.addr.as_ref().is_some_and(|addr| addr.connected()))
            .count();
        let direct_rooms = self.directs.values().filter(|(_, a)| a.connected()).count();
        crate::EngineStats {
            sessions: self.sessions.len(),
            users: self.users.len(),
            channels: self.channels.len(),
            rooms_running: channel_rooms + direct_rooms,
        }
    }

    fn on_cluster_event(&mut self, event: ClusterEvent, ctx: &mut Context<Self>) {
        match event {
            ClusterEvent::ChannelCreated { name, created_at } => {
                self.add_channel(name, created_at, true);
            }
            ClusterEvent::DirectOpened(pair) => {
                let local = pair.iter().any(|u| {
                    self.users
                        .get(&u.id)
                        .is_some_and(|e| !e.sessions.is_empty())
                });
                if local {
                    self.direct_room(pair, true, ctx.address().recipient());
                }
            }
            ClusterEvent::NodeGone(node) if node != self.node => {
                tracing::warn!(%node, "a node stopped beating: its members go offline");
                self.node_gone(node);
            }
            ClusterEvent::NodeGone(_) => {
                // This node was taken for dead: its next beat finds it unknown and
                // announces its shares again.
            }
            ClusterEvent::LoggedOut(user) => self.close_sessions_of(user),
        }
    }

    /// Closes every session of `user` here: they logged out.
    pub(super) fn close_sessions_of(&mut self, user: UserId) {
        let Some(entry) = self.users.get(&user) else {
            return;
        };
        for session in &entry.sessions {
            if let Some(session) = self.sessions.get(session) {
                session
                    .subscriber
                    .close(CloseCause::Engine(DisconnectReason::LoggedOut));
            }
        }
    }

    fn keep_alive(&mut self, ctx: &mut Context<Self>) {
        let now = Instant::now();
        self.users.retain(|_, u| {
            !u.sessions.is_empty() || now.saturating_duration_since(u.last_seen) < BUCKET_LINGER
        });
        let online: Vec<UserId> = self
            .users
            .iter()
            .filter(|(_, u)| !u.sessions.is_empty())
            .map(|(id, _)| *id)
            .collect();
        let broker = self.broker.clone();
        let keep_alive = async move { broker.keep_alive(online).await };
        ctx.spawn(keep_alive.into_actor(self).map(|result, _, _| {
            if let Err(e) = result {
                tracing::warn!(error = %e, "keep-alive not recorded");
            }
        }));
    }
}

fn sorted_ids(pair: &[UserRef; 2]) -> (UserId, UserId) {
    let (a, b) = (pair[0].id, pair[1].id);
    (a.min(b), a.max(b))
}

fn cluster_stream(
    rx: mpsc::UnboundedReceiver<ClusterEvent>,
) -> impl futures_util::Stream<Item = ClusterEvent> {
    futures_util::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|e| (e, rx)) })
}

impl Actor for RegistryActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        ctx.set_mailbox_capacity(1024);
        ctx.add_stream(cluster_stream(self.broker.cluster_events()));
        // Channels created before this node started; nothing else runs until they are in.
        let broker = self.broker.clone();
        let channels = async move { broker.channels().await };
        ctx.wait(
            channels
                .into_actor(self)
                .map(|result, act, _| match result {
                    Ok(all) => {
                        for (name, created_at) in all {
                            act.add_channel(name, created_at, false);
                        }
                    }
                    Err(e) => tracing::warn!(error = %e, "could not load the channel list"),
                }),
        );
        let every = KEEP_ALIVE_INTERVAL.min(self.limits.name_hold / 2);
        ctx.run_interval(every.max(Duration::from_millis(100)), |act, ctx| {
            act.keep_alive(ctx)
        });
        self.heartbeat(ctx);
        ctx.run_interval(self.limits.node_heartbeat, |act, ctx| act.heartbeat(ctx));
    }
}

impl StreamHandler<ClusterEvent> for RegistryActor {
    fn handle(&mut self, event: ClusterEvent, ctx: &mut Context<Self>) {
        self.on_cluster_event(event, ctx);
    }

    fn finished(&mut self, _: &mut Context<Self>) {
        tracing::warn!("the broker's cluster events ended");
    }
}

impl Handler<SessionClosed> for RegistryActor {
    type Result = ();

    /// Unsubscribes the session from every room it follows and ends it with the broker.
    fn handle(&mut self, msg: SessionClosed, _: &mut Context<Self>) {
        let Some(entry) = self.sessions.remove(&msg.session) else {
            return;
        };
        telemetry::session_closed();
        for addr in entry.rooms.into_values() {
            addr.do_send(Unsubscribe {
                session: msg.session,
                parting: false,
            });
        }
        if let Some(user) = self.users.get_mut(&msg.user.id) {
            user.sessions.retain(|s| *s != msg.session);
            user.last_seen = Instant::now();
        }
        self.broker.session_ended(msg.user.id);
        tracing::debug!(session = msg.session.0, "session ended");
    }
}

impl Handler<RoomStopped> for RegistryActor {
    type Result = ();

    /// Forgets a stopped room's actor, unless a newer one already serves the room.
    fn handle(&mut self, msg: RoomStopped, _: &mut Context<Self>) {
        match &msg.room {
            RoomKey::Channel(key) => {
                if let Some(entry) = self.channels.get_mut(key) {
                    if entry.addr.as_deref() == Some(&msg.addr) {
                        entry.addr = None;
                        // Its offline members were forgotten with it.
                        entry.stats.members.store(0, Ordering::Relaxed);
                    }
                }
            }
            RoomKey::Direct(a, b) => {
                if self
                    .directs
                    .get(&(*a, *b))
                    .is_some_and(|(_, addr)| **addr == msg.addr)
                {
                    self.directs.remove(&(*a, *b));
                }
            }
        }
        for entry in self.sessions.values_mut() {
            if entry.rooms.get(&msg.room).map(|a| &**a) == Some(&msg.addr) {
                entry.rooms.remove(&msg.room);
            }
        }
    }
}
