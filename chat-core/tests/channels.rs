//! Channels through the engine's public API: creating them (validated, unique
//! case-insensitively, one winner under contention, by a user or by the server), the
//! channel list and its live updates, and the errors of joining or posting where one
//! cannot.

mod common;

use chat_core::Event;
use common::*;

#[tokio::test]
async fn channels_are_validated_unique_and_listed() {
    let engine = engine().await;
    let alice = user(&engine, "alice").await;
    let created = alice.create_channel("#Rust").await.unwrap();
    assert_eq!(created.name.as_str(), "Rust");
    assert_eq!(
        alice.create_channel("rust").await.unwrap_err().code(),
        "channel_exists"
    );
    assert_eq!(
        alice.create_channel("no spaces").await.unwrap_err().code(),
        "invalid_channel_name"
    );
    alice.create_channel("general").await.unwrap();
    alice.join("general", None).await.unwrap();
    alice.post("general", "first").await.unwrap();

    let list = engine.channels().await.unwrap();
    let names: Vec<&str> = list.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["general", "Rust"], "sorted case-insensitively");
    let general = &list[0];
    assert_eq!(general.members, 1);
    assert!(general.last_activity >= general.created_at);
    assert_eq!(list[1].members, 0);
    assert_eq!(alice.list_channels().await.unwrap(), list);
}

#[tokio::test]
async fn the_server_itself_can_create_channels() {
    let engine = engine().await;
    let mut alice = user(&engine, "alice").await;
    let info = engine.create_channel("general").await.unwrap();
    assert_eq!(info.name.as_str(), "general");
    assert_eq!(
        engine.create_channel("GENERAL").await.unwrap_err().code(),
        "channel_exists"
    );
    let created = wait_for(&mut alice, |e| match e {
        Event::ChannelCreated(info) => Some(info.name.to_string()),
        _ => None,
    })
    .await;
    assert_eq!(created, "general");
    alice.join("general", None).await.unwrap();
}

#[tokio::test]
async fn concurrent_creation_of_one_name_has_exactly_one_winner() {
    let engine = engine().await;
    let mut tasks = Vec::new();
    for i in 0..40 {
        let engine = engine.clone();
        tasks.push(tokio::spawn(async move {
            let s = user(&engine, &format!("user{i}")).await;
            let name = if i % 2 == 0 { "Lobby" } else { "lobby" };
            s.create_channel(name).await.map(|_| ())
        }));
    }
    let mut wins = 0;
    for t in tasks {
        match t.await.unwrap() {
            Ok(()) => wins += 1,
            Err(e) => assert_eq!(e.code(), "channel_exists"),
        }
    }
    assert_eq!(wins, 1);
    assert_eq!(engine.channels().await.unwrap().len(), 1);
}

#[tokio::test]
async fn creating_a_channel_tells_every_connected_session() {
    let engine = engine().await;
    let alice = user(&engine, "alice").await;
    let mut bob = user(&engine, "bob").await;
    let mut carol = user(&engine, "carol").await;
    alice.create_channel("news").await.unwrap();
    for s in [&mut bob, &mut carol] {
        let info = wait_for(s, |e| match e {
            Event::ChannelCreated(info) => Some(info.clone()),
            _ => None,
        })
        .await;
        assert_eq!(info.name.as_str(), "news");
    }
}

#[tokio::test]
async fn joining_an_unknown_channel_and_posting_unjoined_are_errors() {
    let engine = engine().await;
    let alice = user(&engine, "alice").await;
    assert_eq!(
        alice.join("nowhere", None).await.unwrap_err().code(),
        "no_such_channel"
    );
    alice.create_channel("here").await.unwrap();
    assert_eq!(
        alice.post("here", "hi").await.unwrap_err().code(),
        "not_joined"
    );
    assert_eq!(alice.leave("here").await.unwrap_err().code(), "not_joined");
}

#[tokio::test]
async fn a_joined_channel_is_found_however_a_post_spells_it() {
    let engine = engine().await;
    let (alice, _bob) = alice_and_bob_in(&engine, "Rust-Talk").await;
    for spelling in ["Rust-Talk", "rust-talk", "#RUST-TALK", " rust-Talk "] {
        let posted = alice.post(spelling, "hi").await.unwrap();
        assert_eq!(posted.room.label_for(alice.user().id), "Rust-Talk");
    }
    // An owned target and text are taken as they are.
    let posted = alice
        .post(String::from("#rust-talk"), String::from("owned"))
        .await;
    assert_eq!(posted.unwrap().text, "owned");
    assert_eq!(
        alice.post("rust_talk", "hi").await.unwrap_err().code(),
        "not_joined"
    );
    assert_eq!(
        alice.post("rust talk", "hi").await.unwrap_err().code(),
        "invalid_channel_name"
    );
}
