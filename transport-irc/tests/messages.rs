//! Chatting over real sockets: JOIN with history and server-time, PRIVMSG both ways with
//! a web user (an engine session, as the WebSocket transport holds one) and with the
//! `irc` crate's client, private messages, echo-message, CHATHISTORY, and deletions.
//! Helpers: `common/mod.rs`.

mod common;

use chat_core::Target;
use common::*;

#[tokio::test]
async fn join_replays_history_with_server_time_and_msgids_then_chat_flows_both_ways() {
    let s = server().await;
    let mut web = s.web_user("Web User").await;
    web.create_channel("general").await.expect("create");
    web.join("general", None).await.expect("join");
    web.post("general", "earlier\nsecond line")
        .await
        .expect("post");

    let mut irc = s.user_with("ircy", "server-time message-tags batch").await;
    irc.send("JOIN #general").await;
    irc.expect_line(":ircy!u2@flack JOIN #general").await;
    let names = irc.expect_code("353").await;
    assert!(
        names.ends_with(":Web\\20User ircy") || names.ends_with(":ircy Web\\20User"),
        "{names}"
    );
    irc.expect_code("366").await;
    irc.expect_line("BATCH +h1 chathistory #general").await;
    let first = irc.expect_line("PRIVMSG #general").await;
    assert!(first.starts_with("@msgid=general.1;time="), "{first}");
    assert!(first.contains(";batch=h1 "), "{first}");
    assert!(
        first.ends_with(":Web\\20User!u1@flack PRIVMSG #general earlier"),
        "{first}"
    );
    let second = irc.next_line().await.expect("the second line");
    assert!(
        second.ends_with(" PRIVMSG #general :second line"),
        "{second}"
    );
    assert_eq!(
        irc.next_line().await.as_deref(),
        Some(":flack.irc BATCH -h1")
    );

    // Web to IRC, live, with its tags.
    web.post("general", "hello from the web")
        .await
        .expect("post");
    let live = irc.expect_line("hello from the web").await;
    assert!(live.starts_with("@msgid=general.2;time="), "{live}");

    // IRC to web. Without echo-message the IRC client does not get its own line back.
    irc.send("PRIVMSG #general :hello from irc").await;
    let seen = posted_text(&mut web, "hello from irc").await;
    assert_eq!(
        (seen.text.as_str(), &*seen.author.name),
        ("hello from irc", "ircy")
    );
    irc.send("PING :sync").await;
    irc.expect_line("PONG").await;
    assert!(
        !irc.seen.iter().any(|l| l.contains("hello from irc")),
        "{:?}",
        irc.seen
    );

    // The web user's presence is JOIN/PART.
    drop(web);
    irc.expect_line(":Web\\20User!u1@flack PART #general offline")
        .await;
}

#[tokio::test]
async fn history_without_server_time_is_notices_with_the_time() {
    let s = server().await;
    let web = s.web_user("webby").await;
    web.create_channel("general").await.expect("create");
    web.join("general", None).await.expect("join");
    web.post("general", "kept").await.expect("post");
    let mut irc = s.user("plain").await;
    irc.send("JOIN #general").await;
    let notice = irc.expect_line("NOTICE #general").await;
    assert!(
        notice.starts_with(":webby!u1@flack NOTICE #general :["),
        "{notice}"
    );
    assert!(notice.ends_with("] kept"), "{notice}");
}

#[tokio::test]
async fn echo_message_returns_own_lines_with_their_ids() {
    let s = server().await;
    let mut irc = s.user_with("echo", "echo-message message-tags").await;
    irc.send("JOIN #echoes\r\nPRIVMSG #echoes :one\r\nPRIVMSG #echoes :\u{1}ACTION waves\u{1}")
        .await;
    let one = irc.expect_line(" PRIVMSG #echoes one").await;
    assert_eq!(one, "@msgid=echoes.1 :echo!u1@flack PRIVMSG #echoes one");
    let action = irc.expect_line("ACTION").await;
    assert!(action.ends_with(":\u{1}ACTION waves\u{1}"), "{action}");
}

