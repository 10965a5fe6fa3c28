//! The WebSocket transport over real sockets: an actix-web server on 127.0.0.1:0 and
//! `tokio-tungstenite` clients. Every request type, every error code a client can
//! trigger, the frame-level refusals, the limits (frame size, idle timeout, slow readers)
//! and the transport's config check, the origin check, live chat between users, private
//! messages, resuming, and shutdown.
//!
//! Tests wait on what the server sends (with a timeout), never on fixed sleeps.

mod common;

use std::time::Duration;

use chat_core::{Limits, Rate};
use common::{is_message, test_limits, Client, Incoming, TestServer, WAIT};
use futures_util::StreamExt;
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::{self, Message};
use tokio_util::sync::CancellationToken;
use transport_ws::{WsChat, WsConfig};

fn ids(messages: &Value) -> Vec<u64> {
    messages
        .as_array()
        .expect("an array of messages")
        .iter()
        .map(|m| m["id"].as_u64().expect("message id"))
        .collect()
}

#[tokio::test]
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

#[tokio::test]
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

#[tokio::test]
async fn login_rules() {
    let server = TestServer::start(test_limits());
    let mut anon = server.client().await;
    assert_eq!(
        anon.error(json!({"type": "list_channels"})).await,
        "not_logged_in"
    );
    assert_eq!(
        anon.error(json!({"type": "post", "room": "general", "text": "hi"}))
            .await,
        "not_logged_in"
    );
    assert_eq!(
        anon.error(json!({"type": "login", "name": "a", "token": "b"}))
            .await,
        "bad_request"
    );
    assert_eq!(anon.error(json!({"type": "login"})).await, "bad_request");
    assert_eq!(
        anon.error(json!({"type": "login", "name": "   "})).await,
        "invalid_name"
    );
    assert_eq!(
        anon.error(json!({"type": "login", "name": "x".repeat(33)}))
            .await,
        "invalid_name"
    );
    assert_eq!(
        anon.error(json!({"type": "login", "token": "0123456789abcdef0123456789abcdef"}))
            .await,
        "invalid_token"
    );

    // A failed login leaves the connection usable.
    let alice = anon.login("alice").await;
    assert_eq!(alice["new_user"], true);
    assert_eq!(
        anon.error(json!({"type": "login", "name": "again"})).await,
        "already_logged_in"
    );

    let mut other = server.client().await;
    assert_eq!(
        other.error(json!({"type": "login", "name": "ALICE"})).await,
        "name_taken"
    );
    // The token logs in as the same user, on as many connections as wanted.
    let resumed = other
        .ok(json!({"type": "login", "token": anon.token()}))
        .await;
    assert_eq!(resumed["user"], alice["user"]);
    assert_eq!(resumed["new_user"], false);
    assert_eq!(resumed["token"], alice["token"]);
}

#[tokio::test]
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

#[tokio::test]
async fn rate_limits_are_reported() {
    let limits = Limits {
        message_rate: Rate {
            burst: 2,
            per_second: 0.001,
        },
        channel_create_rate: Rate {
            burst: 1,
            per_second: 0.001,
        },
        ..Limits::default()
    };
    let server = TestServer::start(limits);
    let mut alice = server.user("alice").await;
    alice
        .ok(json!({"type": "create_channel", "name": "one"}))
        .await;
    assert_eq!(
        alice
            .error(json!({"type": "create_channel", "name": "two"}))
            .await,
        "rate_limited"
    );
    alice.ok(json!({"type": "join", "room": "one"})).await;
    for n in 0..2 {
        alice
            .ok(json!({"type": "post", "room": "one", "text": format!("m{n}")}))
            .await;
    }
    let reply = alice
        .request(json!({"type": "post", "room": "one", "text": "too fast"}))
        .await;
    assert_eq!(reply["code"], "rate_limited");
    assert!(reply["message"].as_str().is_some_and(|m| m.contains("ms")));
}

