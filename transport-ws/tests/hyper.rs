//! The hyper adapter in a plain hyper 1 server (no axum): a client upgrades, logs in,
//! joins, posts and gets its message back; a refused upgrade gets its status from the
//! same checks as every entry point.

mod common;

use std::convert::Infallible;

use common::{start_engine, test_config, test_limits, Client};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use serde_json::json;
use tokio_tungstenite::tungstenite;
use tokio_util::sync::CancellationToken;
use transport_ws::hyper::{upgrade, ConnectionAddrs};
use transport_ws::WsChat;

/// A hyper server on 127.0.0.1:0 whose every request goes to the adapter.
async fn hyper_server(chat: WsChat) -> std::net::SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("address");
    tokio::spawn(async move {
        while let Ok((stream, peer)) = listener.accept().await {
            let local = stream.local_addr().expect("local address");
            let chat = chat.clone();
            let service = service_fn(move |request| {
                let response = upgrade(&chat, request, ConnectionAddrs::new(peer, local));
                async move { Ok::<_, Infallible>(response) }
            });
            let connection = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .with_upgrades();
            tokio::spawn(connection);
        }
    });
    addr
}

#[tokio::test]
async fn a_plain_hyper_server_serves_the_chat() {
    let shutdown = CancellationToken::new();
    let engine = start_engine(test_limits());
    let chat = WsChat::new(engine, test_config(), shutdown.clone()).expect("config");
    let addr = hyper_server(chat).await;
    let url = format!("ws://{addr}/ws");

    let mut alice = Client::connect(&url, None).await.expect("upgrade");
    alice.login("alice").await;
    alice
        .ok(json!({"type": "create_channel", "name": "general"}))
        .await;
    alice.ok(json!({"type": "join", "room": "general"})).await;
    alice
        .ok(json!({"type": "post", "room": "general", "text": "over hyper"}))
        .await;
    alice
        .event(common::is_message("general", "over hyper"))
        .await;

    // The same checks: another site's page is refused.
    match Client::connect(&url, Some("http://evil.example")).await {
        Err(tungstenite::Error::Http(response)) => assert_eq!(response.status(), 403),
        other => panic!("expected HTTP 403, got {:?}", other.map(|_| ())),
    }
    // And an upgrade to another path is not ours.
    match Client::connect(&format!("ws://{addr}/other"), None).await {
        Err(tungstenite::Error::Http(response)) => assert_eq!(response.status(), 404),
        other => panic!("expected HTTP 404, got {:?}", other.map(|_| ())),
    }
    shutdown.cancel();
    let (frames, _) = alice.close_frame().await;
    assert_eq!(
        frames.last().expect("disconnected")["code"],
        "shutting_down"
    );
}

/// A hyper server whose every upgrade is logged in as the account `acct-1` named `ann`.
async fn hyper_server_as_ann(chat: WsChat) -> std::net::SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("address");
    tokio::spawn(async move {
        while let Ok((stream, peer)) = listener.accept().await {
            let local = stream.local_addr().expect("local address");
            let chat = chat.clone();
            let service = service_fn(move |request| {
                let ann = chat_core::Login::External {
                    id: "acct-1".into(),
                    display_name: "ann".into(),
                };
                let addrs = ConnectionAddrs::new(peer, local);
                let response = transport_ws::hyper::upgrade_as(&chat, request, addrs, ann);
                async move { Ok::<_, Infallible>(response) }
            });
            let connection = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .with_upgrades();
            tokio::spawn(connection);
        }
    });
    addr
}

#[tokio::test]
async fn an_embedder_login_that_the_engine_refuses_is_the_last_frame() {
    let shutdown = CancellationToken::new();
    let engine = start_engine(test_limits());
    let chat = WsChat::new(engine, test_config(), shutdown.clone()).expect("config");
    let as_ann = hyper_server_as_ann(chat).await;

    // Two sockets of the account are one user.
    let mut first = Client::connect(&format!("ws://{as_ann}/ws"), None)
        .await
        .expect("upgrade");
    let mut second = Client::connect(&format!("ws://{as_ann}/ws"), None)
        .await
        .expect("upgrade");
    let (a, b) = (first.next_reply().await, second.next_reply().await);
    assert_eq!(a["result"]["user"], b["result"]["user"]);
    assert_eq!(a["result"]["user"]["name"], "ann");
    drop((first, second));

    // Someone else holds the name when the account's user is made (another engine, where
    // a client took "ann" first): refused, then closed.
    let shutdown_b = CancellationToken::new();
    let engine_b = start_engine(test_limits());
    let chat_b = WsChat::new(engine_b, test_config(), shutdown_b.clone()).expect("config");
    let (other_anonymous, other_as_ann) = (
        hyper_server(chat_b.clone()).await,
        hyper_server_as_ann(chat_b).await,
    );
    let mut holder = Client::connect(&format!("ws://{other_anonymous}/ws"), None)
        .await
        .expect("upgrade");
    holder.login("ann").await;
    let mut refused = Client::connect(&format!("ws://{other_as_ann}/ws"), None)
        .await
        .expect("upgrade");
    let (frames, close) = refused.close_frame().await;
    let last = frames.last().expect("the refusal");
    assert_eq!(last["type"], "error", "{last}");
    assert_eq!(last["code"], "name_taken", "{last}");
    let close = close.expect("a close frame");
    assert_eq!(
        close.code,
        tungstenite::protocol::frame::coding::CloseCode::Policy
    );
    shutdown.cancel();
    shutdown_b.cancel();
}
