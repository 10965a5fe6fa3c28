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
    engine.shutdown().await;
    let reason = wait_for(&mut alice, |e| match e {
        Event::Disconnected(r) => Some(*r),
        _ => None,
    })
    .await;
    assert_eq!(reason, DisconnectReason::ShuttingDown);
    assert!(alice.post("c", "x").await.is_err());
    assert!(engine.connect(Login::Name("late".into())).await.is_err());
}
