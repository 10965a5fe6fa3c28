//! The order of what a connection writes: post replies in request order and before
//! their echoes, and a listener's events in the order they happened, whatever batches they
//! come in and however far behind its socket is.

mod common;

use std::time::Duration;

use common::{is_message, presence_changes, test_limits, Client, TestServer};
use serde_json::{json, Value};
use transport_ws::WsConfig;

on_both! {
async fn back_to_back_posts_are_answered_in_order_and_before_their_echoes() {
    // The server reads the next request while earlier posts are being stored: replies
    // must still come in request order, refusals included, and each post's reply before
    // its own message event.
    let server = TestServer::start(test_limits());
    let mut alice = server.user("alice").await;
    let mut bob = server.user("bob").await;
    alice
        .ok(json!({"type": "create_channel", "name": "burst"}))
        .await;
    alice.ok(json!({"type": "join", "room": "burst"})).await;
    bob.ok(json!({"type": "join", "room": "burst"})).await;

    let refused = |n: u64| match n {
        20 => Some(("", "empty")),
        30 => Some(("elsewhere", "not_joined")),
        _ => None,
    };
    for n in 0..40u64 {
        let (room, text) = match refused(n) {
            Some(("", _)) => ("burst", String::new()),
            Some((room, _)) => (room, format!("m{n}")),
            None => ("burst", format!("m{n}")),
        };
        alice
            .send_json(&json!({"type": "post", "id": n, "room": room, "text": text}))
            .await;
    }
    alice
        .send_json(&json!({"type": "members", "id": 100, "room": "burst"}))
        .await;

    let frames = alice
        .frames_until(|f| f["type"] == "ok" && f["id"] == 100)
        .await;
    let replies: Vec<&Value> = frames
        .iter()
        .filter(|f| matches!(f["type"].as_str(), Some("ok" | "error")))
        .collect();
    let reply_ids: Vec<u64> = replies.iter().map(|f| f["id"].as_u64().unwrap()).collect();
    let expected: Vec<u64> = (0..40).chain([100]).collect();
    assert_eq!(reply_ids, expected, "replies in request order");

    let mut last_id = 0;
    for (n, reply) in replies.iter().take(40).enumerate() {
        let n = n as u64;
        if let Some((_, code)) = refused(n) {
            assert_eq!(reply["type"], "error", "request {n}");
            assert_eq!(reply["code"], code, "request {n}");
            continue;
        }
        assert_eq!(reply["type"], "ok", "request {n}: {reply}");
        let message = &reply["result"]["message"];
        assert_eq!(message["text"], format!("m{n}"));
        let id = message["id"].as_u64().unwrap();
        assert!(id > last_id, "stored in request order");
        last_id = id;
        let reply_at = frames.iter().position(|f| f == *reply).unwrap();
        let echo_at = frames
            .iter()
            .position(|f| f["type"] == "message" && f["message"]["id"] == id);
        if let Some(echo_at) = echo_at {
            assert!(reply_at < echo_at, "reply to {n} before its echo");
        }
    }

    // Bob sees the 38 stored messages, in the same order.
    let mut texts = Vec::new();
    while texts.len() < 38 {
        let event = bob.event(|f| f["type"] == "message").await;
        texts.push(event["message"]["text"].as_str().unwrap().to_owned());
    }
    let sent: Vec<String> = (0..40)
        .filter(|n| refused(*n).is_none())
        .map(|n| format!("m{n}"))
        .collect();
    assert_eq!(texts, sent);
}
}

/// Alice posts `m{from}` to `m{from + 29}` to `general`, one after another.
async fn posts(alice: &mut Client, from: usize, expected: &mut Vec<String>) {
    for n in from..from + 30 {
        let text = format!("m{n}");
        alice
            .ok(json!({"type": "post", "room": "general", "text": text}))
            .await;
        expected.push(format!("general:{text}"));
    }
}

/// What a listener's frame is, in words: `general:TEXT`, `@peer:TEXT`, `joined:NAME`
/// (in `general`, one per change of a batch), `typing:NAME`; none for frames the test
/// does not follow.
fn labels(frame: &Value) -> Vec<String> {
    match frame["type"].as_str() {
        Some("message") => vec![format!(
            "{}:{}",
            frame["room"].as_str().unwrap_or_default(),
            frame["message"]["text"].as_str().unwrap_or_default()
        )],
        // Presence in `general` only: opening the private room brings its own.
        Some("presence") if frame["room"] == "general" => presence_changes(frame)
            .into_iter()
            .map(|(change, name)| format!("{change}:{name}"))
            .collect(),
        Some("typing") => vec![format!(
            "typing:{}",
            frame["user"]["name"].as_str().unwrap_or_default()
        )],
        _ => Vec::new(),
    }
}

/// What bob, who joined after alice, follows: alice's own arrival may reach him in the
/// same presence batch as his (his join reply showed her already), the rest must come in
/// the order it happened.
fn after_bob_joined(frames: &[Value]) -> Vec<String> {
    frames
        .iter()
        .flat_map(labels)
        .filter(|l| l != "joined:alice")
        .collect()
}