#[tokio::test]
async fn capacity_limits_are_reported() {
    let limits = Limits {
        max_channels: 1,
        max_sessions: 1,
        ..test_limits()
    };
    let server = TestServer::start(limits);
    let mut alice = server.user("alice").await;
    alice
        .ok(json!({"type": "create_channel", "name": "a"}))
        .await;
    assert_eq!(
        alice
            .error(json!({"type": "create_channel", "name": "b"}))
            .await,
        "too_many_channels"
    );
    let mut bob = server.client().await;
    assert_eq!(
        bob.error(json!({"type": "login", "name": "bob"})).await,
        "server_full"
    );
}

#[tokio::test]
async fn connections_beyond_the_limit_get_503_until_one_closes() {
    let mut config = WsConfig::default();
    config.max_connections = 2;
    let server = TestServer::with_config(test_limits(), config);
    let first = server.client().await;
    let _second = server.client().await;
    match Client::connect(&server.url(), None).await {
        Err(tungstenite::Error::Http(response)) => assert_eq!(response.status(), 503),
        other => panic!("expected HTTP 503, got {:?}", other.map(|_| ())),
    }
    drop(first);
    // The slot comes back when the server has seen the first socket close.
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        match Client::connect(&server.url(), None).await {
            Ok(_) => break,
            Err(e) if tokio::time::Instant::now() < deadline => {
                let _ = e;
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            }
            Err(e) => panic!("the freed slot was not reused: {e}"),
        }
    }
}

#[tokio::test]
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

#[tokio::test]
async fn frames_over_the_limit_close_with_1009() {
    let mut config = WsConfig::default();
    config.max_frame_bytes = 1024;
    let server = TestServer::with_config(test_limits(), config);
    let mut alice = server.user("alice").await;
    let mut bob = server.user("bob").await;
    alice
        .ok(json!({"type": "create_channel", "name": "general"}))
        .await;
    alice.ok(json!({"type": "join", "room": "general"})).await;

    // A frame of exactly the limit is accepted.
    let head = r#"{"type":"post","id":"edge","room":"general","text":""#;
    let tail = r#""}"#;
    let text = "y".repeat(1024 - head.len() - tail.len());
    let exact = format!("{head}{text}{tail}");
    assert_eq!(exact.len(), 1024);
    alice.send(Message::text(exact)).await;
    assert_eq!(alice.reply_to(&json!("edge")).await["type"], "ok");

    // One byte more closes the connection with 1009 ("message too big").
    let over = format!("{head}{text}y{tail}");
    alice.send(Message::text(over)).await;
    let (_, close) = alice.close_frame().await;
    let close = close.expect("a close frame with a code");
    assert_eq!(close.code, CloseCode::Size);

    // Others are not affected.
    bob.ok(json!({"type": "list_channels"})).await;
}

#[tokio::test]
async fn origin_allow_list_refuses_other_sites() {
    let mut config = WsConfig::default();
    config.allowed_origins = vec!["http://chat.example:8080".to_owned()];
    let server = TestServer::with_config(test_limits(), config);
    let url = server.url();

    Client::connect(&url, Some("http://chat.example:8080"))
        .await
        .expect("listed origin is accepted");
    Client::connect(&url, None)
        .await
        .expect("no Origin: a non-browser client is accepted");
    for origin in ["http://evil.example", "https://chat.example:8080", "null"] {
        match Client::connect(&url, Some(origin)).await {
            Err(tungstenite::Error::Http(response)) => assert_eq!(response.status(), 403),
            Err(e) => panic!("{origin}: expected HTTP 403, got {e}"),
            Ok(_) => panic!("{origin}: expected HTTP 403, got an upgrade"),
        }
    }

    // An empty list means same origin: the page must come from the Host it connects to.
    let same = TestServer::start(test_limits());
    let own = format!("http://{}", same.addr);
    Client::connect(&same.url(), Some(&own))
        .await
        .expect("own origin is accepted");
    match Client::connect(&same.url(), Some("http://127.0.0.1:1")).await {
        Err(tungstenite::Error::Http(response)) => assert_eq!(response.status(), 403),
        other => panic!("expected HTTP 403, got {:?}", other.map(|_| ())),
    }
}

