//! `Roster`: a room's members and their online state. A member is online while at least
//! one of their sessions follows the room; leaving on purpose ends membership.
//!
//! Owned by the room's actor, which turns what the roster reports into presence signals.
//! It knows nothing of actors or sessions' queues, so its rules are tested on their own.

use std::collections::HashMap;

use crate::event::PresenceChange;
use crate::model::{Member, UserId, UserRef};

#[derive(Debug)]
struct MemberState {
    user: UserRef,
    /// Sessions of this user subscribed here; 0 means offline.
    sessions: usize,
}

/// The members of one room.
#[derive(Debug, Default)]
pub(super) struct Roster {
    members: HashMap<UserId, MemberState>,
}

impl Roster {
    /// How many members the room has, online or not.
    pub(super) fn len(&self) -> usize {
        self.members.len()
    }

    /// One more session of `user` follows the room: `Joined` for a new member, `Online`
    /// for a member coming back, nothing for a second session of an online member.
    pub(super) fn session_added(&mut self, user: &UserRef) -> Option<PresenceChange> {
        let is_new = !self.members.contains_key(&user.id);
        let member = self.members.entry(user.id).or_insert_with(|| MemberState {
            user: user.clone(),
            sessions: 0,
        });
        member.sessions += 1;
        if is_new {
            Some(PresenceChange::Joined)
        } else if member.sessions == 1 {
            Some(PresenceChange::Online)
        } else {
            None
        }
    }

    /// A session of `user` stopped following the room (`parting`: on purpose). When it
    /// was their last one, returns who changed and how: `Left` (no longer a member) or
    /// `Offline`.
    pub(super) fn session_removed(
        &mut self,
        user: UserId,
        parting: bool,
    ) -> Option<(UserRef, PresenceChange)> {
        let member = self.members.get_mut(&user)?;
        member.sessions = member.sessions.saturating_sub(1);
        if member.sessions > 0 {
            return None;
        }
        let who = member.user.clone();
        if parting {
            self.members.remove(&user);
            Some((who, PresenceChange::Left))
        } else {
            Some((who, PresenceChange::Offline))
        }
    }

    /// Every member, online ones first, then by name.
    pub(super) fn list(&self) -> Vec<Member> {
        let mut list: Vec<Member> = self
            .members
            .values()
            .map(|m| Member {
                user: m.user.clone(),
                online: m.sessions > 0,
            })
            .collect();
        list.sort_by(|a, b| {
            b.online
                .cmp(&a.online)
                .then_with(|| a.user.name.cmp(&b.user.name))
        });
        list
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn user(id: u64, name: &str) -> UserRef {
        UserRef {
            id: UserId(id),
            name: Arc::from(name),
        }
    }

    #[test]
    fn a_member_joins_once_and_goes_offline_with_their_last_session() {
        let mut roster = Roster::default();
        let alice = user(1, "alice");
        assert_eq!(roster.session_added(&alice), Some(PresenceChange::Joined));
        assert_eq!(roster.session_added(&alice), None);
        assert_eq!(roster.session_removed(alice.id, false), None);
        let (who, change) = roster
            .session_removed(alice.id, false)
            .expect("last session");
        assert_eq!((who.id, change), (alice.id, PresenceChange::Offline));
        assert_eq!(roster.session_added(&alice), Some(PresenceChange::Online));
        assert_eq!(roster.len(), 1);
    }

    #[test]
    fn parting_ends_membership_and_the_list_puts_online_members_first() {
        let mut roster = Roster::default();
        let (alice, bob, carol) = (user(1, "alice"), user(2, "bob"), user(3, "carol"));
        for u in [&alice, &bob, &carol] {
            roster.session_added(u);
        }
        roster.session_removed(alice.id, false);
        let (_, change) = roster.session_removed(carol.id, true).expect("left");
        assert_eq!(change, PresenceChange::Left);
        let names: Vec<_> = roster
            .list()
            .iter()
            .map(|m| (m.user.id, m.online))
            .collect();
        assert_eq!(names, vec![(bob.id, true), (alice.id, false)]);
    }
}
