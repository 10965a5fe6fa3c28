//! `Roster`: a room's members and their online state across the cluster, kept in the
//! order clients page through (online first, then by lower-cased name, then by id). A
//! member is online while at least one of their sessions, on any node, follows the room;
//! leaving on purpose ends membership.
//!
//! Each node knows its own sessions; the other nodes' shares come as
//! [`NodePresence`](crate::broker::NodePresence) signals, merged here per node, so that a
//! user connected only to another node is listed (and online) here too, and goes offline
//! here when their last session anywhere closes or their node is gone.
//!
//! Owned by the room's actor, which turns what the roster reports into presence changes
//! (for its followers) and into its own node's share (for the other nodes), and asks it
//! for pages. A page costs its own length plus a logarithm of the room's size: nothing
//! here walks or sorts the whole room, so a join costs the same in a room of 15,000 as in
//! one of 10. It knows nothing of actors or sessions' queues, so its rules are tested on
//! their own.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::ops::Bound;

use crate::broker::{HereState, NodeId};
use crate::event::PresenceChange;
use crate::model::{Member, MemberCursor, UserId, UserRef};

#[derive(Debug)]
struct MemberState {
    user: UserRef,
    /// Sessions of this user on this node subscribed here (0: a member through this node,
    /// offline here); `None`: not a member through this node.
    local: Option<usize>,
    /// The other nodes through which the user is a member, and whether online there.
    remote: HashMap<NodeId, bool>,
    /// Where the member stands in `Roster::order` now.
    place: MemberCursor,
}

impl MemberState {
    fn online(&self) -> bool {
        self.local.is_some_and(|n| n > 0) || self.remote.values().any(|online| *online)
    }
}

/// What one of this node's sessions changed: what the followers see (`shown`), and this
/// node's new share for the other nodes (`here`).
#[derive(Debug, Default, PartialEq, Eq)]
pub(super) struct Moved {
    /// The change the room's followers are shown, if any.
    pub(super) shown: Option<(UserRef, PresenceChange)>,
    /// The member's new state on this node, if it changed.
    pub(super) here: Option<(UserRef, HereState)>,
}

/// The members of one room.
#[derive(Debug, Default)]
pub(super) struct Roster {
    members: HashMap<UserId, MemberState>,
    /// Every member's place, in page order: the index a page is read from.
    order: BTreeSet<MemberCursor>,
    /// Members online on some node.
    online: usize,
    /// The members each other node has a share of, so a node's share is replaced or
    /// dropped without a walk over the room.
    by_node: HashMap<NodeId, HashSet<UserId>>,
    /// Members through this node (offline here) who left on another node and are no
    /// longer members anywhere: this node's share must say so too.
    left_here: Vec<UserRef>,
}

impl Roster {
    /// How many members the room has, online or not.
    pub(super) fn len(&self) -> usize {
        self.members.len()
    }

    /// How many members are online.
    pub(super) fn online(&self) -> usize {
        self.online
    }

    /// One more session of `user` on this node follows the room: shown `Joined` for a new
    /// member, `Online` for a member coming back, nothing for a member already online.
    pub(super) fn session_added(&mut self, user: &UserRef) -> Moved {
        let was = self.members.get(&user.id).map(MemberState::online);
        let member = self.entry(user);
        let sessions = member.local.unwrap_or(0) + 1;
        member.local = Some(sessions);
        let here = (sessions == 1).then(|| (user.clone(), HereState::Online));
        let shown = match was {
            None => Some(PresenceChange::Joined),
            Some(false) => Some(PresenceChange::Online),
            Some(true) => None,
        };
        self.settle(user.id, was.unwrap_or(false));
        Moved {
            shown: shown.map(|change| (user.clone(), change)),
            here,
        }
    }

    /// A session of `user` on this node stopped following the room (`parting`: on
    /// purpose). When it was their last one here, this node's share changes; the room is
    /// shown `Left` (no longer a member) or `Offline` only when no node has them online.
    pub(super) fn session_removed(&mut self, user: UserId, parting: bool) -> Moved {
        let Some(member) = self.members.get_mut(&user) else {
            return Moved::default();
        };
        let sessions = match member.local {
            Some(n) if n > 0 => n - 1,
            _ => return Moved::default(),
        };
        member.local = Some(sessions);
        if sessions > 0 {
            return Moved::default();
        }
        let who = member.user.clone();
        if parting {
            member.local = None;
            let shown = self.part(user, true);
            return Moved {
                shown,
                here: Some((who, HereState::Left)),
            };
        }
        self.settle(user, true);
        let shown = self
            .members
            .get(&user)
            .filter(|m| !m.online())
            .map(|m| (m.user.clone(), PresenceChange::Offline));
        Moved {
            shown,
            here: Some((who, HereState::Offline)),
        }
    }

    /// `node` says where `user` stands there; returns what the followers are shown.
    pub(super) fn remote(
        &mut self,
        node: &NodeId,
        user: &UserRef,
        state: HereState,
    ) -> Option<PresenceChange> {
        let was = self.members.get(&user.id).map(MemberState::online);
        if state == HereState::Left {
            self.forget_share(node, user.id);
            return self
                .part(user.id, was.unwrap_or(false))
                .map(|(_, change)| change);
        }
        let online = state == HereState::Online;
        self.entry(user).remote.insert(node.clone(), online);
        self.by_node
            .entry(node.clone())
            .or_default()
            .insert(user.id);
        self.settle(user.id, was.unwrap_or(false));
        match (was, online) {
            (None, true) => Some(PresenceChange::Joined),
            // A member the room had not heard of, offline: listed as such.
            (None, false) | (Some(true), false) if !self.is_online(user.id) => {
                Some(PresenceChange::Offline)
            }
            (Some(false), true) => Some(PresenceChange::Online),
            _ => None,
        }
    }

