//! The axum adapter (on the hyper one) keeps every rule of the other entry points: the
//! `Host` check, the origin allow-list, the per-address limit, and shutdown; and an app
//! served without the connection's addresses is told so rather than served blind.

mod common;

use std::future::IntoFuture;
use std::net::SocketAddr;

use axum::routing::get;
use axum::Router;
use chat_core::Rate;
use common::{start_engine, test_limits, Client, WAIT};
use serde_json::json;
use tokio_tungstenite::tungstenite::{self, protocol::frame::coding::CloseCode};
use tokio_util::sync::CancellationToken;
use transport_ws::hyper::ConnectionAddrs;
use transport_ws::{WsChat, WsConfig};

/// An axum app with its own `/` and our `/ws`, served on 127.0.0.1:0 (with the
/// connection's addresses when `addrs`) until `shutdown` fires.
async fn app(config: WsConfig, shutdown: &CancellationToken, addrs: bool) -> (SocketAddr, WsChat) {
    let engine = start_engine(test_limits());
    let chat = WsChat::new(engine, config, shutdown.clone()).expect("valid config");
    let router = Router::new()
        .route("/", get(|| async { "the app" }))
        .merge(transport_ws::axum::router(chat.clone()));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("address");
    let stop = shutdown.clone().cancelled_owned();
    if addrs {
        let service = router.into_make_service_with_connect_info::<ConnectionAddrs>();
        tokio::spawn(
            axum::serve(listener, service)
                .with_graceful_shutdown(stop)
                .into_future(),
        );
    } else {
        tokio::spawn(
            axum::serve(listener, router)
                .with_graceful_shutdown(stop)
                .into_future(),
        );
    }
    (addr, chat)
}

/// Sends `request` raw and returns the answer: its head, and as much of the body as
/// arrives before the server closes (an upgraded connection stays open: its head is all).
async fn exchange(addr: SocketAddr, request: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    stream.write_all(request.as_bytes()).await.expect("write");
    let mut answer = Vec::new();
    let mut chunk = [0u8; 1024];
    loop {
        let read = tokio::time::timeout(WAIT, stream.read(&mut chunk)).await;
        let n = match read {
            Ok(Ok(n)) if n > 0 => n,
            _ => break,
        };
        answer.extend_from_slice(&chunk[..n]);
        if answer.starts_with(b"HTTP/1.1 101") && answer.windows(4).any(|w| w == b"\r\n\r\n") {
            break;
        }
    }
    String::from_utf8_lossy(&answer).into_owned()
}

fn upgrade(host: &str) -> String {
    format!(
        "GET /ws HTTP/1.1\r\nHost: {host}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\
         Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
    )
}

#[tokio::test]
async fn a_rebinding_host_gets_421_and_the_servers_own_names_upgrade() {
    let shutdown = CancellationToken::new();
    let (addr, _chat) = app(common::test_config(), &shutdown, true).await;
    let refused = exchange(addr, &upgrade("evil.example")).await;
    assert!(refused.starts_with("HTTP/1.1 421"), "{refused}");
    let switched = exchange(addr, &upgrade(&addr.to_string())).await;
    assert!(switched.starts_with("HTTP/1.1 101"), "{switched}");
    assert!(
        switched.contains("s3pPLMBiTxaQ9kYGzzhZRbK+xOo="),
        "{switched}"
    );
    shutdown.cancel();
}

#[tokio::test]
async fn another_sites_page_gets_403() {
    let shutdown = CancellationToken::new();
    let (addr, _chat) = app(common::test_config(), &shutdown, true).await;
    let url = format!("ws://{addr}/ws");
    match Client::connect(&url, Some("http://evil.example")).await {
        Err(tungstenite::Error::Http(response)) => assert_eq!(response.status(), 403),
        other => panic!("expected HTTP 403, got {:?}", other.map(|_| ())),
    }
    let mut client = Client::connect(&url, Some(&format!("http://{addr}")))
        .await
        .expect("same origin");
    client.login("alice").await;
    shutdown.cancel();
}

#[tokio::test]
async fn the_per_address_limit_holds() {
    let shutdown = CancellationToken::new();
    let mut config = WsConfig::default();
    config.max_connections_per_address = 1;
    config.connect_rate_per_address = Rate::new(100, 100.0);
    let (addr, _chat) = app(config, &shutdown, true).await;
    let url = format!("ws://{addr}/ws");
    let _first = Client::connect(&url, None).await.expect("the first socket");
    match Client::connect(&url, None).await {
        Err(tungstenite::Error::Http(response)) => assert_eq!(response.status(), 429),
        other => panic!("expected HTTP 429, got {:?}", other.map(|_| ())),
    }
    shutdown.cancel();
}

#[tokio::test]
async fn shutdown_closes_every_socket_with_1001() {
    let shutdown = CancellationToken::new();
    let (addr, chat) = app(common::test_config(), &shutdown, true).await;
    let mut alice = Client::connect(&format!("ws://{addr}/ws"), None)
        .await
        .expect("upgrade");
    alice.login("alice").await;
    alice
        .ok(json!({"type": "create_channel", "name": "general"}))
        .await;
    shutdown.cancel();
    let (frames, close) = alice.close_frame().await;
    let last = frames.last().expect("a disconnected frame");
    assert_eq!(last["code"], "shutting_down");
    assert_eq!(close.expect("close frame").code, CloseCode::Away);
    let tasks = chat.tasks();
    tasks.close();
    tokio::time::timeout(WAIT, tasks.wait())
        .await
        .expect("every socket task ended");
}

#[tokio::test]
async fn without_the_connections_addresses_upgrades_are_refused_saying_why() {
    let shutdown = CancellationToken::new();
    let (addr, _chat) = app(common::test_config(), &shutdown, false).await;
    let refused = exchange(addr, &upgrade(&addr.to_string())).await;
    assert!(refused.starts_with("HTTP/1.1 500"), "{refused}");
    assert!(refused.contains("ConnectInfo"), "{refused}");
    // The app's own routes do not depend on it.
    let page = exchange(
        addr,
        &format!("GET / HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"),
    )
    .await;
    assert!(page.contains("the app"), "{page}");
    shutdown.cancel();
}
