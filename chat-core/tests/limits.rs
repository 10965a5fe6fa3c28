//! The engine's limits through its public API: a stalled subscriber's bounded queue
//! (disconnected, the others unaffected), flood control by rate (refused, not
//! disconnected, per user), the counts of channels and sessions, and the message size.

mod common;

use std::time::Duration;

use chat_core::{ChatError, DisconnectReason, Event, Limits, Login, Rate};
use common::*;

#[tokio::test]
async fn a_stalled_subscriber_is_disconnected_and_others_get_everything() {
    const TOTAL: usize = 60;
    let engine = engine_with({
        let mut limits = Limits::default();
        // About eight short messages: a message costs its text and author.
        limits.session_queue_hard_bytes = 8 * 200;
        limits.session_queue_soft_bytes = 8 * 200;
        limits.message_rate = Rate::new(1000, 1000.0);
        limits
    })
    .await;
    let alice = user(&engine, "alice").await;
    alice.create_channel("c").await.unwrap();
    alice.join("c", None).await.unwrap();
    let mut stalled = user(&engine, "stalled").await;
    stalled.join("c", None).await.unwrap();
    let mut reader = user(&engine, "reader").await;
    reader.join("c", None).await.unwrap();
    let reading = tokio::spawn(async move {
        let mut ids = Vec::new();
        while ids.len() < TOTAL {
            ids.push(next_message(&mut reader).await.id);
        }
        ids
    });
    let mut alice = alice;
    for i in 0..TOTAL {
        alice.post("c", &format!("m{i}")).await.unwrap();
        // The poster reads its own events as a well-behaved client would.
        while let Ok(Some(_)) = tokio::time::timeout(Duration::ZERO, alice.next_event()).await {}
    }
    assert_eq!(
        reading.await.unwrap(),
        (1..=TOTAL as u64).collect::<Vec<_>>()
    );

    let reason = wait_for(&mut stalled, |e| match e {
        Event::Disconnected(r) => Some(*r),
        _ => None,
    })
    .await;
    assert_eq!(reason, DisconnectReason::SlowConsumer);
    assert!(stalled.next_event().await.is_none());
    assert_eq!(
        stalled.post("c", "x").await.unwrap_err().code(),
        "session_closed"
    );

    // It comes back through recovery.
    let back = engine
        .connect(Login::Resume(stalled.token().expose().to_owned()))
        .await
        .unwrap();
    let joined = back.join("c", Some(3)).await.unwrap();
    assert_eq!(joined.messages.first().map(|m| m.id), Some(4));
    assert_eq!(joined.last_id, TOTAL as u64);
}

/// At the default byte limits a burst (2,000 messages posted without waiting for anyone,
/// to a room of 100 readers) reaches every reader whole, while a member that never reads
/// is cut once what it pins passes `session_queue_hard_bytes`, not earlier and not much
/// later: its cost to the server is bounded by the limit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn default_byte_limits_spare_a_burst_and_cut_a_stalled_reader() {
    const READERS: usize = 100;
    const BURST: usize = 2_000;
    let limits = {
        let mut limits = Limits::default();
        limits.message_rate = Rate::new(1_000_000, 1_000_000.0);
        limits
    };
    let hard_bytes = limits.session_queue_hard_bytes;
    let engine = engine_with(limits).await;
    let poster = user(&engine, "poster").await;
    poster.create_channel("burst").await.unwrap();
    poster.join("burst", None).await.unwrap();
    let mut stalled = user(&engine, "stalled").await;
    stalled.join("burst", None).await.unwrap();
    let mut readers = Vec::new();
    for n in 0..READERS {
        let mut reader = user(&engine, &format!("reader{n}")).await;
        reader.join("burst", None).await.unwrap();
        readers.push(tokio::spawn(async move {
            let mut ids = Vec::with_capacity(BURST);
            while ids.len() < BURST {
                match reader.next_event().await {
                    Some(Event::Posted(message)) => ids.push(message.id),
                    Some(Event::Disconnected(reason)) => panic!("a reader was cut: {reason:?}"),
                    Some(_) => {}
                    None => panic!("a reader's session ended"),
                }
            }
            reader.close();
            ids
        }));
    }

    // The burst: a short chat line each, as fast as the room commits them.
    for n in 0..BURST {
        poster
            .post("burst", &format!("burst line {n}"))
            .await
            .unwrap();
    }
    let expected: Vec<u64> = (1..=BURST as u64).collect();
    for reader in readers {
        let ids = tokio::time::timeout(PATIENCE, reader)
            .await
            .expect("every reader gets the whole burst in time")
            .unwrap();
        assert_eq!(ids, expected);
    }
    assert!(
        tokio::time::timeout(Duration::ZERO, stalled.closed())
            .await
            .is_err(),
        "a burst alone does not cut the member that has not read it yet"
    );

    // Then big messages until the member that never reads is cut.
    let big = "x".repeat(4_000);
    let mut pinned = 0;
    while tokio::time::timeout(Duration::ZERO, stalled.closed())
        .await
        .is_err()
    {
        assert!(
            pinned <= hard_bytes + hard_bytes / 4,
            "still connected with {pinned} bytes of messages queued"
        );
        poster.post("burst", &big).await.unwrap();
        pinned += big.len();
    }
    assert!(
        pinned >= hard_bytes * 3 / 4,
        "cut after only {pinned} bytes, well under the hard limit of {hard_bytes}"
    );
    let reason = wait_for(&mut stalled, |e| match e {
        Event::Disconnected(r) => Some(*r),
        _ => None,
    })
    .await;
    assert_eq!(reason, DisconnectReason::SlowConsumer);
}

