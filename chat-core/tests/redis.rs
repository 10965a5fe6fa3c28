//! The Redis broker against a real `redis-server` that each test starts on a free
//! loopback port (its own temp dir) and stops: two engines as two nodes, everything that
//! must hold across them, and Redis going away and coming back.
//!
//! Without `redis-server` on the PATH the tests say so loudly and skip; under `CI=true`
//! they fail instead.

#![cfg(feature = "redis")]

mod common;

use std::net::TcpListener;
use std::time::Duration;

use chat_core::{Engine, Event, Limits, Login, Rate, RedisBroker, Session};
use common::redis_server::RedisServer;
use common::*;

fn limits() -> Limits {
    let mut limits = Limits::default();
    limits.message_rate = Rate::new(1000, 1000.0);
    limits
}

async fn node(redis: &RedisServer) -> Engine {
    Engine::builder()
        .limits(limits())
        .redis(redis.url())
        .start()
        .await
        .expect("node connects to redis")
}

/// Alice on one node and Bob on another, both in channel `c`. The nodes are returned to
/// be kept alive.
async fn alice_and_bob_in_c_on_two_nodes(
    redis: &RedisServer,
) -> (Engine, Engine, Session, Session) {
    let (a, b) = (node(redis).await, node(redis).await);
    let alice = user(&a, "alice").await;
    let bob = user(&b, "bob").await;
    alice.create_channel("c").await.unwrap();
    alice.join("c", None).await.unwrap();
    bob.join("c", None).await.unwrap();
    (a, b, alice, bob)
}