#[tokio::test]
async fn private_messages_between_irc_and_web_users() {
    let s = server().await;
    let mut web = s.web_user("Ann Lee").await;
    let mut irc = s.user("bob").await;
    irc.send("PRIVMSG Ann\\20Lee :psst").await;
    let m = next_posted(&mut web).await;
    assert_eq!((m.text.as_str(), &*m.author.name), ("psst", "bob"));

    web.post(Target::User("bob".into()), "hi bob")
        .await
        .expect("post");
    let line = irc.expect_line("hi bob").await;
    assert_eq!(line, ":Ann\\20Lee!u1@flack PRIVMSG bob :hi bob");

    // Sent from the user's web session, a private message shows on IRC too.
    let token = web.token().expose().to_owned();
    let mut ann = s.client().await;
    ann.send(&format!("PASS {token}\r\nNICK x\r\nUSER x 0 * :x"))
        .await;
    ann.expect_code("001").await;
    web.post(Target::User("bob".into()), "from the web tab")
        .await
        .expect("post");
    let own = ann.expect_line("from the web tab").await;
    assert_eq!(own, ":Ann\\20Lee!u1@flack PRIVMSG bob :from the web tab");

    // The `irc` crate's client talks to both.
    let (client, mut stream) = s.library_client("libby", &[]).await;
    library_expect(&mut stream, "376", |m| {
        matches!(
            m.command,
            irc::proto::Command::Response(irc::proto::Response::RPL_ENDOFMOTD, _)
        )
    })
    .await;
    client
        .send_privmsg("bob", "from the library")
        .expect("send");
    irc.expect_line(":libby!u3@flack PRIVMSG bob :from the library")
        .await;
    irc.send("PRIVMSG libby :back at you").await;
    let back = library_expect(
        &mut stream,
        "PRIVMSG",
        |m| matches!(&m.command, irc::proto::Command::PRIVMSG(_, text) if text == "back at you"),
    )
    .await;
    assert_eq!(back.source_nickname(), Some("bob"));
}

#[tokio::test]
async fn chathistory_by_msgid_and_a_deletion_reach_irc_clients() {
    let s = server().await;
    let mut web = s.web_user("webby").await;
    web.create_channel("log").await.expect("create");
    web.join("log", None).await.expect("join");
    for i in 1..=5 {
        web.post("log", format!("m{i}")).await.expect("post");
    }
    let caps = "server-time message-tags batch draft/chathistory draft/message-redaction";
    let mut irc = s.user_with("hist", caps).await;
    irc.send("JOIN #log").await;
    irc.expect_line("BATCH -").await;

    irc.send("CHATHISTORY BEFORE #log msgid=log.4 2").await;
    irc.expect_line("BATCH +h2 chathistory #log").await;
    assert!(irc.expect_line("PRIVMSG").await.ends_with(" m2"));
    assert!(irc.expect_line("PRIVMSG").await.ends_with(" m3"));
    irc.expect_line("BATCH -h2").await;

    irc.send("CHATHISTORY AFTER #log msgid=log.3 10").await;
    irc.expect_line("BATCH +h3").await;
    assert!(irc.expect_line("PRIVMSG").await.ends_with(" m4"));
    assert!(irc.expect_line("PRIVMSG").await.ends_with(" m5"));
    irc.expect_line("BATCH -h3").await;

    irc.send("CHATHISTORY LATEST #log * 1").await;
    irc.expect_line("BATCH +h4").await;
    assert!(irc.expect_line("PRIVMSG").await.ends_with(" m5"));

    // A live message posted meanwhile is neither lost nor doubled by the query.
    web.post("log", "live").await.expect("post");
    irc.send("CHATHISTORY BEFORE #log msgid=log.2 5").await;
    irc.expect_line("BATCH -h5").await;
    irc.send("PING :after").await;
    irc.expect_line("PONG").await;
    let live = irc.seen.iter().filter(|l| l.ends_with(" live")).count();
    assert_eq!(live, 1, "{:#?}", irc.seen);

    irc.send("CHATHISTORY AROUND #log msgid=log.2 5").await;
    let fail = irc.expect_line("FAIL CHATHISTORY INVALID_PARAMS").await;
    assert!(fail.contains(":invalid_params: "), "{fail}");

    // The web user deletes a message: REDACT for this client, a notice for a plain one.
    let mut plain = s.user("plain").await;
    plain.send("JOIN #log").await;
    plain.expect_code("366").await;
    web.delete("log", 1).await.expect("delete");
    irc.expect_line(":flack.irc REDACT #log log.1").await;
    let notice = plain.expect_line("[deleted]").await;
    assert!(
        notice.contains("[deleted] message log.1 in #log was deleted by its author"),
        "{notice}"
    );

    // An IRC client deletes its own message with REDACT; someone else's is refused.
    irc.send("PRIVMSG #log :oops").await;
    let oops = posted_text(&mut web, "oops").await;
    irc.send(&format!("REDACT #log log.{}", oops.id)).await;
    irc.expect_line(&format!("REDACT #log log.{}", oops.id))
        .await;
    irc.send("REDACT #log log.2").await;
    let refused = irc.expect_line("FAIL REDACT REDACT_FORBIDDEN").await;
    assert!(refused.contains(":not_author: "), "{refused}");
}
