//! Reconnecting: a resumed user re-joins with `after` and gets exactly what it missed
//! (or a gap and the whole history), and the deletions made meanwhile.

mod common;

use common::{is_presence, test_limits, TestServer};
use serde_json::{json, Value};

fn ids(messages: &Value) -> Vec<u64> {
    messages
        .as_array()
        .expect("an array of messages")
        .iter()
        .map(|m| m["id"].as_u64().expect("message id"))
        .collect()
}

on_both! {
async fn reconnecting_with_after_returns_exactly_the_missed_messages() {
    let limits = {
        let mut limits = test_limits();
        limits.history = 5;
        limits
    };
    let server = TestServer::start(limits);
    let mut bob = server.user("bob").await;
    bob.ok(json!({"type": "create_channel", "name": "general"}))
        .await;
    bob.ok(json!({"type": "join", "room": "general"})).await;
    bob.ok(json!({"type": "post", "room": "general", "text": "before"}))
        .await;

    let mut alice = server.user("alice").await;
    let joined = alice.ok(json!({"type": "join", "room": "general"})).await;
    assert_eq!(ids(&joined["messages"]), [1]);
    let last = joined["last_id"].as_u64().expect("last_id");
    assert_eq!(last, 1);
    let token = alice.token();
    drop(alice);
    bob.event(is_presence("offline", "alice")).await;

    let mut missed = Vec::new();
    for n in 0..3 {
        let posted = bob
            .ok(json!({"type": "post", "room": "general", "text": format!("missed {n}")}))
            .await;
        missed.push(posted["message"]["id"].as_u64().expect("id"));
    }
    let mut alice = server.client().await;
    alice.resume(&token).await;
    let resumed = alice
        .ok(json!({"type": "join", "room": "general", "after": last}))
        .await;
    assert_eq!(resumed["gap"], false);
    assert_eq!(ids(&resumed["messages"]), missed);
    assert_eq!(resumed["last_id"], json!(missed[2]));

    // Live messages continue the snapshot with nothing twice.
    bob.ok(json!({"type": "post", "room": "general", "text": "live"}))
        .await;
    let live = alice.event(|f| f["type"] == "message").await;
    assert_eq!(live["message"]["text"], "live");

    // Missing more than the history keeps: a gap, and the whole history instead.
    let last = live["message"]["id"].as_u64().expect("id");
    let token = alice.token();
    drop(alice);
    bob.event(is_presence("offline", "alice")).await;
    for n in 0..7 {
        bob.ok(json!({"type": "post", "room": "general", "text": format!("lost {n}")}))
            .await;
    }
    let mut alice = server.client().await;
    alice.resume(&token).await;
    let gapped = alice
        .ok(json!({"type": "join", "room": "general", "after": last}))
        .await;
    assert_eq!(gapped["gap"], true);
    let got = ids(&gapped["messages"]);
    assert_eq!(got.len(), 5, "history keeps 5");
    assert_eq!(got.last().copied(), gapped["last_id"].as_u64());
}
}

on_both! {
async fn deletions_while_away_are_reported_on_resume() {
    let server = TestServer::start(test_limits());
    let mut bob = server.user("bob").await;
    bob.ok(json!({"type": "create_channel", "name": "general"}))
        .await;
    bob.ok(json!({"type": "join", "room": "general"})).await;
    let posted = bob
        .ok(json!({"type": "post", "room": "general", "text": "regret"}))
        .await;
    let mut alice = server.user("alice").await;
    let joined = alice.ok(json!({"type": "join", "room": "general"})).await;
    let token = alice.token();
    drop(alice);
    let id = posted["message"]["id"].clone();
    bob.ok(json!({"type": "delete", "room": "general", "message_id": id}))
        .await;
    let mut alice = server.client().await;
    alice.resume(&token).await;
    let resumed = alice
        .ok(json!({"type": "join", "room": "general", "after": joined["last_id"]}))
        .await;
    assert_eq!(resumed["messages"], json!([]));
    assert_eq!(resumed["deleted"], json!([id]));
}
}
