//! The transport's bounds, from its `TcpConfig` (and the engine's session queue): a client
//! that stops reading, the connection cap, the idle timeout, and a config `serve` refuses.
//! Helpers: `common/mod.rs`.

mod common;

use std::time::Duration;

use chat_core::Engine;
use common::*;
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::time::timeout;
use tokio_util::sync::CancellationToken;
use transport_tcp::TcpConfig;

#[tokio::test]
async fn a_client_that_stops_reading_is_dropped_and_others_are_served() {
    // Small socket buffers (accepted sockets inherit the listener's), so a client that
    // does not read blocks the server's writes quickly.
    let socket = TcpSocket::new_v4().expect("socket");
    socket.set_send_buffer_size(4096).expect("sndbuf");
    socket
        .bind("127.0.0.1:0".parse().expect("addr"))
        .expect("bind");
    let listener = socket.listen(64).expect("listen");
    let mut config = TcpConfig::default();
    config.write_timeout = Duration::from_secs(2);
    let s = Server::on(
        listener,
        {
            let mut limits = limits();
            // About eight of the 3,000-byte messages below: a message costs its text.
            limits.session_queue_hard_bytes = 8 * 3200;
            limits.session_queue_soft_bytes = 8 * 3200;
            limits
        },
        config,
    )
    .await;

    let mut poster = s.founder("poster", "general").await;

    // The slow client logs in and joins, then never reads again.
    let slow_socket = TcpSocket::new_v4().expect("socket");
    slow_socket.set_recv_buffer_size(4096).expect("rcvbuf");
    let slow_stream = timeout(WAIT, slow_socket.connect(s.addr))
        .await
        .expect("connect in time")
        .expect("connect");
    let mut slow = Client::over(slow_stream);
    slow.expect_line("= pick a display name").await;
    slow.send("slow").await;
    slow.expect_line("= welcome, slow").await;
    slow.send("/join general").await;
    slow.expect_line("* #general slow joined").await;
    slow.lines.reader.abort();

    let mut good = s.member("good", "general").await;

    // Post until the slow client is dropped; the good one must see every message, each
    // promptly, all along.
    let text = "y".repeat(3000);
    let mut dropped = false;
    let mut posted = 0;
    for id in 1..=2000u64 {
        poster.send(&text).await;
        posted = id;
        let body = format!("#general <poster> {text} (id {id})");
        let line = good
            .expect("the next message or the slow client leaving", |l| {
                message_body(l) == Some(&body) || l == "* #general slow offline"
            })
            .await;
        if line == "* #general slow offline" {
            dropped = true;
            good.expect_message(&body).await;
            break;
        }
    }
    assert!(
        dropped,
        "the slow client was never dropped ({posted} messages)"
    );

    // The good client is still fully served.
    good.send("still here").await;
    good.expect_message(&format!("#general <good> still here (id {})", posted + 1))
        .await;
    // The poster saw the slow client go offline too, and every message.
    poster.expect_line("* #general slow offline").await;
    poster
        .expect_message(&format!("#general <good> still here (id {})", posted + 1))
        .await;
    let seen = poster
        .seen
        .iter()
        .filter(|l| message_body(l).is_some())
        .count();
    assert_eq!(seen as u64, posted + 1);
}

#[tokio::test]
async fn connections_beyond_the_limit_wait_until_one_closes() {
    let mut config = TcpConfig::default();
    config.max_connections = 1;
    let s = Server::start(limits(), config).await;
    let mut first = s.user("first").await;
    // The second connection is accepted by the kernel but not served yet.
    let mut second = s.client().await;
    let early = timeout(Duration::from_millis(300), second.rx.recv()).await;
    assert!(early.is_err(), "served beyond max_connections: {early:?}");
    first.send("/quit").await;
    first.expect_eof().await;
    second.expect_line("= pick a display name").await;
}

#[tokio::test]
async fn idle_connections_are_reaped() {
    let mut config = TcpConfig::default();
    config.idle_timeout = Duration::from_millis(1500);
    let s = Server::start(limits(), config).await;
    let mut silent = s.client().await;
    let mut silent_user = s.user("lurker").await;
    let mut active = s.user("active").await;
    // The active client keeps typing (an empty line counts) while the others stay silent.
    for _ in 0..6 {
        active.send("").await;
        active.send("/help").await;
        active.expect_line("= commands:").await;
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    for client in [&mut silent, &mut silent_user] {
        let rest = client.expect_eof().await;
        assert!(
            rest.iter()
                .any(|l| l.starts_with("! closed idle_timeout: ")),
            "{rest:?}"
        );
    }
    active.send("/help").await;
    active.expect_line("= commands:").await;
}

#[tokio::test]
async fn an_invalid_config_is_refused_at_start_up() {
    // A zero idle timeout would close every connection at once: `serve` refuses it and
    // returns without serving anyone.
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("local addr");
    let engine = Engine::builder()
        .limits(limits())
        .start()
        .await
        .expect("engine");
    let mut config = TcpConfig::default();
    config.idle_timeout = Duration::ZERO;
    let shutdown = CancellationToken::new();
    let refused = timeout(
        WAIT,
        transport_tcp::serve(listener, engine.clone(), config, shutdown),
    )
    .await
    .expect("serve returns at once")
    .expect_err("an invalid config is refused");
    assert_eq!(refused.name, "idle_timeout");
    // The listener is gone with it.
    assert!(TcpStream::connect(addr).await.is_err());
    engine.shutdown().await;
}
