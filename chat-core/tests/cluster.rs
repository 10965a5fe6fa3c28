//! The broker seam: two engines sharing one in-memory broker behave as one chat (unique
//! names and channels, one order, private messages and resume across nodes).

mod common;

use std::sync::Arc;

use chat_core::{Engine, Event, Limits, Login, MemoryBroker, PresenceChange};
use common::*;

#[tokio::test]
async fn two_engines_sharing_a_broker_behave_as_one_chat() {
    // Everything that must hold across nodes, shown with two engines in one process.
    let broker = Arc::new(MemoryBroker::new(&Limits::default()));
    let a = Engine::builder()
        .broker(broker.clone())
        .start()
        .await
        .unwrap();
    let b = Engine::builder().broker(broker).start().await.unwrap();
    let mut alice = user(&a, "alice").await;
    let mut bob = user(&b, "bob").await;

    // Names are unique across nodes, and so are channels.
    assert_eq!(
        b.connect(Login::Name("ALICE".into()))
            .await
            .unwrap_err()
            .code(),
        "name_taken"
    );
    alice.create_channel("shared").await.unwrap();
    assert_eq!(
        bob.create_channel("SHARED").await.unwrap_err().code(),
        "channel_exists"
    );
    let created = wait_for(&mut bob, |e| match e {
        Event::ChannelCreated(info) => Some(info.name.to_string()),
        _ => None,
    })
    .await;
    assert_eq!(created, "shared", "channel lists update across nodes");

    // One channel, one order, the same ids on both nodes.
    alice.join("shared", None).await.unwrap();
    bob.join("shared", None).await.unwrap();
    let first = alice.post("shared", "from a").await.unwrap();
    let second = bob.post("shared", "from b").await.unwrap();
    for s in [&mut alice, &mut bob] {
        let got = [next_message(s).await, next_message(s).await];
        assert_eq!([got[0].id, got[1].id], [first.id, second.id]);
        assert_eq!(
            [got[0].text.as_str(), got[1].text.as_str()],
            ["from a", "from b"]
        );
    }

    // Private messages cross too, and a user can come back on the other node.
    alice.post("@bob", "psst").await.unwrap();
    assert_eq!(next_message(&mut bob).await.text, "psst");
    let alice_on_b = b
        .connect(Login::Resume(alice.token().expose().to_owned()))
        .await
        .unwrap();
    assert_eq!(alice_on_b.user().id, alice.user().id);
    let history = alice_on_b.join("shared", Some(first.id)).await.unwrap();
    assert_eq!(
        history.messages.iter().map(|m| m.id).collect::<Vec<_>>(),
        [second.id]
    );
    let dm = alice_on_b.join("@bob", None).await.unwrap();
    assert_eq!(dm.messages.len(), 1);
}

#[tokio::test]
async fn members_and_presence_cross_engines_sharing_a_broker_that_keeps_no_presence() {
    // The in-memory broker keeps no shares of presence: a room that starts asks the other
    // nodes, which answer with their whole share within a presence tick.
    let broker = Arc::new(MemoryBroker::new(&Limits::default()));
    let a = Engine::builder()
        .broker(broker.clone())
        .start()
        .await
        .unwrap();
    let b = Engine::builder().broker(broker).start().await.unwrap();
    let mut alice = user(&a, "alice").await;
    alice.create_channel("c").await.unwrap();
    alice.join("c", None).await.unwrap();
    let mut bob = user(&b, "bob").await;
    let joined = bob.join("c", None).await.unwrap();
    // Bob's room on b started after alice's on a: a answers its question.
    if !joined.members.iter().any(|m| &*m.user.name == "alice") {
        wait_for(&mut bob, |e| {
            presence_of(e, "alice")
                .contains(&PresenceChange::Joined)
                .then_some(())
        })
        .await;
    }
    wait_for(&mut alice, |e| {
        presence_of(e, "bob")
            .contains(&PresenceChange::Joined)
            .then_some(())
    })
    .await;
    for (session, other) in [(&alice, "bob"), (&bob, "alice")] {
        let page = session.members_page("c", None, 10).await.unwrap();
        let listed = page.members.iter().find(|m| &*m.user.name == other);
        assert!(
            listed.is_some_and(|m| m.online),
            "{other}: {:?}",
            page.members
        );
        assert_eq!((page.member_count, page.online_count), (2, 2));
    }
    bob.close();
    wait_for(&mut alice, |e| {
        presence_of(e, "bob")
            .contains(&PresenceChange::Offline)
            .then_some(())
    })
    .await;
}
