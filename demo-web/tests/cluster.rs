//! One cluster, one behaviour (issue 24): two `demo-web` processes sharing one real
//! `redis-server` show the same members, presence and typing whichever node a user is
//! connected to; a node killed with `kill -9` takes its users offline on the other within
//! `--node-expiry` plus one `--node-heartbeat`; and a user posting through both nodes
//! gets one `--message-rate` bucket, not one per node.
//!
//! The test starts `redis-server` on a free loopback port with its own temp dir and no
//! persistence, and kills it (and the nodes) when it ends. Without `redis-server` it says
//! so loudly and skips; under `CI=true` it fails instead.

mod common;

use std::time::{Duration, Instant};

use common::redis::Redis;
use common::{Server, TestResult, WsClient};
use serde_json::{json, Value};

/// Short beats, so that a killed node is noticed within a test's patience.
const BEATS: [&str; 4] = ["--node-heartbeat", "200ms", "--node-expiry", "1s"];

/// Whether a `presence` frame of room `c` says `name` changed as `change`.
fn presence(frame: &Value, name: &str, change: &str) -> bool {
    frame["type"] == "presence"
        && frame["room"] == "c"
        && frame["changes"].as_array().is_some_and(|changes| {
            changes
                .iter()
                .any(|c| c["user"]["name"] == name && c["change"] == change)
        })
}

/// `name`'s online state in room `c`'s member list as `client` gets it, if listed.
async fn online(client: &mut WsClient, name: &str) -> TestResult<Option<bool>> {
    let page = client
        .ok(json!({"type": "members", "room": "c", "limit": 100}))
        .await?;
    let members = page["members"].as_array().ok_or("no members")?;
    Ok(members
        .iter()
        .find(|m| m["user"]["name"] == name)
        .and_then(|m| m["online"].as_bool()))
}

/// Waits (at most 10 s) until `name` is listed in `c` as `client` sees it, online as
/// `want`.
async fn listed_as(client: &mut WsClient, name: &str, want: bool) -> TestResult {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let found = online(client, name).await?;
        if found == Some(want) {
            return Ok(());
        }
        if Instant::now() >= deadline {
            return Err(format!("{name} is {found:?} in c, not online={want}").into());
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

#[tokio::test]
async fn members_presence_and_typing_cross_nodes_and_a_killed_node_takes_its_users_offline(
) -> TestResult {
    let Some(redis) = Redis::start()? else {
        return Ok(());
    };
    let url = redis.url();
    let node_a = Server::start(&[&["--redis", url.as_str()][..], &BEATS].concat())?;
    let mut node_b = Server::start(&[&["--redis", url.as_str()][..], &BEATS].concat())?;

    let mut alice = WsClient::login(node_a.http, "alice").await?;
    alice
        .ok(json!({"type": "create_channel", "name": "c"}))
        .await?;
    alice.ok(json!({"type": "join", "room": "c"})).await?;
    // Bob is connected only to node B.
    let mut bob = WsClient::login(node_b.http, "bob").await?;
    bob.ok(json!({"type": "join", "room": "c"})).await?;

    // Each sees the other arrive or listed, online, in `members`.
    alice.event(|f| presence(f, "bob", "joined")).await?;
    listed_as(&mut alice, "bob", true).await?;
    listed_as(&mut bob, "alice", true).await?;
    // A join on node A lists bob (on B) in its reply.
    let mut carol = WsClient::login(node_a.http, "carol").await?;
    let joined = carol.ok(json!({"type": "join", "room": "c"})).await?;
    let names: Vec<(&str, bool)> = joined["members"]
        .as_array()
        .ok_or("no members")?
        .iter()
        .filter_map(|m| Some((m["user"]["name"].as_str()?, m["online"].as_bool()?)))
        .collect();
    assert_eq!(names, [("alice", true), ("bob", true), ("carol", true)]);

    // Typing crosses.
    let sent = bob.ok(json!({"type": "typing", "room": "c"})).await?;
    assert_eq!(sent["sent"], true);
    let typing = alice
        .event(|f| f["type"] == "typing" && f["room"] == "c")
        .await?;
    assert_eq!(typing["user"]["name"], "bob");

    // Bob's last connection anywhere closes: offline on node A.
    drop(bob);
    alice.event(|f| presence(f, "bob", "offline")).await?;
    assert_eq!(online(&mut alice, "bob").await?, Some(false));

    // Dave is connected only to node B, which dies with him connected.
    let mut dave = WsClient::login(node_b.http, "dave").await?;
    dave.ok(json!({"type": "join", "room": "c"})).await?;
    alice.event(|f| presence(f, "dave", "joined")).await?;
    let killed = Instant::now();
    node_b.kill_hard()?;
    alice.event(|f| presence(f, "dave", "offline")).await?;
    let took = killed.elapsed();
    // `--node-expiry` (1 s) plus one `--node-heartbeat` (200 ms), plus room for a busy
    // machine.
    assert!(
        took < Duration::from_secs(4),
        "dave went offline after {took:?}"
    );
    assert_eq!(online(&mut alice, "dave").await?, Some(false));
    assert_eq!(online(&mut carol, "dave").await?, Some(false));
    assert_eq!(online(&mut alice, "carol").await?, Some(true));
    drop(dave);
    drop(node_a);
    drop(redis);
    Ok(())
}

#[tokio::test]
async fn a_user_posting_through_two_nodes_is_limited_to_one_bucket() -> TestResult {
    let Some(redis) = Redis::start()? else {
        return Ok(());
    };
    let url = redis.url();
    // Five messages, then practically none: the test counts what is accepted.
    let flags = ["--redis", url.as_str(), "--message-rate", "5/0.001"];
    let node_a = Server::start(&flags)?;
    let node_b = Server::start(&flags)?;
    let mut on_a = WsClient::connect(node_a.http).await?;
    let login = on_a.ok(json!({"type": "login", "name": "flood"})).await?;
    let token = login["token"].as_str().ok_or("no token")?;
    on_a.ok(json!({"type": "create_channel", "name": "c"}))
        .await?;
    on_a.ok(json!({"type": "join", "room": "c"})).await?;
    // The same user on node B, by token.
    let mut on_b = WsClient::connect(node_b.http).await?;
    on_b.ok(json!({"type": "login", "token": token})).await?;
    on_b.ok(json!({"type": "join", "room": "c"})).await?;

    let mut accepted = 0;
    let mut refused = Vec::new();
    for i in 0..12 {
        let client = if i % 2 == 0 { &mut on_a } else { &mut on_b };
        let reply = client
            .request(json!({"type": "post", "room": "c", "text": format!("m{i}")}))
            .await?;
        if reply["type"] == "ok" {
            accepted += 1;
        } else {
            refused.push(reply["code"].as_str().unwrap_or("?").to_owned());
        }
    }
    assert_eq!(
        accepted, 5,
        "one bucket of 5 for both nodes; refused: {refused:?}"
    );
    assert!(refused.iter().all(|c| c == "rate_limited"), "{refused:?}");
    drop((node_a, node_b, redis));
    Ok(())
}
