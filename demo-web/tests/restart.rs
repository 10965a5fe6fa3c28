//! Restarts lose nothing (issue 21): the real `demo-web` binary with a real SQLite file in
//! a scratch data directory.
//!
//! - Stopped with SIGTERM and started again: channels, users by token, histories with the
//!   same ids, deletions and the epoch are all back; stopped in the middle of a flood,
//!   every acknowledged post is back.
//! - Killed with `kill -9` in the middle of a flood of posts: every message acknowledged
//!   more than a second before the kill is back, ids never go back or repeat, and the file
//!   opens cleanly.
//! - A corrupt, unreadable or newer-schema file stops the start with an error naming it.
//! - With `--redis`, a Redis that keeps nothing on disk is warned about.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::redis::Redis;
use common::{eventually, scratch_dir, Server, TestResult, WsClient};
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Message;

/// The ids of a join reply's messages.
fn ids(joined: &Value) -> Vec<u64> {
    joined["messages"]
        .as_array()
        .map(|m| m.iter().filter_map(|m| m["id"].as_u64()).collect())
        .unwrap_or_default()
}

/// Logs in as a new user; returns the client and its resume token.
async fn login(server: &Server, name: &str) -> TestResult<(WsClient, String)> {
    let mut client = WsClient::connect(server.http).await?;
    let login = client.ok(json!({"type": "login", "name": name})).await?;
    let token = login["token"].as_str().ok_or("no token")?.to_owned();
    Ok((client, token))
}

/// Stops the server with SIGTERM and checks it exits 0.
async fn stop(mut server: Server) -> TestResult {
    server.terminate()?;
    let status = tokio::task::spawn_blocking(move || server.wait_exit(Duration::from_secs(20)))
        .await?
        .map_err(|e| e.to_string())?;
    if !status.success() {
        return Err(format!("exit status {status}").into());
    }
    Ok(())
}

/// Opens the store as the `sqlite3` tool would and checks every page.
fn integrity(data: &Path) -> TestResult<String> {
    let conn = rusqlite::Connection::open(data.join("flack.sqlite3"))?;
    Ok(conn.query_row("PRAGMA integrity_check", [], |r| r.get(0))?)
}

#[tokio::test]
async fn after_sigterm_everything_comes_back() -> TestResult {
    // Created by the server: it does not exist yet.
    let data = scratch_dir("restart").join("flack-data");
    let server = Server::start_with_data(&data, &[])?;
    assert_eq!(Path::new(&server.data), std::fs::canonicalize(&data)?);
    let (mut alice, alice_token) = login(&server, "Alice").await?;
    let epoch = alice.hello["epoch"].as_str().ok_or("no epoch")?.to_owned();
    alice
        .ok(json!({"type": "create_channel", "name": "Rust-Talk"}))
        .await?;
    alice
        .ok(json!({"type": "join", "room": "rust-talk"}))
        .await?;
    let mut sent = Vec::new();
    for i in 1..=5 {
        let posted = alice
            .ok(json!({"type": "post", "room": "rust-talk", "text": format!("hello {i}")}))
            .await?;
        sent.push(posted["message"].clone());
    }
    alice
        .ok(json!({"type": "delete", "room": "rust-talk", "message_id": 2}))
        .await?;
    let (bob, bob_token) = login(&server, "bob").await?;
    alice
        .ok(json!({"type": "post", "room": "@bob", "text": "psst"}))
        .await?;
    drop((alice, bob));
    stop(server).await?;

    let server = Server::start_with_data(&data, &[])?;
    let mut alice = WsClient::connect(server.http).await?;
    assert_eq!(alice.hello["epoch"], epoch.as_str(), "the same store");
    let back = alice
        .ok(json!({"type": "login", "token": alice_token}))
        .await?;
    assert_eq!(back["user"]["name"], "Alice");
    assert_eq!(back["new_user"], false);
    let channels = alice.ok(json!({"type": "list_channels"})).await?;
    assert_eq!(channels["channels"][0]["name"], "Rust-Talk", "{channels}");
    let joined = alice
        .ok(json!({"type": "join", "room": "rust-talk"}))
        .await?;
    assert_eq!(ids(&joined), vec![1, 3, 4, 5], "2 stays deleted");
    for message in joined["messages"].as_array().ok_or("no messages")? {
        let id = message["id"].as_u64().ok_or("no id")? as usize;
        assert_eq!(message, &sent[id - 1], "the same message");
    }
    let private = alice.ok(json!({"type": "join", "room": "@bob"})).await?;
    assert_eq!(private["messages"][0]["text"], "psst");
    let next = alice
        .ok(json!({"type": "post", "room": "rust-talk", "text": "still here"}))
        .await?;
    assert_eq!(next["message"]["id"], 6, "ids go on");
    let mut bob = WsClient::connect(server.http).await?;
    let bob_back = bob.ok(json!({"type": "login", "token": bob_token})).await?;
    assert_eq!(bob_back["user"]["name"], "bob");
    let mut carol = WsClient::connect(server.http).await?;
    let taken = carol
        .request(json!({"type": "login", "name": "ALICE"}))
        .await?;
    assert_eq!(taken["code"], "name_taken", "names stay held: {taken}");
    drop((alice, bob, carol));
    stop(server).await?;
    assert_eq!(integrity(&data)?, "ok");
    Ok(())
}

