//! One cluster, one behaviour: two engines sharing a real `redis-server` (started on a
//! free loopback port per test) show the same members, presence and typing, give a user
//! one flood bucket whichever nodes they post through, and take the users of a node that
//! stops beating offline.
//!
//! Without `redis-server` on the PATH the tests say so loudly and skip; under `CI=true`
//! they fail instead.

#![cfg(feature = "redis")]

mod common;

use std::time::Duration;

use chat_core::{Engine, Event, Limits, Login, PresenceChange, Rate, Session};
use common::redis_server::RedisServer;
use common::*;

fn limits() -> Limits {
    let mut limits = Limits::default();
    limits.message_rate = Rate::new(1000, 1000.0);
    limits.node_heartbeat = Duration::from_millis(100);
    limits.node_expiry = Duration::from_millis(500);
    limits
}

async fn node(redis: &RedisServer, limits: Limits) -> Engine {
    Engine::builder()
        .limits(limits)
        .redis(redis.url())
        .start()
        .await
        .expect("node connects to redis")
}

async fn resume(engine: &Engine, session: &Session) -> Session {
    engine
        .connect(Login::Resume(session.token().expose().to_owned()))
        .await
        .expect("resumes")
}

/// Whether `name` is listed, and online, in the first page of `c`'s members as `session`
/// sees it.
async fn listed(session: &Session, name: &str) -> Option<bool> {
    let page = session.members_page("c", None, 100).await.unwrap();
    page.members
        .iter()
        .find(|m| &*m.user.name == name)
        .map(|m| m.online)
}

#[tokio::test]
async fn members_and_presence_cross_nodes_and_a_user_is_offline_only_when_gone_everywhere() {
    let Some(redis) = RedisServer::start(false) else {
        return;
    };
    let (a, b) = (node(&redis, limits()).await, node(&redis, limits()).await);
    let mut alice = user(&a, "alice").await;
    alice.create_channel("c").await.unwrap();
    alice.join("c", None).await.unwrap();

    // Bob, only on b, sees alice (only on a) listed online: in his join's member list
    // once her node has published its share (within a presence tick), or as her arrival.
    let mut bob = user(&b, "bob").await;
    let joined = bob.join("c", None).await.unwrap();
    if !joined.members.iter().any(|m| &*m.user.name == "alice") {
        wait_for(&mut bob, |e| {
            presence_of(e, "alice")
                .contains(&PresenceChange::Joined)
                .then_some(())
        })
        .await;
    }
    assert_eq!(listed(&bob, "alice").await, Some(true));

    // Alice sees bob arrive, and lists him online.
    wait_for(&mut alice, |e| {
        presence_of(e, "bob")
            .contains(&PresenceChange::Joined)
            .then_some(())
    })
    .await;
    assert_eq!(listed(&alice, "bob").await, Some(true));

    // Bob also on a: closing his session on b does not take him offline.
    let bob_on_a = resume(&a, &bob).await;
    bob_on_a.join("c", None).await.unwrap();
    bob.close();
    assert_none(&mut alice, "bob offline while on a", |e| {
        presence_of(e, "bob").contains(&PresenceChange::Offline)
    })
    .await;
    assert_eq!(listed(&alice, "bob").await, Some(true));

    // Bob back on b only; his last session on a closes: still online (on b).
    let bob = resume(&b, &bob_on_a).await;
    bob.join("c", None).await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    bob_on_a.close();
    assert_none(&mut alice, "bob offline while on b", |e| {
        presence_of(e, "bob").contains(&PresenceChange::Offline)
    })
    .await;
    // His last session anywhere closes: offline on a too, and still a member.
    bob.close();
    wait_for(&mut alice, |e| {
        presence_of(e, "bob")
            .contains(&PresenceChange::Offline)
            .then_some(())
    })
    .await;
    assert_eq!(listed(&alice, "bob").await, Some(false));

    // A third node started now lists both from the shares kept in redis.
    let c = node(&redis, limits()).await;
    let carol = user(&c, "carol").await;
    let joined = carol.join("c", None).await.unwrap();
    let names: Vec<(&str, bool)> = joined
        .members
        .iter()
        .map(|m| (&*m.user.name, m.online))
        .collect();
    assert_eq!(
        names,
        [("alice", true), ("carol", true), ("bob", false)],
        "online first, by name"
    );
    assert_eq!((joined.member_count, joined.online_count), (3, 2));
}

