//! Requests and their replies over a real socket: every request type answers as
//! `docs/protocol.md` documents, ids are echoed as sent, every engine error code reaches
//! the client, and a bad frame gets its error without breaking anything.

mod common;

use chat_core::Limits;
use common::{is_message, test_limits, TestServer};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Message;

on_both! {
async fn every_request_type_answers_as_documented() {
    let server = TestServer::start(test_limits());
    let mut alice = server.client().await;

    let login = alice.login("alice").await;
    assert_eq!(login["user"]["name"], "alice");
    assert!(login["user"]["id"].is_u64());
    assert_eq!(login["new_user"], true);
    let token = login["token"].as_str().expect("token");
    assert_eq!(token.len(), 32);
    assert!(token.chars().all(|c| c.is_ascii_hexdigit()));

    assert_eq!(
        alice.ok(json!({"type": "list_channels"})).await,
        json!({"channels": []})
    );

    let created = alice
        .ok(json!({"type": "create_channel", "name": "rust"}))
        .await;
    let channel = &created["channel"];
    assert_eq!(channel["name"], "rust");
    assert_eq!(channel["members"], 0, "the creator does not join");
    assert!(channel["created_at"].as_i64().is_some_and(|ms| ms > 0));
    assert!(channel["last_activity"].is_i64());

    let listed = alice.ok(json!({"type": "list_channels"})).await;
    assert_eq!(listed["channels"][0]["name"], "rust");

    let joined = alice.ok(json!({"type": "join", "room": "rust"})).await;
    assert_eq!(joined["room"], "rust");
    assert_eq!(joined["messages"], json!([]));
    assert_eq!(joined["gap"], false);
    assert_eq!(joined["deleted"], json!([]));
    assert_eq!(joined["last_id"], 0);
    assert_eq!(joined["members"][0]["user"]["name"], "alice");
    assert_eq!(joined["members"][0]["online"], true);

    let posted = alice
        .ok(json!({"type": "post", "room": "rust", "text": "hello <b>world</b>"}))
        .await;
    let message = &posted["message"];
    assert_eq!(message["id"], 1);
    assert_eq!(message["room"], "rust");
    assert_eq!(message["author"], login["user"]);
    assert_eq!(message["text"], "hello <b>world</b>");
    assert!(message["sent_at"].as_i64().is_some_and(|ms| ms > 0));
    // The poster follows the room, so the message also arrives as an event.
    let event = alice.event(is_message("rust", "hello <b>world</b>")).await;
    assert_eq!(&event["message"], message);

    let typing = alice.ok(json!({"type": "typing", "room": "rust"})).await;
    assert_eq!(typing, json!({"sent": true}));
    let again = alice.ok(json!({"type": "typing", "room": "rust"})).await;
    assert_eq!(
        again,
        json!({"sent": false}),
        "throttled by typing_interval"
    );

    let members = alice.ok(json!({"type": "members", "room": "rust"})).await;
    assert_eq!(members["members"][0]["user"]["name"], "alice");
    assert_eq!(members["members"][0]["online"], true);

    let deleted = alice
        .ok(json!({"type": "delete", "room": "rust", "message_id": 1}))
        .await;
    assert_eq!(deleted, json!({}));
    let event = alice.event(|f| f["type"] == "deleted").await;
    assert_eq!(
        event,
        json!({"type": "deleted", "room": "rust", "message_id": 1})
    );

    assert_eq!(
        alice.ok(json!({"type": "leave", "room": "rust"})).await,
        json!({})
    );
    assert_eq!(
        alice
            .error(json!({"type": "post", "room": "rust", "text": "gone"}))
            .await,
        "not_joined"
    );
}
}

on_both! {
async fn replies_echo_the_request_id_as_sent() {
    let server = TestServer::start(test_limits());
    let mut alice = server.user("alice").await;

    alice
        .send_json(&json!({"type": "list_channels", "id": "abc-1"}))
        .await;
    let reply = alice.next_reply().await;
    assert_eq!(
        reply,
        json!({"type": "ok", "id": "abc-1", "result": {"channels": []}})
    );

    alice
        .send_json(&json!({"type": "list_channels", "id": 2.5}))
        .await;
    assert_eq!(alice.next_reply().await["id"], 2.5);

    alice.send_json(&json!({"type": "list_channels"})).await;
    let reply = alice.next_reply().await;
    assert_eq!(reply["type"], "ok");
    assert!(reply.get("id").is_none(), "no id, no echo: {reply}");

    alice
        .send_json(&json!({"type": "join", "id": "j", "room": "nope"}))
        .await;
    let reply = alice.next_reply().await;
    assert_eq!(reply["type"], "error");
    assert_eq!(reply["id"], "j");
    assert_eq!(reply["code"], "no_such_channel");
}
}

