//! Big rooms through the engine's public API: a join reply that does not grow with the
//! room, the member list paged, presence coalesced into one batch per tick that still
//! reaches everyone, and rooms above `Limits::large_room` that send counts instead of
//! members' changes and relay a bounded number of typing notices.

mod common;

use std::collections::{HashMap, HashSet};

use chat_core::{Engine, Event, Joined, Limits, PresenceChange, Session, MEMBER_PAGE};
use common::*;

/// `n` users named `{prefix}0000`, `{prefix}0001`, ... (same length, so their lists
/// compare by count), each joined to `channel` in turn; their sessions and the last
/// join's reply.
async fn members(engine: &Engine, prefix: &str, n: usize, channel: &str) -> (Vec<Session>, Joined) {
    let mut sessions = Vec::with_capacity(n);
    let mut last = None;
    for i in 0..n {
        let session = user(engine, &format!("{prefix}{i:04}")).await;
        last = Some(session.join(channel, None).await.unwrap());
        sessions.push(session);
    }
    (sessions, last.expect("at least one member"))
}

/// The bytes the members of a join reply take, as a stand-in for the reply's size.
fn members_bytes(joined: &Joined) -> usize {
    format!("{:?}", joined.members).len()
}

#[tokio::test]
async fn a_join_reply_does_not_grow_with_the_room() {
    let engine = engine().await;
    let owner = user(&engine, "owner").await;
    let mut replies = Vec::new();
    // Same-length names, so that the lists differ only by their number of members.
    for (channel, size) in [("ra", 10), ("rb", 200), ("rc", 3_000)] {
        owner.create_channel(channel).await.unwrap();
        let (sessions, joined) = members(&engine, channel, size, channel).await;
        assert_eq!(joined.member_count, size, "{channel}");
        assert_eq!(joined.online_count, size, "{channel}");
        assert_eq!(joined.members.len(), size.min(MEMBER_PAGE), "{channel}");
        assert_eq!(
            joined.members_next.is_some(),
            size > MEMBER_PAGE,
            "{channel}"
        );
        replies.push((joined, sessions));
    }
    let (ten, full, big) = (&replies[0].0, &replies[1].0, &replies[2].0);
    // Ids of the big room's members have up to two more digits; nothing else differs.
    assert!(
        members_bytes(big) <= members_bytes(full) + 2 * MEMBER_PAGE,
        "a room of 3,000 answers a join with as many bytes of members as one of 200: {} and {}",
        members_bytes(big),
        members_bytes(full)
    );
    assert!(members_bytes(ten) < members_bytes(full));
}

#[tokio::test]
async fn paging_returns_every_member_exactly_once_online_first() {
    let engine = engine().await;
    let owner = user(&engine, "owner").await;
    owner.create_channel("c").await.unwrap();
    owner.join("c", None).await.unwrap();
    let (mut sessions, _) = members(&engine, "p", 249, "c").await;
    // Every fifth member goes offline (still a member).
    let mut offline = HashSet::new();
    for i in (0..sessions.len()).step_by(5).rev() {
        let gone = sessions.remove(i);
        offline.insert(gone.user().id);
        drop(gone);
    }
    let (room_owner, gone) = (&owner, offline.len());
    wait_until(|| async move {
        let first = room_owner.members_page("c", None, 1).await.unwrap();
        first.online_count == 250 - gone
    })
    .await;

    for limit in [1, 7, 100, 1_000] {
        let mut seen = Vec::new();
        let mut after = None;
        loop {
            let page = owner.members_page("c", after, limit).await.unwrap();
            assert!(page.members.len() <= limit);
            assert_eq!(page.member_count, 250);
            seen.extend(page.members.iter().map(|m| (m.user.id, m.online)));
            match page.next {
                Some(next) => after = Some(next),
                None => break,
            }
        }
        assert_eq!(seen.len(), 250, "limit {limit}");
        let ids: HashSet<_> = seen.iter().map(|(id, _)| *id).collect();
        assert_eq!(ids.len(), 250, "limit {limit}: each member once");
        let online = 250 - offline.len();
        assert!(seen[..online]
            .iter()
            .all(|(id, on)| *on && !offline.contains(id)));
        assert!(seen[online..]
            .iter()
            .all(|(id, on)| !*on && offline.contains(id)));
    }
}

