//! What only the bare listener does (`transport_ws::serve`): it reads the upgrade request
//! itself, so a request it cannot read gets a clear status, and the function returns once
//! shutdown has closed every socket. The protocol itself runs on it in every other test
//! file (`on_both!`).

mod common;

use std::time::Duration;

use common::{start_engine, test_config, test_limits, Client, WAIT};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_util::sync::CancellationToken;
use transport_ws::{WsConfig, MAX_REQUEST_HEAD_BYTES};

/// Sends `request` to a fresh `serve` and returns its answer (read until it closes).
async fn answer_to(addr: std::net::SocketAddr, request: &[u8]) -> String {
    let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    stream.write_all(request).await.expect("write");
    let mut answer = Vec::new();
    tokio::time::timeout(WAIT, stream.read_to_end(&mut answer))
        .await
        .expect("answered and closed in time")
        .expect("read");
    String::from_utf8_lossy(&answer).into_owned()
}

#[tokio::test]
async fn requests_it_cannot_read_get_a_clear_status_and_serve_ends_after_shutdown() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("address");
    let engine = start_engine(test_limits());
    let shutdown = CancellationToken::new();
    let server = tokio::spawn(transport_ws::serve(
        listener,
        engine.clone(),
        test_config(),
        shutdown.clone(),
    ));

    let garbage = answer_to(addr, b"NOT HTTP AT ALL\r\n\r\n").await;
    assert!(garbage.starts_with("HTTP/1.1 400"), "{garbage}");
    assert!(garbage.contains("malformed HTTP request"), "{garbage}");

    let mut huge = format!("GET /ws HTTP/1.1\r\nHost: {addr}\r\nX-Pad: ").into_bytes();
    huge.resize(MAX_REQUEST_HEAD_BYTES + 10, b'a');
    let too_large = answer_to(addr, &huge).await;
    assert!(too_large.starts_with("HTTP/1.1 431"), "{too_large}");

    let plain = answer_to(
        addr,
        format!("GET / HTTP/1.1\r\nHost: {addr}\r\n\r\n").as_bytes(),
    )
    .await;
    assert!(plain.starts_with("HTTP/1.1 404"), "{plain}");

    // A socket stays open until shutdown; `serve` returns only once it has closed.
    let mut alice = Client::connect(&format!("ws://{addr}/ws"), None)
        .await
        .expect("upgrade");
    alice.login("alice").await;
    shutdown.cancel();
    let (frames, _) = alice.close_frame().await;
    assert_eq!(
        frames.last().expect("disconnected")["code"],
        "shutting_down"
    );
    tokio::time::timeout(WAIT, server)
        .await
        .expect("serve returns after shutdown")
        .expect("the serve task")
        .expect("a valid config");
}

#[tokio::test]
async fn an_invalid_config_is_refused_by_name() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let mut config = WsConfig::default();
    config.heartbeat_interval = Duration::ZERO;
    let refused = transport_ws::serve(
        listener,
        start_engine(test_limits()),
        config,
        CancellationToken::new(),
    )
    .await
    .expect_err("a zero heartbeat");
    assert_eq!(refused.name, "heartbeat_interval");
}
