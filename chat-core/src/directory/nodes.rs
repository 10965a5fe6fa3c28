//! This node among the others: its heartbeat, and what the registry tells the rooms when
//! another node is gone (its members' presence goes) or when the cluster had taken this
//! node for dead (the rooms announce their whole shares again).
//!
//! Part of the registry actor (`registry.rs` starts the beat); it knows the rooms only to
//! pass these two messages on, and the broker only through `Broker::heartbeat`.

use std::collections::HashSet;

use actix::prelude::*;

use super::registry::RegistryActor;
use crate::broker::{Beat, NodeId};
use crate::room::{Announce, NodeGone, RoomAddr};

impl RegistryActor {
    /// The room actors running on this node.
    pub(super) fn running_rooms(&self) -> Vec<RoomAddr> {
        let channels = self.channels.values().filter_map(|c| c.addr.clone());
        let directs = self.directs.values().map(|(_, addr)| addr.clone());
        channels
            .chain(directs)
            .filter(|room| room.connected())
            .collect()
    }

    /// Every room here drops `node`'s share of its presence. The announcement and the
    /// next beat may both tell; dropping a share twice changes nothing.
    pub(super) fn node_gone(&mut self, node: NodeId) {
        for addr in self.running_rooms() {
            addr.do_send(NodeGone(node.clone()));
        }
    }

    /// Tells the cluster this node is alive. When the cluster did not know it (taken for
    /// dead after missed beats), every room here announces its whole share again; a node
    /// alive at the last beat and missing now is gone, even if its announcement was lost.
    pub(super) fn heartbeat(&mut self, ctx: &mut Context<Self>) {
        if self.shutting_down {
            // It has told the others it stops.
            return;
        }
        let (broker, node) = (self.broker.clone(), self.node.clone());
        let expiry = self.limits.node_expiry;
        let beat = async move { broker.heartbeat(&node, expiry).await };
        ctx.spawn(beat.into_actor(self).map(|result, act, _| match result {
            Ok(beat) => act.beaten(beat),
            Err(e) => tracing::warn!(error = %e, "heartbeat not recorded"),
        }));
    }

    /// What a beat found: this node unknown (announce), nodes missing (gone).
    fn beaten(&mut self, beat: Beat) {
        if beat.rejoined {
            for addr in self.running_rooms() {
                addr.do_send(Announce);
            }
        }
        let live: HashSet<NodeId> = beat.live.into_iter().collect();
        let missing: Vec<NodeId> = self.live.difference(&live).cloned().collect();
        for node in missing {
            if node != self.node {
                tracing::debug!(%node, "a node is no longer listed alive");
                self.node_gone(node);
            }
        }
        self.live = live;
    }
}
