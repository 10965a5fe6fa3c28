//! Messages in a channel through the engine's public API: what a post carries and what
//! is refused, the history a joiner gets, one order for every sender and subscriber,
//! pipelined posts, draining waiting events, and deleting one's own messages.

mod common;

use std::sync::Arc;
use std::time::Duration;

use chat_core::broker::{ChannelRecord, Follow, Proposal, Receipt, Stored};
use chat_core::{
    Broker, ChannelName, ChatError, ClusterEvent, Engine, Event, Identity, Limits, MemoryBroker,
    Rate, ResumeToken, Room, UserId, UserRef,
};
use chrono::{DateTime, Utc};
use common::*;

#[tokio::test]
async fn the_server_keeps_exactly_the_newest_100_messages() {
    let engine = engine_with({
        let mut limits = Limits::default();
        limits.message_rate = Rate::new(1000, 1000.0);
        limits
    })
    .await;
    let alice = user(&engine, "alice").await;
    alice.create_channel("busy").await.unwrap();
    alice.join("busy", None).await.unwrap();
    for i in 1..=150 {
        alice.post("busy", &format!("m{i}")).await.unwrap();
    }
    let bob = user(&engine, "bob").await;
    let joined = bob.join("busy", None).await.unwrap();
    let texts: Vec<String> = joined.messages.iter().map(|m| m.text.clone()).collect();
    let expected: Vec<String> = (51..=150).map(|i| format!("m{i}")).collect();
    assert_eq!(texts, expected, "oldest first, exactly the newest 100");
    assert_eq!(joined.last_id, 150);
    assert!(!joined.gap);
}

#[tokio::test]
async fn messages_carry_ids_author_and_a_millisecond_utc_timestamp() {
    let engine = engine().await;
    let alice = user(&engine, "alice").await;
    alice.create_channel("c").await.unwrap();
    alice.join("c", None).await.unwrap();
    let before = chrono::Utc::now().timestamp_millis();
    let a = alice.post("c", "one").await.unwrap();
    let b = alice.post("c", "two\n\twith a tab").await.unwrap();
    let after = chrono::Utc::now().timestamp_millis();
    assert_eq!((a.id, b.id), (1, 2));
    assert_eq!(a.author, *alice.user());
    let ms = a.sent_at.timestamp_millis();
    assert!(before <= ms && ms <= after);
    assert_eq!(
        a.sent_at.timestamp_subsec_nanos() % 1_000_000,
        0,
        "millisecond precision"
    );
    assert_eq!(alice.post("c", "  ").await.unwrap_err().code(), "empty");
    assert_eq!(
        alice.post("c", "\u{1b}[2J").await.unwrap_err().code(),
        "invalid_text"
    );
    assert_eq!(
        alice.post("c", &"x".repeat(4097)).await.unwrap_err().code(),
        "too_long"
    );
}

#[tokio::test]
async fn waiting_events_can_be_drained_without_waiting() {
    let engine = engine().await;
    let (alice, mut bob) = alice_and_bob_in(&engine, "c").await;
    for i in 0..3 {
        alice.post("c", &format!("m{i}")).await.unwrap();
    }
    // Once alice has the third, the room has fanned all three out to bob as well (one
    // loop delivers each message to every subscriber).
    let mut alice = alice;
    while next_message(&mut alice).await.id < 3 {}
    let mut ids = Vec::new();
    while let Some(event) = bob.try_next_event() {
        if let Event::Posted(m) = event {
            ids.push(m.id);
        }
    }
    assert_eq!(ids, [1, 2, 3]);
    assert!(bob.try_next_event().is_none());
}

#[tokio::test]
async fn started_posts_are_stored_in_order_without_waiting_for_each() {
    let engine = engine().await;
    let (alice, mut bob) = alice_and_bob_in(&engine, "c").await;

    // Start all of them first, then look at the results: each is in the room already.
    let mut pending = Vec::new();
    for i in 0..20 {
        pending.push(alice.start_post("c", &format!("m{i}")).await.unwrap());
    }
    // A refusal is known when starting, and does not disturb the others.
    assert!(matches!(
        alice.start_post("c", " ").await,
        Err(ChatError::Empty)
    ));
    // Dropping a pending post does not take the message back.
    let dropped = pending.pop().unwrap();
    drop(dropped);
    let mut stored = Vec::new();
    for post in pending {
        stored.push(post.await.unwrap());
    }
    let ids: Vec<u64> = stored.iter().map(|m| m.id).collect();
    assert_eq!(ids, (1..=19).collect::<Vec<_>>());
    let texts: Vec<&str> = stored.iter().map(|m| m.text.as_str()).collect();
    assert_eq!(texts, (0..19).map(|i| format!("m{i}")).collect::<Vec<_>>());

    let mut seen = Vec::new();
    while seen.len() < 20 {
        let m = next_message(&mut bob).await;
        seen.push(m.text.to_string());
    }
    assert_eq!(seen, (0..20).map(|i| format!("m{i}")).collect::<Vec<_>>());
}

