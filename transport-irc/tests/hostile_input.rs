//! Hostile and broken input over real sockets: invalid UTF-8, a 100 KB line, too many
//! tags, control characters, CTCP, unknown commands, lines irc-proto cannot read. Each is
//! refused with a numeric or notice carrying a stable code, nothing of it reaches the
//! chat, and the connection carries on. Helpers: `common/mod.rs`.

mod common;

use common::*;

/// A web user in `#general` with the IRC user `mallory`, who joined it.
async fn setup(s: &Server) -> (chat_core::Session, Raw) {
    let web = s.web_user("webby").await;
    web.create_channel("general").await.expect("create");
    web.join("general", None).await.expect("join");
    let mut irc = s.user("mallory").await;
    irc.send("JOIN #general").await;
    irc.expect_code("366").await;
    (web, irc)
}

#[tokio::test]
async fn invalid_utf8_and_huge_lines_are_dropped_and_the_connection_kept() {
    let s = server().await;
    let (mut web, mut irc) = setup(&s).await;

    irc.send_raw(b"PRIVMSG #general :caf\xc3\x28\r\n").await;
    let notice = irc.expect_line("invalid_utf8").await;
    assert_eq!(
        notice,
        ":flack.irc NOTICE mallory :invalid_utf8: the line was not valid UTF-8 and was dropped"
    );

    let mut huge = b"PRIVMSG #general :".to_vec();
    huge.extend(std::iter::repeat_n(b'x', 100 * 1024));
    huge.extend_from_slice(b"\r\n");
    irc.send_raw(&huge).await;
    let long = irc.expect_code("417").await;
    assert!(long.contains(":line_too_long: "), "{long}");

    let mut tags = b"@".to_vec();
    tags.extend(std::iter::repeat_n(b'a', 9000));
    tags.extend_from_slice(b" PRIVMSG #general :tagged\r\n");
    irc.send_raw(&tags).await;
    irc.expect_code("417").await;

    // 510 bytes of message is the most IRC allows, and it passes.
    let text = "y".repeat(510 - "PRIVMSG #general :".len());
    irc.send(&format!("PRIVMSG #general :{text}")).await;
    let stored = next_posted(&mut web).await;
    assert_eq!(
        stored.text, text,
        "only the full-size line reached the chat"
    );
}

#[tokio::test]
async fn control_characters_ctcp_and_formatting() {
    let s = server().await;
    let (mut web, mut irc) = setup(&s).await;

    irc.send("PRIVMSG #general :bell\u{7}and\u{1b}[31mescape")
        .await;
    let refused = irc.expect_code("400").await;
    assert!(refused.contains(" PRIVMSG :invalid_text: "), "{refused}");

    irc.send("PRIVMSG webby :\u{1}VERSION\u{1}").await;
    let ctcp = irc.expect_code("400").await;
    assert!(ctcp.contains(":unsupported_ctcp: CTCP VERSION "), "{ctcp}");
    irc.send("PRIVMSG #general :\u{1}DCC SEND x 1 2 3\u{1}")
        .await;
    irc.expect_line("unsupported_ctcp: CTCP DCC").await;

    irc.send("PRIVMSG #general :\u{2}bold\u{2} and \u{3}4red\u{3}")
        .await;
    irc.send("PRIVMSG #general :\u{1}ACTION waves\u{1}").await;
    let plain = next_posted(&mut web).await;
    assert_eq!(plain.text, "bold and red");
    let action = next_posted(&mut web).await;
    assert_eq!(action.text, "/me waves");
}

#[tokio::test]
async fn unknown_and_unreadable_commands_are_numerics_never_chat() {
    let s = server().await;
    let (mut web, mut irc) = setup(&s).await;
    for (line, code, needle) in [
        (
            "FROBNICATE #general :hello",
            "421",
            "FROBNICATE :unknown_command: ",
        ),
        ("KICK #general webby", "421", "KICK :unknown_command: "),
        ("PRIVMSG", "461", "PRIVMSG :need_more_params: "),
        ("JOIN", "461", "JOIN :need_more_params: "),
        (":only.a.prefix", "421", ":unknown_command: "),
        ("\u{0}PRIVMSG #general :nul", "421", ":unknown_command: "),
        ("PRIVMSG #general :", "412", ":empty: "),
    ] {
        irc.send(line).await;
        let refused = irc.expect_code(code).await;
        assert!(refused.contains(needle), "{line:?}: {refused}");
    }
    // Blank lines are ignored; the connection is still fine and nothing was posted.
    irc.send("\r\n   ").await;
    irc.send("PRIVMSG #general :still here").await;
    let first = next_posted(&mut web).await;
    assert_eq!(first.text, "still here", "nothing hostile was posted");
}