    /// `node`'s whole share: replaces what the room knew of it. Returns what the
    /// followers are shown.
    pub(super) fn replace_share(
        &mut self,
        node: &NodeId,
        share: &[(UserRef, HereState)],
    ) -> Vec<(UserRef, PresenceChange)> {
        let listed: HashSet<UserId> = share.iter().map(|(u, _)| u.id).collect();
        let known = self.by_node.get(node).cloned().unwrap_or_default();
        let mut shown = Vec::new();
        for gone in known.difference(&listed) {
            shown.extend(self.drop_share(node, *gone));
        }
        for (user, state) in share {
            if let Some(change) = self.remote(node, user, *state) {
                shown.push((user.clone(), change));
            }
        }
        shown
    }

    /// `node` is gone: its share goes; members it alone had online are shown `Offline`.
    pub(super) fn drop_node(&mut self, node: &NodeId) -> Vec<(UserRef, PresenceChange)> {
        let known = self.by_node.remove(node).unwrap_or_default();
        known
            .into_iter()
            .filter_map(|user| self.drop_share(node, user))
            .collect()
    }

    /// Members through this node who are no longer members since another node's `Left`:
    /// this node's share drops them too.
    pub(super) fn take_left_here(&mut self) -> Vec<UserRef> {
        std::mem::take(&mut self.left_here)
    }

    /// This node's share: every member through this node, online here or not.
    pub(super) fn local_share(&self) -> Vec<(UserRef, HereState)> {
        self.members
            .values()
            .filter_map(|m| {
                let state = match m.local? {
                    0 => HereState::Offline,
                    _ => HereState::Online,
                };
                Some((m.user.clone(), state))
            })
            .collect()
    }

    /// At most `limit` members after `after` (from the start without it), in page order,
    /// and where the next page starts if any member follows them.
    pub(super) fn page(
        &self,
        after: Option<&MemberCursor>,
        limit: usize,
    ) -> (Vec<Member>, Option<MemberCursor>) {
        let from = after.map_or(Bound::Unbounded, Bound::Excluded);
        let mut places = self.order.range((from, Bound::Unbounded));
        let mut members = Vec::with_capacity(limit.min(self.order.len()));
        let mut last = None;
        for place in places.by_ref().take(limit) {
            if let Some(m) = self.members.get(&place.id) {
                members.push(Member {
                    user: m.user.clone(),
                    online: m.online(),
                });
            }
            last = Some(place);
        }
        let next = match (places.next(), last) {
            (Some(_), Some(last)) => Some(last.clone()),
            _ => None,
        };
        (members, next)
    }

    fn is_online(&self, user: UserId) -> bool {
        self.members.get(&user).is_some_and(MemberState::online)
    }

    /// The member `user`, added (offline, with no share yet) if new.
    fn entry(&mut self, user: &UserRef) -> &mut MemberState {
        self.members.entry(user.id).or_insert_with(|| {
            let place = MemberCursor::of(user, false);
            self.order.insert(place.clone());
            MemberState {
                user: user.clone(),
                local: None,
                remote: HashMap::new(),
                place,
            }
        })
    }

    /// After a change to `user`'s shares: keeps the online count and their place true.
    fn settle(&mut self, user: UserId, was_online: bool) {
        let Some(member) = self.members.get_mut(&user) else {
            return;
        };
        let online = member.online();
        if online == was_online && member.place.offline != online {
            return;
        }
        match (was_online, online) {
            (false, true) => self.online += 1,
            (true, false) => self.online -= 1,
            _ => {}
        }
        self.order.remove(&member.place);
        member.place.offline = !online;
        self.order.insert(member.place.clone());
    }

    /// `user` left somewhere: unless some node still has them online, they are no longer
    /// a member anywhere (shown `Left`); otherwise nothing shows.
    fn part(&mut self, user: UserId, was_online: bool) -> Option<(UserRef, PresenceChange)> {
        if self.is_online(user) {
            self.settle(user, was_online);
            return None;
        }
        let member = self.members.remove(&user)?;
        self.order.remove(&member.place);
        if member.local.is_some() {
            self.left_here.push(member.user.clone());
        }
        if was_online {
            self.online -= 1;
        }
        for node in member.remote.keys() {
            self.forget_share(node, user);
        }
        Some((member.user, PresenceChange::Left))
    }

    /// Drops `node`'s share of `user` (the member stays, offline unless another node has
    /// them online); shown `Offline` when that was their last online share.
    fn drop_share(&mut self, node: &NodeId, user: UserId) -> Option<(UserRef, PresenceChange)> {
        let was = self.is_online(user);
        self.forget_share(node, user);
        self.settle(user, was);
        let member = self.members.get(&user)?;
        (was && !member.online()).then(|| (member.user.clone(), PresenceChange::Offline))
    }

    fn forget_share(&mut self, node: &NodeId, user: UserId) {
        if let Some(member) = self.members.get_mut(&user) {
            member.remote.remove(node);
        }
        if let Some(users) = self.by_node.get_mut(node) {
            users.remove(&user);
            if users.is_empty() {
                self.by_node.remove(node);
            }
        }
    }
}

#[cfg(test)]
mod tests;
