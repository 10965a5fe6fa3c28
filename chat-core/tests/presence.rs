//! Presence and typing through the engine's public API: members joining, leaving,
//! going offline and coming back, with events (in batches); typing notices reach the
//! others only and are throttled. Rooms too big for per-member presence:
//! `big_rooms.rs`.

mod common;

use std::time::Duration;

use chat_core::{Event, Limits, Login, PresenceChange, MEMBER_PAGE};
use common::*;

#[tokio::test]
async fn members_join_leave_and_drop_with_events() {
    let engine = engine().await;
    let mut alice = user(&engine, "alice").await;
    alice.create_channel("c").await.unwrap();
    alice.join("c", None).await.unwrap();

    let bob = user(&engine, "bob").await;
    let joined = bob.join("c", None).await.unwrap();
    let names: Vec<(String, bool)> = joined
        .members
        .iter()
        .map(|m| (m.user.name.to_string(), m.online))
        .collect();
    assert_eq!(names, [("alice".into(), true), ("bob".into(), true)]);
    assert_eq!((joined.member_count, joined.online_count), (2, 2));
    assert_eq!(joined.members_next, None);
    assert!(!joined.large);
    // Alice also hears of her own presence; these tests follow bob's. Each change comes
    // in a batch, with the room's counts after it.
    let presence = |want: PresenceChange, counts: (usize, usize)| {
        move |e: &Event| match e {
            Event::PresenceBatch(batch) if presence_of(e, "bob").contains(&want) => {
                assert_eq!((batch.member_count, batch.online_count), counts, "{want:?}");
                Some("bob")
            }
            _ => None,
        }
    };
    assert_eq!(
        wait_for(&mut alice, presence(PresenceChange::Joined, (2, 2))).await,
        "bob"
    );

    let bob_token = bob.token().expose().to_owned();
    drop(bob); // the connection drops
    assert_eq!(
        wait_for(&mut alice, presence(PresenceChange::Offline, (2, 1))).await,
        "bob"
    );
    let members = alice.members_page("c", None, MEMBER_PAGE).await.unwrap();
    assert!(members
        .members
        .iter()
        .any(|m| &*m.user.name == "bob" && !m.online));
    assert_eq!((members.member_count, members.online_count), (2, 1));

    let bob = engine.connect(Login::Resume(bob_token)).await.unwrap();
    bob.join("c", None).await.unwrap();
    assert_eq!(
        wait_for(&mut alice, presence(PresenceChange::Online, (2, 2))).await,
        "bob"
    );
    bob.leave("c").await.unwrap();
    assert_eq!(
        wait_for(&mut alice, presence(PresenceChange::Left, (1, 1))).await,
        "bob"
    );
    let members = alice.members_page("c", None, MEMBER_PAGE).await.unwrap();
    assert_eq!(members.members.len(), 1, "bob is no longer a member");
    assert_eq!(engine.channels().await.unwrap()[0].members, 1);
}

#[tokio::test]
async fn typing_reaches_the_others_only_and_is_throttled() {
    let engine = engine_with({
        let mut limits = Limits::default();
        limits.typing_interval = Duration::from_secs(60);
        limits
    })
    .await;
    let (mut alice, mut bob) = alice_and_bob_in(&engine, "c").await;

    assert!(alice.typing("c").await.unwrap());
    assert!(
        !alice.typing("c").await.unwrap(),
        "the second notice is throttled"
    );
    let who = wait_for(&mut bob, |e| match e {
        Event::Typing { user, .. } => Some(user.name.to_string()),
        _ => None,
    })
    .await;
    assert_eq!(who, "alice");
    // A message after the notices proves the order: bob saw exactly one notice.
    alice.post("c", "done typing").await.unwrap();
    let mut notices = 0;
    loop {
        match tokio::time::timeout(PATIENCE, bob.next_event())
            .await
            .unwrap()
        {
            Some(Event::Typing { .. }) => notices += 1,
            Some(Event::Posted(_)) => break,
            Some(_) => {}
            None => panic!("bob disconnected"),
        }
    }
    assert_eq!(notices, 0, "the throttled notice was dropped");
    assert_none(&mut alice, "her own typing notice", |e| {
        matches!(e, Event::Typing { .. })
    })
    .await;
}
