//! The roster's rules: membership and online state from this node's sessions and the
//! other nodes' shares, and pages in order.

use super::*;
use std::sync::Arc;

fn user(id: u64, name: &str) -> UserRef {
    UserRef {
        id: UserId(id),
        name: Arc::from(name),
    }
}

fn shown(moved: Moved) -> Option<PresenceChange> {
    moved.shown.map(|(_, change)| change)
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
    assert_eq!(
        shown(roster.session_added(&alice)),
        Some(PresenceChange::Joined)
    );
    assert_eq!(shown(roster.session_added(&alice)), None);
    assert_eq!(roster.online(), 1);
    assert_eq!(roster.session_removed(alice.id, false), Moved::default());
    let (who, change) = roster
        .session_removed(alice.id, false)
        .shown
        .expect("last session");
    assert_eq!((who.id, change), (alice.id, PresenceChange::Offline));
    assert_eq!(roster.online(), 0);
    assert_eq!(
        roster.session_removed(alice.id, false),
        Moved::default(),
        "an offline member has no session to lose"
    );
    assert_eq!(
        shown(roster.session_added(&alice)),
        Some(PresenceChange::Online)
    );
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
    let (_, change) = roster.session_removed(carol.id, true).shown.expect("left");
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

#[test]
fn a_member_on_another_node_is_listed_and_online_until_their_last_share_goes() {
    let mut roster = Roster::default();
    let (alice, bob) = (user(1, "alice"), user(2, "bob"));
    let b: NodeId = Arc::from("b");
    let c: NodeId = Arc::from("c");
    roster.session_added(&alice);
    assert_eq!(
        roster.remote(&b, &bob, HereState::Online),
        Some(PresenceChange::Joined)
    );
    assert_eq!(everyone(&roster), vec![(alice.id, true), (bob.id, true)]);
    assert_eq!(roster.remote(&c, &bob, HereState::Online), None);
    assert_eq!(
        roster.remote(&b, &bob, HereState::Offline),
        None,
        "on c still"
    );
    assert_eq!(roster.online(), 2);
    assert_eq!(
        roster.remote(&c, &bob, HereState::Offline),
        Some(PresenceChange::Offline)
    );
    assert_eq!(everyone(&roster), vec![(alice.id, true), (bob.id, false)]);
    assert_eq!(
        roster.remote(&c, &bob, HereState::Online),
        Some(PresenceChange::Online)
    );
    // A node that dies takes its shares with it.
    assert_eq!(
        roster.drop_node(&c),
        vec![(bob.clone(), PresenceChange::Offline)]
    );
    assert_eq!((roster.len(), roster.online()), (2, 1));
    assert!(roster.drop_node(&c).is_empty(), "once");
}

#[test]
fn this_node_tells_its_share_and_shows_only_what_the_cluster_sees() {
    let mut roster = Roster::default();
    let alice = user(1, "alice");
    let b: NodeId = Arc::from("b");
    roster.remote(&b, &alice, HereState::Online);
    let moved = roster.session_added(&alice);
    assert_eq!(moved.shown, None, "online elsewhere already");
    assert_eq!(moved.here, Some((alice.clone(), HereState::Online)));
    assert_eq!(
        roster.local_share(),
        vec![(alice.clone(), HereState::Online)]
    );
    let moved = roster.session_removed(alice.id, false);
    assert_eq!(moved.shown, None, "still online on b");
    assert_eq!(moved.here, Some((alice.clone(), HereState::Offline)));
    assert_eq!(
        roster.local_share(),
        vec![(alice.clone(), HereState::Offline)]
    );
    assert_eq!(
        roster.remote(&b, &alice, HereState::Left),
        Some(PresenceChange::Left),
        "left where she was online, offline everywhere else: no longer a member"
    );
    assert_eq!((roster.len(), roster.online()), (0, 0));
    assert!(roster.local_share().is_empty());
    assert_eq!(
        roster.take_left_here(),
        vec![alice],
        "this node's share says so too"
    );
    assert!(roster.take_left_here().is_empty());
}

#[test]
fn a_whole_share_replaces_what_was_known_of_that_node() {
    let mut roster = Roster::default();
    let (alice, bob, carol) = (user(1, "alice"), user(2, "bob"), user(3, "carol"));
    let b: NodeId = Arc::from("b");
    roster.remote(&b, &alice, HereState::Online);
    roster.remote(&b, &bob, HereState::Online);
    let shown = roster.replace_share(
        &b,
        &[
            (bob.clone(), HereState::Online),
            (carol.clone(), HereState::Offline),
        ],
    );
    assert_eq!(
        shown,
        vec![
            (alice.clone(), PresenceChange::Offline),
            (carol.clone(), PresenceChange::Offline)
        ]
    );
    assert_eq!(
        everyone(&roster),
        vec![(bob.id, true), (alice.id, false), (carol.id, false)]
    );
}