#[tokio::test]
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
    let presence = alice
        .event(|f| f["type"] == "presence" && f["user"]["name"] == "bob")
        .await;
    assert_eq!(presence["room"], "general");
    assert_eq!(presence["change"], "joined");

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
    let left = alice
        .event(|f| f["type"] == "presence" && f["change"] == "left")
        .await;
    assert_eq!(left["user"]["name"], "bob");

    // Closing the socket makes the user go offline for the others.
    let mut carol = server.user("carol").await;
    carol.ok(json!({"type": "join", "room": "general"})).await;
    drop(carol);
    let offline = alice
        .event(|f| f["type"] == "presence" && f["change"] == "offline")
        .await;
    assert_eq!(offline["user"]["name"], "carol");
}

#[tokio::test]
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

/// What a listener's frame is, in a word: `general:TEXT`, `@peer:TEXT`, `joined:NAME`
/// (in `general`), `typing:NAME`; `None` for frames the test does not follow.
fn label(frame: &Value) -> Option<String> {
    match frame["type"].as_str()? {
        "message" => Some(format!(
            "{}:{}",
            frame["room"].as_str()?,
            frame["message"]["text"].as_str()?
        )),
        // Presence in `general` only: opening the private room brings its own.
        "presence" if frame["room"] == "general" => Some(format!(
            "{}:{}",
            frame["change"].as_str()?,
            frame["user"]["name"].as_str()?
        )),
        "typing" => Some(format!("typing:{}", frame["user"]["name"].as_str()?)),
        _ => None,
    }
}

#[tokio::test]
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
    alice
        .event(|f| label(f).as_deref() == Some("joined:bob"))
        .await;

    // Bob's own arrival comes first (Alice saw it before she posted).
    let mut expected = vec!["joined:bob".to_owned()];
    posts(&mut alice, 0, &mut expected).await;
    carol.ok(json!({"type": "join", "room": "general"})).await;
    // Alice sees it once the room has passed it on to every follower.
    alice
        .event(|f| label(f).as_deref() == Some("joined:carol"))
        .await;
    expected.push("joined:carol".into());
    posts(&mut alice, 30, &mut expected).await;
    carol.ok(json!({"type": "typing", "room": "general"})).await;
    alice
        .event(|f| label(f).as_deref() == Some("typing:carol"))
        .await;
    expected.push("typing:carol".into());
    posts(&mut alice, 60, &mut expected).await;
    carol
        .ok(json!({"type": "post", "room": "@bob", "text": "psst"}))
        .await;
    expected.push("@carol:psst".into());
    posts(&mut alice, 90, &mut expected).await;

    let frames = bob.frames_until(is_message("general", "m119")).await;
    let got: Vec<String> = frames.iter().filter_map(label).collect();
    assert_eq!(got, expected);
}

#[tokio::test]
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
    let got: Vec<String> = frames.iter().filter_map(label).collect();
    assert_eq!(got, ["joined:bob", "general:one", "general:two"]);

    let mut carol = server.user("carol").await;
    carol.ok(json!({"type": "join", "room": "general"})).await;
    alice
        .event(|f| label(f).as_deref() == Some("joined:carol"))
        .await;
    alice
        .ok(json!({"type": "post", "room": "general", "text": "three"}))
        .await;
    let frames = bob.frames_until(is_message("general", "three")).await;
    let got: Vec<String> = frames.iter().filter_map(label).collect();
    assert_eq!(got, ["joined:carol", "general:three"]);
}

