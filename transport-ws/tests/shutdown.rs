//! Ending connections: the server's shutdown token and the engine's shutdown both send
//! `disconnected` and close 1001 and end every socket task; a client's close is answered
//! and releases its session.

mod common;

use common::{test_limits, Client, Entry, Incoming, TestServer, WAIT};
use serde_json::json;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::{self, Message};

on_both! {
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

    // Under actix the HTTP server runs on (the embedder stops it): upgrades get 503.
    // `serve` owns its listener and closes it: nobody is accepted any more.
    match (Entry::current(), Client::connect(&server.url(), None).await) {
        (Entry::Actix, Err(tungstenite::Error::Http(response))) => {
            assert_eq!(response.status(), 503)
        }
        (Entry::Serve, Err(tungstenite::Error::Io(e))) => {
            assert_eq!(e.kind(), std::io::ErrorKind::ConnectionRefused)
        }
        (entry, other) => panic!("{entry:?}: expected a refusal, got {:?}", other.map(|_| ())),
    }
}
}

on_both! {
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
}

on_both! {
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
}