/// Posts `text` to `c`, retrying every `every` while Redis answers `unavailable` (it is
/// coming back), for at most 20 s.
async fn post_once_redis_answers(
    session: &Session,
    text: &str,
    every: Duration,
) -> std::sync::Arc<chat_core::ChatMessage> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        match session.post("c", text).await {
            Ok(m) => return m,
            Err(e) if e.code() == "unavailable" && tokio::time::Instant::now() < deadline => {
                tokio::time::sleep(every).await
            }
            Err(e) => panic!("{e}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_share_channels_messages_and_users() {
    let Some(redis) = RedisServer::start(false) else {
        return;
    };
    let (a, b) = (node(&redis).await, node(&redis).await);
    let mut alice = user(&a, "alice").await;
    let mut bob = user(&b, "bob").await;
    assert_eq!(
        b.connect(Login::Name("Alice".into()))
            .await
            .unwrap_err()
            .code(),
        "name_taken"
    );

    alice.create_channel("general").await.unwrap();
    let created = wait_for(&mut bob, |e| match e {
        Event::ChannelCreated(info) => Some(info.name.to_string()),
        _ => None,
    })
    .await;
    assert_eq!(created, "general");
    alice.join("general", None).await.unwrap();
    bob.join("general", None).await.unwrap();
    // Presence crosses: alice, on node A, hears bob (node B) join.
    let joined = wait_for(&mut alice, |e| presence_of(e, "bob").first().copied()).await;
    assert_eq!(joined, chat_core::PresenceChange::Joined);

    // Both directions, same ids, same order on both nodes.
    let mut sent = Vec::new();
    for i in 0..10 {
        let (who, text) = if i % 2 == 0 {
            (&alice, "a")
        } else {
            (&bob, "b")
        };
        sent.push(who.post("general", &format!("{text}{i}")).await.unwrap().id);
    }
    for s in [&mut alice, &mut bob] {
        let mut got = Vec::new();
        while got.len() < sent.len() {
            got.push(next_message(s).await.id);
        }
        assert_eq!(got, sent);
    }

    // Typing, presence and deletion cross too.
    bob.typing("general").await.unwrap();
    let typist = wait_for(&mut alice, |e| match e {
        Event::Typing { user, .. } => Some(user.name.to_string()),
        _ => None,
    })
    .await;
    assert_eq!(typist, "bob");
    alice.delete("general", sent[0]).await.unwrap();
    let deleted = wait_for(&mut bob, |e| match e {
        Event::Deleted { id, .. } => Some(*id),
        _ => None,
    })
    .await;
    assert_eq!(deleted, sent[0]);
    assert_eq!(
        bob.delete("general", sent[2]).await.unwrap_err().code(),
        "not_author"
    );

    // Private messages reach every connection of both users, on either node, and nobody else.
    let mut alice_on_b = b
        .connect(Login::Resume(alice.token().expose().to_owned()))
        .await
        .unwrap();
    let mut carol = user(&a, "carol").await;
    bob.post("@alice", "psst").await.unwrap();
    assert_eq!(next_message(&mut alice).await.text, "psst");
    assert_eq!(next_message(&mut alice_on_b).await.text, "psst");
    assert_eq!(next_message(&mut bob).await.text, "psst");
    assert_none(&mut carol, "a private message of others", |e| {
        matches!(e, Event::Posted(_))
    })
    .await;
    assert_eq!(
        alice_on_b.user().id,
        alice.user().id,
        "a token works on any node"
    );

    // Recovery across nodes: missed messages by id, from Redis.
    let back = alice_on_b.join("general", Some(sent[7])).await.unwrap();
    assert_eq!(
        back.messages.iter().map(|m| m.id).collect::<Vec<_>>(),
        sent[8..].to_vec()
    );
    a.shutdown().await;
    b.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_look_alike_name_is_taken_on_every_node_and_finds_its_holder() {
    let Some(redis) = RedisServer::start(false) else {
        return;
    };
    let (a, b) = (node(&redis).await, node(&redis).await);
    let mut alice = user(&a, "alice").await;
    for twin in ["\u{430}lice", "ａｌｉｃｅ", "ALICE"] {
        assert_eq!(
            b.connect(Login::Name(twin.into()))
                .await
                .unwrap_err()
                .code(),
            "name_taken",
            "{twin:?}"
        );
    }
    // Both nodes race for two spellings of one name: exactly one wins.
    let (ra, rb) = tokio::join!(
        a.connect(Login::Name("Mark".into())),
        b.connect(Login::Name("\u{41C}ark".into()))
    );
    assert_eq!([ra.is_ok(), rb.is_ok()].iter().filter(|w| **w).count(), 1);

    let bob = user(&b, "bob").await;
    bob.post("@\u{430}lice", "psst").await.unwrap();
    assert_eq!(next_message(&mut alice).await.text, "psst");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_creation_on_two_nodes_has_one_winner() {
    let Some(redis) = RedisServer::start(false) else {
        return;
    };
    let (a, b) = (node(&redis).await, node(&redis).await);
    for round in 0..10 {
        let name = format!("race{round}");
        let (x, y) = (
            user(&a, &format!("x{round}")).await,
            user(&b, &format!("y{round}")).await,
        );
        let upper = name.to_uppercase();
        let (rx, ry) = tokio::join!(x.create_channel(&name), y.create_channel(&upper));
        let wins = [rx.is_ok(), ry.is_ok()].iter().filter(|w| **w).count();
        assert_eq!(wins, 1, "round {round}: {rx:?} {ry:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_keeps_exactly_the_newest_100_and_both_nodes_serve_them() {
    let Some(redis) = RedisServer::start(false) else {
        return;
    };
    let (a, b) = (node(&redis).await, node(&redis).await);
    let alice = user(&a, "alice").await;
    let bob = user(&b, "bob").await;
    alice.create_channel("busy").await.unwrap();
    alice.join("busy", None).await.unwrap();
    bob.join("busy", None).await.unwrap();
    for i in 1..=150 {
        let who = if i % 2 == 0 { &alice } else { &bob };
        who.post("busy", &format!("m{i}")).await.unwrap();
    }
    let len: usize = redis::cmd("LLEN")
        .arg("flack:room:c:busy:log")
        .query(&mut redis.raw())
        .unwrap();
    assert_eq!(len, 100);
    let expected: Vec<u64> = (51..=150).collect();
    for (i, engine) in [&a, &b].into_iter().enumerate() {
        // A fresh reader on each node.
        let s = user(engine, &format!("reader{i}")).await;
        let ids: Vec<u64> = s
            .join("busy", None)
            .await
            .unwrap()
            .messages
            .iter()
            .map(|m| m.id)
            .collect();
        assert_eq!(ids, expected);
        drop(s);
    }
    // A node started now (a restarted node) serves the same history from Redis.
    let c = node(&redis).await;
    let late = user(&c, "late").await;
    let ids: Vec<u64> = late
        .join("busy", None)
        .await
        .unwrap()
        .messages
        .iter()
        .map(|m| m.id)
        .collect();
    assert_eq!(ids, expected);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn service_and_recovery_resume_after_redis_restarts() {
    let Some(mut redis) = RedisServer::start(true) else {
        return;
    };
    let (_a, _b, alice, mut bob) = alice_and_bob_in_c_on_two_nodes(&redis).await;
    let before = alice.post("c", "before").await.unwrap();
    assert_eq!(next_message(&mut bob).await.id, before.id);

    redis.stop();
    // Sends fail fast with a clear error instead of hanging; sessions stay open.
    let started = std::time::Instant::now();
    let err = alice.post("c", "during").await.unwrap_err();
    assert_eq!(err.code(), "unavailable");
    assert!(started.elapsed() < Duration::from_secs(8), "failed fast");

    redis.spawn();
    // The nodes reconnect by themselves: retry until a send goes through.
    let after = post_once_redis_answers(&alice, "after", Duration::from_millis(100)).await;
    assert!(after.id > before.id, "ids never go backwards");
    // Bob, connected all along on the other node, gets it live, exactly once.
    let got = next_message(&mut bob).await;
    assert_eq!((got.id, got.text.as_str()), (after.id, "after"));
    // A client that reconnects recovers from Redis by id.
    let back = bob.join("c", Some(before.id)).await.unwrap();
    assert_eq!(
        back.messages.iter().map(|m| m.id).collect::<Vec<_>>(),
        [after.id]
    );
}

#[tokio::test]
async fn an_unreachable_redis_is_a_clear_error() {
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let err = RedisBroker::connect(&format!("redis://127.0.0.1:{port}/"), &Limits::default())
        .await
        .unwrap_err();
    assert_eq!(err.code(), "unavailable");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_that_loses_its_subscription_catches_up_exactly_once() {
    let Some(redis) = RedisServer::start(false) else {
        return;
    };
    let (_a, _b, alice, mut bob) = alice_and_bob_in_c_on_two_nodes(&redis).await;
    let first = alice.post("c", "first").await.unwrap();
    assert_eq!(next_message(&mut bob).await.id, first.id);

    // Cut every node's pub/sub connection; Redis itself stays up, so posts succeed while
    // the nodes are still resubscribing and their live copies are lost.
    let killed = redis.kill_pubsub();
    assert!(killed >= 2, "both nodes had a subscription");
    let mut ids = Vec::new();
    for i in 0..5 {
        ids.push(alice.post("c", &format!("gap{i}")).await.unwrap().id);
    }
    let mut got = Vec::new();
    while got.len() < ids.len() {
        got.push(next_message(&mut bob).await.id);
    }
    assert_eq!(got, ids, "resynchronised in order");
    assert_none(&mut bob, "a message twice", |e| {
        matches!(e, Event::Posted(_))
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_that_also_loses_its_command_connection_still_catches_up() {
    let Some(redis) = RedisServer::start(false) else {
        return;
    };
    let (_a, _b, alice, mut bob) = alice_and_bob_in_c_on_two_nodes(&redis).await;
    let first = alice.post("c", "first").await.unwrap();
    assert_eq!(next_message(&mut bob).await.id, first.id);

    // Cut every connection of both nodes. Node B's first command after that (the read
    // that resynchronises its rooms) fails while its connection is re-established: the
    // catch-up must be tried again, not skipped.
    for kind in ["pubsub", "normal"] {
        let _: i64 = redis::cmd("CLIENT")
            .arg(&["KILL", "TYPE", kind, "SKIPME", "yes"])
            .query(&mut redis.raw())
            .unwrap();
    }
    // Retried quickly, so it lands before node B has resubscribed.
    let gap = post_once_redis_answers(&alice, "gap", Duration::from_millis(5)).await;
    assert_eq!(next_message(&mut bob).await.id, gap.id);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn private_conversations_expire_with_their_users_and_channels_stay() {
    let Some(redis) = RedisServer::start(false) else {
        return;
    };
    let mut short_hold = limits();
    short_hold.name_hold = Duration::from_secs(1);
    let engine = Engine::builder()
        .limits(short_hold)
        .redis(redis.url())
        .start()
        .await
        .expect("node connects to redis");
    let alice = user(&engine, "alice").await;
    let mut bob = user(&engine, "bob").await;
    alice.create_channel("c").await.unwrap();
    alice.join("c", None).await.unwrap();
    alice.post("c", "in the channel").await.unwrap();
    let dm = alice.post("@bob", "just us").await.unwrap();
    assert_eq!(next_message(&mut bob).await.id, dm.id);
    let (a, b) = (alice.user().id.0, bob.user().id.0);
    let (lo, hi) = (a.min(b), a.max(b));
    let private = [
        format!("flack:room:d:{lo}:{hi}:seq"),
        format!("flack:room:d:{lo}:{hi}:log"),
        format!("flack:dms:{a}"),
        format!("flack:dms:{b}"),
        format!("flack:user:{a}"),
        format!("flack:user:{b}"),
    ];
    let channel = ["flack:room:c:c:seq", "flack:room:c:c:log", "flack:channels"];
    let exists = |key: &str| -> bool {
        redis::cmd("EXISTS")
            .arg(key)
            .query::<i64>(&mut redis.raw())
            .unwrap()
            == 1
    };
    for key in private.iter().map(String::as_str).chain(channel) {
        assert!(exists(key), "{key} stored");
    }

    // While one of the two is still connected (and so touched), the conversation stays,
    // well past the other's hold.
    drop(bob);
    tokio::time::sleep(Duration::from_millis(2500)).await;
    for key in &private[..3] {
        assert!(exists(key), "{key} kept while alice is connected");
    }

    // Both users gone: a second after (name_hold), their conversation is gone with them.
    drop(alice);
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while private.iter().any(|k| exists(k)) {
        assert!(
            std::time::Instant::now() < deadline,
            "private keys outlived their users: {:?}",
            private.iter().filter(|k| exists(k)).collect::<Vec<_>>()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    for key in channel {
        assert!(exists(key), "{key} kept: channels never expire");
    }
    // And the count of users kept forgets them (the keep-alive sweeps it).
    let count = || -> i64 {
        redis::cmd("ZCARD")
            .arg("flack:users")
            .query(&mut redis.raw())
            .unwrap()
    };
    while count() > 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "expired users still counted"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_user_cap_counts_the_users_of_every_node() {
    let Some(redis) = RedisServer::start(false) else {
        return;
    };
    let mut capped = limits();
    capped.max_users = 2;
    let start = || {
        Engine::builder()
            .limits(capped.clone())
            .redis(redis.url())
            .start()
    };
    let (a, b) = (
        start().await.expect("node a"),
        start().await.expect("node b"),
    );
    let alice = user(&a, "alice").await;
    let bob = user(&b, "bob").await;
    let bob_token = bob.token().expose().to_owned();
    drop(bob);

    let full = a
        .connect(Login::Name("carol".into()))
        .await
        .expect_err("a third user on either node");
    assert_eq!(full, chat_core::ChatError::TooManyUsers(2));
    assert_eq!(full.code(), "server_full");
    // Nothing was lost: bob comes back on the other node, alice is served.
    let back = a.connect(Login::Resume(bob_token)).await.expect("resume");
    assert_eq!(&*back.user().name, "bob");
    alice.create_channel("c").await.expect("alice is served");
    let count: i64 = redis::cmd("ZCARD")
        .arg("flack:users")
        .query(&mut redis.raw())
        .unwrap();
    assert_eq!(count, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn past_the_user_cap_the_oldest_expired_hold_goes_first() {
    use chat_core::Broker;
    let Some(redis) = RedisServer::start(false) else {
        return;
    };
    let mut capped = limits();
    capped.max_users = 2;
    // The broker alone: no node's keep-alive sweeps the count behind the test's back.
    let broker = RedisBroker::connect(&redis.url(), &capped)
        .await
        .expect("connects");
    let old = broker.register("old".into()).await.expect("old");
    let live = broker.register("live".into()).await.expect("live");
    let full = broker.register("new".into()).await.expect_err("both live");
    assert_eq!(full.code(), "server_full");

    // The old user's hold ends (its score in the past) before any sweep ran: its keys are
    // still there, as they are for the moment between their expiry and the sweep.
    let _: i64 = redis::cmd("ZADD")
        .arg("flack:users")
        .arg(1)
        .arg(old.user.id.0)
        .query(&mut redis.raw())
        .unwrap();
    let new = broker.register("new".into()).await.expect("room was made");
    let score = |id: u64| -> Option<f64> {
        redis::cmd("ZSCORE")
            .arg("flack:users")
            .arg(id)
            .query(&mut redis.raw())
            .unwrap()
    };
    assert_eq!(score(old.user.id.0), None, "the expired user went");
    assert!(score(live.user.id.0).is_some() && score(new.user.id.0).is_some());
    let gone = broker.resume(old.token.clone()).await.unwrap_err();
    assert_eq!(gone.code(), "invalid_token", "with their token and name");
    broker.register("old".into()).await.expect_err("still full");
    assert!(broker.find_user("old").await.unwrap().is_none());
    broker
        .resume(live.token.clone())
        .await
        .expect("the live one stays");
}
