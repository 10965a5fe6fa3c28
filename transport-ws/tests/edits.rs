//! Edits and reactions over WebSocket: the `edit` and `react` requests, the `edited` and
//! `reactions` events every follower gets, what `join` carries after them (and `updated`
//! on a resume), and the error codes of the refusals.

mod common;

use common::{is_message, test_limits, TestServer};
use serde_json::json;

#[tokio::test]
async fn an_edit_and_reactions_reach_every_follower_and_later_joins() {
    let server = TestServer::start(test_limits());
    let mut alice = server.user("alice").await;
    let mut bob = server.user("bob").await;
    alice
        .ok(json!({"type": "create_channel", "name": "g"}))
        .await;
    alice.ok(json!({"type": "join", "room": "g"})).await;
    bob.ok(json!({"type": "join", "room": "g"})).await;
    let posted = alice
        .ok(json!({"type": "post", "room": "g", "text": "helo"}))
        .await;
    let id = posted["message"]["id"].as_u64().unwrap();
    bob.event(is_message("g", "helo")).await;

    alice
        .ok(json!({"type": "edit", "room": "g", "message_id": id, "text": "hello"}))
        .await;
    for client in [&mut alice, &mut bob] {
        let edited = client.event(|f| f["type"] == "edited").await;
        assert_eq!(edited["room"], "g");
        assert_eq!(edited["message"]["id"], id);
        assert_eq!(edited["message"]["text"], "hello");
        assert!(
            edited["message"]["edited_at"].as_i64().unwrap()
                >= edited["message"]["sent_at"].as_i64().unwrap()
        );
    }
    let not_author = bob
        .error(json!({"type": "edit", "room": "g", "message_id": id, "text": "mine"}))
        .await;
    assert_eq!(not_author, "not_author");

    bob.ok(json!({"type": "react", "room": "g", "message_id": id, "emoji": "👍"}))
        .await;
    let reactions = alice.event(|f| f["type"] == "reactions").await;
    assert_eq!(reactions["message_id"], id);
    assert_eq!(
        reactions["reactions"],
        json!([{"emoji": "👍", "count": 1, "users": [bob.user_id()]}])
    );
    // Toggled back: the event says none is left.
    bob.ok(json!({"type": "react", "room": "g", "message_id": id, "emoji": "+1"}))
        .await;
    let _first = bob.event(|f| f["type"] == "reactions").await;
    let cleared = bob.event(|f| f["type"] == "reactions").await;
    assert_eq!(cleared["reactions"], json!([]));
    alice
        .ok(json!({"type": "react", "room": "g", "message_id": id, "emoji": ":tada:"}))
        .await;

    // A new join carries the latest state; a resume after the message carries it in
    // `updated`.
    let mut carol = server.user("carol").await;
    let joined = carol.ok(json!({"type": "join", "room": "g"})).await;
    let message = &joined["messages"][0];
    assert_eq!(message["text"], "hello");
    assert!(message["edited_at"].is_i64());
    assert_eq!(
        message["reactions"],
        json!([{"emoji": "🎉", "count": 1, "users": [alice.user_id()]}])
    );
    let resumed = carol
        .ok(json!({"type": "join", "room": "g", "after": id}))
        .await;
    assert_eq!(resumed["messages"], json!([]));
    assert_eq!(resumed["updated"][0]["text"], "hello");
    assert_eq!(resumed["updated"][0]["reactions"][0]["emoji"], "🎉");
}

#[tokio::test]
async fn bad_edits_and_reactions_are_answered_with_their_codes() {
    let server = TestServer::start(test_limits());
    let mut alice = server.user("alice").await;
    alice
        .ok(json!({"type": "create_channel", "name": "g"}))
        .await;
    alice.ok(json!({"type": "join", "room": "g"})).await;
    alice
        .ok(json!({"type": "post", "room": "g", "text": "x"}))
        .await;
    let cases = [
        (
            json!({"type": "react", "room": "g", "message_id": 1, "emoji": "💩"}),
            "invalid_reaction",
        ),
        (
            json!({"type": "react", "room": "g", "message_id": 9, "emoji": "eyes"}),
            "no_such_message",
        ),
        (
            json!({"type": "edit", "room": "g", "message_id": 9, "text": "y"}),
            "no_such_message",
        ),
        (
            json!({"type": "edit", "room": "g", "message_id": 1, "text": " "}),
            "empty",
        ),
        (
            json!({"type": "edit", "room": "g", "message_id": 1, "text": "x".repeat(5000)}),
            "too_long",
        ),
        (
            json!({"type": "edit", "room": "nope", "message_id": 1, "text": "y"}),
            "not_joined",
        ),
        (
            json!({"type": "edit", "room": "g", "message_id": "1", "text": "y"}),
            "bad_request",
        ),
        (
            json!({"type": "react", "room": "g", "message_id": 1}),
            "bad_request",
        ),
    ];
    for (request, code) in cases {
        assert_eq!(alice.error(request.clone()).await, code, "{request}");
    }
    // The connection is still good.
    alice
        .ok(json!({"type": "edit", "room": "g", "message_id": 1, "text": "fine"}))
        .await;
}
