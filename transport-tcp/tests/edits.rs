//! Edits and reactions on the line protocol: `/edit` and `/react` in the current room or a
//! named one, the `~` and `&` lines every follower gets, the marks a later `/join` shows,
//! and clear errors for someone else's message, an emoji outside the set and a message
//! not in the room.

mod common;

use common::*;

#[tokio::test]
async fn edits_and_reactions_are_lines_for_everyone() {
    let s = server().await;
    let mut alice = s.founder("alice", "general").await;
    let mut bob = s.member("bob", "general").await;
    alice.expect_line("* #general bob joined").await;

    alice.send("helo bob").await;
    bob.expect_message("#general <alice> helo bob (id 1)").await;
    alice.send("/edit 1 hello bob").await;
    for client in [&mut alice, &mut bob] {
        client
            .expect_line("~ #general <alice> hello bob (id 1, edited)")
            .await;
    }
    bob.send("/edit general 1 hijacked").await;
    let refused = bob.expect_error("not_author").await;
    assert!(
        refused.contains("only its author can edit message 1"),
        "{refused}"
    );

    bob.send("/react 1 +1").await;
    alice.expect_line("& #general message 1: 👍 1").await;
    alice.send("/react #general 1 👍").await;
    bob.expect_line("& #general message 1: 👍 2").await;
    alice.send("/react 1 :heart:").await;
    bob.expect_line("& #general message 1: 👍 2, ❤️ 1").await;
    alice.send("/react 1 heart").await;
    bob.expect_line("& #general message 1: 👍 2").await;

    bob.send("/react 1 💩").await;
    let outside = bob.expect_error("invalid_reaction").await;
    assert!(outside.contains("open_mouth"), "names the set: {outside}");
    bob.send("/react 99 eyes").await;
    bob.expect_error("no_such_message").await;
    bob.send("/edit 1").await;
    bob.expect_error("usage").await;

    // A later join shows the latest text, marked, with the counts.
    let mut carol = s.user("carol").await;
    carol.send("/join general").await;
    carol
        .expect_message("#general <alice> hello bob (id 1, edited; 👍 2)")
        .await;
}

#[tokio::test]
async fn a_private_message_is_edited_with_its_room_named() {
    let s = server().await;
    let mut alice = s.user("alice").await;
    let mut bob = s.user("bob").await;
    alice.send("/msg bob psst").await;
    bob.expect_message("@alice <alice> psst (id 1)").await;
    alice.send("/edit @bob 1 psst!").await;
    bob.expect_line("~ @alice <alice> psst! (id 1, edited)")
        .await;
    bob.send("/react @alice 1 eyes").await;
    alice.expect_line("& @bob message 1: 👀 1").await;
}