#[tokio::test]
async fn many_senders_and_subscribers_all_see_one_order() {
    const SENDERS: usize = 8;
    const EACH: usize = 40;
    const READERS: usize = 20;
    let engine = engine_with({
        let mut limits = Limits::default();
        limits.message_rate = Rate::new(1000, 1000.0);
        limits
    })
    .await;
    let host = user(&engine, "host").await;
    host.create_channel("stress").await.unwrap();

    let mut readers = Vec::new();
    for r in 0..READERS {
        let mut s = user(&engine, &format!("reader{r}")).await;
        s.join("stress", None).await.unwrap();
        readers.push(tokio::spawn(async move {
            let mut ids = Vec::new();
            while ids.len() < SENDERS * EACH {
                ids.push(next_message(&mut s).await.id);
            }
            ids
        }));
    }
    let mut senders = Vec::new();
    for w in 0..SENDERS {
        let engine = engine.clone();
        senders.push(tokio::spawn(async move {
            let s = user(&engine, &format!("writer{w}")).await;
            s.join("stress", None).await.unwrap();
            for i in 0..EACH {
                s.post("stress", &format!("{w}:{i}")).await.unwrap();
            }
        }));
    }
    for s in senders {
        s.await.unwrap();
    }
    let expected: Vec<u64> = (1..=(SENDERS * EACH) as u64).collect();
    for r in readers {
        assert_eq!(
            r.await.unwrap(),
            expected,
            "every reader sees every id once, in order"
        );
    }
    let history = host.join("stress", None).await.unwrap();
    let ids: Vec<u64> = history.messages.iter().map(|m| m.id).collect();
    assert_eq!(
        ids,
        ((SENDERS * EACH) as u64 - 99..=(SENDERS * EACH) as u64).collect::<Vec<_>>()
    );
}

#[tokio::test]
async fn joining_while_others_send_loses_and_repeats_nothing() {
    const TOTAL: u64 = 400;
    let engine = engine_with({
        let mut limits = Limits::default();
        limits.message_rate = Rate::new(10_000, 10_000.0);
        limits.history = 1000;
        limits
    })
    .await;
    let writer = user(&engine, "writer").await;
    writer.create_channel("live").await.unwrap();
    writer.join("live", None).await.unwrap();
    let sending = tokio::spawn(async move {
        for i in 0..TOTAL {
            writer.post("live", &format!("m{i}")).await.unwrap();
            if i % 16 == 0 {
                tokio::task::yield_now().await;
            }
        }
        writer
    });
    let mut joiners = Vec::new();
    for j in 0..6 {
        let mut s = user(&engine, &format!("joiner{j}")).await;
        tokio::time::sleep(Duration::from_millis(3)).await;
        let joined = s.join("live", None).await.unwrap();
        joiners.push(tokio::spawn(async move {
            let mut ids: Vec<u64> = joined.messages.iter().map(|m| m.id).collect();
            while ids.last().copied().unwrap_or(0) < TOTAL {
                ids.push(next_message(&mut s).await.id);
            }
            ids
        }));
    }
    let _writer = sending.await.unwrap();
    for j in joiners {
        let ids = j.await.unwrap();
        assert_eq!(
            ids,
            (1..=TOTAL).collect::<Vec<_>>(),
            "snapshot + live = every id once"
        );
    }
}

/// The in-memory broker, except that every room's feed reaches its actor 50 ms late: a
/// post is committed (and answered by the broker) well before the room has applied it.
struct LateFeed(MemoryBroker);

