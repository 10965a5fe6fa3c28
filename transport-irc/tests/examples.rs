//! The runnable example works: `examples/irc_serve.rs` is built by `cargo test`, and its
//! server is run here and used over a real socket, as an IRC client would, then stopped.

#[path = "../examples/irc_serve.rs"]
#[allow(dead_code)]
mod irc_serve_example;

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

async fn client(
    addr: std::net::SocketAddr,
    nick: &str,
) -> (
    Lines<BufReader<OwnedReadHalf>>,
    tokio::net::tcp::OwnedWriteHalf,
) {
    let (read, mut write) = TcpStream::connect(addr)
        .await
        .expect("connect")
        .into_split();
    let mut lines = BufReader::new(read).lines();
    write
        .write_all(format!("NICK {nick}\r\nUSER {nick} 0 * :{nick}\r\nJOIN #lobby\r\n").as_bytes())
        .await
        .expect("write");
    line_with(&mut lines, " 001 ").await;
    line_with(&mut lines, " 366 ").await;
    (lines, write)
}

#[tokio::test]
async fn the_irc_example_chats_over_a_real_socket_and_stops() {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("address");
    let shutdown = CancellationToken::new();
    let server = tokio::spawn(irc_serve_example::serve_until(listener, shutdown.clone()));

    let (_ann_lines, mut ann) = client(addr, "ann").await;
    let (mut bob_lines, _bob) = client(addr, "bob").await;
    ann.write_all(b"PRIVMSG #lobby :hello from the example\r\n")
        .await
        .expect("write");
    let got = line_with(&mut bob_lines, "PRIVMSG #lobby :hello from the example").await;
    assert!(got.starts_with(":ann!"), "{got}");

    shutdown.cancel();
    line_with(&mut bob_lines, "ERROR").await;
    let stopped = tokio::time::timeout(WAIT, server)
        .await
        .expect("the example stops in time")
        .expect("no panic");
    assert!(stopped.is_ok(), "{stopped:?}");
}
