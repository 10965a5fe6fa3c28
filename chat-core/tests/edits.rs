//! Edits and reactions through the public API, on the in-memory broker: who may edit,
//! what every follower sees, what a join and a resume carry, a second node sharing the
//! broker, reactions toggled and counted per user, and the limits that answer with clear
//! errors (text rules, flood limit, the emoji set, a message not in the room).

mod common;

use std::sync::Arc;

use chat_core::{ChatMessage, Engine, Event, Limits, MemoryBroker, Rate, Session, UserId};
use common::*;

/// The next edit a session sees.
async fn next_edit(session: &mut Session) -> Arc<ChatMessage> {
    wait_for(session, |e| match e {
        Event::Edited(m) => Some(m.clone()),
        _ => None,
    })
    .await
}

/// The next reactions change a session sees.
async fn next_reactions(session: &mut Session) -> Arc<ChatMessage> {
    wait_for(session, |e| match e {
        Event::Reacted(m) => Some(m.clone()),
        _ => None,
    })
    .await
}

/// Per emoji used, its short name and who used it.
fn counts(m: &Arc<ChatMessage>) -> Vec<(&'static str, Vec<UserId>)> {
    m.reactions
        .iter()
        .map(|(e, users)| (e.name(), users.to_vec()))
        .collect()
}

#[tokio::test]
async fn the_author_edits_and_everyone_sees_it_live_and_in_history() {
    let engine = engine().await;
    let (mut alice, mut bob) = alice_and_bob_in(&engine, "general").await;
    let sent = alice.post("general", "helo").await.unwrap();
    assert!(sent.edited_at.is_none());
    next_message(&mut bob).await;

    alice.edit("general", sent.id, "hello").await.unwrap();
    for session in [&mut alice, &mut bob] {
        let edited = next_edit(session).await;
        assert_eq!((edited.id, edited.text.as_str()), (sent.id, "hello"));
        assert!(edited.edited_at.is_some_and(|at| at >= sent.sent_at));
        assert_eq!(
            edited.sent_at, sent.sent_at,
            "an edit keeps the message's time"
        );
    }

    // Someone else's message is refused by name; nothing reaches anyone.
    let refused = bob.edit("general", sent.id, "pwned").await.unwrap_err();
    assert_eq!(refused.code(), "not_author");
    assert!(
        refused.to_string().contains("only its author can edit"),
        "{refused}"
    );
    assert_none(&mut alice, "a refused edit", |e| {
        matches!(e, Event::Edited(_))
    })
    .await;

    // A new join shows the latest text.
    let carol = user(&engine, "carol").await;
    let joined = carol.join("general", None).await.unwrap();
    assert_eq!(joined.messages[0].text, "hello");
    assert!(joined.messages[0].edited_at.is_some());
}

#[tokio::test]
async fn a_resume_carries_edits_and_reactions_of_messages_the_client_saw() {
    let engine = engine().await;
    let (alice, bob) = alice_and_bob_in(&engine, "general").await;
    let first = alice.post("general", "one").await.unwrap();
    let second = alice.post("general", "two").await.unwrap();
    let last_seen = bob.join("general", None).await.unwrap().last_id;
    assert_eq!(last_seen, second.id);

    alice.edit("general", first.id, "one, fixed").await.unwrap();
    bob.react("general", second.id, "+1").await.unwrap();
    let third = alice.post("general", "three").await.unwrap();

    let carol = user(&engine, "carol").await;
    carol.join("general", None).await.unwrap();
    let resumed = carol.join("general", Some(last_seen)).await.unwrap();
    assert!(!resumed.gap);
    let messages: Vec<_> = resumed.messages.iter().map(|m| m.id).collect();
    assert_eq!(messages, vec![third.id]);
    let mut updated: Vec<_> = resumed
        .updated
        .iter()
        .map(|m| (m.id, m.text.clone()))
        .collect();
    updated.sort();
    assert_eq!(
        updated,
        vec![(first.id, "one, fixed".into()), (second.id, "two".into())]
    );
    let reacted = resumed.updated.iter().find(|m| m.id == second.id).unwrap();
    assert_eq!(counts(reacted), vec![("+1", vec![bob.user().id])]);
}

#[tokio::test]
async fn reactions_toggle_per_user_and_are_counted_for_everyone() {
    let engine = engine().await;
    let (mut alice, mut bob) = alice_and_bob_in(&engine, "general").await;
    let sent = alice.post("general", "ship it?").await.unwrap();
    let (a, b) = (alice.user().id, bob.user().id);

    alice.react("general", sent.id, "👍").await.unwrap();
    expect_counts(&mut [&mut alice, &mut bob], &[("+1", vec![a])]).await;
    bob.react("general", sent.id, ":+1:").await.unwrap();
    expect_counts(&mut [&mut alice, &mut bob], &[("+1", vec![a, b])]).await;
    bob.react("general", sent.id, "\u{2764}").await.unwrap();
    let both = [("+1", vec![a, b]), ("heart", vec![b])];
    expect_counts(&mut [&mut alice, &mut bob], &both).await;
    // The same reaction again takes it back.
    alice.react("general", sent.id, "+1").await.unwrap();
    let after = [("+1", vec![b]), ("heart", vec![b])];
    expect_counts(&mut [&mut alice, &mut bob], &after).await;

    // Kept with the message: a join shows them.
    let carol = user(&engine, "carol").await;
    let joined = carol.join("general", None).await.unwrap();
    assert_eq!(counts(&joined.messages[0]), after.to_vec());
    assert!(
        joined.messages[0].edited_at.is_none(),
        "a reaction is not an edit"
    );
}

