//! The engine's room workers: many channels with traffic at once on a multi-worker
//! engine, and every one of them serves.

mod common;

use std::collections::HashSet;

use chat_core::Engine;
use common::*;

#[tokio::test]
async fn the_engine_spreads_channels_over_its_workers() {
    // Many channels with traffic at once on a multi-worker engine: every one serves.
    let engine = Engine::builder().room_workers(4).start().await.unwrap();
    let mut sessions = Vec::new();
    for i in 0..12 {
        let s = user(&engine, &format!("u{i}")).await;
        s.create_channel(&format!("room{i}")).await.unwrap();
        s.join(format!("room{i}").as_str(), None).await.unwrap();
        sessions.push(s);
    }
    let mut seen = HashSet::new();
    for (i, s) in sessions.iter_mut().enumerate() {
        s.post(format!("room{i}").as_str(), "hello").await.unwrap();
        let m = next_message(s).await;
        seen.insert(m.room.label_for(s.user().id));
    }
    assert_eq!(seen.len(), 12);
}
