//! Limits over real sockets: flood control (the engine's `message_rate`), a slow consumer
//! dropped without slowing anyone, PING keep-alive and its timeout, the registration
//! timeout, shutdown, and a config `serve` refuses. Helpers: `common/mod.rs`.

mod common;

use std::time::Duration;

use chat_core::{Limits, Rate};
use common::*;
use tokio::net::TcpSocket;
use tokio::time::timeout;
use transport_irc::IrcConfig;

#[tokio::test]
async fn flooding_is_refused_with_the_engines_code_in_order() {
    let mut limits = Limits::default();
    limits.message_rate = Rate::new(3, 0.01);
    let s = Server::start(limits, IrcConfig::default()).await;
    let mut irc = s.user("flood").await;
    irc.send("JOIN #f").await;
    irc.expect_code("366").await;
    let burst: String = (1..=5).map(|i| format!("PRIVMSG #f :m{i}\r\n")).collect();
    irc.send_raw(burst.as_bytes()).await;
    let first = irc.expect_code("400").await;
    assert!(first.contains(" PRIVMSG :rate_limited: "), "{first}");
    irc.expect_code("400").await;
    irc.send("PING :done").await;
    irc.expect_line("PONG").await;
}

#[tokio::test]
async fn a_slow_consumer_is_dropped_and_the_others_are_served() {
    let mut limits = limits();
    limits.session_queue_hard_bytes = 64 * 1024;
    limits.session_queue_soft_bytes = 32 * 1024;
    limits.session_queue_soft_grace = Duration::from_millis(100);
    let s = Server::start(limits, IrcConfig::default()).await;
    let mut web = s.web_user("poster").await;
    web.create_channel("general").await.expect("create");
    web.join("general", None).await.expect("join");

    let socket = TcpSocket::new_v4().expect("socket");
    socket.set_recv_buffer_size(4096).expect("rcvbuf");
    let stream = timeout(WAIT, socket.connect(s.addr))
        .await
        .expect("in time")
        .expect("connect");
    let mut slow = Raw::over(stream);
    slow.send("NICK slow\r\nUSER slow 0 * :slow\r\nJOIN #general")
        .await;
    slow.expect_code("366").await;
    // From here on the slow client reads nothing.

    let mut good = s.user("good").await;
    good.send("JOIN #general").await;
    good.expect_code("366").await;
    let long = "z".repeat(3000);
    let mut dropped = false;
    for i in 0..2000 {
        // Split over several IRC lines; its last line is `end{i}`.
        web.post("general", format!("{long}\nend{i}"))
            .await
            .expect("post");
        // The poster reads its own events, so that it is not the slow one.
        while web.try_next_event().is_some() {}
        let end = format!(" end{i}");
        let line = good
            .expect("the message or the slow client leaving", |l| {
                l.ends_with(&end) || l == ":slow!u2@flack PART #general offline"
            })
            .await;
        if line.ends_with("offline") {
            dropped = true;
            break;
        }
    }
    assert!(dropped, "the slow client was never dropped");
    good.send("PRIVMSG #general :still here").await;
    good.send("PING :x").await;
    good.expect_line("PONG").await;
}

#[tokio::test]
async fn idle_clients_are_pinged_then_dropped_and_late_registration_too() {
    let mut config = IrcConfig::default();
    config.ping_interval = Duration::from_millis(200);
    config.ping_timeout = Duration::from_millis(300);
    config.registration_timeout = Duration::from_millis(300);
    let s = Server::start(limits(), config).await;

    let mut answers = s.user("answers").await;
    let ping = answers.expect_line("PING").await;
    assert_eq!(ping, "PING flack.irc");
    answers.send("PONG flack.irc").await;
    answers.expect_line("PING").await;

    let mut silent = s.user("silent").await;
    silent.expect_line("PING").await;
    let rest = silent.expect_eof().await;
    assert_eq!(
        rest.last().map(String::as_str),
        Some("ERROR :Closing link: ping_timeout: no reply to PING within 0.3 s")
    );

    let mut late = s.client().await;
    late.send("NICK late").await;
    let rest = late.expect_eof().await;
    assert_eq!(
        rest.last().map(String::as_str),
        Some("ERROR :Closing link: registration_timeout: register (NICK and USER) sooner")
    );
}

#[tokio::test]
async fn shutdown_sends_error_and_serve_returns() {
    let mut s = server().await;
    let mut a = s.user("a").await;
    let mut b = s.client().await;
    s.shutdown.cancel();
    let rest = a.expect_eof().await;
    assert_eq!(
        rest.last().map(String::as_str),
        Some("ERROR :Closing link: shutting_down: server shutting down")
    );
    b.expect_eof().await;
    let task = s.task.take().expect("task");
    let served = timeout(WAIT, task)
        .await
        .expect("serve returns")
        .expect("no panic");
    assert_eq!(served, Ok(()));
}

#[tokio::test]
async fn an_invalid_config_is_refused_at_start_up() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let engine = chat_core::Engine::builder().start().await.expect("engine");
    let mut config = IrcConfig::default();
    config.ping_timeout = Duration::ZERO;
    let refused = transport_irc::serve(
        listener,
        engine.clone(),
        config,
        tokio_util::sync::CancellationToken::new(),
    )
    .await
    .expect_err("a zero ping timeout");
    assert_eq!(refused.name, "ping_timeout");
    engine.shutdown().await;
}

/// One address holds at most `max_connections_per_address` IRC connections at once; one
/// more is told why in an `ERROR` and closed, and the ones it has go on.
#[tokio::test]
async fn one_address_is_capped_in_connections() {
    let mut config = IrcConfig::default();
    config.max_connections_per_address = 2;
    let s = Server::start(limits(), config).await;
    let mut first = s.user("cap1").await;
    let _second = s.user("cap2").await;
    let lines = s.client().await.expect_eof().await;
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("ERROR :Closing link: too_many_connections")),
        "{lines:?}"
    );
    first.send("PING :still").await;
    first.expect_line("PONG").await;
}

/// New connections from one address come at most at `connect_rate_per_address`.
#[tokio::test]
async fn one_address_is_rate_limited_in_new_connections() {
    let mut config = IrcConfig::default();
    config.connect_rate_per_address = Rate::new(2, 0.01);
    let s = Server::start(limits(), config).await;
    let _first = s.user("rate1").await;
    let _second = s.user("rate2").await;
    let lines = s.client().await.expect_eof().await;
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("ERROR :Closing link: rate_limited")),
        "{lines:?}"
    );
}

/// New users registered over IRC count against the engine's `login_rate_per_address`,
/// as on the other transports: a script cannot register names through IRC faster.
#[tokio::test]
async fn new_users_from_one_address_are_rate_limited() {
    let mut limits = limits();
    limits.login_rate_per_address = Rate::new(2, 0.01);
    let s = Server::start(limits, IrcConfig::default()).await;
    let _first = s.user("new1").await;
    let _second = s.user("new2").await;
    let mut third = s.client().await;
    third.send("NICK new3\r\nUSER new3 0 * :new3").await;
    let refused = third
        .expect("the refusal", |l| l.contains("rate_limited"))
        .await;
    assert!(refused.contains("login_rate_per_address"), "{refused}");
    // Nothing was registered: the name is free for someone else.
    s.engine
        .connect(chat_core::Login::Name("new3".into()))
        .await
        .expect("new3 was not taken by the refused registration");
}