/// What the flooding client saw: each acknowledged id with the text it posted and when the
/// acknowledgement arrived, and the highest id it saw in any frame.
#[derive(Default)]
struct Flood {
    acked: BTreeMap<u64, (String, Instant)>,
    highest_seen: u64,
}

/// Posts as fast as acknowledgements come (up to `window` in flight) until the socket
/// ends or `until` passes.
async fn flood(http: std::net::SocketAddr, token: String, window: usize, until: Instant) -> Flood {
    let mut seen = Flood::default();
    let Ok((ws, _)) = tokio_tungstenite::connect_async(format!("ws://{http}/ws")).await else {
        return seen;
    };
    let (mut tx, mut rx) = ws.split();
    let login = json!({"type": "login", "id": "login", "token": token}).to_string();
    let join = json!({"type": "join", "id": "join", "room": "flood"}).to_string();
    if tx.send(Message::text(login)).await.is_err() || tx.send(Message::text(join)).await.is_err() {
        return seen;
    }
    let mut texts = BTreeMap::new();
    let (mut next, mut in_flight) = (0u64, 0usize);
    loop {
        while in_flight < window && Instant::now() < until {
            next += 1;
            let text = format!("flood {next}");
            let post = json!({"type": "post", "id": next, "room": "flood", "text": text});
            if tx.send(Message::text(post.to_string())).await.is_err() {
                return seen;
            }
            texts.insert(next, text);
            in_flight += 1;
        }
        if in_flight == 0 {
            return seen;
        }
        let frame = match tokio::time::timeout(Duration::from_secs(10), rx.next()).await {
            Ok(Some(Ok(Message::Text(text)))) => text,
            Ok(Some(Ok(_))) => continue,
            _ => return seen,
        };
        let Ok(frame) = serde_json::from_str::<Value>(frame.as_str()) else {
            continue;
        };
        if let Some(id) = frame["message"]["id"].as_u64() {
            seen.highest_seen = seen.highest_seen.max(id);
        }
        if let (Some(request), "ok") = (frame["id"].as_u64(), frame["type"].as_str().unwrap_or(""))
        {
            in_flight -= 1;
            if let (Some(id), Some(text)) = (
                frame["result"]["message"]["id"].as_u64(),
                texts.remove(&request),
            ) {
                seen.acked.insert(id, (text, Instant::now()));
            }
        } else if frame["type"] == "error" && frame["id"].is_u64() {
            in_flight -= 1;
        }
    }
}

