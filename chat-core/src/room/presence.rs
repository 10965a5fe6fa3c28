//! `Roster`: a room's members and their online state, kept in the order clients page
//! through (online first, then by lower-cased name, then by id). A member is online while
//! at least one of their sessions follows the room; leaving on purpose ends membership.
//!
//! Owned by the room's actor, which turns what the roster reports into presence changes
//! and asks it for pages. A page costs its own length plus a logarithm of the room's size:
//! nothing here walks or sorts the whole room, so a join costs the same in a room of
//! 15,000 as in one of 10. It knows nothing of actors or sessions' queues, so its rules
//! are tested on their own.

use std::collections::{BTreeSet, HashMap};
use std::ops::Bound;

use crate::event::PresenceChange;
use crate::model::{Member, MemberCursor, UserId, UserRef};

#[derive(Debug)]
struct MemberState {
    user: UserRef,
    /// Sessions of this user subscribed here; 0 means offline.
    sessions: usize,
    /// Where the member stands in `Roster::order` now.
    place: MemberCursor,
}

/// The members of one room.
#[derive(Debug, Default)]
pub(super) struct Roster {
    members: HashMap<UserId, MemberState>,
    /// Every member's place, in page order: the index a page is read from.
    order: BTreeSet<MemberCursor>,
    /// Members with at least one session.
    online: usize,
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

    /// One more session of `user` follows the room: `Joined` for a new member, `Online`
    /// for a member coming back, nothing for a second session of an online member.
    pub(super) fn session_added(&mut self, user: &UserRef) -> Option<PresenceChange> {
        if let Some(member) = self.members.get_mut(&user.id) {
            member.sessions += 1;
            if member.sessions > 1 {
                return None;
            }
            self.online += 1;
            Self::move_to(&mut self.order, member, true);
            return Some(PresenceChange::Online);
        }
        let place = MemberCursor::of(user, true);
        self.order.insert(place.clone());
        self.online += 1;
        self.members.insert(
            user.id,
            MemberState {
                user: user.clone(),
                sessions: 1,
                place,
            },
        );
        Some(PresenceChange::Joined)
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
        if member.sessions == 0 {
            return None;
        }
        member.sessions -= 1;
        if member.sessions > 0 {
            return None;
        }
        self.online -= 1;
        let who = member.user.clone();
        if parting {
            self.order.remove(&member.place);
            self.members.remove(&user);
            Some((who, PresenceChange::Left))
        } else {
            Self::move_to(&mut self.order, member, false);
            Some((who, PresenceChange::Offline))
        }
    }

    /// Moves `member` to its place among the online (or offline) members.
    fn move_to(order: &mut BTreeSet<MemberCursor>, member: &mut MemberState, online: bool) {
        order.remove(&member.place);
        member.place.offline = !online;
        order.insert(member.place.clone());
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
                    online: m.sessions > 0,
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

    fn everyone(roster: &Roster) -> Vec<(UserId, bool)> {
        let (list, next) = roster.page(None, usize::MAX);
        assert_eq!(next, None);
        list.iter().map(|m| (m.user.id, m.online)).collect()
    }

    #[test]
    fn a_member_joins_once_and_goes_offline_with_their_last_session() {
        let mut roster = Roster::default();
        let alice = user(1, "alice");
        assert_eq!(roster.session_added(&alice), Some(PresenceChange::Joined));
        assert_eq!(roster.session_added(&alice), None);
        assert_eq!(roster.online(), 1);
        assert_eq!(roster.session_removed(alice.id, false), None);
        let (who, change) = roster
            .session_removed(alice.id, false)
            .expect("last session");
        assert_eq!((who.id, change), (alice.id, PresenceChange::Offline));
        assert_eq!(roster.online(), 0);
        assert_eq!(
            roster.session_removed(alice.id, false),
            None,
            "an offline member has no session to lose"
        );
        assert_eq!(roster.session_added(&alice), Some(PresenceChange::Online));
        assert_eq!((roster.len(), roster.online()), (1, 1));
    }

    #[test]
    fn parting_ends_membership_and_the_list_puts_online_members_first() {
        let mut roster = Roster::default();
        let (alice, bob, carol) = (user(1, "alice"), user(2, "Bob"), user(3, "carol"));
        for u in [&carol, &alice, &bob] {
            roster.session_added(u);
        }
        assert_eq!(
            everyone(&roster),
            vec![(alice.id, true), (bob.id, true), (carol.id, true)],
            "by name, whatever the case"
        );
        roster.session_removed(alice.id, false);
        let (_, change) = roster.session_removed(carol.id, true).expect("left");
        assert_eq!(change, PresenceChange::Left);
        assert_eq!(everyone(&roster), vec![(bob.id, true), (alice.id, false)]);
        assert_eq!((roster.len(), roster.online()), (2, 1));
    }

    #[test]
    fn pages_cover_every_member_once_in_order() {
        let mut roster = Roster::default();
        let users: Vec<UserRef> = (0..250).map(|i| user(i, &format!("u{i:03}"))).collect();
        for u in &users {
            roster.session_added(u);
        }
        // Every third member is offline: they come after every online one.
        for u in users.iter().step_by(3) {
            roster.session_removed(u.id, false);
        }
        let mut seen = Vec::new();
        let mut after = None;
        loop {
            let (page, next) = roster.page(after.as_ref(), 40);
            assert!(page.len() <= 40);
            seen.extend(page.iter().map(|m| (m.user.id, m.online)));
            match next {
                Some(cursor) => {
                    // The cursor survives its text form.
                    after = MemberCursor::parse(&cursor.to_string());
                    assert_eq!(after.as_ref(), Some(&cursor));
                }
                None => break,
            }
        }
        assert_eq!(seen, everyone(&roster));
        assert_eq!(seen.len(), 250);
        let online = seen.iter().take_while(|(_, online)| *online).count();
        assert_eq!(online, roster.online());
        assert!(seen[online..].iter().all(|(_, online)| !online));
    }

    #[test]
    fn a_page_after_a_member_who_left_starts_where_they_stood() {
        let mut roster = Roster::default();
        let (a, b, c) = (user(1, "a"), user(2, "b"), user(3, "c"));
        for u in [&a, &b, &c] {
            roster.session_added(u);
        }
        let (first, next) = roster.page(None, 2);
        assert_eq!(first.len(), 2);
        let next = next.expect("c follows");
        roster.session_removed(b.id, true);
        let (rest, end) = roster.page(Some(&next), 2);
        assert_eq!(rest.iter().map(|m| m.user.id).collect::<Vec<_>>(), [c.id]);
        assert_eq!(end, None);
        assert_eq!(MemberCursor::parse("2:1:a"), None);
        assert_eq!(MemberCursor::parse("0:x:a"), None);
        assert_eq!(
            MemberCursor::parse("0:7:a:b").map(|c| c.key.to_string()),
            Some("a:b".to_owned()),
            "a name may hold the separator"
        );
    }
}
