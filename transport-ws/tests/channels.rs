//! Live chat in a channel between users: creation seen by everyone, joining, presence,
//! messages, typing, deletions, leaving, and going offline when the socket closes.

mod common;

use common::{is_message, is_presence, test_limits, TestServer};
use serde_json::json;

on_both! {
async fn two_users_chat_live() {
    let server = TestServer::start(test_limits());
    let mut alice = server.user("alice").await;
    let mut bob = server.user("bob").await;

    alice
        .ok(json!({"type": "create_channel", "name": "general"}))
        .await;
    let created = bob.event(|f| f["type"] == "channel_created").await;
    assert_eq!(created["channel"]["name"], "general");

    alice.ok(json!({"type": "join", "room": "general"})).await;
    let joined = bob.ok(json!({"type": "join", "room": "general"})).await;
    assert_eq!(joined["members"].as_array().map(Vec::len), Some(2));
    assert_eq!(
        (&joined["member_count"], &joined["online_count"]),
        (&json!(2), &json!(2))
    );
    let presence = alice.event(is_presence("joined", "bob")).await;
    assert_eq!(presence["room"], "general");
    assert_eq!(
        (&presence["members"], &presence["online"]),
        (&json!(2), &json!(2))
    );

    let sent = alice
        .ok(json!({"type": "post", "room": "general", "text": "hi bob"}))
        .await;
    let got = bob.event(is_message("general", "hi bob")).await;
    assert_eq!(got["message"], sent["message"]);

    bob.ok(json!({"type": "post", "room": "general", "text": "hi alice"}))
        .await;
    let got = alice.event(is_message("general", "hi alice")).await;
    assert_eq!(got["message"]["author"]["name"], "bob");

    bob.ok(json!({"type": "typing", "room": "general"})).await;
    let typing = alice.event(|f| f["type"] == "typing").await;
    assert_eq!(typing["room"], "general");
    assert_eq!(typing["user"]["name"], "bob");

    let id = sent["message"]["id"].clone();
    alice
        .ok(json!({"type": "delete", "room": "general", "message_id": id}))
        .await;
    let deleted = bob.event(|f| f["type"] == "deleted").await;
    assert_eq!(deleted["message_id"], id);

    bob.ok(json!({"type": "leave", "room": "general"})).await;
    let left = alice.event(is_presence("left", "bob")).await;
    assert_eq!(left["members"], 1);

    // Closing the socket makes the user go offline for the others.
    let mut carol = server.user("carol").await;
    carol.ok(json!({"type": "join", "room": "general"})).await;
    drop(carol);
    let offline = alice.event(is_presence("offline", "carol")).await;
    assert_eq!(
        (&offline["members"], &offline["online"]),
        (&json!(2), &json!(1))
    );
}
}