#[tokio::test]
async fn after_kill_9_in_a_flood_what_was_acknowledged_a_second_before_is_back() -> TestResult {
    let data = scratch_dir("kill9").join("data");
    let flags = ["--history", "100000", "--message-rate", "1000000/1000000"];
    let mut server = Server::start_with_data(&data, &flags)?;
    let (mut poster, token) = login(&server, "poster").await?;
    let epoch = poster.hello["epoch"].clone();
    poster
        .ok(json!({"type": "create_channel", "name": "flood"}))
        .await?;
    drop(poster);

    let flooding = tokio::spawn(flood(
        server.http,
        token.clone(),
        32,
        Instant::now() + Duration::from_secs(30),
    ));
    tokio::time::sleep(Duration::from_secs(2)).await;
    let killed_at = Instant::now();
    let status = server.kill_hard()?;
    assert!(!status.success(), "killed: {status}");
    let flood = flooding.await?;
    let safe: Vec<u64> = flood
        .acked
        .iter()
        .filter(|(_, (_, at))| killed_at.duration_since(*at) > Duration::from_secs(1))
        .map(|(id, _)| *id)
        .collect();
    assert!(
        safe.len() > 100,
        "a flood: {} acknowledged, {} of them a second before the kill",
        flood.acked.len(),
        safe.len()
    );
    println!(
        "{} posts acknowledged in 2 s, {} of them more than 1 s before the kill, highest id seen {}",
        flood.acked.len(),
        safe.len(),
        flood.highest_seen
    );

    assert_eq!(integrity(&data)?, "ok", "the file opens cleanly");
    let server = Server::start_with_data(&data, &flags)?;
    let mut poster = WsClient::connect(server.http).await?;
    assert_eq!(poster.hello["epoch"], epoch, "the same store after a crash");
    poster.ok(json!({"type": "login", "token": token})).await?;
    let joined = poster.ok(json!({"type": "join", "room": "flood"})).await?;
    let kept: BTreeMap<u64, String> = joined["messages"]
        .as_array()
        .ok_or("no messages")?
        .iter()
        .filter_map(|m| Some((m["id"].as_u64()?, m["text"].as_str()?.to_owned())))
        .collect();
    for id in &safe {
        let (text, _) = &flood.acked[id];
        assert_eq!(
            kept.get(id),
            Some(text),
            "message {id} was acknowledged and lost"
        );
    }
    let lost: Vec<Duration> = flood
        .acked
        .iter()
        .filter(|(id, _)| !kept.contains_key(id))
        .map(|(_, (_, at))| killed_at.duration_since(*at))
        .collect();
    println!(
        "{} acknowledged posts lost, the oldest acknowledged {:?} before the kill",
        lost.len(),
        lost.iter().max()
    );
    let stored_high = kept.keys().max().copied().unwrap_or(0);
    // A client that saw the newest messages is told of a gap, never of deletions.
    let resumed = poster
        .ok(json!({"type": "join", "room": "flood", "after": flood.highest_seen}))
        .await?;
    assert_eq!(resumed["gap"], true, "{}", resumed["gap"]);
    assert_eq!(resumed["deleted"], json!([]));
    // Ids never go back or repeat: the next one is above every id anyone saw.
    let next = poster
        .ok(json!({"type": "post", "room": "flood", "text": "after the crash"}))
        .await?;
    let next = next["message"]["id"].as_u64().ok_or("no id")?;
    assert!(
        next > flood.highest_seen,
        "{next} after {}",
        flood.highest_seen
    );
    assert!(next > stored_high);
    drop(poster);
    stop(server).await?;
    assert_eq!(integrity(&data)?, "ok");
    Ok(())
}

