//! `RegistryActor`: the engine's directory on this node. Knows the channels (and which
//! actor serves each), the private rooms, the connected sessions and each user's flood
//! buckets; asks the broker about users, names and what other nodes created.
//!
//! Sessions ask it to connect, to find or create a channel, and to open a private
//! conversation; after that they talk to the channel actors directly, so the registry is
//! never on the path of a message. It spreads new channel actors over the arbiters
//! round-robin. Requests that wait on the broker are atomic (`AtomicResponse`): no other
//! request runs in between, so checks and updates cannot interleave.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::prelude::*;
use actix_rt::ArbiterHandle;
use chrono::{DateTime, Utc};
use tokio::sync::mpsc;

use crate::broker::{Broker, ClusterEvent};
use crate::channel::{ChannelActor, ChannelStats, Subscribe};
use crate::error::ChatError;
use crate::event::{DisconnectReason, Event};
use crate::identity::{Identity, ResumeToken};
use crate::limits::Limits;
use crate::model::{now_millis, ChannelInfo, ChannelName, Room, SessionId, UserId, UserRef};
use crate::queue::{self, QueueReceiver};
use crate::rate::UserBuckets;
use crate::subscriber::{CloseCause, Subscriber};

/// How often connected users are reported to the broker (which keeps their names held
/// and forgets expired users), and idle flood buckets are dropped: every minute, or twice
/// per `Limits::name_hold` when that is shorter, so a connected user's hold never lapses.
const KEEP_ALIVE_INTERVAL: Duration = Duration::from_secs(60);

/// A user's flood buckets outlive their sessions this long, so reconnecting does not
/// refill them.
const BUCKET_LINGER: Duration = Duration::from_secs(600);

/// A request whose answer waits on the broker.
type Atomic<T> = AtomicResponse<RegistryActor, Result<T, ChatError>>;

struct ChannelEntry {
    name: ChannelName,
    addr: Addr<ChannelActor>,
    stats: Arc<ChannelStats>,
    created_at: DateTime<Utc>,
}