/// Whether `frame` carries `label`.
fn has(frame: &Value, label: &str) -> bool {
    labels(frame).iter().any(|l| l == label)
}

on_both! {
async fn a_listener_gets_messages_and_other_events_in_the_order_they_happened() {
    // Bob only listens while the others post, arrive, type and write to him privately:
    // he must get it all in the order it happened, whatever batches it comes in.
    let server = TestServer::start(test_limits());
    let mut alice = server.user("alice").await;
    let mut bob = server.user("bob").await;
    let mut carol = server.user("carol").await;
    alice
        .ok(json!({"type": "create_channel", "name": "general"}))
        .await;
    alice.ok(json!({"type": "join", "room": "general"})).await;
    bob.ok(json!({"type": "join", "room": "general"})).await;
    alice.event(|f| has(f, "joined:bob")).await;

    // Bob's own arrival comes first (Alice saw it before she posted).
    let mut expected = vec!["joined:bob".to_owned()];
    posts(&mut alice, 0, &mut expected).await;
    carol.ok(json!({"type": "join", "room": "general"})).await;
    // Alice sees it once the room has passed it on to every follower.
    alice.event(|f| has(f, "joined:carol")).await;
    expected.push("joined:carol".into());
    posts(&mut alice, 30, &mut expected).await;
    carol.ok(json!({"type": "typing", "room": "general"})).await;
    alice.event(|f| has(f, "typing:carol")).await;
    expected.push("typing:carol".into());
    posts(&mut alice, 60, &mut expected).await;
    carol
        .ok(json!({"type": "post", "room": "@bob", "text": "psst"}))
        .await;
    expected.push("@carol:psst".into());
    posts(&mut alice, 90, &mut expected).await;

    let frames = bob.frames_until(is_message("general", "m119")).await;
    let got = after_bob_joined(&frames);
    assert_eq!(got, expected);
}
}

on_both! {
async fn a_listener_gets_channel_messages_then_the_next_other_event_then_what_follows() {
    // A presence notice between two channel messages is written between them, and what
    // follows it still comes, once.
    let server = TestServer::start(test_limits());
    let mut alice = server.user("alice").await;
    let mut bob = server.user("bob").await;
    alice
        .ok(json!({"type": "create_channel", "name": "general"}))
        .await;
    alice.ok(json!({"type": "join", "room": "general"})).await;
    bob.ok(json!({"type": "join", "room": "general"})).await;
    for text in ["one", "two"] {
        alice
            .ok(json!({"type": "post", "room": "general", "text": text}))
            .await;
    }
    let frames = bob.frames_until(is_message("general", "two")).await;
    let got = after_bob_joined(&frames);
    assert_eq!(got, ["joined:bob", "general:one", "general:two"]);

    let mut carol = server.user("carol").await;
    carol.ok(json!({"type": "join", "room": "general"})).await;
    alice.event(|f| has(f, "joined:carol")).await;
    alice
        .ok(json!({"type": "post", "room": "general", "text": "three"}))
        .await;
    let frames = bob.frames_until(is_message("general", "three")).await;
    let got = after_bob_joined(&frames);
    assert_eq!(got, ["joined:carol", "general:three"]);
}
}

on_both! {
async fn a_reader_behind_a_full_socket_gets_every_message_once_in_order() {
    // Far more than the socket buffers hold while the reader does not read: its
    // connection writes what the socket takes and the rest as it drains, in order.
    let limits = {
        let mut limits = test_limits();
        limits.max_message_bytes = 60_000;
        limits.session_queue_hard_bytes = 1 << 30;
        limits.session_queue_soft_bytes = 1 << 30;
        limits
    };
    let mut config = WsConfig::default();
    // The reader catches up only once everything is posted: give it the time.
    config.write_timeout = Duration::from_secs(30);
    let server = TestServer::with_config(limits, config);
    let mut alice = server.user("alice").await;
    alice
        .ok(json!({"type": "create_channel", "name": "general"}))
        .await;
    alice.ok(json!({"type": "join", "room": "general"})).await;
    let mut bob = Client::with_receive_buffer(&server, 4096).await;
    bob.login("bob").await;
    bob.ok(json!({"type": "join", "room": "general"})).await;

    let big = "z".repeat(50_000);
    let texts: Vec<String> = (0..200).map(|n| format!("{n} {big}")).collect();
    for text in &texts {
        alice
            .ok(json!({"type": "post", "room": "general", "text": text}))
            .await;
    }
    alice
        .ok(json!({"type": "post", "room": "general", "text": "end"}))
        .await;

    let frames = bob.frames_until(is_message("general", "end")).await;
    let got: Vec<&str> = frames
        .iter()
        .filter(|f| f["type"] == "message")
        .filter_map(|f| f["message"]["text"].as_str())
        .collect();
    let expected: Vec<&str> = texts.iter().map(String::as_str).chain(["end"]).collect();
    assert_eq!(got.len(), expected.len(), "every message once");
    assert!(got == expected, "every message in order");
}
}
