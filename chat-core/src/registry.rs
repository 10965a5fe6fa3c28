//! `RegistryActor`: the engine's directory. Owns the channel names (and which actor
//! serves each), the private conversations, the users (through [`Directory`]) and the
//! connected sessions.
//!
//! Sessions ask it to connect, to find or create a channel, and to open a private
//! conversation; after that they talk to the channel actors directly, so the registry is
//! never on the path of a message. It spreads new channel actors over the arbiters
//! round-robin. Because it handles one request at a time, name uniqueness needs no lock.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::prelude::*;
use actix_rt::ArbiterHandle;
use chrono::{DateTime, Utc};
use tokio::sync::mpsc;

use crate::broker::Broker;
use crate::channel::{ChannelActor, ChannelStats, Subscribe};
use crate::error::ChatError;
use crate::event::{DisconnectReason, Event};
use crate::identity::{Admission, Directory, ResumeToken};
use crate::limits::Limits;
use crate::model::{now_millis, ChannelInfo, ChannelName, Room, SessionId, UserId, UserRef};
use crate::rate::UserBuckets;
use crate::subscriber::{CloseCause, Subscriber};

/// How often users whose name hold ran out are forgotten.
const SWEEP_INTERVAL: Duration = Duration::from_secs(60);

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

/// The directory actor; one per engine.
pub(crate) struct RegistryActor {
    limits: Arc<Limits>,
    broker: Arc<dyn Broker>,
    arbiters: Vec<ArbiterHandle>,
    next_arbiter: usize,
    channels: HashMap<Arc<str>, ChannelEntry>,
    directs: HashMap<(UserId, UserId), (Room, Addr<ChannelActor>)>,
    directs_of: HashMap<UserId, Vec<(UserId, UserId)>>,
    directory: Directory,
    sessions: HashMap<SessionId, Arc<Subscriber>>,
    sessions_of: HashMap<UserId, Vec<SessionId>>,
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
            directory: Directory::new(limits.name_hold),
            limits,
            broker,
            arbiters,
            next_arbiter: 0,
            channels: HashMap::new(),
            directs: HashMap::new(),
            directs_of: HashMap::new(),
            sessions: HashMap::new(),
            sessions_of: HashMap::new(),
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

    fn add_channel(&mut self, name: ChannelName) -> ChannelInfo {
        let stats = Arc::new(ChannelStats::default());
        let addr = self.start_room(Room::Channel(name.clone()), stats.clone());
        let entry = ChannelEntry {
            name: name.clone(),
            addr,
            stats,
            created_at: now_millis(),
        };
        let info = entry.info();
        self.channels.insert(name.key.clone(), entry);
        tracing::info!(channel = %name, "channel created");
        for sub in self.sessions.values() {
            sub.deliver(Event::ChannelCreated(info.clone()));
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

    /// The private room of `a` and `b`, started (and followed by every session of both)
    /// the first time it is needed.
    fn direct_room(&mut self, a: UserRef, b: UserRef) -> (Room, Addr<ChannelActor>) {
        let (a, b) = if a.id <= b.id { (a, b) } else { (b, a) };
        let key = (a.id, b.id);
        if let Some(found) = self.directs.get(&key) {
            return found.clone();
        }
        let room = Room::Direct([a.clone(), b.clone()]);
        let addr = self.start_room(room.clone(), Arc::new(ChannelStats::default()));
        for user in [a.id, b.id] {
            self.directs_of.entry(user).or_default().push(key);
            for session in self.sessions_of.get(&user).into_iter().flatten() {
                if let Some(sub) = self.sessions.get(session) {
                    follow_quietly(sub, &room, &addr);
                }
            }
        }
        self.directs.insert(key, (room.clone(), addr.clone()));
        (room, addr)
    }

    fn admit(&mut self, login: LoginRequest) -> Result<Admission, ChatError> {
        let now = Instant::now();
        match login {
            LoginRequest::Name(name) => {
                let buckets = Arc::new(UserBuckets::new(&self.limits));
                self.directory.login_with_name(name, buckets, now)
            }
            LoginRequest::Token(token) => self.directory.login_with_token(&token, now),
        }
    }
}

/// Makes `sub` follow a private room without asking for its history (the session asks
/// when it opens the conversation).
fn follow_quietly(sub: &Arc<Subscriber>, room: &Room, addr: &Addr<ChannelActor>) {
    if sub.add_room(room.key(), addr.clone()) {
        addr.do_send(Subscribe {
            subscriber: sub.clone(),
            after: None,
        });
    }
}

impl Actor for RegistryActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        ctx.set_mailbox_capacity(1024);
        ctx.run_interval(SWEEP_INTERVAL, |act, _| {
            let forgotten = act.directory.sweep(Instant::now());
            if forgotten > 0 {
                tracing::debug!(forgotten, "released expired display names");
            }
        });
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
    pub(crate) events: mpsc::Receiver<Event>,
    pub(crate) admission: Admission,
}

#[derive(Message)]
#[rtype(result = "Result<Connected, ChatError>")]
pub(crate) struct Connect(pub(crate) LoginRequest);

impl Handler<Connect> for RegistryActor {
    type Result = Result<Connected, ChatError>;