impl ChannelEntry {
    fn info(&self) -> ChannelInfo {
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

struct UserEntry {
    buckets: Arc<UserBuckets>,
    sessions: Vec<SessionId>,
    last_seen: Instant,
}

/// The directory actor; one per engine.
pub(crate) struct RegistryActor {
    limits: Arc<Limits>,
    broker: Arc<dyn Broker>,
    arbiters: Vec<ArbiterHandle>,
    next_arbiter: usize,
    channels: HashMap<Arc<str>, ChannelEntry>,
    directs: HashMap<(UserId, UserId), (Room, Addr<ChannelActor>)>,
    sessions: HashMap<SessionId, Arc<Subscriber>>,
    users: HashMap<UserId, UserEntry>,
    next_session: u64,
    shutting_down: bool,
}

impl RegistryActor {
    pub(crate) fn new(
        limits: Arc<Limits>,
        broker: Arc<dyn Broker>,
        arbiters: Vec<ArbiterHandle>,
    ) -> Self {
        RegistryActor {
            limits,
            broker,
            arbiters,
            next_arbiter: 0,
            channels: HashMap::new(),
            directs: HashMap::new(),
            sessions: HashMap::new(),
            users: HashMap::new(),
            next_session: 1,
            shutting_down: false,
        }
    }

    /// Starts the actor for `room` on the next arbiter, so rooms spread over the cores.
    fn start_room(&mut self, room: Room, stats: Arc<ChannelStats>) -> Addr<ChannelActor> {
        let actor = ChannelActor::new(room, self.broker.clone(), self.limits.clone(), stats);
        if self.arbiters.is_empty() {
            return actor.start();
        }
        let arbiter = &self.arbiters[self.next_arbiter % self.arbiters.len()];
        self.next_arbiter = self.next_arbiter.wrapping_add(1);
        ChannelActor::start_in_arbiter(arbiter, move |_| actor)
    }

    /// Makes a channel known here (once); tells the local sessions when `announce`.
    fn add_channel(
        &mut self,
        name: ChannelName,
        created_at: DateTime<Utc>,
        announce: bool,
    ) -> ChannelInfo {
        if let Some(entry) = self.channels.get(&name.key) {
            return entry.info();
        }
        let stats = Arc::new(ChannelStats::default());
        let addr = self.start_room(Room::Channel(name.clone()), stats.clone());
        let entry = ChannelEntry {
            name: name.clone(),
            addr,
            stats,
            created_at,
        };
        let info = entry.info();
        self.channels.insert(name.key.clone(), entry);
        if announce {
            tracing::info!(channel = %name, "channel created");
            for sub in self.sessions.values() {
                sub.deliver(Event::ChannelCreated(info.clone()));
            }
        }
        info
    }

    fn check_can_create(&self, name: &ChannelName) -> Result<(), ChatError> {
        if self.channels.contains_key(&name.key) {
            return Err(ChatError::ChannelExists(name.to_string()));
        }
        if self.channels.len() >= self.limits.max_channels {
            return Err(ChatError::TooManyChannels(self.limits.max_channels));
        }
        Ok(())
    }

    /// The private room of a pair, started here (and followed by every local session of
    /// both users) the first time this node needs it; `catch_up` as in `follow_quietly`.
    fn direct_room(&mut self, pair: [UserRef; 2], catch_up: bool) -> (Room, Addr<ChannelActor>) {
        let [a, b] = pair;
        let (a, b) = if a.id <= b.id { (a, b) } else { (b, a) };
        let key = (a.id, b.id);
        if let Some(found) = self.directs.get(&key) {
            return found.clone();
        }
        let room = Room::Direct([a.clone(), b.clone()]);
        let addr = self.start_room(room.clone(), Arc::new(ChannelStats::default()));
        for user in [a.id, b.id] {
            let sessions = self
                .users
                .get(&user)
                .map(|u| u.sessions.clone())
                .unwrap_or_default();
            for session in sessions {
                if let Some(sub) = self.sessions.get(&session) {
                    follow_quietly(sub, &room, &addr, catch_up);
                }
            }
        }
        self.directs.insert(key, (room.clone(), addr.clone()));
        (room, addr)
    }

    /// Registers a logged-in client as a session of this node.
    fn admit(
        &mut self,
        identity: Identity,
        directs: Vec<[UserRef; 2]>,
        me: Addr<Self>,
    ) -> Connected {
        let id = SessionId(self.next_session);
        self.next_session += 1;
        let (tx, events) = queue::bounded(self.limits.session_queue);
        let subscriber = Subscriber::new(id, identity.user.clone(), tx, me);
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
        self.sessions.insert(id, subscriber.clone());
        for pair in directs {
            let existed = self.directs.contains_key(&sorted_ids(&pair));
            let (room, addr) = self.direct_room(pair, false);
            if existed {
                follow_quietly(&subscriber, &room, &addr, false);
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

    fn on_cluster_event(&mut self, event: ClusterEvent) {
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
                    self.direct_room(pair, true);
                }
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
        ctx.spawn(
            self.broker
                .keep_alive(online)
                .into_actor(self)
                .map(|result, _, _| {
                    if let Err(e) = result {
                        tracing::warn!(error = %e, "keep-alive not recorded");
                    }
                }),
        );
    }
}

fn sorted_ids(pair: &[UserRef; 2]) -> (UserId, UserId) {
    let (a, b) = (pair[0].id, pair[1].id);
    (a.min(b), a.max(b))
}

/// Makes `sub` follow a private room without asking for its history (the session asks
/// when it opens the conversation). With `catch_up`, the messages already in the room
/// are queued to it as events: the room was opened on another node, and they were
/// posted before this node started following it.
fn follow_quietly(sub: &Arc<Subscriber>, room: &Room, addr: &Addr<ChannelActor>, catch_up: bool) {
    if sub.add_room(room.key(), addr.clone()) {
        addr.do_send(Subscribe {
            subscriber: sub.clone(),
            after: None,
            deliver_replay: catch_up,
        });
    }
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
        ctx.wait(
            self.broker
                .channels()
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
    }
}

impl StreamHandler<ClusterEvent> for RegistryActor {
    fn handle(&mut self, event: ClusterEvent, _: &mut Context<Self>) {
        self.on_cluster_event(event);
    }

    fn finished(&mut self, _: &mut Context<Self>) {
        tracing::warn!("the broker's cluster events ended");
    }
}

/// How a connecting client identifies itself (already validated).
#[derive(Debug)]
pub(crate) enum LoginRequest {
    Name(String),
    Token(ResumeToken),
}

/// What a successful connection gets.
pub(crate) struct Connected {
    pub(crate) subscriber: Arc<Subscriber>,
    pub(crate) events: QueueReceiver,
    pub(crate) identity: Identity,
    pub(crate) buckets: Arc<UserBuckets>,
}

#[derive(Message)]
#[rtype(result = "Result<Connected, ChatError>")]
pub(crate) struct Connect(pub(crate) LoginRequest);

impl Handler<Connect> for RegistryActor {
    type Result = Atomic<Connected>;

    fn handle(&mut self, msg: Connect, _: &mut Context<Self>) -> Self::Result {
        if self.shutting_down {
            return fail(ChatError::ShuttingDown);
        }
        if self.sessions.len() >= self.limits.max_sessions {
            return fail(ChatError::ServerFull(self.limits.max_sessions));
        }
        let broker = self.broker.clone();
        let login = async move {
            let identity = match msg.0 {
                LoginRequest::Name(name) => broker.register(name).await?,
                LoginRequest::Token(token) => broker.resume(token).await?,
            };
            match broker.directs_of(identity.user.id).await {
                Ok(directs) => Ok((identity, directs)),
                Err(e) => {
                    broker.session_ended(identity.user.id);
                    Err(e)
                }
            }
        };
        AtomicResponse::new(Box::pin(login.into_actor(self).map(|result, act, ctx| {
            let (identity, directs) = result?;
            Ok(act.admit(identity, directs, ctx.address()))
        })))
    }
}

#[derive(Message)]
#[rtype(result = "()")]
pub(crate) struct SessionEnded {
    pub(crate) session: SessionId,
    pub(crate) user: UserId,
}

impl Handler<SessionEnded> for RegistryActor {
    type Result = ();

    fn handle(&mut self, msg: SessionEnded, _: &mut Context<Self>) {
        if self.sessions.remove(&msg.session).is_none() {
            return;
        }
        if let Some(user) = self.users.get_mut(&msg.user) {
            user.sessions.retain(|s| *s != msg.session);
            user.last_seen = Instant::now();
        }
        self.broker.session_ended(msg.user);
        tracing::debug!(session = msg.session.0, "session ended");
    }
}

#[derive(Message)]
#[rtype(result = "Result<ChannelInfo, ChatError>")]
pub(crate) struct CreateChannel(pub(crate) ChannelName);

impl Handler<CreateChannel> for RegistryActor {
    type Result = Atomic<ChannelInfo>;

    fn handle(&mut self, msg: CreateChannel, _: &mut Context<Self>) -> Self::Result {
        let name = msg.0;
        if let Err(e) = self.check_can_create(&name) {
            return fail(e);
        }
        let created_at = now_millis();
        let claim = self.broker.claim_channel(&name, created_at);
        AtomicResponse::new(Box::pin(claim.into_actor(self).map(
            move |claimed, act, _| match claimed? {
                true => Ok(act.add_channel(name, created_at, true)),
                false => Err(ChatError::ChannelExists(name.to_string())),
            },
        )))
    }
}

#[derive(Message)]
#[rtype(result = "Result<Addr<ChannelActor>, ChatError>")]
pub(crate) struct FindChannel(pub(crate) ChannelName);

impl Handler<FindChannel> for RegistryActor {
    type Result = Atomic<Addr<ChannelActor>>;

    fn handle(&mut self, msg: FindChannel, _: &mut Context<Self>) -> Self::Result {
        if let Some(entry) = self.channels.get(&msg.0.key) {
            return AtomicResponse::new(Box::pin(actix::fut::ready(Ok(entry.addr.clone()))));
        }
        // Not known here: another node may have created it while we missed the event.
        let lookup = self.broker.lookup_channel(&msg.0.key);
        AtomicResponse::new(Box::pin(lookup.into_actor(self).map(
            move |found, act, _| {
                let (name, created_at) =
                    found?.ok_or_else(|| ChatError::NoSuchChannel(msg.0.to_string()))?;
                act.add_channel(name.clone(), created_at, true);
                act.channels
                    .get(&name.key)
                    .map(|entry| entry.addr.clone())
                    .ok_or_else(|| ChatError::NoSuchChannel(name.to_string()))
            },
        )))
    }
}

#[derive(Message)]
#[rtype(result = "Vec<ChannelInfo>")]
pub(crate) struct ListChannels;

impl Handler<ListChannels> for RegistryActor {
    type Result = MessageResult<ListChannels>;

    fn handle(&mut self, _: ListChannels, _: &mut Context<Self>) -> Self::Result {
        let mut list: Vec<ChannelInfo> = self.channels.values().map(ChannelEntry::info).collect();
        list.sort_by(|a, b| a.name.key.cmp(&b.name.key));
        MessageResult(list)
    }
}

#[derive(Message)]
#[rtype(result = "Result<(Room, Addr<ChannelActor>), ChatError>")]
pub(crate) struct OpenDirect {
    pub(crate) from: UserRef,
    pub(crate) peer_name: String,
}

impl Handler<OpenDirect> for RegistryActor {
    type Result = Atomic<(Room, Addr<ChannelActor>)>;

    fn handle(&mut self, msg: OpenDirect, _: &mut Context<Self>) -> Self::Result {
        let broker = self.broker.clone();
        let from = msg.from;
        let open = async move {
            let peer = broker
                .find_user(&msg.peer_name)
                .await?
                .ok_or_else(|| ChatError::NoSuchUser(msg.peer_name.clone()))?;
            if peer.id == from.id {
                return Err(ChatError::InvalidTarget(
                    "a private conversation needs another user".into(),
                ));
            }
            let pair = [from, peer];
            broker.open_direct(pair.clone()).await?;
            Ok(pair)
        };
        AtomicResponse::new(Box::pin(
            open.into_actor(self)
                .map(|pair, act, _| Ok(act.direct_room(pair?, false))),
        ))
    }
}

/// Closes every session (they see `Disconnected(ShuttingDown)`) and refuses new ones.
#[derive(Message)]
#[rtype(result = "()")]
pub(crate) struct Shutdown;

impl Handler<Shutdown> for RegistryActor {
    type Result = ();

    fn handle(&mut self, _: Shutdown, _: &mut Context<Self>) {
        self.shutting_down = true;
        for sub in self.sessions.values() {
            sub.close(CloseCause::Engine(DisconnectReason::ShuttingDown));
        }
    }
}

fn fail<T: 'static>(error: ChatError) -> Atomic<T> {
    AtomicResponse::new(Box::pin(actix::fut::ready(Err(error))))
}