#[tokio::test]
async fn coalesced_presence_reaches_every_member() {
    let engine = engine().await;
    let owner = user(&engine, "owner").await;
    owner.create_channel("c").await.unwrap();
    let (mut early, _) = members(&engine, "e", 30, "c").await;
    // Let the early joins' batches go out, then start from a quiet room.
    for session in &mut early {
        wait_for(session, |e| {
            presence_of(e, "e0029")
                .contains(&PresenceChange::Joined)
                .then_some(())
        })
        .await;
    }

    // Twenty users join at once.
    let late: Vec<Session> = futures_util::future::join_all((0..20).map(|i| {
        let engine = engine.clone();
        async move {
            let session = user(&engine, &format!("l{i:04}")).await;
            session.join("c", None).await.unwrap();
            session
        }
    }))
    .await;
    let names: HashSet<String> = late.iter().map(|s| s.user().name.to_string()).collect();

    for session in &mut early {
        let mut missing = names.clone();
        let mut batches = 0;
        while !missing.is_empty() {
            let counts = wait_for(session, |e| match e {
                Event::PresenceBatch(batch) => {
                    for (user, change) in &batch.changes {
                        assert_eq!(*change, PresenceChange::Joined);
                        missing.remove(&*user.name);
                    }
                    Some((batch.member_count, batch.online_count))
                }
                _ => None,
            })
            .await;
            batches += 1;
            assert!(counts.0 >= 30 && counts.0 <= 50, "{counts:?}");
        }
        assert!(
            batches < names.len(),
            "{}: {batches} events for {} joins: they were not coalesced",
            session.user().name,
            names.len()
        );
    }
}

#[tokio::test]
async fn a_large_room_sends_counts_not_members_changes() {
    let engine = engine_with({
        let mut limits = Limits::default();
        limits.large_room = 8;
        limits
    })
    .await;
    let mut owner = user(&engine, "owner").await;
    owner.create_channel("c").await.unwrap();
    assert!(!owner.join("c", None).await.unwrap().large);
    let (mut others, joined) = members(&engine, "m", 11, "c").await;
    assert!(joined.large, "12 members, above 8");
    assert_eq!((joined.member_count, joined.online_count), (12, 12));

    // The owner hears of the small room's members one by one, then only counts.
    let mut named = HashSet::new();
    loop {
        let event = wait_for(&mut owner, |e| match e {
            Event::PresenceBatch(b) => Some(Ok(b.changes.clone())),
            Event::RoomCounts {
                members, online, ..
            } => Some(Err((*members, *online))),
            _ => None,
        })
        .await;
        match event {
            Ok(changes) => named.extend(changes.into_iter().map(|(u, _)| u.name.to_string())),
            Err((12, 12)) => break,
            Err(_) => {}
        }
    }
    assert!(
        !named.contains("m0010"),
        "the 12th member joined a large room: counted, not named ({named:?})"
    );

    // Someone drops: the counts say so, nobody is named.
    drop(others.pop());
    let counts = wait_for(&mut owner, |e| match e {
        Event::PresenceBatch(b) => panic!("a member's change in a large room: {b:?}"),
        Event::RoomCounts {
            members, online, ..
        } => Some((*members, *online)),
        _ => None,
    })
    .await;
    assert_eq!(counts, (12, 11));

    // The member list is fetched on demand.
    let page = owner.members_page("c", None, 100).await.unwrap();
    assert_eq!(page.members.len(), 12);
    assert_eq!(page.members.iter().filter(|m| m.online).count(), 11);
}

#[tokio::test]
async fn a_large_room_relays_a_bounded_number_of_typing_notices() {
    let engine = engine_with({
        let mut limits = Limits::default();
        limits.large_room = 4;
        limits.large_room_typing = 2;
        limits.typing_interval = std::time::Duration::from_secs(60);
        limits
    })
    .await;
    let owner = user(&engine, "owner").await;
    owner.create_channel("c").await.unwrap();
    owner.join("c", None).await.unwrap();
    let (mut typists, _) = members(&engine, "t", 6, "c").await;
    let mut sent = 0;
    for session in &typists {
        if session.typing("c").await.unwrap() {
            sent += 1;
        }
    }
    assert_eq!(sent, 2, "two notices per interval in a room of 7 above 4");
    // The owner sees exactly those two, then the message that proves the order.
    owner.post("c", "done").await.unwrap();
    let reader = typists.last_mut().expect("a member");
    let mut notices = HashMap::new();
    loop {
        match tokio::time::timeout(PATIENCE, reader.next_event())
            .await
            .unwrap()
        {
            Some(Event::Typing { user, .. }) => {
                *notices.entry(user.name.to_string()).or_insert(0) += 1
            }
            Some(Event::Posted(_)) => break,
            Some(_) => {}
            None => panic!("the reader disconnected"),
        }
    }
    assert_eq!(notices.len(), 2, "{notices:?}");
}

/// Waits until `check` says yes, asking again every 10 ms; panics after `PATIENCE`.
async fn wait_until<F, Fut>(mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while !check().await {
        assert!(tokio::time::Instant::now() < deadline, "waited too long");
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
}