#[tokio::test]
async fn typing_and_leaving_cross_nodes() {
    let Some(redis) = RedisServer::start(false) else {
        return;
    };
    let (a, b) = (node(&redis, limits()).await, node(&redis, limits()).await);
    let mut alice = user(&a, "alice").await;
    alice.create_channel("c").await.unwrap();
    alice.join("c", None).await.unwrap();
    let bob = user(&b, "bob").await;
    bob.join("c", None).await.unwrap();
    assert!(bob.typing("c").await.unwrap());
    let who = wait_for(&mut alice, |e| match e {
        Event::Typing { user, .. } => Some(user.name.to_string()),
        _ => None,
    })
    .await;
    assert_eq!(who, "bob");
    bob.leave("c").await.unwrap();
    wait_for(&mut alice, |e| {
        presence_of(e, "bob")
            .contains(&PresenceChange::Left)
            .then_some(())
    })
    .await;
    assert_eq!(listed(&alice, "bob").await, None, "no longer a member");
}

#[tokio::test]
async fn a_user_posting_through_two_nodes_gets_one_bucket() {
    let Some(redis) = RedisServer::start(false) else {
        return;
    };
    let mut slow = limits();
    // Five posts, then (practically) none: what is accepted is counted, not timed.
    slow.message_rate = Rate::new(5, 0.001);
    let (a, b) = (node(&redis, slow.clone()).await, node(&redis, slow).await);
    let alice = user(&a, "alice").await;
    alice.create_channel("c").await.unwrap();
    alice.join("c", None).await.unwrap();
    let alice_on_b = resume(&b, &alice).await;
    alice_on_b.join("c", None).await.unwrap();
    let mut accepted = 0;
    let mut refused = Vec::new();
    for i in 0..10 {
        let session = if i % 2 == 0 { &alice } else { &alice_on_b };
        match session.post("c", &format!("m{i}")).await {
            Ok(_) => accepted += 1,
            Err(e) => refused.push(e.code()),
        }
    }
    assert_eq!(accepted, 5, "one bucket of 5 for both nodes");
    assert!(refused.iter().all(|c| *c == "rate_limited"), "{refused:?}");

    // Channel creation has one bucket too (5 at first: 3 on a, then 2 on b, then none).
    let created: Vec<bool> = {
        let mut created = Vec::new();
        for (i, s) in [&alice, &alice, &alice_on_b, &alice_on_b, &alice_on_b]
            .iter()
            .enumerate()
        {
            created.push(s.create_channel(&format!("k{i}")).await.is_ok());
        }
        created
    };
    assert_eq!(created, [true, true, true, true, false], "c was the first");
}

#[tokio::test]
async fn a_node_that_stops_beating_takes_its_users_offline_everywhere() {
    let Some(redis) = RedisServer::start(false) else {
        return;
    };
    let a = node(&redis, limits()).await;
    let alice = user(&a, "alice").await;
    alice.create_channel("c").await.unwrap();
    alice.join("c", None).await.unwrap();
    // A node named `ghost` whose last beat holds for 1.5 s more, with dan online in `c`:
    // what a node killed with its users connected leaves in redis.
    let mut raw = redis.raw();
    let (secs, micros): (u64, u64) = redis::cmd("TIME").query(&mut raw).unwrap();
    let expires = secs * 1000 + micros / 1000 + 1500;
    let share = r#"[{"id":99,"name":"dan"},"online"]"#;
    let _: () = redis::pipe()
        .cmd("ZADD")
        .arg("flack:nodes")
        .arg(expires)
        .arg("ghost")
        .ignore()
        .cmd("HSET")
        .arg("flack:room:c:c:here:ghost")
        .arg(99)
        .arg(share)
        .ignore()
        .cmd("SADD")
        .arg("flack:room:c:c:nodes")
        .arg("ghost")
        .ignore()
        .cmd("SADD")
        .arg("flack:node:ghost:rooms")
        .arg("flack:room:c:c")
        .ignore()
        .query(&mut raw)
        .unwrap();
    // A node whose room starts now reads dan's share: listed, online.
    let b = node(&redis, limits()).await;
    let mut bob = user(&b, "bob").await;
    let joined = bob.join("c", None).await.unwrap();
    let dan = joined.members.iter().find(|m| &*m.user.name == "dan");
    assert!(dan.is_some_and(|m| m.online), "{:?}", joined.members);
    // Once the ghost's beat has expired, the next beat of a live node declares it gone:
    // dan goes offline (within the expiry and one heartbeat; `wait_for` allows seconds).
    let started = tokio::time::Instant::now();
    wait_for(&mut bob, |e| {
        presence_of(e, "dan")
            .contains(&PresenceChange::Offline)
            .then_some(())
    })
    .await;
    assert!(started.elapsed() < Duration::from_millis(1500 + 100 + 2000));
    assert_eq!(listed(&bob, "dan").await, Some(false));
    let nodes: Vec<String> = redis::cmd("ZRANGE")
        .arg("flack:nodes")
        .arg(0)
        .arg(-1)
        .query(&mut raw)
        .unwrap();
    assert_eq!(nodes.len(), 2, "the ghost is gone, a and b beat: {nodes:?}");
    let kept: bool = redis::cmd("EXISTS")
        .arg("flack:room:c:c:here:ghost")
        .query(&mut raw)
        .unwrap();
    assert!(!kept, "its share is deleted");
}

