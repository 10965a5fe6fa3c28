//! Edits and reactions made elsewhere (a web user, here an engine session) as an IRC
//! client sees them: an edit as a NOTICE from its author led by `[edited MSGID]`, reaction
//! counts as a server NOTICE, in a channel and in a private conversation.

mod common;

use common::*;

#[tokio::test]
async fn edits_and_reactions_are_notices_in_the_room() {
    let s = server().await;
    let web = s.web_user("web").await;
    web.create_channel("general").await.expect("create");
    web.join("general", None).await.expect("join");

    let mut irc = s.user("ircy").await;
    irc.send("JOIN #general").await;
    irc.expect_code("366").await;
    let sent = web.post("general", "helo").await.expect("post");
    irc.expect_line("PRIVMSG #general helo").await;

    web.edit("general", sent.id, "hello\nworld")
        .await
        .expect("edit");
    irc.expect_line(":web!u1@flack NOTICE #general :[edited general.1] hello")
        .await;
    irc.expect_line(":web!u1@flack NOTICE #general :[edited general.1] world")
        .await;

    web.react("general", sent.id, "+1").await.expect("react");
    irc.expect_line("NOTICE #general :[reactions] message general.1: 👍 1")
        .await;
    web.react("general", sent.id, "+1").await.expect("react");
    irc.expect_line("NOTICE #general :[reactions] message general.1: none")
        .await;
}

#[tokio::test]
async fn a_private_edit_comes_from_the_peer_and_counts_to_the_client() {
    let s = server().await;
    let mut irc = s.user("ircy").await;
    let web = s.web_user("web").await;
    let sent = web.post("@ircy", "psst").await.expect("post");
    irc.expect_line("PRIVMSG ircy psst").await;
    web.edit("@ircy", sent.id, "psst!").await.expect("edit");
    let edited = irc.expect_line("[edited ").await;
    assert!(
        edited.starts_with(":web!u2@flack NOTICE ircy :[edited "),
        "{edited}"
    );
    assert!(edited.ends_with("] psst!"), "{edited}");
    web.react("@ircy", sent.id, "eyes").await.expect("react");
    let counts = irc.expect_line("[reactions]").await;
    assert!(
        counts.contains(" NOTICE ircy :[reactions] message "),
        "{counts}"
    );
    assert!(counts.ends_with(": 👀 1"), "{counts}");
}
