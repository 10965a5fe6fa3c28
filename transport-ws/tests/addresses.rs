//! What one address may cost over WebSocket (issue 22): open sockets and upgrades per
//! client address (`WsConfig::max_connections_per_address`,
//! `WsConfig::connect_rate_per_address`: HTTP 429 with a clear body), new users per
//! address (the engine's `login_rate_per_address`), and the client's address behind a
//! reverse proxy, taken from `WsConfig::forwarded_header` only when the proxy is trusted.

mod common;

use std::time::Duration;

use chat_core::Rate;
use common::{test_config, test_limits, Client, TestServer};
use serde_json::json;
use tokio_tungstenite::tungstenite;

/// Asks for an upgrade with these extra headers, expecting a refusal: its status,
/// `Retry-After` and body. (Raw bytes: a WebSocket client may give up on a refusal before
/// its body arrives.)
async fn refused(server: &TestServer, headers: &[(&str, &str)]) -> (u16, Option<String>, String) {
    let extra: String = headers
        .iter()
        .map(|(k, v)| format!("{k}: {v}\r\n"))
        .collect();
    let request = format!(
        "GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n{extra}\r\n"
    );
    let response = server.http_exchange(&request).await;
    let (head, body) = response.split_once("\r\n\r\n").expect("a response");
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|s| s.parse().ok())
        .expect("a status line");
    let retry_after = lines.find_map(|l| {
        let (name, value) = l.split_once(':')?;
        name.eq_ignore_ascii_case("retry-after")
            .then(|| value.trim().to_owned())
    });
    (status, retry_after, body.to_owned())
}

const XFF: &str = "X-Forwarded-For";

/// Connects as the client a proxy forwards from `client` (in `X-Forwarded-For`).
async fn via_proxy(server: &TestServer, client: &str) -> Result<Client, tungstenite::Error> {
    Client::connect_with(&server.url(), &[("X-Forwarded-For", client)]).await
}

on_both! {
async fn the_per_address_cap_answers_429_and_gives_places_back() {
    let mut config = test_config();
    config.max_connections_per_address = 2;
    let server = TestServer::with_config(test_limits(), config);
    let first = server.client().await;
    let mut second = server.user("second").await;
    let (status, retry_after, body) = refused(&server, &[]).await;
    assert_eq!(status, 429);
    assert_eq!(retry_after, None, "waiting does not help; closing one does");
    assert_eq!(
        body,
        "too_many_connections: your address has 2 connections open, the most allowed \
         (max_connections_per_address); close one first"
    );
    // Nothing was lost: the open socket is served.
    second.ok(json!({"type": "list_channels"})).await;

    drop(first);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        match Client::connect(&server.url(), None).await {
            Ok(_) => break,
            Err(e) if tokio::time::Instant::now() < deadline => {
                let _ = e;
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            Err(e) => panic!("the freed place was not given back: {e}"),
        }
    }
}
}

on_both! {
async fn upgrades_faster_than_the_rate_get_429_with_retry_after() {
    let mut config = test_config();
    config.connect_rate_per_address = Rate::new(2, 0.01);
    let server = TestServer::with_config(test_limits(), config);
    let _a = server.client().await;
    let _b = server.client().await;
    let (status, retry_after, body) = refused(&server, &[]).await;
    assert_eq!(status, 429);
    let seconds: u64 = retry_after.expect("Retry-After").parse().expect("seconds");
    assert!((90..=100).contains(&seconds), "{seconds}");
    assert!(
        body.starts_with(
            "rate_limited: too many new connections from your address \
             (connect_rate_per_address); try again in "
        ),
        "{body}"
    );
}
}

on_both! {
async fn behind_a_trusted_proxy_each_forwarded_client_has_its_own_buckets() {
    let mut config = test_config();
    config.trusted_proxies = vec!["127.0.0.0/8".into()];
    config.connect_rate_per_address = Rate::new(1, 0.001);
    let mut limits = test_limits();
    limits.login_rate_per_address = Rate::new(1, 0.001);
    let server = TestServer::with_config(limits, config);

    // Two clients behind the proxy: each has its own upgrade and new-user buckets.
    let mut one = via_proxy(&server, "198.51.100.1").await.expect("first");
    one.login("one").await;
    let mut two = via_proxy(&server, "198.51.100.2")
        .await
        .expect("another client");
    two.login("two").await;
    let (status, _, body) = refused(&server, &[(XFF, "198.51.100.1")]).await;
    assert_eq!(status, 429);
    assert!(body.starts_with("rate_limited: "), "{body}");
    // A client that forges a hop is still counted by what the proxy appended.
    let (status, _, _) = refused(&server, &[(XFF, "203.0.113.9, 198.51.100.2")]).await;
    assert_eq!(status, 429);
    via_proxy(&server, "203.0.113.9")
        .await
        .expect("an address of its own");
}
}

on_both! {
async fn without_trust_the_forwarded_header_is_ignored() {
    let mut config = test_config();
    config.connect_rate_per_address = Rate::new(2, 0.001);
    let mut limits = test_limits();
    limits.login_rate_per_address = Rate::new(1, 0.001);
    let server = TestServer::with_config(limits, config);

    let mut one = via_proxy(&server, "198.51.100.1").await.expect("first");
    one.login("one").await;
    // The header named someone else; the socket's peer (127.0.0.1) is the client.
    let mut two = via_proxy(&server, "198.51.100.2").await.expect("second");
    let reply = two.request(json!({"type": "login", "name": "two"})).await;
    assert_eq!(reply["type"], "error", "{reply}");
    assert_eq!(reply["code"], "rate_limited");
    assert_eq!(
        reply["message"]
            .as_str()
            .expect("a message")
            .split(" in ")
            .next(),
        Some("slow down: login_rate_per_address allows another one"),
    );
    let (status, _, _) = refused(&server, &[(XFF, "198.51.100.3")]).await;
    assert_eq!(status, 429);
    // The refused login lost nothing: the first user is still served.
    one.ok(json!({"type": "list_channels"})).await;
}
}
