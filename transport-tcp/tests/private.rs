//! Private conversations over TCP: `/msg`, `/join @USER` and its history, `/part` of a
//! private conversation. Helpers: `common/mod.rs`.

mod common;

use common::*;

#[tokio::test]
async fn private_messages() {
    let s = server().await;
    let mut alice = s.user("alice").await;
    let mut bob = s.user("bob").await;

    alice.send("/msg bob psst").await;
    bob.expect_message("@alice <alice> psst (id 1)").await;
    alice.expect_message("@bob <alice> psst (id 1)").await;
    bob.send("/msg @alice hi back").await;
    alice.expect_message("@bob <bob> hi back (id 2)").await;

    alice.send("/msg nobody hello").await;
    alice.expect_error("no_such_user").await;
    alice.send("/msg alice talking to myself").await;
    alice.expect_error("invalid_target").await;

    // Joining the conversation shows its history and makes it current.
    bob.send("/join @alice").await;
    bob.expect_message("@alice <alice> psst (id 1)").await;
    bob.expect_message("@alice <bob> hi back (id 2)").await;
    bob.expect_line("= joined @alice: 2 earlier messages above")
        .await;
    bob.send("plain line to alice").await;
    alice
        .expect_message("@bob <bob> plain line to alice (id 3)")
        .await;
    bob.send("/who").await;
    bob.expect_line("= members of @alice: 2 online: alice, bob")
        .await;
    // Parting a private conversation only stops it being current.
    bob.send("/part").await;
    bob.expect_line("= left @alice").await;
    alice.send("/msg bob still there?").await;
    bob.expect_message("@alice <alice> still there? (id 4)")
        .await;
}