on_both! {
async fn every_engine_error_code_reaches_the_client() {
    let server = TestServer::start(test_limits());
    let mut alice = server.user("alice").await;
    let mut bob = server.user("bob").await;

    alice
        .ok(json!({"type": "create_channel", "name": "general"}))
        .await;
    assert_eq!(
        bob.error(json!({"type": "create_channel", "name": "General"}))
            .await,
        "channel_exists"
    );
    assert_eq!(
        bob.error(json!({"type": "create_channel", "name": "no spaces"}))
            .await,
        "invalid_channel_name"
    );
    assert_eq!(
        bob.error(json!({"type": "join", "room": "nowhere"})).await,
        "no_such_channel"
    );
    assert_eq!(
        bob.error(json!({"type": "post", "room": "general", "text": "hi"}))
            .await,
        "not_joined"
    );
    assert_eq!(
        bob.error(json!({"type": "leave", "room": "general"})).await,
        "not_joined"
    );
    assert_eq!(
        bob.error(json!({"type": "members", "room": "general"}))
            .await,
        "not_joined"
    );
    assert_eq!(
        bob.error(json!({"type": "typing", "room": "general"}))
            .await,
        "not_joined"
    );

    alice.ok(json!({"type": "join", "room": "general"})).await;
    bob.ok(json!({"type": "join", "room": "general"})).await;
    let posted = alice
        .ok(json!({"type": "post", "room": "general", "text": "mine"}))
        .await;
    let id = posted["message"]["id"].clone();
    assert_eq!(
        bob.error(json!({"type": "delete", "room": "general", "message_id": id}))
            .await,
        "not_author"
    );
    assert_eq!(
        alice
            .error(json!({"type": "delete", "room": "general", "message_id": 999}))
            .await,
        "no_such_message"
    );

    let limit = Limits::default().max_message_bytes;
    assert_eq!(
        alice
            .error(json!({"type": "post", "room": "general", "text": "x".repeat(limit + 1)}))
            .await,
        "too_long"
    );
    alice
        .ok(json!({"type": "post", "room": "general", "text": "x".repeat(limit)}))
        .await;
    assert_eq!(
        alice
            .error(json!({"type": "post", "room": "general", "text": " \n\t "}))
            .await,
        "empty"
    );
    assert_eq!(
        alice
            .error(json!({"type": "post", "room": "general", "text": "bell\u{7}"}))
            .await,
        "invalid_text"
    );
    assert_eq!(
        alice
            .error(json!({"type": "post", "room": "@nobody", "text": "hi"}))
            .await,
        "no_such_user"
    );
    assert_eq!(
        alice
            .error(json!({"type": "post", "room": "@alice", "text": "me"}))
            .await,
        "invalid_target"
    );
}
}

on_both! {
async fn bad_frames_get_errors_and_nothing_else_breaks() {
    let server = TestServer::start(test_limits());
    let mut alice = server.user("alice").await;
    let mut bob = server.user("bob").await;
    alice
        .ok(json!({"type": "create_channel", "name": "general"}))
        .await;
    alice.ok(json!({"type": "join", "room": "general"})).await;
    bob.ok(json!({"type": "join", "room": "general"})).await;

    let cases: [(Message, &str, Value); 7] = [
        (Message::text("{not json"), "bad_json", Value::Null),
        (Message::text("[1, 2, 3]"), "bad_json", Value::Null),
        (
            Message::text(r#"{"type":"dance","id":7}"#),
            "unknown_type",
            json!(7),
        ),
        (
            Message::text(r#"{"type":"post","id":8,"room":"general"}"#),
            "bad_request",
            json!(8),
        ),
        (
            Message::text(r#"{"type":"delete","id":9,"room":"general","message_id":"one"}"#),
            "bad_request",
            json!(9),
        ),
        (Message::text(r#"{"id":10}"#), "bad_request", json!(10)),
        (
            Message::binary(vec![0u8, 159, 146, 150]),
            "binary_not_supported",
            Value::Null,
        ),
    ];
    for (frame, code, id) in cases {
        alice.send(frame).await;
        let reply = alice.next_reply().await;
        assert_eq!(reply["type"], "error", "{reply}");
        assert_eq!(reply["code"], code, "{reply}");
        assert_eq!(reply.get("id").cloned().unwrap_or(Value::Null), id);
    }

    // The same connection still works, and so does everyone else's.
    alice
        .ok(json!({"type": "post", "room": "general", "text": "still here"}))
        .await;
    bob.event(is_message("general", "still here")).await;
    bob.ok(json!({"type": "post", "room": "general", "text": "me too"}))
        .await;
    alice.event(is_message("general", "me too")).await;
}
}

on_both! {
async fn logout_closes_every_tab_and_frees_the_name() {
    let server = TestServer::start(test_limits());
    let mut alice = server.client().await;
    alice.login("alice").await;
    let token = alice.token();
    let mut other_tab = server.client().await;
    other_tab.resume(&token).await;

    assert_eq!(alice.ok(json!({"type": "logout"})).await, json!({}));
    for tab in [&mut alice, &mut other_tab] {
        let (frames, close) = tab.close_frame().await;
        let last = frames.last().expect("a disconnected frame");
        assert_eq!(last["type"], "disconnected");
        assert_eq!(last["code"], "logged_out");
        let close = close.expect("a close frame");
        assert_eq!(u16::from(close.code), 1000);
    }
    let mut again = server.client().await;
    let refused = again
        .error(json!({"type": "login", "token": token}))
        .await;
    assert_eq!(refused, "invalid_token");
    let new_alice = again.login("alice").await;
    assert_eq!(new_alice["new_user"], true, "the name is free at once");
}
}