#[tokio::test]
async fn a_node_that_shuts_down_takes_its_users_offline_at_once() {
    let Some(redis) = RedisServer::start(false) else {
        return;
    };
    // An expiry far longer than the test's patience: only the clean stop can do it.
    let mut patient = limits();
    patient.node_heartbeat = Duration::from_secs(30);
    patient.node_expiry = Duration::from_secs(120);
    let (a, b) = (
        node(&redis, patient.clone()).await,
        node(&redis, patient).await,
    );
    let mut alice = user(&a, "alice").await;
    alice.create_channel("c").await.unwrap();
    alice.join("c", None).await.unwrap();
    let bob = user(&b, "bob").await;
    bob.join("c", None).await.unwrap();
    wait_for(&mut alice, |e| {
        presence_of(e, "bob")
            .contains(&PresenceChange::Joined)
            .then_some(())
    })
    .await;
    b.shutdown().await;
    wait_for(&mut alice, |e| {
        presence_of(e, "bob")
            .contains(&PresenceChange::Offline)
            .then_some(())
    })
    .await;
    assert_eq!(listed(&alice, "bob").await, Some(false));
    // Nothing of b's is left in redis for a later node to read.
    let mut raw = redis.raw();
    let nodes: Vec<String> = redis::cmd("SMEMBERS")
        .arg("flack:room:c:c:nodes")
        .query(&mut raw)
        .unwrap();
    assert_eq!(nodes.len(), 1, "only a's share: {nodes:?}");
}

#[tokio::test]
async fn a_room_is_large_on_every_node_when_its_members_together_are_many() {
    let Some(redis) = RedisServer::start(false) else {
        return;
    };
    let mut small = limits();
    small.large_room = 4;
    let (a, b) = (node(&redis, small.clone()).await, node(&redis, small).await);
    let mut alice = user(&a, "alice").await;
    alice.create_channel("c").await.unwrap();
    alice.join("c", None).await.unwrap();
    // Three members on each node: six together, above the limit of four, though neither
    // node alone has more than three.
    let mut kept = Vec::new();
    for name in ["bob", "carol"] {
        let s = user(&a, name).await;
        s.join("c", None).await.unwrap();
        kept.push(s);
    }
    for name in ["dan", "erin", "fay"] {
        let s = user(&b, name).await;
        s.join("c", None).await.unwrap();
        kept.push(s);
    }
    // Alice's node counts b's members: the room is large there, and sends counts.
    let (members, online) = wait_for(&mut alice, |e| match e {
        Event::RoomCounts {
            members, online, ..
        } if *members == 6 => Some((*members, *online)),
        _ => None,
    })
    .await;
    assert_eq!((members, online), (6, 6));
    // A join on b is a count on a, never a member's presence.
    let gus = user(&b, "gus").await;
    let joined = gus.join("c", None).await.unwrap();
    assert!(joined.large, "large on b as well");
    wait_for(&mut alice, |e| match e {
        Event::RoomCounts { members: 7, .. } => Some(()),
        _ => None,
    })
    .await;
    assert_none(&mut alice, "a presence batch in a large room", |e| {
        matches!(e, Event::PresenceBatch(_))
    })
    .await;
    let page = alice.members_page("c", None, 100).await.unwrap();
    assert_eq!((page.member_count, page.online_count), (7, 7));
}