#[tokio::test]
async fn after_sigterm_in_a_flood_every_acknowledged_post_is_back() -> TestResult {
    let data = scratch_dir("term").join("data");
    let flags = ["--history", "100000", "--message-rate", "1000000/1000000"];
    let server = Server::start_with_data(&data, &flags)?;
    let (mut poster, token) = login(&server, "poster").await?;
    let epoch = poster.hello["epoch"].clone();
    poster
        .ok(json!({"type": "create_channel", "name": "flood"}))
        .await?;
    drop(poster);
    let flooding = tokio::spawn(flood(
        server.http,
        token.clone(),
        32,
        Instant::now() + Duration::from_secs(30),
    ));
    tokio::time::sleep(Duration::from_secs(1)).await;
    // The flood goes on until the server closes the socket.
    stop(server).await?;
    let flood = flooding.await?;
    assert!(
        flood.acked.len() > 100,
        "{} acknowledged",
        flood.acked.len()
    );

    let server = Server::start_with_data(&data, &flags)?;
    let mut poster = WsClient::connect(server.http).await?;
    assert_eq!(poster.hello["epoch"], epoch);
    poster.ok(json!({"type": "login", "token": token})).await?;
    let joined = poster.ok(json!({"type": "join", "room": "flood"})).await?;
    let kept: BTreeMap<u64, String> = joined["messages"]
        .as_array()
        .ok_or("no messages")?
        .iter()
        .filter_map(|m| Some((m["id"].as_u64()?, m["text"].as_str()?.to_owned())))
        .collect();
    let lost: Vec<&u64> = flood
        .acked
        .keys()
        .filter(|id| !kept.contains_key(id))
        .collect();
    assert!(lost.is_empty(), "acknowledged and lost: {lost:?}");
    // A clean stop skips no ids: the next one follows the last one given.
    let next = poster
        .ok(json!({"type": "post", "room": "flood", "text": "after"}))
        .await?;
    let last = kept.keys().max().copied().unwrap_or(0);
    assert_eq!(next["message"]["id"].as_u64(), Some(last + 1));
    drop(poster);
    stop(server).await?;
    Ok(())
}

/// Runs the binary on `data` and returns its exit status and standard error.
fn start_expecting_failure(data: &Path) -> TestResult<(std::process::ExitStatus, String)> {
    let out = Command::new(env!("CARGO_BIN_EXE_demo-web"))
        .args(["--listen", "127.0.0.1:0", "--tcp", "off"])
        .arg("--data-dir")
        .arg(data)
        .output()?;
    Ok((
        out.status,
        String::from_utf8_lossy(&out.stderr).into_owned(),
    ))
}

#[test]
fn a_store_that_cannot_be_used_stops_the_start_naming_its_file() -> TestResult {
    let corrupt = scratch_dir("corrupt");
    let garbage = b"not a database at all; ".repeat(400);
    std::fs::write(corrupt.join("flack.sqlite3"), &garbage)?;

    let newer = scratch_dir("newer");
    let conn = rusqlite::Connection::open(newer.join("flack.sqlite3"))?;
    conn.pragma_update(None, "user_version", 999)?;
    drop(conn);

    // Tests run as root, who may read any file: a directory where the file should be is
    // what stays unreadable.
    let unreadable = scratch_dir("unreadable");
    std::fs::create_dir_all(unreadable.join("flack.sqlite3"))?;

    for (data, says) in [
        (&corrupt, "not an SQLite database"),
        (&newer, "newer than this build"),
        (&unreadable, "directory"),
    ] {
        let (status, stderr) = start_expecting_failure(data)?;
        assert!(!status.success(), "{}: started: {stderr}", data.display());
        let file: PathBuf = std::fs::canonicalize(data)?.join("flack.sqlite3");
        assert!(stderr.contains(&file.display().to_string()), "{stderr}");
        assert!(stderr.contains(says), "{stderr}");
        assert!(!stderr.contains("panicked"), "{stderr}");
    }
    assert_eq!(
        std::fs::read(corrupt.join("flack.sqlite3"))?,
        garbage,
        "left as it was"
    );
    Ok(())
}

#[tokio::test]
async fn a_redis_that_keeps_nothing_on_disk_is_warned_about() -> TestResult {
    const WARNING: &str = "redis keeps nothing on disk";
    let Some(volatile) = Redis::start()? else {
        return Ok(());
    };
    let Some(persistent) = Redis::start_persistent()? else {
        return Ok(());
    };
    let warned = Server::start(&["--redis", &volatile.url()])?;
    let quiet = Server::start(&["--redis", &persistent.url()])?;
    for server in [&warned, &quiet] {
        eventually("the engine to start", Duration::from_secs(10), || async {
            let log = std::fs::read_to_string(&server.log)?;
            Ok(log.contains("chat engine started").then_some(()))
        })
        .await?;
    }
    assert!(std::fs::read_to_string(&warned.log)?.contains(WARNING));
    assert!(!std::fs::read_to_string(&quiet.log)?.contains(WARNING));
    assert_eq!(warned.data, "redis");
    Ok(())
}
