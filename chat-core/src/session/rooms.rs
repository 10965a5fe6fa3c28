//! How a session finds the actor of a room it acts in: the channels it follows (kept in
//! the session, so a post goes straight to its room), the private rooms the directory
//! resolves (cached), and subscribing with one retry when a room stopped in between.

use super::{lock, Session, Target, DIRECTS_CACHED};
use crate::directory::{FindChannel, OpenDirect};
use crate::error::{registry_gone, room_gone, ChatError};
use crate::model::{Joined, MessageId, Room};
use crate::room::{RoomAddr, Subscribe};
use crate::validate;

impl Session {
    /// Asks the room `target` names to subscribe this session; its actor and snapshot.
    pub(super) async fn subscribe(
        &self,
        target: &Target,
        after: Option<MessageId>,
    ) -> Result<(RoomAddr, Joined), ChatError> {
        let addr = match target {
            Target::Channel(name) => {
                let name = validate::channel_name(name, &self.limits)?;
                let find = FindChannel {
                    name,
                    session: self.subscriber.id,
                };
                self.registry.send(find).await.map_err(registry_gone)??
            }
            Target::User(name) => self.direct(name).await?.1,
        };
        let subscribe = Subscribe {
            subscriber: self.subscriber.clone(),
            after,
            deliver_replay: false,
        };
        let joined = addr.send(subscribe).await.map_err(room_gone)??;
        Ok((addr, joined))
    }

    /// The actor of a room this session may act in: a joined channel, or any private
    /// conversation with an existing user.
    pub(super) async fn room_addr(&self, target: Target) -> Result<RoomAddr, ChatError> {
        self.with_room(target, RoomAddr::clone).await
    }

    /// Calls `f` with the actor of a room this session may act in (see `room_addr`),
    /// without cloning its address for a joined channel.
    pub(super) async fn with_room<R>(
        &self,
        target: Target,
        f: impl FnOnce(&RoomAddr) -> R,
    ) -> Result<R, ChatError> {
        match target {
            Target::User(name) => Ok(f(&self.direct(&name).await?.1)),
            Target::Channel(name) => {
                let name = validate::checked_channel_name(&name, &self.limits)?;
                lock(&self.channels)
                    .get(&*validate::channel_key(name))
                    .map(f)
                    .ok_or_else(|| ChatError::NotJoined(format!("#{name}")))
            }
        }
    }

    pub(super) async fn direct(&self, peer: &str) -> Result<(Room, RoomAddr), ChatError> {
        let cache_key = validate::name_key(peer.trim());
        if let Some(found) = lock(&self.directs).get(&cache_key) {
            // A room that stopped (it failed to load) is asked for again.
            if found.1.connected() {
                return Ok(found.clone());
            }
        }
        let found = self
            .registry
            .send(OpenDirect {
                from: self.subscriber.user.clone(),
                peer_name: peer.trim().to_owned(),
            })
            .await
            .map_err(registry_gone)??;
        let mut directs = lock(&self.directs);
        if directs.len() >= DIRECTS_CACHED {
            directs.clear();
        }
        directs.insert(cache_key, found.clone());
        Ok(found)
    }
}