#[tokio::test]
async fn a_reader_behind_a_full_socket_gets_every_message_once_in_order() {
    // Far more than the socket buffers hold while the reader does not read: its
    // connection writes what the socket takes and the rest as it drains, in order.
    let limits = Limits {
        max_message_bytes: 60_000,
        session_queue: 10_000,
        ..test_limits()
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

#[tokio::test]
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

#[tokio::test]
async fn reconnecting_with_after_returns_exactly_the_missed_messages() {
    let limits = Limits {
        history: 5,
        ..test_limits()
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
    bob.event(|f| f["type"] == "presence" && f["change"] == "offline")
        .await;

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
    bob.event(|f| f["type"] == "presence" && f["change"] == "offline")
        .await;
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

#[tokio::test]
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

#[tokio::test]
async fn a_silent_client_is_closed_after_the_idle_timeout() {
    let mut config = WsConfig::default();
    config.idle_timeout = Duration::from_millis(300);
    config.heartbeat_interval = Duration::from_millis(200);
    let server = TestServer::with_config(test_limits(), config);
    let mut observer = server.user("observer").await;
    observer
        .ok(json!({"type": "create_channel", "name": "general"}))
        .await;
    observer
        .ok(json!({"type": "join", "room": "general"}))
        .await;
    let mut silent = server.user("silent").await;
    silent.ok(json!({"type": "join", "room": "general"})).await;
    // From here the client sends nothing, not even a pong: it reads nothing (a client
    // library answers pings while it reads) until its session is gone, which the
    // observer sees.
    observer
        .event(|f| {
            f["type"] == "presence" && f["change"] == "offline" && f["user"]["name"] == "silent"
        })
        .await;
    let (_, close) = silent.close_frame().await;
    assert_eq!(close.expect("close frame").code, CloseCode::Policy);
}

#[tokio::test]
async fn the_heartbeat_keeps_an_answering_client_alive() {
    let mut config = WsConfig::default();
    config.idle_timeout = Duration::from_millis(500);
    config.heartbeat_interval = Duration::from_millis(50);
    let server = TestServer::with_config(test_limits(), config);
    let mut client = server.user("alive").await;
    // tungstenite answers each ping with a pong while we read. Twenty pings span about
    // twice the idle timeout.
    let mut pings = 0;
    while pings < 20 {
        match client.raw().await {
            Some(Ok(Message::Ping(_))) => pings += 1,
            Some(Ok(Message::Close(close))) => panic!("closed: {close:?}"),
            Some(Ok(_)) => {}
            other => panic!("connection ended: {other:?}"),
        }
    }
    client.ok(json!({"type": "list_channels"})).await;
}

/// A zero heartbeat interval would panic every socket's task right after `hello` (a timer
/// with a zero period): the service refuses to start with it, or with any other invalid
/// setting.
#[tokio::test]
async fn an_invalid_config_is_refused_before_any_socket() {
    let engine = chat_core::Engine::builder().start().await.expect("engine");
    let mut zero = WsConfig::default();
    zero.heartbeat_interval = Duration::ZERO;
    let refused = WsChat::new(engine.clone(), zero, CancellationToken::new())
        .expect_err("a zero heartbeat is refused");
    assert_eq!(refused.name, "heartbeat_interval");

    let mut late = WsConfig::default();
    late.heartbeat_interval = late.idle_timeout;
    let refused = WsChat::new(engine.clone(), late, CancellationToken::new())
        .expect_err("a heartbeat that comes after the idle timeout is refused");
    assert_eq!(refused.name, "heartbeat_interval");

    let mut no_frames = WsConfig::default();
    no_frames.max_frame_bytes = 0;
    let refused = WsChat::new(engine.clone(), no_frames, CancellationToken::new())
        .expect_err("a zero frame size is refused");
    assert_eq!(refused.name, "max_frame_bytes");
    engine.shutdown().await;
}

/// The settings a socket lives by come from `WsConfig`, not from the engine's limits:
/// `hello` announces the configured frame size.
#[tokio::test]
async fn hello_announces_the_configured_frame_size() {
    let mut config = WsConfig::default();
    config.max_frame_bytes = 2048;
    let server = TestServer::with_config(test_limits(), config);
    let (mut ws, _) = tokio_tungstenite::connect_async(server.url())
        .await
        .expect("upgrade");
    let hello = tokio::time::timeout(WAIT, ws.next())
        .await
        .expect("in time")
        .expect("a frame")
        .expect("no error");
    let hello: Value = serde_json::from_str(hello.to_text().expect("text")).expect("json");
    assert_eq!(hello["max_frame_bytes"], 2048);
}

#[tokio::test]
async fn shutdown_sends_disconnected_and_1001_and_ends_every_task() {
    let server = TestServer::start(test_limits());
    let mut alice = server.user("alice").await;
    alice
        .ok(json!({"type": "create_channel", "name": "general"}))
        .await;
    alice.ok(json!({"type": "join", "room": "general"})).await;
    let mut anonymous = server.client().await;

    server.shutdown.cancel();
    for client in [&mut alice, &mut anonymous] {
        let (frames, close) = client.close_frame().await;
        let last = frames.last().expect("a disconnected frame");
        assert_eq!(last["type"], "disconnected");
        assert_eq!(last["code"], "shutting_down");
        assert_eq!(close.expect("close frame").code, CloseCode::Away);
    }
    let tasks = server.chat.tasks();
    tasks.close();
    tokio::time::timeout(WAIT, tasks.wait())
        .await
        .expect("every socket task ended");

    match Client::connect(&server.url(), None).await {
        Err(tungstenite::Error::Http(response)) => assert_eq!(response.status(), 503),
        other => panic!("expected HTTP 503, got {:?}", other.map(|_| ())),
    }
}

#[tokio::test]
async fn engine_shutdown_also_closes_with_1001() {
    let server = TestServer::start(test_limits());
    let mut alice = server.user("alice").await;
    server.engine.shutdown().await;
    let (frames, close) = alice.close_frame().await;
    let last = frames.last().expect("a disconnected frame");
    assert_eq!(last["code"], "shutting_down");
    assert_eq!(close.expect("close frame").code, CloseCode::Away);

    let mut late = server.client().await;
    assert_eq!(
        late.error(json!({"type": "login", "name": "late"})).await,
        "shutting_down"
    );
}

#[tokio::test]
async fn a_slow_reader_does_not_stall_another_client() {
    let limits = Limits {
        max_message_bytes: 60_000,
        ..test_limits()
    };
    let mut config = WsConfig::default();
    config.write_timeout = Duration::from_millis(500);
    let server = TestServer::with_config(limits, config);
    let mut poster = server.user("poster").await;
    let mut reader = server.user("reader").await;
    let mut stalled = server.user("stalled").await;
    poster
        .ok(json!({"type": "create_channel", "name": "firehose"}))
        .await;
    for client in [&mut poster, &mut reader, &mut stalled] {
        client.ok(json!({"type": "join", "room": "firehose"})).await;
    }

    // About 18 MB: far more than the socket buffers of a client that never reads.
    let big = "z".repeat(59_000);
    let count = 300;
    for n in 0..count {
        let text = format!("{n} {big}");
        poster
            .ok(json!({"type": "post", "room": "firehose", "text": text}))
            .await;
        let got = reader.event(|f| f["type"] == "message").await;
        assert_eq!(got["message"]["text"].as_str(), Some(text.as_str()));
    }

    // The stalled client was dropped (write timeout) or disconnected (engine queue full)
    // before it could be sent everything.
    let (frames, close) = stalled.until_hangup().await;
    let received = frames.iter().filter(|f| f["type"] == "message").count();
    assert!(received < count, "the stalled client got all {received}");
    if let Some(close) = close {
        assert_eq!(close.code, CloseCode::Policy);
        let last = frames.last().expect("a disconnected frame");
        assert_eq!(last["code"], "slow_consumer");
    }
    // And the others carry on.
    poster
        .ok(json!({"type": "post", "room": "firehose", "text": "after"}))
        .await;
    reader.event(is_message("firehose", "after")).await;
}

#[tokio::test]
async fn a_client_close_is_answered_and_releases_the_session() {
    let server = TestServer::start(test_limits());
    let mut alice = server.user("alice").await;
    alice
        .send(Message::Close(Some(tungstenite::protocol::CloseFrame {
            code: CloseCode::Normal,
            reason: "bye".into(),
        })))
        .await;
    match alice.incoming().await {
        Incoming::Close(Some(close)) => assert_eq!(close.code, CloseCode::Normal),
        other => panic!("expected the close to be answered, got {other:?}"),
    }
    // The name is held for the user, but the session is gone: the token still works.
    let mut again = server.client().await;
    again
        .ok(json!({"type": "login", "token": alice.token()}))
        .await;
}

#[tokio::test]
async fn a_plain_http_request_is_not_upgraded() {
    let server = TestServer::start(test_limits());
    let response = server
        .http_exchange("GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        .await;
    assert!(
        response.starts_with("HTTP/1.1 400"),
        "expected 400, got {response}"
    );
}
