//! Shutting the engine down: every session is told and disconnected, and new ones are
//! refused.

mod common;

use chat_core::{DisconnectReason, Event, Login};
use common::*;

#[tokio::test]
async fn shutdown_disconnects_every_session_and_refuses_new_ones() {
    let engine = engine().await;
    let mut alice = user(&engine, "alice").await;
    alice.create_channel("c").await.unwrap();
    alice.join("c", None).await.unwrap();
    let health = engine.health().await;
    assert!(health.ready() && health.store_reachable && !health.shutting_down);
    engine.shutdown().await;
    // A readiness probe now sends traffic elsewhere.
    let health = engine.health().await;
    assert!(health.shutting_down && !health.ready(), "{health:?}");
    let reason = wait_for(&mut alice, |e| match e {
        Event::Disconnected(r) => Some(*r),
        _ => None,
    })
    .await;
    assert_eq!(reason, DisconnectReason::ShuttingDown);
    assert!(alice.post("c", "x").await.is_err());
    assert!(engine.connect(Login::Name("late".into())).await.is_err());
}
