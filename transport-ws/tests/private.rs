//! Private conversations (`@name`): they reach every connection of both users, no one
//! else, each labelled with the other user, and their history belongs to the pair.

mod common;

use common::{is_message, test_limits, TestServer};
use serde_json::json;

on_both! {
async fn private_messages_reach_both_connections_of_a_user_and_no_one_else() {
    let server = TestServer::start(test_limits());
    let mut alice = server.user("alice").await;
    let mut alice_again = server.client().await;
    alice_again.resume(&alice.token()).await;
    let mut bob = server.user("bob").await;
    let mut carol = server.user("carol").await;
    for client in [&mut alice, &mut alice_again, &mut bob, &mut carol] {
        client
            .request(json!({"type": "create_channel", "name": "lobby"}))
            .await;
        client.ok(json!({"type": "join", "room": "lobby"})).await;
    }

    let sent = bob
        .ok(json!({"type": "post", "room": "@alice", "text": "psst"}))
        .await;
    assert_eq!(sent["message"]["room"], "@alice", "labelled for bob");
    for client in [&mut alice, &mut alice_again] {
        let got = client.event(is_message("@bob", "psst")).await;
        assert_eq!(got["message"]["room"], "@bob", "labelled for alice");
        assert_eq!(got["message"]["id"], sent["message"]["id"]);
    }
    let reply = alice
        .ok(json!({"type": "post", "room": "@bob", "text": "hush"}))
        .await;
    assert_eq!(reply["message"]["room"], "@bob");
    bob.event(is_message("@alice", "hush")).await;
    alice_again.event(is_message("@bob", "hush")).await;

    // A marker posted after the private messages: carol sees it, and nothing private
    // before it.
    bob.ok(json!({"type": "post", "room": "lobby", "text": "marker"}))
        .await;
    let seen = carol.frames_until(is_message("lobby", "marker")).await;
    assert!(
        seen.iter()
            .all(|f| f["type"] != "message" || f["room"] == "lobby"),
        "carol saw a private message: {seen:?}"
    );
    assert_eq!(
        carol.error(json!({"type": "join", "room": "@carol"})).await,
        "invalid_target"
    );

    // Opening the conversation shows its history to its two users.
    let history = bob.ok(json!({"type": "join", "room": "@alice"})).await;
    assert_eq!(history["room"], "@alice");
    let texts: Vec<&str> = history["messages"]
        .as_array()
        .expect("messages")
        .iter()
        .filter_map(|m| m["text"].as_str())
        .collect();
    assert_eq!(texts, ["psst", "hush"]);
    let carols = carol.ok(json!({"type": "join", "room": "@alice"})).await;
    assert_eq!(
        carols["messages"],
        json!([]),
        "carol's conversation is her own"
    );
}
}