#[tokio::test]
async fn flooding_is_rate_limited_not_disconnected() {
    let engine = engine_with({
        let mut limits = Limits::default();
        limits.message_rate = Rate::new(3, 1.0);
        limits.channel_create_rate = Rate::new(1, 0.01);
        limits
    })
    .await;
    let alice = user(&engine, "alice").await;
    alice.create_channel("a").await.unwrap();
    let err = alice.create_channel("b").await.unwrap_err();
    assert_eq!(err.code(), "rate_limited");
    assert!(err.to_string().contains("channel_create_rate"));
    alice.join("a", None).await.unwrap();
    for _ in 0..3 {
        alice.post("a", "x").await.unwrap();
    }
    let err = alice.post("a", "x").await.unwrap_err();
    let ChatError::RateLimited { limit, retry_after } = err else {
        panic!("expected rate_limited, got {err:?}")
    };
    assert_eq!(limit, "message_rate");
    assert!(retry_after <= Duration::from_secs(1));
    // The limit is per user, not per connection.
    let second = engine
        .connect(Login::Resume(alice.token().expose().to_owned()))
        .await
        .unwrap();
    second.join("a", None).await.unwrap();
    assert_eq!(
        second.post("a", "x").await.unwrap_err().code(),
        "rate_limited"
    );
    // Still connected: it works again once the bucket refills.
    tokio::time::sleep(retry_after + Duration::from_millis(50)).await;
    alice.post("a", "again").await.unwrap();
}

#[tokio::test]
async fn channel_and_session_counts_are_bounded() {
    let engine = engine_with({
        let mut limits = Limits::default();
        limits.max_channels = 2;
        limits.max_sessions = 2;
        limits
    })
    .await;
    let alice = user(&engine, "alice").await;
    let _bob = user(&engine, "bob").await;
    let err = engine
        .connect(Login::Name("carol".into()))
        .await
        .unwrap_err();
    assert_eq!(err.code(), "server_full");
    alice.create_channel("one").await.unwrap();
    alice.create_channel("two").await.unwrap();
    assert_eq!(
        alice.create_channel("three").await.unwrap_err().code(),
        "too_many_channels"
    );
    drop(alice);
    // A closed session frees its place (the registry hears of it asynchronously).
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        match engine.connect(Login::Name("carol".into())).await {
            Ok(_) => break,
            Err(e) if e.code() == "server_full" && tokio::time::Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(10)).await
            }
            Err(e) => panic!("{e}"),
        }
    }
}

#[tokio::test]
async fn limits_text_size_is_configurable() {
    let engine = engine_with({
        let mut limits = Limits::default();
        limits.max_message_bytes = 5;
        limits
    })
    .await;
    let alice = user(&engine, "alice").await;
    alice.create_channel("c").await.unwrap();
    alice.join("c", None).await.unwrap();
    alice.post("c", "12345").await.unwrap();
    let err = alice.post("c", "123456").await.unwrap_err();
    assert_eq!(
        err,
        ChatError::TooLong {
            limit: 5,
            actual: 6
        }
    );
}
