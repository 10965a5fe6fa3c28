//! The runnable example works: `examples/serve.rs` is built by `cargo test`, and its
//! server is run here and used over a real socket, as `nc` would, then stopped.

#[path = "../examples/serve.rs"]
#[allow(dead_code)]
mod serve_example;

use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::net::tcp::OwnedReadHalf;
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;

const WAIT: Duration = Duration::from_secs(10);

/// Reads lines until one contains `needle`; panics after `WAIT`.
async fn line_with(lines: &mut Lines<BufReader<OwnedReadHalf>>, needle: &str) -> String {
    loop {
        let line = tokio::time::timeout(WAIT, lines.next_line())
            .await
            .unwrap_or_else(|_| panic!("waited too long for {needle:?}"))
            .expect("read")
            .unwrap_or_else(|| panic!("closed before {needle:?}"));
        if line.contains(needle) {
            return line;
        }
    }
}

#[tokio::test]
async fn the_serve_example_chats_over_a_real_socket_and_stops() {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("address");
    let shutdown = CancellationToken::new();
    let server = tokio::spawn(serve_example::serve_until(listener, shutdown.clone()));

    let (read, mut write) = TcpStream::connect(addr)
        .await
        .expect("connect")
        .into_split();
    let mut lines = BufReader::new(read).lines();
    write
        .write_all(b"ann\n/create lobby\n/join lobby\nhello from the example\n")
        .await
        .expect("write");
    line_with(&mut lines, "joined #lobby").await;
    let posted = line_with(&mut lines, "hello from the example").await;
    assert!(posted.contains("<ann>"), "{posted}");

    shutdown.cancel();
    line_with(&mut lines, "shutting_down").await;
    let stopped = tokio::time::timeout(WAIT, server)
        .await
        .expect("the example stops in time")
        .expect("no panic");
    assert!(stopped.is_ok(), "{stopped:?}");
}
