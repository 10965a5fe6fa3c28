//! Room lifecycle: rooms nobody follows stop and come back on demand with their history,
//! the engine's memory returns to its baseline once its users are gone, and a room that
//! cannot load its history says why and can be started again, and a room waits for the
//! commits it started before it stops.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use chat_core::broker::{Follow, Proposal, Receipt};
use chat_core::{Broker, ChatError, Engine, Limits, Login, MemoryBroker, Room};
use common::hooked::{Hooked, RoomFeeds};
use common::{engine_with, next_message, user};
use tokio::sync::Semaphore;

/// Limits under which a room stops 100 ms after its last follower left.
fn quick_idle() -> Limits {
    let mut limits = Limits::default();
    limits.room_idle = Duration::from_millis(100);
    limits
}

/// Waits (at most 5 s) until the engine runs `rooms` room actors.
async fn until_rooms_running(engine: &Engine, rooms: usize) {
    for _ in 0..500 {
        if engine.stats().await.unwrap().rooms_running == rooms {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!(
        "expected {rooms} rooms running, have {:?}",
        engine.stats().await.unwrap()
    );
}

#[tokio::test]
async fn an_idle_room_stops_and_comes_back_with_its_history() {
    let engine = engine_with(quick_idle()).await;
    let alice = user(&engine, "alice").await;
    alice.create_channel("c").await.unwrap();
    alice.join("c", None).await.unwrap();
    let first = alice.post("c", "before the nap").await.unwrap();
    alice.leave("c").await.unwrap();
    until_rooms_running(&engine, 0).await;

    let mut bob = user(&engine, "bob").await;
    let joined = bob.join("c", None).await.unwrap();
    let ids: Vec<_> = joined.messages.iter().map(|m| m.id).collect();
    assert_eq!(
        ids,
        vec![first.id],
        "the history comes back from the broker"
    );
    assert_eq!(joined.last_id, first.id);
    // The restarted room numbers on from where it was.
    alice.join("c", None).await.unwrap();
    let next = alice.post("c", "after").await.unwrap();
    assert_eq!(next.id, first.id + 1);
    assert_eq!(next_message(&mut bob).await.id, next.id);
}

#[tokio::test]
async fn a_private_room_stops_with_both_users_gone_and_resumes_with_them() {
    let engine = engine_with(quick_idle()).await;
    let alice = user(&engine, "alice").await;
    let bob = user(&engine, "bob").await;
    let said = alice.post("@bob", "psst").await.unwrap();
    let (alice_token, bob_token) = (
        alice.token().expose().to_owned(),
        bob.token().expose().to_owned(),
    );
    drop((alice, bob));
    until_rooms_running(&engine, 0).await;

    let alice = engine.connect(Login::Resume(alice_token)).await.unwrap();
    let mut bob = engine.connect(Login::Resume(bob_token)).await.unwrap();
    let history = bob.join("@alice", None).await.unwrap();
    assert_eq!(history.messages.last().map(|m| m.id), Some(said.id));
    let again = alice.post("@bob", "still here?").await.unwrap();
    assert_eq!(again.id, said.id + 1);
    assert_eq!(next_message(&mut bob).await.id, again.id);
}

#[tokio::test]
async fn memory_returns_to_its_baseline_once_the_users_are_gone() {
    let engine = engine_with(quick_idle()).await;
    let baseline = engine.stats().await.unwrap();
    let mut sessions = Vec::new();
    for i in 0..20 {
        let s = user(&engine, &format!("u{i}")).await;
        s.create_channel(&format!("room{i}")).await.unwrap();
        s.join(format!("room{i}").as_str(), None).await.unwrap();
        s.post(format!("room{i}").as_str(), "hi").await.unwrap();
        if i > 0 {
            s.post(format!("@u{}", i - 1).as_str(), "hello neighbour")
                .await
                .unwrap();
        }
        sessions.push(s);
    }
    let busy = engine.stats().await.unwrap();
    assert_eq!(busy.sessions, 20);
    assert_eq!(busy.rooms_running, 20 + 19);
    drop(sessions);
    until_rooms_running(&engine, baseline.rooms_running).await;
    let after = engine.stats().await.unwrap();
    assert_eq!(after.sessions, baseline.sessions);
    assert_eq!(after.channels, 20, "channels themselves are kept");
}

/// Following a room fails while `failures` is above 0.
struct FailingFollow {
    failures: AtomicUsize,
}

#[async_trait::async_trait]
impl RoomFeeds for FailingFollow {
    async fn follow(&self, inner: &MemoryBroker, room: &Room) -> Result<Follow, ChatError> {
        let failing = self
            .failures
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok();
        if failing {
            return Err(ChatError::Unavailable("the store is down".into()));
        }
        inner.follow(room).await
    }
}

#[tokio::test]
async fn a_room_that_cannot_load_its_history_says_why_and_starts_again() {
    let broker = Hooked::wrap(
        Arc::new(MemoryBroker::new(&Limits::default())),
        FailingFollow {
            failures: AtomicUsize::new(0),
        },
    );
    let engine = Engine::builder()
        .broker(broker.clone())
        .start()
        .await
        .unwrap();
    engine.create_channel("c").await.unwrap();
    let alice = user(&engine, "alice").await;
    broker.feeds.failures.store(2, Ordering::SeqCst);
    let refused = alice.join("c", None).await.unwrap_err();
    assert_eq!(refused.code(), "unavailable", "{refused}");
    assert!(
        refused.to_string().contains("the store is down"),
        "{refused}"
    );

    // The store is back: the next join starts the room again and works.
    let joined = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            match alice.join("c", None).await {
                Ok(joined) => break joined,
                Err(e) => {
                    assert_eq!(e.code(), "unavailable", "{e}");
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            }
        }
    })
    .await
    .expect("the room starts again");
    assert!(joined.messages.is_empty());
    let posted = alice.post("c", "works").await.unwrap();
    assert_eq!(posted.id, 1);
}

