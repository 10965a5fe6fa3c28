//! Messages in channels over TCP: between terminals, with a web user on the same engine, a
//! burst of lines stored in order, and deleting one's own messages. Helpers:
//! `common/mod.rs`.

mod common;

use common::*;

#[tokio::test]
async fn two_tcp_users_chat_both_ways() {
    let s = server().await;
    let mut alice = s.founder("alice", "general").await;
    let mut bob = s.member("bob", "general").await;
    alice.expect_line("* #general bob joined").await;

    alice.send("hi bob").await;
    bob.expect_message("#general <alice> hi bob (id 1)").await;
    alice.expect_message("#general <alice> hi bob (id 1)").await;
    bob.send("hi alice, ünïcödé ✓").await;
    alice
        .expect_message("#general <bob> hi alice, ünïcödé ✓ (id 2)")
        .await;
    // A leading // posts a line starting with /.
    bob.send("//shrug").await;
    alice.expect_message("#general <bob> /shrug (id 3)").await;

    // Dropping the connection shows bob going offline.
    drop(bob);
    alice.expect_line("* #general bob offline").await;
}

#[tokio::test]
async fn a_burst_of_lines_is_stored_in_order_with_errors_in_place() {
    // One write of many lines: the server reads on while earlier messages are stored, and
    // must still store them in order and answer the bad lines in order.
    let s = server().await;
    let mut alice = s.founder("alice", "general").await;
    let mut bob = s.member("bob", "general").await;

    let mut burst = String::new();
    for n in 0..40 {
        match n {
            15 => burst.push_str("/msg nobody-here hello\r\n"),
            25 => burst.push_str("/frobnicate\r\n"),
            _ => burst.push_str(&format!("m{n}\r\n")),
        }
    }
    burst.push_str("/who\r\n");
    alice.send_raw(burst.as_bytes()).await;

    let who = alice.expect_line("= members of #general").await;
    let answers: Vec<&String> = alice
        .seen
        .iter()
        .filter(|l| l.starts_with("! error") || l.starts_with("= members of"))
        .collect();
    assert_eq!(
        answers.len(),
        3,
        "two errors and the /who reply: {answers:?}"
    );
    assert!(
        answers[0].starts_with("! error no_such_user: "),
        "{answers:?}"
    );
    assert!(
        answers[1].starts_with("! error unknown_command: "),
        "{answers:?}"
    );
    assert_eq!(*answers[2], who);

    let mut id = 0;
    for n in (0..40).filter(|n| *n != 15 && *n != 25) {
        id += 1;
        bob.expect_message(&format!("#general <alice> m{n} (id {id})"))
            .await;
    }
}

#[tokio::test]
async fn tcp_and_web_users_chat_in_one_channel() {
    let s = server().await;
    let mut web = s.web_user("webby").await;
    web.create_channel("general").await.expect("create");
    web.join("general", None).await.expect("join");
    let mut tcp = s.member("termy", "general").await;

    web.post("general", "hello from the browser")
        .await
        .expect("post");
    tcp.expect_message("#general <webby> hello from the browser (id 1)")
        .await;
    tcp.send("hello from the terminal").await;
    let m = next_posted(&mut web).await;
    assert_eq!(m.text, "hello from the browser", "its own message first");
    let m = next_posted(&mut web).await;
    assert_eq!(m.text, "hello from the terminal");
    assert_eq!(&*m.author.name, "termy");
}

#[tokio::test]
async fn delete_own_messages_only() {
    let s = server().await;
    let mut alice = s.founder("alice", "general").await;
    let mut bob = s.member("bob", "general").await;

    alice.send("oops").await;
    bob.expect_message("#general <alice> oops (id 1)").await;
    bob.send("/delete 1").await;
    bob.expect_error("not_author").await;
    alice.send("/delete 99").await;
    alice.expect_error("no_such_message").await;
    alice.send("/delete 1").await;
    alice.expect_line("- #general message 1 deleted").await;
    bob.expect_line("- #general message 1 deleted").await;
    alice.send("/delete #general 1").await;
    alice.expect_error("no_such_message").await;

    alice.send("/msg bob secret").await;
    bob.expect_message("@alice <alice> secret (id 1)").await;
    alice.send("/delete @bob 1").await;
    bob.expect_line("- @alice message 1 deleted").await;
}

#[tokio::test]
async fn a_message_that_mentions_you_is_followed_by_a_mark() {
    let s = server().await;
    let mut alice = s.founder("alice", "general").await;
    let mut bob = s.member("bob", "general").await;
    alice.expect_line("* #general bob joined").await;

    alice.send("no mention of bob@example.com").await;
    alice.send("(@BOB) lunch?").await;
    bob.expect_message("#general <alice> no mention of bob@example.com (id 1)")
        .await;
    bob.expect_message("#general <alice> (@BOB) lunch? (id 2)")
        .await;
    let mark = bob.next_line().await.expect("a line after the message");
    assert_eq!(mark, "^ #general 2 alice mentioned you");
    // Only the one mentioned gets the mark, and nobody for a mail address.
    alice
        .expect_message("#general <alice> (@BOB) lunch? (id 2)")
        .await;
    alice.send("/who").await;
    alice.expect_line("= members of #general").await;
    assert!(
        !alice
            .seen
            .iter()
            .chain(bob.seen.iter())
            .any(|l| l.starts_with("^ #general 1")),
        "{:?}",
        bob.seen
    );
    assert!(
        !alice.seen.iter().any(|l| l.starts_with("^ ")),
        "{:?}",
        alice.seen
    );
}
