//! Input a server must survive and a terminal must never see raw: over-long lines, invalid
//! UTF-8, telnet negotiation and Ctrl-C, escape sequences. Helpers: `common/mod.rs`.

mod common;

use common::*;
use transport_tcp::TcpConfig;

#[tokio::test]
async fn over_long_line_is_refused_and_the_connection_kept() {
    let mut config = TcpConfig::default();
    config.max_line_bytes = 64;
    let s = Server::start(limits(), config).await;
    let mut alice = s.founder("alice", "general").await;
    let mut bob = s.member("bob", "general").await;

    // 10 KB on one line, in several writes.
    for _ in 0..10 {
        alice.send_raw(&[b'x'; 1000]).await;
    }
    alice.send_raw(b"\n").await;
    let line = alice.expect_error("line_too_long").await;
    assert!(line.contains("64 bytes"), "{line}");
    alice.send("short again").await;
    bob.expect_message("#general <alice> short again (id 1)")
        .await;
    alice
        .expect_message("#general <alice> short again (id 1)")
        .await;
    assert_eq!(
        alice
            .seen
            .iter()
            .filter(|l| l.starts_with("! error line_too_long"))
            .count(),
        1
    );
    assert!(
        !bob.seen.iter().any(|l| l.contains("xxx")),
        "{:?}",
        bob.seen
    );
}

#[tokio::test]
async fn invalid_utf8_is_refused_and_the_connection_kept() {
    let s = server().await;
    let mut alice = s.founder("alice", "general").await;
    let mut bob = s.member("bob", "general").await;
    alice.send_raw(b"bad \xc3\x28 bytes\r\n").await;
    alice.expect_error("invalid_utf8").await;
    alice.send("good bytes é").await;
    bob.expect_message("#general <alice> good bytes é (id 1)")
        .await;
    assert!(
        !bob.seen.iter().any(|l| l.contains("bad")),
        "{:?}",
        bob.seen
    );
}

#[tokio::test]
async fn telnet_negotiation_and_ctrl_c_are_never_posted() {
    let s = server().await;
    let mut alice = s.founder("alice", "general").await;
    let mut bob = s.member("bob", "general").await;

    // What a telnet client sends: option negotiation, a terminal-type sub-negotiation,
    // an interrupt (Ctrl-C as IAC IP) on its own line, a raw Ctrl-C, then a line with
    // commands in the middle of it.
    alice
        .send_raw(b"\xff\xfd\x01\xff\xfb\x03\xff\xfb\x18")
        .await;
    alice
        .send_raw(b"\xff\xfa\x18\x00xterm-256color\xff\xf0")
        .await;
    alice.send_raw(b"\xff\xf4\xff\xfd\x06\r\n").await;
    alice.send_raw(b"\x03\r\n").await;
    alice.send_raw(b"hel\xff\xf1lo\x03 telnet\r\n").await;
    bob.expect_message("#general <alice> hello telnet (id 1)")
        .await;
    alice.send("marker").await;
    bob.expect_message("#general <alice> marker (id 2)").await;
    let posted: Vec<_> = bob
        .seen
        .iter()
        .filter(|l| message_body(l).is_some())
        .collect();
    assert_eq!(
        posted.len(),
        2,
        "only the two real lines were posted: {posted:?}"
    );
    assert!(
        !alice.seen.iter().any(|l| l.starts_with("! error")),
        "telnet noise is not an error: {:?}",
        alice.seen
    );
}

#[tokio::test]
async fn escape_sequences_never_reach_a_terminal_raw() {
    let s = server().await;
    let web = s.web_user("webby").await;
    web.create_channel("general").await.expect("create");
    web.join("general", None).await.expect("join");
    let mut alice = s.member("alice", "general").await;
    let mut bob = s.member("bob", "general").await;

    // From TCP: the engine refuses control characters; nothing is posted.
    alice
        .send_raw(b"\x1b[2J\x1b[31mred\x1b]0;owned\x07\r\n")
        .await;
    alice.expect_error("invalid_text").await;
    alice.send_raw("c1 \u{9b}31m csi\r\n".as_bytes()).await;
    alice.expect_error("invalid_text").await;

    // From another transport: a multi-line message and a right-to-left override.
    web.post("general", "line one\nline two\twith a tab")
        .await
        .expect("post");
    bob.expect_message("#general <webby> line one\\nline two\twith a tab (id 1)")
        .await;
    web.post("general", "\u{202e}txt.exe").await.expect("post");
    bob.expect_message("#general <webby> \\u{202e}txt.exe (id 2)")
        .await;
    // Every line bob got was checked by `next_line` to hold no raw control byte.
    assert!(
        !bob.seen.iter().any(|l| l.contains("red")),
        "{:?}",
        bob.seen
    );
}