#[async_trait::async_trait]
impl Broker for LateFeed {
    async fn register(&self, name: String) -> Result<Identity, ChatError> {
        self.0.register(name).await
    }
    async fn resume(&self, token: ResumeToken) -> Result<Identity, ChatError> {
        self.0.resume(token).await
    }
    fn session_ended(&self, user: UserId) {
        self.0.session_ended(user)
    }
    async fn keep_alive(&self, online: Vec<UserId>) -> Result<(), ChatError> {
        self.0.keep_alive(online).await
    }
    async fn find_user(&self, name: &str) -> Result<Option<UserRef>, ChatError> {
        self.0.find_user(name).await
    }
    async fn claim_channel(
        &self,
        name: &ChannelName,
        at: DateTime<Utc>,
    ) -> Result<bool, ChatError> {
        self.0.claim_channel(name, at).await
    }
    async fn lookup_channel(&self, key: &str) -> Result<Option<ChannelRecord>, ChatError> {
        self.0.lookup_channel(key).await
    }
    async fn channels(&self) -> Result<Vec<ChannelRecord>, ChatError> {
        self.0.channels().await
    }
    async fn open_direct(&self, pair: [UserRef; 2]) -> Result<(), ChatError> {
        self.0.open_direct(pair).await
    }
    async fn directs_of(&self, user: UserId) -> Result<Vec<[UserRef; 2]>, ChatError> {
        self.0.directs_of(user).await
    }
    async fn follow(&self, room: &Room) -> Result<Follow, ChatError> {
        let mut follow = self.0.follow(room).await?;
        let (late, changes) = tokio::sync::mpsc::unbounded_channel();
        let mut early = std::mem::replace(&mut follow.changes, changes);
        // Ends when the room or the broker goes away.
        std::thread::spawn(move || {
            while let Some(change) = early.blocking_recv() {
                std::thread::sleep(Duration::from_millis(50));
                if late.send(change).is_err() {
                    return;
                }
            }
        });
        Ok(follow)
    }
    async fn stored(&self, room: &Room) -> Result<Stored, ChatError> {
        self.0.stored(room).await
    }
    async fn commit(&self, room: &Room, proposal: Proposal) -> Result<Receipt, ChatError> {
        self.0.commit(room, proposal).await
    }
    fn cluster_events(&self) -> tokio::sync::mpsc::UnboundedReceiver<ClusterEvent> {
        self.0.cluster_events()
    }
    fn epoch(&self) -> &str {
        self.0.epoch()
    }
}

#[tokio::test]
async fn a_post_is_in_the_history_as_soon_as_it_is_answered() {
    let broker = Arc::new(LateFeed(MemoryBroker::new(&Limits::default())));
    let engine = Engine::builder().broker(broker).start().await.unwrap();
    let (alice, bob) = alice_and_bob_in(&engine, "c").await;
    // The very next requests see it: someone else's delete, and a joiner's snapshot.
    let posted = alice.post("c", "hello").await.unwrap();
    assert_eq!(
        bob.delete("c", posted.id).await.unwrap_err(),
        ChatError::NotAuthor(posted.id)
    );
    let carol = user(&engine, "carol").await;
    let snapshot = carol.join("c", None).await.unwrap();
    assert_eq!(snapshot.messages.last().map(|m| m.id), Some(posted.id));
}

#[tokio::test]
async fn only_the_author_deletes_and_everyone_sees_it_go() {
    let engine = engine().await;
    let (mut alice, mut bob) = alice_and_bob_in(&engine, "c").await;
    let mine = alice.post("c", "oops").await.unwrap();
    let kept = alice.post("c", "keep").await.unwrap();

    let err = bob.delete("c", mine.id).await.unwrap_err();
    assert_eq!(err, ChatError::NotAuthor(mine.id));
    assert_eq!(err.code(), "not_author");
    assert_eq!(
        alice.delete("c", 999).await.unwrap_err().code(),
        "no_such_message"
    );

    alice.delete("c", mine.id).await.unwrap();
    for s in [&mut alice, &mut bob] {
        let id = wait_for(s, |e| match e {
            Event::Deleted { id, .. } => Some(*id),
            _ => None,
        })
        .await;
        assert_eq!(id, mine.id);
    }
    let carol = user(&engine, "carol").await;
    let history = carol.join("c", None).await.unwrap();
    let ids: Vec<u64> = history.messages.iter().map(|m| m.id).collect();
    assert_eq!(ids, vec![kept.id], "the deleted message left the history");
}
