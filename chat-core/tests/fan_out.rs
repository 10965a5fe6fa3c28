//! A room's fan-out of a batch: the changes a room applies in one pass (a burst of posts
//! and a typing notice) reach every follower whole and in order, built once for all of
//! them, and the notice skips its author's own sessions.

mod common;

use std::sync::Arc;

use chat_core::broker::Follow;
use chat_core::{Broker, ChatError, Engine, Event, Limits, MemoryBroker, Room, Session};
use common::hooked::{Hooked, RoomFeeds};
use common::{assert_none, user, PATIENCE};
use tokio::sync::{mpsc, watch};

/// The in-memory broker, except that a room's feed is held until the test opens the
/// gate. The task that then passes the held changes on runs on the room's own thread
/// (it is spawned where the room follows its feed) and passes them all before it yields:
/// the room applies them, and fans them out, as one batch.
struct Gate {
    open: watch::Sender<bool>,
}

#[async_trait::async_trait]
impl RoomFeeds for Gate {
    async fn follow(&self, inner: &MemoryBroker, room: &Room) -> Result<Follow, ChatError> {
        let mut follow = inner.follow(room).await?;
        let (pass, held) = mpsc::unbounded_channel();
        let mut changes = std::mem::replace(&mut follow.changes, held);
        let mut open = self.open.subscribe();
        tokio::spawn(async move {
            if open.wait_for(|open| *open).await.is_err() {
                return;
            }
            while let Some(change) = changes.recv().await {
                if pass.send(change).is_err() {
                    return;
                }
            }
        });
        Ok(follow)
    }
}

/// What a session sees of posts and typing notices, in order, until it has seen `n`.
async fn seen(session: &mut Session, n: usize) -> Vec<String> {
    let mut seen = Vec::new();
    while seen.len() < n {
        let event = tokio::time::timeout(PATIENCE, session.next_event())
            .await
            .expect("the batch arrives")
            .expect("the session is open");
        match event {
            Event::Posted(m) => seen.push(m.text.to_string()),
            Event::Typing { user, .. } => seen.push(format!("{} is typing", user.name)),
            _ => {}
        }
    }
    seen
}

#[tokio::test]
async fn a_batch_reaches_each_follower_whole_and_in_order_and_skips_whom_it_must() {
    let broker = Hooked::wrap(
        Arc::new(MemoryBroker::new(&Limits::default())),
        Gate {
            open: watch::channel(false).0,
        },
    );
    let engine = Engine::builder()
        .broker(broker.clone())
        .start()
        .await
        .unwrap();
    let mut alice = user(&engine, "alice").await;
    let mut bob = user(&engine, "bob").await;
    let mut carol = user(&engine, "carol").await;
    alice.create_channel("c").await.unwrap();
    for session in [&alice, &bob, &carol] {
        session.join("c", None).await.unwrap();
    }

    let mut pending = Vec::new();
    for text in ["one", "two", "three"] {
        pending.push(alice.start_post("c", text).await.unwrap());
    }
    assert!(alice.typing("c").await.unwrap());
    broker.feeds.open.send_replace(true);
    for post in pending {
        post.await.unwrap();
    }

    // The notice was a request of its own, not a post: it may have reached the room
    // before the posts crossed to it, and its place in the batch is the room's to say.
    // Every follower sees that same order.
    let batch = seen(&mut bob, 4).await;
    let posts: Vec<&String> = batch.iter().filter(|s| !s.ends_with("typing")).collect();
    assert_eq!(posts, ["one", "two", "three"]);
    assert!(batch.iter().any(|s| s == "alice is typing"));
    assert_eq!(seen(&mut carol, 4).await, batch);
    assert_eq!(seen(&mut alice, 3).await, ["one", "two", "three"]);
    assert_none(&mut alice, "her own typing notice", |e| {
        matches!(e, Event::Typing { .. })
    })
    .await;
    engine.shutdown().await;
}
