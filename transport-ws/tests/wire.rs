//! The WebSocket wire itself, spoken byte by byte over a plain TCP socket: what a
//! well-behaved client library never sends (frames in the upgrade's packet, lying length
//! headers, broken UTF-8, interleaved fragments) and so what `ws.rs` cannot test.

mod common;

use common::raw::{frame, text, Raw, BINARY, CONTINUATION, MASK, PING, PONG, TEXT, UPGRADE};
use common::{test_limits, TestServer};
use serde_json::json;

on_both! {
async fn frames_sent_with_the_upgrade_request_are_not_lost() {
    let server = TestServer::start(test_limits());
    // A client may pipeline its first frames behind the request, before the 101.
    let mut first = text(&json!({"type": "login", "id": 1, "name": "eager"}));
    first.extend(text(&json!({"type": "list_channels", "id": 2})));
    let mut raw = Raw::upgrade(&server, &first).await;
    assert_eq!(raw.json().await["type"], "hello");
    let login = raw.json().await;
    assert_eq!(
        (login["id"].clone(), login["type"].clone()),
        (json!(1), json!("ok"))
    );
    let list = raw.json().await;
    assert_eq!(
        (list["id"].clone(), list["type"].clone()),
        (json!(2), json!("ok"))
    );
}
}

on_both! {
async fn a_frame_announcing_more_than_the_limit_is_refused_before_its_payload() {
    let server = TestServer::start(test_limits());
    let mut raw = Raw::upgrade(&server, &[]).await;
    assert_eq!(raw.json().await["type"], "hello");
    // Only the header of a 1 TiB frame: the server must not wait for (or buffer) it.
    let mut header = vec![0x80 | TEXT, 0x80 | 127];
    header.extend_from_slice(&(1u64 << 40).to_be_bytes());
    header.extend_from_slice(&MASK);
    raw.send(&header).await;
    assert_eq!(raw.close_code().await, 1009);

    // Others are not affected.
    server
        .user("bob")
        .await
        .ok(json!({"type": "list_channels"}))
        .await;
}
}

on_both! {
async fn text_that_is_not_utf8_closes_with_1007() {
    let server = TestServer::start(test_limits());
    for bytes in [
        frame(TEXT, true, &[b'{', 0xff, b'}']),
        [
            frame(TEXT, false, &[b'"', 0xe2, 0x82]),
            frame(CONTINUATION, true, b"\""),
        ]
        .concat(),
    ] {
        let mut raw = Raw::upgrade(&server, &[]).await;
        assert_eq!(raw.json().await["type"], "hello");
        raw.send(&bytes).await;
        assert_eq!(raw.close_code().await, 1007);
    }
}
}

on_both! {
async fn fragmented_messages_are_reassembled_and_interleaving_them_is_refused() {
    let server = TestServer::start(test_limits());
    let mut raw = Raw::upgrade(&server, &[]).await;
    assert_eq!(raw.json().await["type"], "hello");
    let login = json!({"type": "login", "id": "split", "name": "fragments"}).to_string();
    let (a, rest) = login.as_bytes().split_at(10);
    let (b, c) = rest.split_at(7);
    // A ping between the pieces is allowed (control frames may interleave).
    let ping = frame(PING, true, b"hi");
    raw.send(
        &[
            frame(TEXT, false, a),
            ping,
            frame(CONTINUATION, false, b),
            frame(CONTINUATION, true, c),
        ]
        .concat(),
    )
    .await;
    let pong = raw.next().await;
    assert_eq!(pong.opcode, PONG, "{pong:?}");
    let reply = raw.json().await;
    assert_eq!(
        (reply["id"].clone(), reply["type"].clone()),
        (json!("split"), json!("ok"))
    );

    // A new data frame before the fragmented message ends breaks the protocol: 1002.
    raw.send(&[frame(TEXT, false, b"{\"type\":"), frame(BINARY, true, b"x")].concat())
        .await;
    assert_eq!(raw.close_code().await, 1002);
}
}

on_both! {
async fn upgrades_elsewhere_than_ws_are_not_found() {
    let server = TestServer::start(test_limits());
    let request = UPGRADE.replacen("GET /ws ", "GET /chat ", 1);
    let response = server.http_exchange(&request).await;
    assert!(response.starts_with("HTTP/1.1 404"), "{response}");
}
}
