//! Recovery through the engine's public API: a session that comes back with the last id
//! it saw gets exactly the messages and deletions it missed, or a gap when they were
//! evicted.

mod common;

use chat_core::{Limits, Login, Rate};
use common::*;

#[tokio::test]
async fn a_reconnecting_session_gets_exactly_what_it_missed_or_a_gap() {
    let engine = engine_with({
        let mut limits = Limits::default();
        limits.history = 10;
        limits.message_rate = Rate::new(1000, 1000.0);
        limits
    })
    .await;
    let alice = user(&engine, "alice").await;
    alice.create_channel("c").await.unwrap();
    alice.join("c", None).await.unwrap();
    let bob = user(&engine, "bob").await;
    bob.join("c", None).await.unwrap();
    for i in 1..=3 {
        alice.post("c", &format!("m{i}")).await.unwrap();
    }
    let bob_token = bob.token().expose().to_owned();
    drop(bob); // bob saw up to id 3
    for i in 4..=6 {
        alice.post("c", &format!("m{i}")).await.unwrap();
    }
    alice.delete("c", 2).await.unwrap();

    let bob = engine
        .connect(Login::Resume(bob_token.clone()))
        .await
        .unwrap();
    let back = bob.join("c", Some(3)).await.unwrap();
    assert!(!back.gap);
    assert_eq!(
        back.messages.iter().map(|m| m.id).collect::<Vec<_>>(),
        [4, 5, 6]
    );
    assert_eq!(back.deleted, [2], "told about the deletion it missed");
    drop(bob);

    for i in 7..=30 {
        alice.post("c", &format!("m{i}")).await.unwrap();
    }
    let bob = engine.connect(Login::Resume(bob_token)).await.unwrap();
    let back = bob.join("c", Some(6)).await.unwrap();
    assert!(back.gap, "7..=20 were evicted");
    assert_eq!(
        back.messages.iter().map(|m| m.id).collect::<Vec<_>>(),
        (21..=30).collect::<Vec<_>>()
    );
}
