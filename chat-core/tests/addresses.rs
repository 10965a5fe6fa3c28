//! What one address may cost the server (issue 22): new users per address
//! (`Limits::login_rate_per_address`, through `Engine::connect_from`) and the users the
//! server keeps (`Limits::max_users`). Each refusal is a clear error, and a refused login
//! changes nothing: the name stays free, nobody is forgotten, everyone else is served.

mod common;

use std::net::IpAddr;
use std::time::Duration;

use chat_core::{ChatError, Limits, Login, Rate};
use common::*;

fn ip(s: &str) -> IpAddr {
    s.parse().expect("an address")
}

fn limits(login_rate: Rate) -> Limits {
    let mut limits = Limits::default();
    limits.login_rate_per_address = login_rate;
    limits.message_rate = Rate::new(1000, 1000.0);
    limits
}

#[tokio::test]
async fn new_users_from_one_address_are_throttled_and_nobody_else_is() {
    // Three at once, then (practically) never again.
    let engine = engine_with(limits(Rate::new(3, 0.001))).await;
    let script = ip("192.0.2.1");
    let mut made = Vec::new();
    for i in 0..3 {
        let name = format!("bot{i}");
        made.push(
            engine
                .connect_from(Login::Name(name), script)
                .await
                .expect("within the burst"),
        );
    }
    let refused = engine
        .connect_from(Login::Name("bot3".into()), script)
        .await
        .expect_err("past the burst");
    let ChatError::RateLimited { limit, retry_after } = &refused else {
        panic!("{refused:?}");
    };
    assert_eq!(*limit, "login_rate_per_address");
    assert!(*retry_after > Duration::from_secs(60), "{retry_after:?}");
    assert_eq!(refused.code(), "rate_limited");
    assert!(
        refused
            .to_string()
            .contains("login_rate_per_address allows another one in"),
        "{refused}"
    );

    // Another address, and an embedder with no address, are served; the refused name was
    // not taken.
    let other = engine
        .connect_from(Login::Name("bot3".into()), ip("192.0.2.2"))
        .await
        .expect("another address");
    assert_eq!(&*other.user().name, "bot3");
    user(&engine, "embedded").await;

    // Returning is not counted: every user of the throttled address resumes.
    let tokens: Vec<String> = made.iter().map(|s| s.token().expose().to_owned()).collect();
    drop(made);
    for token in tokens {
        engine
            .connect_from(Login::Resume(token), script)
            .await
            .expect("a resume is never refused for its address");
    }
    // What was made before the refusal still works.
    other.create_channel("c").await.expect("the engine serves");
}

#[tokio::test]
async fn the_bucket_refills_at_the_configured_rate() {
    let engine = engine_with(limits(Rate::new(1, 20.0))).await;
    let from = ip("198.51.100.7");
    engine
        .connect_from(Login::Name("a".into()), from)
        .await
        .expect("first");
    let Err(ChatError::RateLimited { retry_after, .. }) =
        engine.connect_from(Login::Name("b".into()), from).await
    else {
        panic!("the second at once is refused");
    };
    assert!(retry_after <= Duration::from_millis(50), "{retry_after:?}");
    tokio::time::sleep(retry_after + Duration::from_millis(5)).await;
    engine
        .connect_from(Login::Name("b".into()), from)
        .await
        .expect("after retry_after");
}

#[tokio::test]
async fn an_ipv6_host_counts_by_its_64_and_an_invalid_name_costs_nothing() {
    let engine = engine_with(limits(Rate::new(1, 0.001))).await;
    let invalid = engine
        .connect_from(Login::Name("   ".into()), ip("2001:db8::1"))
        .await
        .expect_err("an empty name");
    assert_eq!(invalid.code(), "invalid_name");
    engine
        .connect_from(Login::Name("first".into()), ip("2001:db8::1"))
        .await
        .expect("the invalid name took no token");
    let same_64 = engine
        .connect_from(Login::Name("second".into()), ip("2001:db8::ffff:2"))
        .await
        .expect_err("another address of the same /64");
    assert_eq!(same_64.code(), "rate_limited");
    engine
        .connect_from(Login::Name("second".into()), ip("2001:db8:0:1::1"))
        .await
        .expect("another /64");
}

#[tokio::test]
async fn with_every_user_live_a_new_name_gets_server_full_and_nothing_is_lost() {
    let mut limits = Limits::default();
    limits.max_users = 3;
    let engine = engine_with(limits).await;
    let a = user(&engine, "a").await;
    let b = user(&engine, "b").await;
    let c = user(&engine, "c").await;
    let b_token = b.token().expose().to_owned();
    drop(b); // gone, but holding the name

    let full = engine
        .connect(Login::Name("d".into()))
        .await
        .expect_err("a fourth user");
    assert_eq!(full, ChatError::TooManyUsers(3));
    assert_eq!(full.code(), "server_full");
    assert!(
        full.to_string().contains("keeps 3 users"),
        "a clear message: {full}"
    );

    // Nobody was forgotten: the user who left comes back with their name, the others
    // keep chatting, and the name "b" is still held.
    let back = engine
        .connect(Login::Resume(b_token))
        .await
        .expect("resume");
    assert_eq!(&*back.user().name, "b");
    a.create_channel("still-here").await.expect("a is served");
    c.join("still-here", None).await.expect("c is served");
    let taken = engine.connect(Login::Name("B".into())).await.unwrap_err();
    assert_eq!(taken.code(), "name_taken");
}

#[tokio::test]
async fn an_expired_hold_makes_room_for_a_new_name() {
    let mut limits = Limits::default();
    limits.max_users = 2;
    limits.name_hold = Duration::from_millis(200);
    let engine = engine_with(limits).await;
    let _online = user(&engine, "online").await;
    let gone = user(&engine, "gone").await;
    let token = gone.token().expose().to_owned();
    drop(gone);

    // Refused while the hold lasts, accepted once it has expired.
    let deadline = tokio::time::Instant::now() + PATIENCE;
    let newcomer = loop {
        match engine.connect(Login::Name("newcomer".into())).await {
            Ok(session) => break session,
            Err(ChatError::TooManyUsers(2)) if tokio::time::Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(20)).await
            }
            Err(e) => panic!("{e}"),
        }
    };
    assert_eq!(&*newcomer.user().name, "newcomer");
    let expired = engine.connect(Login::Resume(token)).await.unwrap_err();
    assert_eq!(expired.code(), "invalid_token", "the expired user went");
    // Still at the cap, with both users live: the next new name is refused again.
    let full = engine.connect(Login::Name("third".into())).await;
    assert_eq!(full.unwrap_err(), ChatError::TooManyUsers(2));
}
