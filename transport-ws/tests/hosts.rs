//! The `Host` check against DNS rebinding, on a real server. A page whose domain has been
//! made to resolve to the server sends its own name in both `Host` and `Origin`, which the
//! same-origin check alone accepts: the server must answer only for its own names, on
//! `/ws` as on every other path, and still for the names a browser uses to reach it
//! (`127.0.0.1:PORT`, `localhost:PORT`, a configured public name).
//!
//! Raw requests over TCP, so each test writes the `Host` header it means.

mod common;

use std::net::SocketAddr;

use common::{test_limits, TestServer, WAIT};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use transport_ws::WsConfig;

/// A WebSocket upgrade of `/ws` with these `Host` and `Origin` headers.
fn upgrade(host: &str, origin: &str) -> String {
    format!(
        "GET /ws HTTP/1.1\r\nHost: {host}\r\nOrigin: {origin}\r\nUpgrade: websocket\r\n\
         Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
         Sec-WebSocket-Version: 13\r\n\r\n"
    )
}

/// An ordinary `GET path` with this `Host` header.
fn get(path: &str, host: &str) -> String {
    format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n")
}

/// Sends `request`; returns the response's head and its body up to the server's close
/// (none after a 101: the socket stays open for WebSocket frames).
async fn exchange(addr: SocketAddr, request: &str) -> (String, String) {
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    stream.write_all(request.as_bytes()).await.expect("write");
    let mut received = Vec::new();
    let end = loop {
        if let Some(end) = received.windows(4).position(|w| w == b"\r\n\r\n") {
            break end;
        }
        let mut chunk = [0u8; 4096];
        let n = tokio::time::timeout(WAIT, stream.read(&mut chunk))
            .await
            .expect("answered in time")
            .expect("read");
        assert!(n > 0, "closed without a response: {received:?}");
        received.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&received[..end]).into_owned();
    if head.starts_with("HTTP/1.1 101") {
        return (head, String::new());
    }
    tokio::time::timeout(WAIT, stream.read_to_end(&mut received))
        .await
        .expect("closed in time")
        .expect("read");
    let body = String::from_utf8_lossy(&received[end + 4..]).into_owned();
    (head, body)
}

/// Asserts that `request` gets `status`, saying which request it was.
async fn assert_status(addr: SocketAddr, request: &str, status: u16) -> String {
    let (head, body) = exchange(addr, request).await;
    assert!(
        head.starts_with(&format!("HTTP/1.1 {status} ")),
        "expected {status} for\n{request}got\n{head}\n\n{body}"
    );
    body
}

on_both! {
/// The reproduction: with no allowed origins configured, `Host` and `Origin` both
/// naming the rebinding domain (with or without the server's port) is refused with 421,
/// not upgraded.
async fn a_rebinding_page_gets_421_and_no_upgrade() {
    let server = TestServer::start(test_limits());
    let port = server.addr.port();
    for host in ["evil.example".to_owned(), format!("evil.example:{port}")] {
        let origin = format!("http://{host}");
        let body = assert_status(server.addr, &upgrade(&host, &origin), 421).await;
        assert_eq!(body, "this server does not answer for that host name");
    }
}
}

on_both! {
async fn the_servers_own_names_still_upgrade() {
    let server = TestServer::start(test_limits());
    let port = server.addr.port();
    for host in [format!("127.0.0.1:{port}"), format!("localhost:{port}")] {
        let origin = format!("http://{host}");
        assert_status(server.addr, &upgrade(&host, &origin), 101).await;
    }
}
}

on_both! {
/// A name given in `public_hosts` is served, as `Host` and as the same-origin `Origin`,
/// on any port when the entry has none; the built-in names stay (a health probe by IP).
async fn a_configured_public_host_is_served() {
    let mut config = WsConfig::default();
    config.public_hosts = vec!["chat.example.com".to_owned()];
    let server = TestServer::with_config(test_limits(), config);
    let port = server.addr.port();
    for host in [
        "chat.example.com".to_owned(),
        format!("chat.example.com:{port}"),
        format!("127.0.0.1:{port}"),
    ] {
        let origin = format!("http://{host}");
        assert_status(server.addr, &upgrade(&host, &origin), 101).await;
    }
    let host = "evil.example";
    assert_status(server.addr, &upgrade(host, "http://evil.example"), 421).await;
    // Served by name, and still refused by origin: the two checks are separate.
    let request = upgrade("chat.example.com", "http://evil.example");
    assert_status(server.addr, &request, 403).await;
}
}

on_both! {
/// The embedder's `App` (here an empty one, which answers 404) never sees a request for
/// another name, nor does the plain `GET /ws` answer (400).
async fn ordinary_requests_for_other_names_get_421() {
    let server = TestServer::start(test_limits());
    let own = server.addr.to_string();
    for path in ["/", "/healthz", "/ws"] {
        let body = assert_status(server.addr, &get(path, "evil.example"), 421).await;
        assert_eq!(body, "this server does not answer for that host name");
    }
    assert_status(server.addr, &get("/", &own), 404).await;
    assert_status(server.addr, &get("/ws", &own), 400).await;
}
}

on_both! {
/// HTTP/1.1 requires exactly one `Host`; HTTP/1.0 did not, and a request without one
/// (from a non-browser client) reaches the `App`.
async fn a_missing_duplicate_or_malformed_host_is_400() {
    let server = TestServer::start(test_limits());
    let own = server.addr.to_string();
    let without = "GET / HTTP/1.1\r\nConnection: close\r\n\r\n";
    assert_status(server.addr, without, 400).await;
    let upgrade_without =
        upgrade(&own, &format!("http://{own}")).replace(&format!("Host: {own}\r\n"), "");
    assert_status(server.addr, &upgrade_without, 400).await;
    let twice =
        format!("GET / HTTP/1.1\r\nHost: {own}\r\nHost: {own}\r\nConnection: close\r\n\r\n");
    assert_status(server.addr, &twice, 400).await;
    assert_status(server.addr, &get("/", "http://evil.example"), 400).await;
    let (head, _) = exchange(server.addr, "GET / HTTP/1.0\r\n\r\n").await;
    assert!(
        head.starts_with("HTTP/1.0 404") || head.starts_with("HTTP/1.1 404"),
        "{head}"
    );
}
}

on_both! {
/// A listener on `0.0.0.0` serves the loopback names (and the address a connection
/// arrives at, which is loopback here), but not any name at all.
async fn a_listener_on_every_address_still_refuses_other_names() {
    let server = TestServer::bound_to("0.0.0.0:0", test_limits(), WsConfig::default());
    let own = server.addr.to_string();
    assert_status(server.addr, &upgrade(&own, &format!("http://{own}")), 101).await;
    let evil = format!("evil.example:{}", server.addr.port());
    assert_status(server.addr, &upgrade(&evil, &format!("http://{evil}")), 421).await;
    assert_status(server.addr, &get("/", &evil), 421).await;
    assert_status(server.addr, &get("/", &own), 404).await;
}
}