    fn handle(&mut self, msg: Connect, ctx: &mut Context<Self>) -> Self::Result {
        if self.shutting_down {
            return Err(ChatError::ShuttingDown);
        }
        if self.sessions.len() >= self.limits.max_sessions {
            return Err(ChatError::ServerFull(self.limits.max_sessions));
        }
        let admission = self.admit(msg.0)?;
        let id = SessionId(self.next_session);
        self.next_session += 1;
        let (tx, events) = mpsc::channel(self.limits.session_queue);
        let subscriber = Subscriber::new(id, admission.user.clone(), tx, ctx.address());
        let user = admission.user.id;
        for key in self.directs_of.get(&user).into_iter().flatten() {
            if let Some((room, addr)) = self.directs.get(key) {
                follow_quietly(&subscriber, room, addr);
            }
        }
        self.sessions.insert(id, subscriber.clone());
        self.sessions_of.entry(user).or_default().push(id);
        tracing::debug!(session = id.0, user = %admission.user.name, "session connected");
        Ok(Connected {
            subscriber,
            events,
            admission,
        })
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
        if let Some(list) = self.sessions_of.get_mut(&msg.user) {
            list.retain(|s| *s != msg.session);
            if list.is_empty() {
                self.sessions_of.remove(&msg.user);
            }
        }
        self.directory.session_ended(msg.user, Instant::now());
        tracing::debug!(session = msg.session.0, "session ended");
    }
}

#[derive(Message)]
#[rtype(result = "Result<ChannelInfo, ChatError>")]
pub(crate) struct CreateChannel(pub(crate) ChannelName);

impl Handler<CreateChannel> for RegistryActor {
    // Atomic: no other request is handled while the broker decides on the claim, so two
    // creations of one name cannot both pass the local check.
    type Result = AtomicResponse<Self, Result<ChannelInfo, ChatError>>;

    fn handle(&mut self, msg: CreateChannel, _: &mut Context<Self>) -> Self::Result {
        let name = msg.0;
        if let Err(e) = self.check_can_create(&name) {
            return AtomicResponse::new(Box::pin(actix::fut::ready(Err(e))));
        }
        let claim = self.broker.claim_channel(&name);
        AtomicResponse::new(Box::pin(claim.into_actor(self).map(
            move |claimed, act, _| match claimed? {
                true => Ok(act.add_channel(name)),
                false => Err(ChatError::ChannelExists(name.to_string())),
            },
        )))
    }
}

#[derive(Message)]
#[rtype(result = "Result<Addr<ChannelActor>, ChatError>")]
pub(crate) struct FindChannel(pub(crate) ChannelName);

impl Handler<FindChannel> for RegistryActor {
    type Result = Result<Addr<ChannelActor>, ChatError>;

    fn handle(&mut self, msg: FindChannel, _: &mut Context<Self>) -> Self::Result {
        self.channels
            .get(&msg.0.key)
            .map(|entry| entry.addr.clone())
            .ok_or_else(|| ChatError::NoSuchChannel(msg.0.to_string()))
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
    type Result = Result<(Room, Addr<ChannelActor>), ChatError>;

    fn handle(&mut self, msg: OpenDirect, _: &mut Context<Self>) -> Self::Result {
        let peer = self
            .directory
            .find_by_name(&msg.peer_name, Instant::now())
            .cloned()
            .ok_or_else(|| ChatError::NoSuchUser(msg.peer_name.clone()))?;
        if peer.id == msg.from.id {
            return Err(ChatError::InvalidTarget(
                "a private conversation needs another user".into(),
            ));
        }
        Ok(self.direct_room(msg.from, peer))
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
