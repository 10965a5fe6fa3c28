//! Limits and liveness: engine rates and capacities reach the client as error codes; the
//! transport's own settings (`WsConfig`) are checked at start-up and enforced per socket:
//! frame size, idle timeout, heartbeat, and the write timeout that drops a stalled reader.

mod common;

use std::time::Duration;

use chat_core::{Limits, Rate};
use common::{is_message, is_presence, test_limits, TestServer, WAIT};
use futures_util::StreamExt;
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::Message;
use tokio_util::sync::CancellationToken;
use transport_ws::{WsChat, WsConfig};

on_both! {
async fn rate_limits_are_reported() {
    let limits = {
        let mut limits = Limits::default();
        limits.message_rate = Rate::new(2, 0.001);
        limits.channel_create_rate = Rate::new(1, 0.001);
        limits
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
}

on_both! {
async fn capacity_limits_are_reported() {
    let limits = {
        let mut limits = test_limits();
        limits.max_channels = 1;
        limits.max_sessions = 1;
        limits
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
}

on_both! {
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
}

on_both! {
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
    observer.event(is_presence("offline", "silent")).await;
    let (_, close) = silent.close_frame().await;
    assert_eq!(close.expect("close frame").code, CloseCode::Policy);
}
}

on_both! {
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
}

on_both! {
async fn a_slow_reader_does_not_stall_another_client() {
    let limits = {
        let mut limits = test_limits();
        limits.max_message_bytes = 60_000;
        limits
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
}

on_both! {
/// A zero heartbeat interval would panic every socket's task right after `hello` (a timer
/// with a zero period): the service refuses to start with it, or with any other invalid
/// setting.
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
}

on_both! {
/// The settings a socket lives by come from `WsConfig`, not from the engine's limits:
/// `hello` announces the configured frame size.
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
}
