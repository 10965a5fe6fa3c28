//! Logging in over TCP: the greeting, `/help`, what works before login, picking a name,
//! taken names and resume tokens. Helpers: `common/mod.rs`.

mod common;

use common::*;

#[tokio::test]
async fn greeting_login_and_session_commands() {
    let s = server().await;
    let mut c = s.client().await;
    let greeting = c.expect_line("= welcome to the chat").await;
    assert!(greeting.contains("/help"), "{greeting}");
    let epoch = c.expect_line("= server epoch ").await;
    assert!(epoch.contains(s.engine.epoch()), "{epoch}");
    assert!(epoch.contains("old ids and token may not work"), "{epoch}");

    c.send("/help").await;
    for cmd in [
        "/nick", "/resume", "/list", "/create", "/join", "/part", "/who", "/msg", "/delete",
        "/quit",
    ] {
        c.expect(cmd, |l| l.starts_with("=   ") && l.contains(cmd))
            .await;
    }

    // Before login only /help, /nick, /resume, /quit and a plain name work.
    c.send("/list").await;
    c.expect_error("not_logged_in").await;
    c.send("/join general").await;
    c.expect_error("not_logged_in").await;
    c.send("/frobnicate").await;
    c.expect_error("unknown_command").await;
    c.send("/nick").await;
    c.expect_error("usage").await;
    c.send("/nick @alice").await;
    c.expect_error("invalid_name").await;

    c.send("/nick alice").await;
    c.expect_line("= welcome, alice").await;
    let token_line = c.expect_line("= your resume token: ").await;
    assert!(token_line.contains("/resume "), "{token_line}");
    c.expect_line("= /list shows the channels").await;

    c.send("/nick alicia").await;
    c.expect_error("rename_unsupported").await;
    c.send("/resume 0123").await;
    c.expect_error("already_logged_in").await;
    c.send("/unknown thing").await;
    let line = c.expect_error("unknown_command").await;
    assert!(line.contains("/unknown"), "{line}");
    c.send("/join").await;
    c.expect_error("usage").await;
    c.send("/delete nine").await;
    c.expect_error("usage").await;
    c.send("/msg bob").await;
    c.expect_error("usage").await;

    // The token is printed once: nothing else shows it.
    c.send("/quit").await;
    let rest = c.expect_eof().await;
    assert!(rest.contains(&"= bye".to_string()), "{rest:?}");
    let token = token_line
        .trim_start_matches("= your resume token: ")
        .split(' ')
        .next()
        .unwrap()
        .to_owned();
    assert_eq!(
        c.seen.iter().filter(|l| l.contains(&token)).count(),
        1,
        "{:?}",
        c.seen
    );
}

#[tokio::test]
async fn taken_names_and_resume_tokens() {
    let s = server().await;
    let mut alice = s.client().await;
    alice.expect_line("= pick a display name").await;
    alice.send("alice").await;
    alice.expect_line("= welcome, alice").await;
    let token_line = alice.expect_line("= your resume token: ").await;
    let token = token_line
        .trim_start_matches("= your resume token: ")
        .split(' ')
        .next()
        .expect("token")
        .to_owned();
    assert_eq!(token.len(), 32, "{token_line}");

    let mut other = s.client().await;
    other.expect_line("= pick a display name").await;
    other.send("ALICE").await;
    other.expect_error("name_taken").await;
    other.send("/resume not-a-token").await;
    other.expect_error("invalid_token").await;
    other.send("carol").await;
    other.expect_line("= welcome, carol").await;

    alice.send("/quit").await;
    alice.expect_eof().await;

    let mut back = s.client().await;
    back.expect_line("= pick a display name").await;
    back.send(&format!("/resume {token}")).await;
    back.expect_line("= welcome back, alice").await;
    back.send("/help").await;
    back.expect_line("= commands:").await;
    assert!(
        !back.seen.iter().any(|l| l.contains(&token)),
        "a resumed login does not print the token again: {:?}",
        back.seen
    );
}

/// Issue 23: an IRC client pointed at the line port (irssi sends `CAP LS 302`, then NICK
/// and USER) is told where IRC is served, in IRC's `ERROR` form, and closed; none of its
/// lines becomes a display name or a chat line.
#[tokio::test]
async fn an_irc_client_is_sent_to_the_irc_port_and_registers_nothing() {
    let mut config = transport_tcp::TcpConfig::default();
    config.irc_address = Some("127.0.0.1:6667".into());
    let s = Server::start(limits(), config).await;
    for first in [
        "CAP LS 302",
        "NICK dave",
        "USER root 0 * :root",
        "PASS hunter2",
    ] {
        let mut irc = s.client().await;
        irc.expect_line("= pick a display name").await;
        irc.send_raw(format!("{first}\r\nNICK dave\r\nUSER root 0 * :root\r\nPRIVMSG #general :hello\r\nQUIT :bye\r\n").as_bytes())
            .await;
        let rest = irc.expect_eof().await;
        assert_eq!(
            rest,
            ["ERROR :this is the plain-text port; IRC clients connect to 127.0.0.1:6667"],
            "{first}"
        );
    }
    // Nothing was registered: dave, root and the CAP line are free names.
    let mut dave = s.user("dave").await;
    dave.send("/quit").await;
    s.user("root").await;
    let stats = s.engine.stats().await.expect("stats");
    assert_eq!(stats.sessions, 1, "only root is connected: {stats:?}");

    // Without an IRC port to name, the line says so.
    let plain = server().await;
    let mut irc = plain.client().await;
    irc.send("CAP LS 302").await;
    let rest = irc.expect_eof().await;
    assert_eq!(
        rest.last().map(String::as_str),
        Some("ERROR :this is the plain-text port; this server has no IRC port")
    );
}

#[tokio::test]
async fn logout_ends_every_connection_of_the_user_and_frees_the_name() {
    let s = server().await;
    let mut web = s.web_user("dana").await;
    let token = web.token().expose().to_owned();
    let mut c = s.client().await;
    c.send(&format!("/resume {token}")).await;
    c.expect_line("= welcome back, dana").await;

    c.send("/logout").await;
    c.expect_line("= logged out").await;
    c.expect_line("! closed logged_out").await;
    c.expect_eof().await;
    let reason = common::disconnect_reason(&mut web).await;
    assert_eq!(reason.code(), "logged_out");

    let mut again = s.client().await;
    again.send(&format!("/resume {token}")).await;
    again.expect_error("invalid_token").await;
    again.send("dana").await;
    again.expect_line("= welcome, dana").await;
}
