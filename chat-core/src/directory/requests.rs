//! What the engine and sessions ask the directory, each message next to its handler:
//! connect, create a channel, find one, list them, open a private room, shut down.

use actix::prelude::*;

use super::registry::{ChannelEntry, Connected, RegistryActor};
use crate::delivery::CloseCause;
use crate::error::ChatError;
use crate::event::DisconnectReason;
use crate::identity::ResumeToken;
use crate::model::{now_millis, ChannelInfo, ChannelName, Room, SessionId, UserId, UserRef};
use crate::room::RoomAddr;

/// A request whose answer waits on the broker.
type Atomic<T> = AtomicResponse<RegistryActor, Result<T, ChatError>>;

fn fail<T: 'static>(error: ChatError) -> Atomic<T> {
    AtomicResponse::new(Box::pin(actix::fut::ready(Err(error))))
}

/// How a connecting client identifies itself (already validated).
#[derive(Debug)]
pub(crate) enum LoginRequest {
    Name(String),
    Token(ResumeToken),
    /// `Login::External`: the embedder's id for the user, and a display name.
    External {
        id: String,
        name: String,
    },
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
                LoginRequest::External { id, name } => broker.login_external(&id, name).await?,
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
            Ok(act.admit(identity, directs, ctx))
        })))
    }
}

/// Create a channel; by a user (whose cluster-wide `channel_create_rate` bucket it costs
/// a token), or by the embedder (`None`).
#[derive(Message)]
#[rtype(result = "Result<ChannelInfo, ChatError>")]
pub(crate) struct CreateChannel(pub(crate) ChannelName, pub(crate) Option<UserId>);

impl Handler<CreateChannel> for RegistryActor {
    type Result = Atomic<ChannelInfo>;

    fn handle(&mut self, msg: CreateChannel, _: &mut Context<Self>) -> Self::Result {
        let name = msg.0;
        if self.channels.contains_key(&name.key) {
            return fail(ChatError::ChannelExists(name.to_string()));
        }
        if self.channels.len() >= self.limits.max_channels {
            return fail(ChatError::TooManyChannels(self.limits.max_channels));
        }
        let created_at = now_millis();
        let (broker, claimed) = (self.broker.clone(), name.clone());
        let (by, rate) = (msg.1, self.limits.channel_create_rate);
        let claim = async move {
            if let Some(user) = by {
                broker.take_token(user, "channel_create_rate", rate).await?;
            }
            broker.claim_channel(&claimed, created_at).await
        };
        AtomicResponse::new(Box::pin(claim.into_actor(self).map(
            move |claimed, act, _| match claimed? {
                true => Ok(act.add_channel(name, created_at, true)),
                false => Err(ChatError::ChannelExists(name.to_string())),
            },
        )))
    }
}

/// The actor of a channel, for `session`, which is about to follow it.
#[derive(Message)]
#[rtype(result = "Result<RoomAddr, ChatError>")]
pub(crate) struct FindChannel {
    pub(crate) name: ChannelName,
    pub(crate) session: SessionId,
}

impl Handler<FindChannel> for RegistryActor {
    type Result = Atomic<RoomAddr>;

    fn handle(&mut self, msg: FindChannel, ctx: &mut Context<Self>) -> Self::Result {
        let me = ctx.address().recipient();
        if let Some(addr) = self.channel_room(&msg.name.key, msg.session, me.clone()) {
            return AtomicResponse::new(Box::pin(actix::fut::ready(Ok(addr))));
        }
        // Not known here: another node may have created it while we missed the event.
        let (broker, key) = (self.broker.clone(), msg.name.key.clone());
        let lookup = async move { broker.lookup_channel(&key).await };
        AtomicResponse::new(Box::pin(lookup.into_actor(self).map(
            move |found, act, _| {
                let (name, created_at) =
                    found?.ok_or_else(|| ChatError::NoSuchChannel(msg.name.to_string()))?;
                act.add_channel(name.clone(), created_at, true);
                act.channel_room(&name.key, msg.session, me)
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
#[rtype(result = "Result<(Room, RoomAddr), ChatError>")]
pub(crate) struct OpenDirect {
    pub(crate) from: UserRef,
    pub(crate) peer_name: String,
}

impl Handler<OpenDirect> for RegistryActor {
    type Result = Atomic<(Room, RoomAddr)>;

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
        AtomicResponse::new(Box::pin(open.into_actor(self).map(|pair, act, ctx| {
            Ok(act.direct_room(pair?, false, ctx.address().recipient()))
        })))
    }
}

/// How much the engine holds now: see [`crate::EngineStats`].
#[derive(Message)]
#[rtype(result = "crate::EngineStats")]
pub(crate) struct Stats;

impl Handler<Stats> for RegistryActor {
    type Result = MessageResult<Stats>;

    fn handle(&mut self, _: Stats, _: &mut Context<Self>) -> Self::Result {
        MessageResult(self.stats())
    }
}

/// Logs a user out: the broker forgets them, and every session of theirs, here and on
/// the other nodes, is closed with `Disconnected(LoggedOut)`.
#[derive(Message)]
#[rtype(result = "Result<(), ChatError>")]
pub(crate) struct LogOut(pub(crate) UserId);

impl Handler<LogOut> for RegistryActor {
    type Result = ResponseFuture<Result<(), ChatError>>;

    fn handle(&mut self, msg: LogOut, _: &mut Context<Self>) -> Self::Result {
        // Closed here at once, whatever the broker's announcement takes to come back.
        self.close_sessions_of(msg.0);
        let broker = self.broker.clone();
        Box::pin(async move { broker.log_out(msg.0).await })
    }
}

/// Closes every session (they see `Disconnected(ShuttingDown)`), refuses new ones, and
/// tells the other nodes this one is gone (so its users go offline there at once).
#[derive(Message)]
#[rtype(result = "()")]
pub(crate) struct Shutdown;

impl Handler<Shutdown> for RegistryActor {
    type Result = ResponseFuture<()>;

    fn handle(&mut self, _: Shutdown, _: &mut Context<Self>) -> Self::Result {
        self.shutting_down = true;
        for entry in self.sessions.values() {
            entry
                .subscriber
                .close(CloseCause::Engine(DisconnectReason::ShuttingDown));
        }
        let (broker, node) = (self.broker.clone(), self.node.clone());
        Box::pin(async move {
            if let Err(e) = broker.node_stopped(&node).await {
                tracing::warn!(error = %e, "could not tell the other nodes this one stops");
            }
        })
    }
}