/// Each session's next reactions change shows exactly `expected`: every change is one
/// event, so the next one must be the one just made.
async fn expect_counts(sessions: &mut [&mut Session], expected: &[(&'static str, Vec<UserId>)]) {
    for session in sessions.iter_mut() {
        assert_eq!(counts(&next_reactions(session).await), expected.to_vec());
    }
}

#[tokio::test]
async fn bad_edits_and_reactions_get_clear_errors() {
    let mut limits = Limits::default();
    limits.max_message_bytes = 10;
    let engine = engine_with(limits).await;
    let (alice, bob) = alice_and_bob_in(&engine, "general").await;
    let sent = alice.post("general", "short").await.unwrap();

    let code = |r: Result<(), chat_core::ChatError>| r.unwrap_err().code();
    assert_eq!(
        code(alice.edit("general", sent.id, "far too long now").await),
        "too_long"
    );
    assert_eq!(code(alice.edit("general", sent.id, "  ").await), "empty");
    assert_eq!(
        code(alice.edit("general", sent.id, "a\u{7}b").await),
        "invalid_text"
    );
    assert_eq!(
        code(alice.edit("general", 999, "fine").await),
        "no_such_message"
    );
    assert_eq!(
        code(bob.react("general", 999, "+1").await),
        "no_such_message"
    );
    let outside = bob.react("general", sent.id, "💩").await.unwrap_err();
    assert_eq!(outside.code(), "invalid_reaction");
    assert!(
        outside.to_string().contains("heart"),
        "names the set: {outside}"
    );
    let stranger = user(&engine, "carol").await;
    assert_eq!(
        code(stranger.edit("general", sent.id, "x").await),
        "not_joined"
    );
    assert_eq!(
        code(stranger.react("general", sent.id, "+1").await),
        "not_joined"
    );

    // A deleted message can no longer be edited or reacted to.
    alice.delete("general", sent.id).await.unwrap();
    assert_eq!(
        code(alice.edit("general", sent.id, "back").await),
        "no_such_message"
    );
    assert_eq!(
        code(bob.react("general", sent.id, "+1").await),
        "no_such_message"
    );
}

#[tokio::test]
async fn edits_and_reactions_take_from_the_flood_limit() {
    let mut limits = Limits::default();
    limits.message_rate = Rate::new(3, 0.01);
    let engine = engine_with(limits).await;
    let (alice, _bob) = alice_and_bob_in(&engine, "general").await;
    let sent = alice.post("general", "one").await.unwrap();
    alice.edit("general", sent.id, "two").await.unwrap();
    alice.react("general", sent.id, "eyes").await.unwrap();
    let edit = alice.edit("general", sent.id, "three").await.unwrap_err();
    assert_eq!(edit.code(), "rate_limited");
    assert!(edit.to_string().contains("message_rate"), "{edit}");
    assert_eq!(
        alice
            .react("general", sent.id, "eyes")
            .await
            .unwrap_err()
            .code(),
        "rate_limited"
    );
}

#[tokio::test]
async fn edits_and_reactions_reach_another_node_and_its_later_joins() {
    let broker = Arc::new(MemoryBroker::new(&Limits::default()));
    let a = Engine::builder()
        .broker(broker.clone())
        .start()
        .await
        .unwrap();
    let b = Engine::builder().broker(broker).start().await.unwrap();
    let alice = user(&a, "alice").await;
    let mut bob = user(&b, "bob").await;
    alice.create_channel("shared").await.unwrap();
    alice.join("shared", None).await.unwrap();
    bob.join("shared", None).await.unwrap();
    let sent = alice.post("shared", "typo").await.unwrap();
    next_message(&mut bob).await;

    alice.edit("shared", sent.id, "no typo").await.unwrap();
    assert_eq!(next_edit(&mut bob).await.text, "no typo");
    alice.react("shared", sent.id, "tada").await.unwrap();
    assert_eq!(
        counts(&next_reactions(&mut bob).await),
        vec![("tada", vec![alice.user().id])]
    );
    // Bob's own node refuses his edit of alice's message, as alice's would.
    assert_eq!(
        bob.edit("shared", sent.id, "x").await.unwrap_err().code(),
        "not_author"
    );

    let carol = user(&b, "carol").await;
    let joined = carol.join("shared", None).await.unwrap();
    assert_eq!(joined.messages[0].text, "no typo");
    assert_eq!(
        counts(&joined.messages[0]),
        vec![("tada", vec![alice.user().id])]
    );
}

#[tokio::test]
async fn private_messages_can_be_edited_and_reacted_to() {
    let engine = engine().await;
    let mut alice = user(&engine, "alice").await;
    let mut bob = user(&engine, "bob").await;
    let sent = alice.post("@bob", "secret").await.unwrap();
    next_message(&mut bob).await;
    alice.edit("@bob", sent.id, "secret!").await.unwrap();
    assert_eq!(next_edit(&mut bob).await.text, "secret!");
    bob.react("@alice", sent.id, "joy").await.unwrap();
    assert_eq!(
        counts(&next_reactions(&mut alice).await),
        vec![("joy", vec![bob.user().id])]
    );
}
