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
