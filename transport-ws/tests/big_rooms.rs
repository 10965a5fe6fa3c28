//! Big rooms over a real socket: the `join` reply's bytes do not grow with the room, the
//! `members` request pages through everyone exactly once, a bad cursor or limit is a
//! `bad_request`, and a large room's followers get `counts` frames. The room is filled
//! through the engine (sessions without sockets), so thousands of members cost no
//! sockets; the client that measures speaks the protocol.

mod common;

use std::collections::HashSet;

use chat_core::{Engine, Login, Session};
use common::{test_limits, Client, TestServer};
use serde_json::{json, Value};

/// `n` members of `channel` named `{prefix}0000`... (same length), joined through the
/// engine; kept alive by the caller.
async fn fill(engine: &Engine, channel: &str, prefix: &str, n: usize) -> Vec<Session> {
    let mut sessions = Vec::with_capacity(n);
    for i in 0..n {
        let session = engine
            .connect(Login::Name(format!("{prefix}{i:04}")))
            .await
            .expect("connect");
        session.join(channel, None).await.expect("join");
        sessions.push(session);
    }
    sessions
}

/// The `join` reply's frame as the client read it, and its size in bytes.
async fn join_bytes(client: &mut Client, room: &str) -> (Value, usize) {
    let reply = client.request(json!({"type": "join", "room": room})).await;
    assert_eq!(reply["type"], "ok", "{reply}");
    let bytes = reply.to_string().len();
    (reply, bytes)
}

on_both! {
async fn a_join_reply_is_as_big_in_a_room_of_3000_as_in_one_of_150() {
    let server = TestServer::start(test_limits());
    let mut client = server.user("measure").await;
    let mut kept = Vec::new();
    let mut sizes = Vec::new();
    for (room, n) in [("ra", 10), ("rb", 150), ("rc", 3_000)] {
        client
            .ok(json!({"type": "create_channel", "name": room}))
            .await;
        kept.push(fill(&server.engine, room, room, n).await);
        let (reply, bytes) = join_bytes(&mut client, room).await;
        let result = &reply["result"];
        assert_eq!(result["member_count"], n + 1, "{room}");
        assert_eq!(
            result["members"].as_array().map(Vec::len),
            Some((n + 1).min(100)),
            "{room}"
        );
        assert_eq!(result["members_next"].is_string(), n + 1 > 100, "{room}");
        sizes.push(bytes);
    }
    let (ten, page, big) = (sizes[0], sizes[1], sizes[2]);
    assert!(ten < page);
    // The big room's member ids have up to two more digits, its counts three: no more.
    assert!(
        big <= page + 100 * 2 + 2 * 3 + 40,
        "join reply bytes: {ten} (room of 11), {page} (151), {big} (3,001)"
    );
}
}

on_both! {
async fn members_pages_through_everyone_once() {
    let server = TestServer::start(test_limits());
    let mut client = server.user("reader").await;
    client
        .ok(json!({"type": "create_channel", "name": "general"}))
        .await;
    let _kept = fill(&server.engine, "general", "p", 260).await;
    let (joined, _) = join_bytes(&mut client, "general").await;
    let mut names: Vec<String> = Vec::new();
    let mut take = |page: &Value| {
        for m in page["members"].as_array().expect("members") {
            names.push(m["user"]["name"].as_str().expect("name").to_owned());
        }
    };
    take(&joined["result"]);
    let mut after = joined["result"]["members_next"].clone();
    while let Some(cursor) = after.as_str() {
        let page = client
            .ok(json!({"type": "members", "room": "general", "after": cursor, "limit": 70}))
            .await;
        assert!(page["members"].as_array().expect("members").len() <= 70);
        assert_eq!(page["member_count"], 261);
        assert_eq!(page["online_count"], 261);
        take(&page);
        after = page["next"].clone();
    }
    assert!(after.is_null());
    assert_eq!(names.len(), 261);
    assert_eq!(names.iter().collect::<HashSet<_>>().len(), 261);

    for bad in [
        json!({"type": "members", "room": "general", "after": "nonsense"}),
        json!({"type": "members", "room": "general", "limit": 0}),
        json!({"type": "members", "room": "general", "limit": 1001}),
    ] {
        assert_eq!(client.error(bad.clone()).await, "bad_request", "{bad}");
    }
}
}

on_both! {
async fn a_large_room_sends_counts_frames() {
    let limits = {
        let mut limits = test_limits();
        limits.large_room = 5;
        limits
    };
    let server = TestServer::start(limits);
    let mut watcher = server.user("watcher").await;
    watcher
        .ok(json!({"type": "create_channel", "name": "big"}))
        .await;
    let (joined, _) = join_bytes(&mut watcher, "big").await;
    assert_eq!(joined["result"]["large"], false);
    let mut kept = fill(&server.engine, "big", "m", 7).await;
    let counts = watcher
        .event(|f| f["type"] == "counts" && f["members"] == 8)
        .await;
    assert_eq!(
        counts,
        json!({"type": "counts", "room": "big", "members": 8, "online": 8})
    );
    kept.pop();
    let counts = watcher
        .event(|f| f["type"] == "counts" && f["online"] == 7)
        .await;
    assert_eq!(counts["members"], 8);
}
}
