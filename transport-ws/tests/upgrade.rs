//! Before the WebSocket: the `Origin` allow-list, the connection limit (HTTP 503), and a
//! plain HTTP request to `/ws` (HTTP 400).

mod common;

use common::{test_limits, Client, TestServer};
use tokio_tungstenite::tungstenite::{self};
use transport_ws::WsConfig;

on_both! {
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
}

on_both! {
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
}

on_both! {
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
}
