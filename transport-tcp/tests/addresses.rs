//! What one address may cost over the line protocol (issue 22): new users per address
//! (the engine's `login_rate_per_address`), connections per address and their rate
//! (`TcpConfig::max_connections_per_address`, `TcpConfig::connect_rate_per_address`).
//! Each refusal is one clear line; nothing already made is lost, and other addresses are
//! served throughout. Helpers: `common/mod.rs`.

mod common;

use std::time::{Duration, Instant};

use chat_core::Rate;
use common::*;

/// Logs in as `name` on a fresh connection from 127.0.0.1: the answer line (and, for a
/// new user, the token), and the client (still connected).
async fn try_register(s: &Server, name: &str) -> (String, Option<String>, Client) {
    let mut c = s.client().await;
    c.expect_line("= pick a display name").await;
    c.send(name).await;
    let answer = c
        .expect("an answer to the name", |l| {
            l.starts_with("= welcome, ") || l.starts_with("! ")
        })
        .await;
    let mut token = None;
    if answer.starts_with("= welcome, ") {
        let line = c.expect_line("= your resume token: ").await;
        token = line
            .strip_prefix("= your resume token: ")
            .and_then(|rest| rest.split_whitespace().next())
            .map(str::to_owned);
    }
    (answer, token, c)
}

#[tokio::test]
async fn a_script_registering_users_as_fast_as_it_can_is_held_to_the_rate() {
    const BURST: u32 = 5;
    const PER_SECOND: f64 = 0.5;
    let mut limits = limits();
    limits.login_rate_per_address = Rate::new(BURST, PER_SECOND);
    let s = Server::start(limits, config()).await;

    // The script: a new connection and a new name, as fast as it can.
    let started = Instant::now();
    let (mut made, mut tokens, mut refusals) = (Vec::new(), Vec::new(), Vec::new());
    for i in 0..30 {
        match try_register(&s, &format!("bot{i}")).await {
            (_, Some(token), client) => {
                made.push(client);
                tokens.push(token);
            }
            (refusal, None, _) => refusals.push(refusal),
        }
    }
    let refilled = (started.elapsed().as_secs_f64() * PER_SECOND).floor() as usize;
    assert!(
        made.len() >= BURST as usize && made.len() <= BURST as usize + refilled,
        "{} users made in {:?}",
        made.len(),
        started.elapsed()
    );
    assert!(!refusals.is_empty());
    for refusal in &refusals {
        assert!(
            refusal.starts_with(
                "! error rate_limited: slow down: login_rate_per_address allows another one in "
            ),
            "a clear refusal: {refusal}"
        );
    }

    // Others are served meanwhile: another address registers, and the throttled address
    // still resumes (it keeps nothing new).
    let mut other = client_from(s.addr, "127.0.0.2").await;
    other.expect_line("= pick a display name").await;
    other.send("human").await;
    other.expect_line("= welcome, human").await;
    let mut first = made.remove(0);
    first.send("/create made").await;
    first.expect_line("+ #made created").await;
    let mut back = s.client().await;
    back.expect_line("= pick a display name").await;
    back.send(&format!("/resume {}", tokens[0])).await;
    back.expect_line("= welcome back, bot0").await;
    // Nothing made before the refusals was lost.
    for bot in &mut made {
        bot.send("/list").await;
        bot.expect_line("= channels: 1").await;
    }
}

#[tokio::test]
async fn the_connection_cap_per_address_refuses_the_next_one_with_a_clear_line() {
    let mut config = config();
    config.max_connections_per_address = 2;
    let s = Server::start(limits(), config).await;
    let mut first = s.client().await;
    first.expect_line("= pick a display name").await;
    let mut second = s.user("second").await;

    let mut third = s.client().await;
    let lines = third.expect_eof().await;
    assert_eq!(
        lines,
        [
            "! closed too_many_connections: your address has 2 connections open, the most \
          allowed (max_connections_per_address); close one first"
        ]
    );
    // Another address is served, and the two open connections still are.
    let mut other = client_from(s.addr, "127.0.0.2").await;
    other.expect_line("= pick a display name").await;
    second.send("/list").await;
    second.expect_line("= no channels yet").await;

    // A connection that ends gives its place back.
    first.send("/quit").await;
    first.expect_eof().await;
    let deadline = Instant::now() + WAIT;
    loop {
        let mut again = s.client().await;
        let line = again
            .expect("the greeting or a refusal", |l| {
                l.starts_with("= pick a display name") || l.starts_with("! ")
            })
            .await;
        if line.starts_with("= pick a display name") {
            break;
        }
        assert!(line.starts_with("! closed too_many_connections"), "{line}");
        assert!(Instant::now() < deadline, "the place was never given back");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn connections_faster_than_the_rate_are_told_when_to_retry_and_closed() {
    let mut config = config();
    config.connect_rate_per_address = Rate::new(2, 0.01);
    let s = Server::start(limits(), config).await;
    for _ in 0..2 {
        s.client().await.expect_line("= pick a display name").await;
    }
    let mut refused = s.client().await;
    let lines = refused.expect_eof().await;
    assert_eq!(lines.len(), 1, "{lines:?}");
    let prefix = "! closed rate_limited: too many new connections from your address \
                  (connect_rate_per_address); try again in ";
    let ms = lines[0]
        .strip_prefix(prefix)
        .and_then(|rest| rest.strip_suffix(" ms"))
        .unwrap_or_else(|| panic!("a clear line: {}", lines[0]));
    let ms: u64 = ms.parse().expect("a number of milliseconds");
    assert!(ms > 90_000 && ms <= 100_000, "{ms} ms");
    // Another address has a bucket of its own.
    let mut other = client_from(s.addr, "127.0.0.2").await;
    other.expect_line("= pick a display name").await;
}
