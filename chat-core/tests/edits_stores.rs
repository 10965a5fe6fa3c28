//! Edits and reactions survive the durable stores: an engine started again on the same
//! SQLite file, and a Redis node that starts after them or catches up after losing its
//! subscription, find the latest text, `edited_at` and reactions.
//!
//! The Redis tests start a real `redis-server`; without one they say so loudly and skip
//! (under `CI=true` they fail instead).

mod common;

use std::sync::Arc;

use chat_core::{ChatMessage, Engine, Event, Limits, Rate, Session};
use common::*;

fn limits() -> Limits {
    let mut limits = Limits::default();
    limits.message_rate = Rate::new(1000, 1000.0);
    limits
}

/// Per emoji used, its short name and how many used it.
fn counts(m: &Arc<ChatMessage>) -> Vec<(&'static str, usize)> {
    m.reactions
        .iter()
        .map(|(e, u)| (e.name(), u.len()))
        .collect()
}

/// Alice's message "first" edited to "first, edited" with a 👍 from each of them, and a
/// second message with ❤️ from bob then taken back; returns the first one's id.
async fn edit_and_react(alice: &Session, bob: &Session, room: &str) -> u64 {
    let first = alice.post(room, "first").await.unwrap();
    let second = alice.post(room, "second").await.unwrap();
    alice.edit(room, first.id, "first, edited").await.unwrap();
    alice.react(room, first.id, "+1").await.unwrap();
    bob.react(room, first.id, "+1").await.unwrap();
    bob.react(room, second.id, "heart").await.unwrap();
    bob.react(room, second.id, "heart").await.unwrap();
    first.id
}

/// What `edit_and_react` left, as a join shows it.
fn assert_kept(messages: &[Arc<ChatMessage>], first: u64) {
    let m = messages.iter().find(|m| m.id == first).expect("kept");
    assert_eq!(m.text, "first, edited");
    assert!(m.edited_at.is_some_and(|at| at >= m.sent_at));
    assert_eq!(counts(m), vec![("+1", 2)]);
    let second = messages.iter().find(|m| m.id == first + 1).expect("kept");
    assert!(second.reactions.is_empty() && second.edited_at.is_none());
}

#[cfg(feature = "sqlite")]
#[tokio::test]
async fn a_restarted_sqlite_store_keeps_edits_and_reactions() {
    use common::sqlite::{open, reopen, scratch};
    let path = scratch("edits").join("flack.sqlite3");
    let engine = open(&path, limits()).await.unwrap();
    let (alice, bob) = alice_and_bob_in(&engine, "general").await;
    let first = edit_and_react(&alice, &bob, "general").await;
    drop((alice, bob));
    engine.shutdown().await;
    drop(engine);

    let engine = reopen(&path, limits()).await;
    let carol = user(&engine, "carol").await;
    let joined = carol.join("general", None).await.unwrap();
    assert_kept(&joined.messages, first);
    engine.shutdown().await;
}

#[cfg(feature = "redis")]
mod redis {
    use super::*;
    use common::redis_server::RedisServer;

    async fn node(redis: &RedisServer) -> Engine {
        Engine::builder()
            .limits(limits())
            .redis(redis.url())
            .start()
            .await
            .expect("node connects to redis")
    }

    #[tokio::test]
    async fn redis_nodes_share_edits_and_reactions_live_and_stored() {
        let Some(redis) = RedisServer::start(false) else {
            return;
        };
        let (a, b) = (node(&redis).await, node(&redis).await);
        let alice = user(&a, "alice").await;
        let mut bob = user(&b, "bob").await;
        alice.create_channel("c").await.unwrap();
        alice.join("c", None).await.unwrap();
        bob.join("c", None).await.unwrap();
        let first = edit_and_react(&alice, &bob, "c").await;

        // Live on the other node, in order: the edit, then each reaction.
        let edited = wait_for(&mut bob, |e| match e {
            Event::Edited(m) => Some(m.clone()),
            _ => None,
        })
        .await;
        assert_eq!((edited.id, edited.text.as_str()), (first, "first, edited"));
        let mut seen = Vec::new();
        while seen.len() < 4 {
            seen.push(
                wait_for(&mut bob, |e| match e {
                    Event::Reacted(m) => Some((m.id, counts(m))),
                    _ => None,
                })
                .await,
            );
        }
        let second = first + 1;
        assert_eq!(
            seen,
            vec![
                (first, vec![("+1", 1)]),
                (first, vec![("+1", 2)]),
                (second, vec![("heart", 1)]),
                (second, vec![]),
            ]
        );
        // The author check holds on every node.
        assert_eq!(
            bob.edit("c", first, "x").await.unwrap_err().code(),
            "not_author"
        );
        assert_eq!(
            bob.react("c", 999, "+1").await.unwrap_err().code(),
            "no_such_message"
        );

        // A third node starts from what Redis stored.
        let third = node(&redis).await;
        let carol = user(&third, "carol").await;
        assert_kept(&carol.join("c", None).await.unwrap().messages, first);
    }

    #[tokio::test]
    async fn a_node_that_lost_its_subscription_catches_up_on_edits() {
        let Some(redis) = RedisServer::start(false) else {
            return;
        };
        let (a, b) = (node(&redis).await, node(&redis).await);
        let alice = user(&a, "alice").await;
        let mut bob = user(&b, "bob").await;
        alice.create_channel("c").await.unwrap();
        alice.join("c", None).await.unwrap();
        bob.join("c", None).await.unwrap();
        let sent = alice.post("c", "before").await.unwrap();
        next_message(&mut bob).await;

        // Every pub/sub connection goes: node b misses the edit's publication, and
        // catches up from the stored list when it resubscribes.
        assert!(redis.kill_pubsub() > 0);
        alice.edit("c", sent.id, "after").await.unwrap();
        let edited = wait_for(&mut bob, |e| match e {
            Event::Edited(m) => Some(m.clone()),
            _ => None,
        })
        .await;
        assert_eq!(edited.text, "after");
        let again = user(&b, "dave").await;
        let joined = again.join("c", None).await.unwrap();
        assert_eq!(joined.messages[0].text, "after");
    }
}
