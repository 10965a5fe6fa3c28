//! Private messages through the engine's public API: `@name` reaches every connection
//! of both users and nobody else, and a private conversation has history, resume and
//! deletion rules like a channel.

mod common;

use chat_core::{Event, Login};
use common::*;

#[tokio::test]
async fn private_messages_reach_every_connection_of_both_and_nobody_else() {
    let engine = engine().await;
    let alice = user(&engine, "alice").await;
    let mut alice_phone = engine
        .connect(Login::Resume(alice.token().expose().to_owned()))
        .await
        .unwrap();
    let mut alice = alice;
    let mut bob = user(&engine, "bob").await;
    let mut carol = user(&engine, "carol").await;

    let sent = alice.post("@Bob", "psst").await.unwrap();
    for s in [&mut alice, &mut alice_phone, &mut bob] {
        let m = next_message(s).await;
        assert_eq!((m.id, m.text.as_str()), (sent.id, "psst"));
    }
    assert_eq!(sent.room.label_for(bob.user().id), "@alice");
    assert_eq!(sent.room.label_for(alice.user().id), "@bob");
    assert_none(&mut carol, "someone else's private message", |e| {
        matches!(e, Event::Posted(_))
    })
    .await;

    // Bob's conversation with alice holds the message; carol's with alice does not.
    let bobs = bob.join("@alice", None).await.unwrap();
    assert_eq!(bobs.messages.len(), 1);
    assert!(
        bobs.members.iter().all(|m| m.online),
        "both are connected: {:?}",
        bobs.members
    );
    let carols = carol.join("@alice", None).await.unwrap();
    assert!(carols.messages.is_empty());
    assert_ne!(bobs.room, carols.room);

    // A later connection of bob also gets the conversation live.
    let mut bob_laptop = engine
        .connect(Login::Resume(bob.token().expose().to_owned()))
        .await
        .unwrap();
    bob.post("@alice", "back").await.unwrap();
    assert_eq!(next_message(&mut bob_laptop).await.text, "back");
    assert_eq!(next_message(&mut alice_phone).await.text, "back");

    assert_eq!(
        alice.leave("@bob").await.unwrap_err().code(),
        "invalid_target"
    );
    assert_eq!(
        alice.post("@nobody", "x").await.unwrap_err().code(),
        "no_such_user"
    );
    assert_eq!(
        alice.post("@alice", "x").await.unwrap_err().code(),
        "invalid_target"
    );
}

#[tokio::test]
async fn a_private_conversation_has_history_and_resume_like_a_channel() {
    let engine = engine().await;
    let alice = user(&engine, "alice").await;
    let bob = user(&engine, "bob").await;
    for i in 1..=5 {
        alice.post("@bob", &format!("m{i}")).await.unwrap();
    }
    let all = bob.join("@alice", None).await.unwrap();
    assert_eq!(
        all.messages.iter().map(|m| m.id).collect::<Vec<_>>(),
        [1, 2, 3, 4, 5]
    );
    let missed = bob.join("@alice", Some(3)).await.unwrap();
    assert_eq!(
        missed.messages.iter().map(|m| m.id).collect::<Vec<_>>(),
        [4, 5]
    );
    let mine = bob.post("@alice", "hi").await.unwrap();
    assert_eq!(
        alice.delete("@bob", mine.id).await.unwrap_err().code(),
        "not_author"
    );
}
