//! Channel commands over TCP: `/list`, `/create`, `/join` (history, then live), `/part`,
//! `/who`, and their errors. Helpers: `common/mod.rs`.

mod common;

use common::*;

#[tokio::test]
async fn channel_commands_and_their_errors() {
    let s = server().await;
    let mut alice = s.user("alice").await;
    let mut bob = s.user("bob").await;

    alice.send("/list").await;
    alice.expect_line("= no channels yet").await;
    alice.send("hello?").await;
    alice.expect_error("not_joined").await;
    alice.send("/part").await;
    alice.expect_error("not_joined").await;
    alice.send("/who").await;
    alice.expect_error("not_joined").await;
    alice.send("/join nowhere").await;
    alice.expect_error("no_such_channel").await;
    alice.send("/create bad.name").await;
    alice.expect_error("invalid_channel_name").await;

    alice.send("/create rust").await;
    alice.expect_line("+ #rust created").await;
    bob.expect_line("+ #rust created").await;
    alice.send("/create RUST").await;
    alice.expect_error("channel_exists").await;

    bob.send("/list").await;
    bob.expect_line("= channels: 1").await;
    bob.expect_line("= #rust (members: 0, last active ").await;

    // Posting to a channel one has not joined.
    bob.send("/delete rust 1").await;
    bob.expect_error("not_joined").await;

    alice.send("/join #rust").await;
    alice
        .expect_line("= joined #rust: 0 earlier messages above; 1 online: alice")
        .await;
    alice.expect_line("* #rust alice joined").await;
    bob.send("/join rust").await;
    bob.expect_line("= joined #rust: 0 earlier messages above; 2 online: alice, bob")
        .await;
    alice.expect_line("* #rust bob joined").await;

    alice.send("/who").await;
    alice
        .expect_line("= members of #rust: 2 online: alice, bob")
        .await;

    bob.send("/part").await;
    bob.expect_line("= left #rust").await;
    alice.expect_line("* #rust bob left").await;
    bob.send("still here?").await;
    bob.expect_error("not_joined").await;
    bob.send("/part rust").await;
    bob.expect_error("not_joined").await;
    bob.send("/who rust").await;
    bob.expect_error("not_joined").await;

    alice.send("/who rust").await;
    alice
        .expect_line("= members of #rust: 1 online: alice")
        .await;
}

#[tokio::test]
async fn history_is_shown_on_join_then_live_messages() {
    let s = server().await;
    let mut alice = s.founder("alice", "general").await;
    for i in 1..=3 {
        alice.send(&format!("message {i}")).await;
        alice
            .expect_message(&format!("#general <alice> message {i} (id {i})"))
            .await;
    }

    let mut bob = s.user("bob").await;
    bob.send("/join general").await;
    let mut history = Vec::new();
    for _ in 0..3 {
        history.push(bob.next_line().await.expect("history line"));
    }
    let bodies: Vec<_> = history.iter().map(|l| message_body(l)).collect();
    assert_eq!(
        bodies,
        vec![
            Some("#general <alice> message 1 (id 1)"),
            Some("#general <alice> message 2 (id 2)"),
            Some("#general <alice> message 3 (id 3)"),
        ],
        "{history:?}"
    );
    bob.expect_line("= joined #general: 3 earlier messages above; 2 online: alice, bob")
        .await;

    alice.send("and one live").await;
    bob.expect_message("#general <alice> and one live (id 4)")
        .await;
}
