//! The `Host` check against DNS rebinding on the real binary: the front end, `/healthz`
//! and `/ws` answer only for the server's own names (`localhost`, loopback, the listen
//! address, each `--public-host`); a page whose domain was made to resolve to the server
//! gets 421 for all of them.
//!
//! Raw requests over TCP, so each test writes the `Host` header it means.

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use common::{Server, TestResult};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Sends `request`; returns the status line and the body up to the server's close (none
/// after a 101: the socket stays open for WebSocket frames).
async fn exchange(addr: SocketAddr, request: &str) -> TestResult<(String, String)> {
    let mut stream = TcpStream::connect(addr).await?;
    stream.write_all(request.as_bytes()).await?;
    let mut received = Vec::new();
    let end = loop {
        if let Some(end) = received.windows(4).position(|w| w == b"\r\n\r\n") {
            break end;
        }
        let mut chunk = [0u8; 4096];
        let n = tokio::time::timeout(Duration::from_secs(10), stream.read(&mut chunk)).await??;
        if n == 0 {
            return Err(format!("closed without a response to\n{request}").into());
        }
        received.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&received[..end]).into_owned();
    let status = head.lines().next().unwrap_or_default().to_owned();
    if status.starts_with("HTTP/1.1 101") {
        return Ok((status, String::new()));
    }
    tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut received)).await??;
    let body = String::from_utf8_lossy(&received[end + 4..]).into_owned();
    Ok((status, body))
}

/// The status code `GET path` with this `Host` gets, and the body.
async fn get(addr: SocketAddr, path: &str, host: &str) -> TestResult<(u16, String)> {
    let request = format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n");
    let (status, body) = exchange(addr, &request).await?;
    Ok((code(&status)?, body))
}

/// The status code a WebSocket upgrade with this `Host` and its own origin gets.
async fn upgrade(addr: SocketAddr, host: &str) -> TestResult<u16> {
    let request = format!(
        "GET /ws HTTP/1.1\r\nHost: {host}\r\nOrigin: http://{host}\r\nUpgrade: websocket\r\n\
         Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
         Sec-WebSocket-Version: 13\r\n\r\n"
    );
    code(&exchange(addr, &request).await?.0)
}

fn code(status: &str) -> TestResult<u16> {
    let code = status.split(' ').nth(1).ok_or("no status code")?;
    Ok(code.parse()?)
}

/// The reproduction on the demo: the page and `/healthz` for a foreign name
/// (with or without the server's port) get 421; for the names a browser on this machine
/// uses, 200.
#[tokio::test]
async fn pages_and_healthz_answer_only_for_the_servers_names() -> TestResult {
    let server = Server::start(&[])?;
    let port = server.http.port();
    for path in ["/", "/healthz"] {
        for host in ["evil.example".to_owned(), format!("evil.example:{port}")] {
            let (status, body) = get(server.http, path, &host).await?;
            assert_eq!(status, 421, "{path} for {host}: {body}");
            assert_eq!(body, "this server does not answer for that host name");
        }
        for host in [format!("localhost:{port}"), format!("127.0.0.1:{port}")] {
            let (status, body) = get(server.http, path, &host).await?;
            assert_eq!(status, 200, "{path} for {host}: {body}");
        }
    }
    Ok(())
}

/// The same for the WebSocket: a rebinding page's upgrade (`Host` and `Origin` both its
/// own domain, which the same-origin check alone accepts) gets 421, not 101.
#[tokio::test]
async fn a_rebinding_pages_upgrade_gets_421() -> TestResult {
    let server = Server::start(&[])?;
    let port = server.http.port();
    assert_eq!(
        upgrade(server.http, &format!("evil.example:{port}")).await?,
        421
    );
    assert_eq!(
        upgrade(server.http, &format!("localhost:{port}")).await?,
        101
    );
    Ok(())
}

/// `--public-host` adds a name (a reverse proxy's public one); loopback names stay
/// served, so a health probe by address still works.
#[tokio::test]
async fn a_public_host_given_by_flag_is_served() -> TestResult {
    let server = Server::start(&["--public-host", "chat.example.com"])?;
    let port = server.http.port();
    for host in ["chat.example.com", "CHAT.example.com.:443"] {
        let (status, body) = get(server.http, "/", host).await?;
        assert_eq!(status, 200, "{host}: {body}");
    }
    assert_eq!(upgrade(server.http, "chat.example.com").await?, 101);
    let (status, _) = get(server.http, "/healthz", &format!("127.0.0.1:{port}")).await?;
    assert_eq!(status, 200);
    let (status, _) = get(server.http, "/", "evil.example").await?;
    assert_eq!(status, 421);
    Ok(())
}
