//! Recovery is exact on every node: a room never hands out a jump in ids without saying
//! so. Two `demo-web` nodes share a real `redis-server`; one starts after a room's history
//! was trimmed, or Redis goes away under both, and clients resuming by id are told of a
//! gap instead of silently missing messages or seeing false deletions.

mod common;

use std::time::{Duration, Instant};

use common::redis::Redis;
use common::{Server, TestResult, WsClient};
use serde_json::{json, Value};

/// Flags of a node on the Redis at `url` with a `general` channel that keeps 5 messages.
fn node_flags(url: &str) -> [&str; 8] {
    [
        "--redis",
        url,
        "--channel",
        "general",
        "--history",
        "5",
        "--message-rate",
        "100/100",
    ]
}

/// The ids of a join reply's messages.
fn ids(joined: &Value) -> Vec<u64> {
    joined["messages"]
        .as_array()
        .map(|m| m.iter().filter_map(|m| m["id"].as_u64()).collect())
        .unwrap_or_default()
}

/// Logs in as a new user and returns the client and its resume token.
async fn login_with_token(
    http: std::net::SocketAddr,
    name: &str,
) -> TestResult<(WsClient, String)> {
    let mut client = WsClient::connect(http).await?;
    let login = client.ok(json!({"type": "login", "name": name})).await?;
    let token = login["token"].as_str().ok_or("no token")?.to_owned();
    Ok((client, token))
}

/// Logs in again with `token`.
async fn resume(http: std::net::SocketAddr, token: &str) -> TestResult<WsClient> {
    let mut client = WsClient::connect(http).await?;
    client.ok(json!({"type": "login", "token": token})).await?;
    Ok(client)
}

#[tokio::test]
async fn a_node_that_starts_after_a_trim_reports_a_gap_not_deletions() -> TestResult {
    let Some(redis) = Redis::start()? else {
        return Ok(());
    };
    let url = redis.url();
    let flags = node_flags(&url);
    let node_a = Server::start(&flags)?;
    let (mut poster, token) = login_with_token(node_a.http, "poster").await?;
    poster
        .ok(json!({"type": "join", "room": "general"}))
        .await?;
    for i in 1..=10 {
        poster
            .ok(json!({"type": "post", "room": "general", "text": format!("m{i}")}))
            .await?;
    }
    let node_b = Server::start(&flags)?;
    for http in [node_a.http, node_b.http] {
        let mut again = resume(http, &token).await?;
        let joined = again
            .ok(json!({"type": "join", "room": "general", "after": 2}))
            .await?;
        assert_eq!(joined["gap"], true, "3 to 5 are gone: {joined}");
        assert_eq!(ids(&joined), vec![6, 7, 8, 9, 10]);
        assert_eq!(
            joined["deleted"],
            json!([]),
            "nothing was deleted: {joined}"
        );
        // What is still kept resumes exactly.
        let exact = again
            .ok(json!({"type": "join", "room": "general", "after": 7}))
            .await?;
        assert_eq!(
            (exact["gap"].clone(), ids(&exact)),
            (json!(false), vec![8, 9, 10])
        );
    }
    Ok(())
}

/// Posts `text` through `client`, retrying while the node answers `unavailable` (Redis is
/// on its way back), at most 20 s. Returns the stored id.
async fn post_when_accepted(client: &mut WsClient, text: &str) -> TestResult<u64> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let reply = client
            .request(json!({"type": "post", "room": "general", "text": text}))
            .await?;
        if reply["type"] == "ok" {
            return reply["result"]["message"]["id"]
                .as_u64()
                .ok_or_else(|| "no id".into());
        }
        if reply["code"] != "unavailable" || Instant::now() > deadline {
            return Err(format!("post refused: {reply}").into());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn followers_are_told_of_what_an_outage_lost_and_never_skip_silently() -> TestResult {
    let Some(mut redis) = Redis::start_persistent()? else {
        return Ok(());
    };
    let url = redis.url();
    let flags = node_flags(&url);
    let node_a = Server::start(&flags)?;
    let node_b = Server::start(&flags)?;
    let (mut follower, token) = login_with_token(node_b.http, "follower").await?;
    follower
        .ok(json!({"type": "join", "room": "general"}))
        .await?;
    let mut poster = WsClient::login(node_a.http, "poster").await?;
    poster
        .ok(json!({"type": "join", "room": "general"}))
        .await?;
    let first = post_when_accepted(&mut poster, "before").await?;
    follower
        .event(|f| f["type"] == "message" && f["message"]["id"] == first)
        .await?;

    // Redis goes away for a while and comes back with its data; the poster posts as soon
    // as node A takes posts again.
    redis.kill();
    tokio::time::sleep(Duration::from_secs(3)).await;
    redis.restart()?;
    let mut last = first;
    for i in 0..10 {
        last = post_when_accepted(&mut poster, &format!("after {i}")).await?;
    }

    // The follower gets every message in order, or a gap before any jump.
    let mut seen = first;
    let mut told_of_gap = false;
    while seen < last {
        let frame = follower
            .event(|f| f["type"] == "message" || f["type"] == "gap")
            .await?;
        if frame["type"] == "gap" {
            told_of_gap = true;
            continue;
        }
        let id = frame["message"]["id"].as_u64().ok_or("no id")?;
        if id <= seen {
            return Err(format!("message {id} twice or out of order after {seen}").into());
        }
        if id != seen + 1 && !told_of_gap {
            return Err(format!("jumped from {seen} to {id} without a gap").into());
        }
        seen = id;
    }
    // And resuming from what it saw first says the same.
    let mut again = resume(node_b.http, &token).await?;
    let joined = again
        .ok(json!({"type": "join", "room": "general", "after": first}))
        .await?;
    assert_eq!(
        joined["deleted"],
        json!([]),
        "nothing was deleted: {joined}"
    );
    if joined["gap"] == false {
        let expected: Vec<u64> = (first + 1..=last).collect();
        assert_eq!(
            ids(&joined),
            expected,
            "without a gap, every message: {joined}"
        );
    } else {
        assert_eq!(ids(&joined).last(), Some(&last));
    }
    Ok(())
}
