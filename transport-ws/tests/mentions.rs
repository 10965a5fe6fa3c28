//! Mentions on the wire: a message naming `@bob` (in any case or look-alike) carries bob's
//! `mention_key` in `mentions`, in the event, the post's reply and a later join's history;
//! a message naming nobody has no `mentions`.

mod common;

use common::{test_limits, TestServer};
use serde_json::{json, Value};

fn keys(message: &Value) -> Vec<String> {
    message["mentions"]
        .as_array()
        .map(|keys| {
            keys.iter()
                .filter_map(|k| k.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test]
async fn a_message_that_names_a_user_carries_their_mention_key() {
    let server = TestServer::start(test_limits());
    let mut alice = server.user("alice").await;
    let mut bob = server.user("Bob").await;
    let bob_key = bob.login["mention_key"]
        .as_str()
        .expect("a mention key")
        .to_owned();
    assert_eq!(bob_key, "bob");
    alice
        .ok(json!({"type": "create_channel", "name": "lunch"}))
        .await;
    alice.ok(json!({"type": "join", "room": "lunch"})).await;
    bob.ok(json!({"type": "join", "room": "lunch"})).await;

    // Cyrillic В and о: looks like BOB, and is matched as the name is.
    let posted = alice
        .ok(json!({"type": "post", "room": "lunch", "text": "(@Воb) lunch?"}))
        .await;
    assert!(keys(&posted["message"]).contains(&bob_key), "{posted}");
    let event = bob
        .event(|f| f["type"] == "message" && f["message"]["id"] == 1)
        .await;
    assert!(keys(&event["message"]).contains(&bob_key), "{event}");

    let plain = alice
        .ok(json!({"type": "post", "room": "lunch", "text": "mail bob@example.com"}))
        .await;
    assert!(plain["message"].get("mentions").is_none(), "{plain}");

    let mut carol = server.user("carol").await;
    let joined = carol.ok(json!({"type": "join", "room": "lunch"})).await;
    let history = joined["messages"].as_array().expect("messages");
    assert!(keys(&history[0]).contains(&bob_key), "{joined}");
    assert!(!keys(&history[0]).contains(&"carol".to_owned()));
    assert!(history[1].get("mentions").is_none());
}

#[tokio::test]
async fn hello_announces_the_display_name_limit() {
    let mut limits = test_limits();
    limits.max_display_name_chars = 12;
    let server = TestServer::start(limits);
    let client = server.client().await;
    assert_eq!(client.hello["max_name_chars"], 12, "{}", client.hello);
}