/// The in-memory broker, except that a post is committed only once the test lets it
/// (one permit per post): as a post waits for Redis while it is away.
struct HeldPosts {
    permits: Semaphore,
}

#[async_trait::async_trait]
impl RoomFeeds for HeldPosts {
    async fn commit(
        &self,
        inner: &MemoryBroker,
        room: &Room,
        proposal: Proposal,
    ) -> Result<Receipt, ChatError> {
        if matches!(proposal, Proposal::Post { .. }) {
            self.permits
                .acquire()
                .await
                .map_err(|_| ChatError::ShuttingDown)?
                .forget();
        }
        inner.commit(room, proposal).await
    }
}

/// A post whose commit is still waiting for the broker when its author leaves the room
/// keeps the room running past `room_idle`: it is stored and answered, never dropped with
/// the room as `shutting_down`.
#[tokio::test]
async fn a_room_waits_for_its_commits_before_it_stops_idle() {
    let broker = Hooked::wrap(
        Arc::new(MemoryBroker::new(&Limits::default())),
        HeldPosts {
            permits: Semaphore::new(0),
        },
    );
    let engine = Engine::builder()
        .limits(quick_idle())
        .broker(broker.clone())
        .start()
        .await
        .unwrap();
    let alice = user(&engine, "alice").await;
    alice.create_channel("c").await.unwrap();
    alice.join("c", None).await.unwrap();
    let pending = alice.start_post("c", "held").await.unwrap();
    alice.leave("c").await.unwrap();
    // Three times `room_idle`: the room is idle, but its post still waits for the broker.
    tokio::time::sleep(Duration::from_millis(300)).await;
    broker.feeds.permits.add_permits(1);
    let posted = tokio::time::timeout(Duration::from_secs(5), pending)
        .await
        .expect("the post is answered")
        .expect("and stored");
    assert_eq!(posted.id, 1);
    until_rooms_running(&engine, 0).await;
}
