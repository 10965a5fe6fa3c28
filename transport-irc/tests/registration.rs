//! Registering over real sockets: with and without CAP negotiation, with the `irc`
//! crate's client, taken and invalid nicks, PASS with a resume token, and the name
//! mapping of a web user's display name. Helpers: `common/mod.rs`.

mod common;

use common::*;

#[tokio::test]
async fn without_cap_nick_and_user_register() {
    let s = server().await;
    let mut c = s.client().await;
    c.send("NICK dave\r\nUSER root 0 * :root").await;
    let welcome = c.expect_code("001").await;
    assert_eq!(welcome, ":flack.irc 001 dave :Welcome to Flack, dave");
    for code in ["002", "003", "004"] {
        c.expect_code(code).await;
    }
    let isupport = c.expect_code("005").await;
    for token in [
        "CHANTYPES=#",
        "CASEMAPPING=ascii",
        "NICKLEN=96",
        "CHANNELLEN=33",
        "UTF8ONLY",
    ] {
        assert!(isupport.contains(token), "{token}: {isupport}");
    }
    c.expect_code("375").await;
    c.expect_code("376").await;
    let token = c.expect_line("your resume token: ").await;
    assert!(
        token.starts_with(":flack.irc NOTICE dave :your resume token: "),
        "{token}"
    );
}

#[tokio::test]
async fn cap_ls_302_holds_registration_until_cap_end() {
    let s = server().await;
    let mut c = s.client().await;
    // What irssi sends first.
    c.send("CAP LS 302\r\nNICK dave\r\nUSER root 0 * :root")
        .await;
    let ls = c.expect_line(" CAP * LS ").await;
    for cap in [
        "server-time",
        "message-tags",
        "echo-message",
        "batch",
        "draft/chathistory",
        "draft/message-redaction",
    ] {
        assert!(ls.contains(cap), "{cap}: {ls}");
    }
    c.send("CAP REQ :server-time message-tags").await;
    c.expect_line(" CAP * ACK :server-time message-tags").await;
    c.send("PING :early").await;
    let pong = c.expect_line("PONG").await;
    assert_eq!(pong, ":flack.irc PONG flack.irc early");
    assert!(
        !c.seen.iter().any(|l| l.contains(" 001 ")),
        "registered before CAP END: {:?}",
        c.seen
    );
    c.send("CAP END").await;
    c.expect_code("001").await;
    c.send("CAP LIST").await;
    c.expect_line(" CAP dave LIST :server-time message-tags")
        .await;
}

#[tokio::test]
async fn the_irc_crate_registers_and_joins() {
    let s = server().await;
    let (_client, mut stream) = s.library_client("libby", &["#lib"]).await;
    let welcome = library_expect(&mut stream, "001", |m| {
        matches!(
            m.command,
            irc::proto::Command::Response(irc::proto::Response::RPL_WELCOME, _)
        )
    })
    .await;
    assert_eq!(
        welcome.prefix.map(|p| p.to_string()).as_deref(),
        Some("flack.irc")
    );
    let joined = library_expect(
        &mut stream,
        "JOIN",
        |m| matches!(&m.command, irc::proto::Command::JOIN(c, _, _) if c == "#lib"),
    )
    .await;
    assert_eq!(joined.source_nickname(), Some("libby"));
    library_expect(&mut stream, "366", |m| {
        matches!(
            m.command,
            irc::proto::Command::Response(irc::proto::Response::RPL_ENDOFNAMES, _)
        )
    })
    .await;
}

#[tokio::test]
async fn taken_and_invalid_nicks_are_numerics_and_pass_resumes_a_web_user() {
    let s = server().await;
    let web = s.web_user("Ann Lee").await;
    let token = web.token().expose().to_owned();
    drop(web);

    let mut c = s.client().await;
    c.send("NICK a.b").await;
    let bad = c.expect_code("432").await;
    assert!(bad.contains(" 432 * a.b :invalid_nick: "), "{bad}");
    c.send("NICK Ann\\20Lee\r\nUSER ann 0 * :Ann").await;
    let taken = c.expect_code("433").await;
    assert!(taken.contains(" 433 * Ann\\20Lee :name_taken: "), "{taken}");
    c.send("PASS 0123").await;
    let wrong = c.expect_code("464").await;
    assert!(wrong.contains(":invalid_token: "), "{wrong}");
    c.send(&format!("PASS {token}")).await;
    let welcome = c.expect_code("001").await;
    assert_eq!(
        welcome,
        ":flack.irc 001 Ann\\20Lee :Welcome to Flack, Ann\\20Lee"
    );
    c.send("WHOIS Ann\\20Lee").await;
    c.expect_code("318").await;
}

#[tokio::test]
async fn before_registration_nothing_else_is_served_and_nothing_is_chat() {
    let s = server().await;
    let mut c = s.client().await;
    for line in ["JOIN #general", "PRIVMSG #general :hello", "LIST", "FROB"] {
        c.send(line).await;
        let refused = c.expect_code("451").await;
        assert!(refused.contains(":not_registered: "), "{line}: {refused}");
    }
    c.send("QUIT :bye").await;
    let rest = c.expect_eof().await;
    assert_eq!(rest, ["ERROR :Closing link: quit: bye"]);
    assert_eq!(s.engine.stats().await.expect("stats").sessions, 0);
}
