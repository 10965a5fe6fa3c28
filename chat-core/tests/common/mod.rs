//! Helpers shared by the engine's integration tests: connecting users and waiting for
//! events with a deadline (never a fixed sleep); `redis_server` (feature `redis`) runs a
//! real `redis-server` for a test.

#![allow(dead_code)]

pub mod hooked;
#[cfg(feature = "redis")]
pub mod redis_server;
#[cfg(feature = "sqlite")]
pub mod sqlite;

use std::sync::Arc;
use std::time::Duration;

use chat_core::{ChatMessage, Engine, Event, Limits, Login, PresenceChange, Session};

/// Long enough for a loaded CI machine, short enough to fail fast.
pub const PATIENCE: Duration = Duration::from_secs(10);

pub async fn engine() -> Engine {
    engine_with(Limits::default()).await
}

pub async fn engine_with(limits: Limits) -> Engine {
    Engine::builder()
        .limits(limits)
        .start()
        .await
        .expect("engine starts")
}

pub async fn user(engine: &Engine, name: &str) -> Session {
    engine
        .connect(Login::Name(name.into()))
        .await
        .unwrap_or_else(|e| panic!("{name} connects: {e}"))
}

/// Users alice and bob, both in channel `channel`, which alice created.
pub async fn alice_and_bob_in(engine: &Engine, channel: &str) -> (Session, Session) {
    let alice = user(engine, "alice").await;
    let bob = user(engine, "bob").await;
    alice.create_channel(channel).await.unwrap();
    alice.join(channel, None).await.unwrap();
    bob.join(channel, None).await.unwrap();
    (alice, bob)
}

/// The next event matching `pick`, skipping others; panics after `PATIENCE`.
pub async fn wait_for<T>(session: &mut Session, mut pick: impl FnMut(&Event) -> Option<T>) -> T {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        let event = tokio::time::timeout_at(deadline, session.next_event())
            .await
            .unwrap_or_else(|_| panic!("{} waited too long for an event", session.user().name));
        let Some(event) = event else {
            panic!("{}'s session ended while waiting", session.user().name)
        };
        if let Some(found) = pick(&event) {
            return found;
        }
    }
}

/// The changes of `name`'s presence an event carries, in order: a presence batch may
/// carry several, and other events none.
pub fn presence_of(event: &Event, name: &str) -> Vec<PresenceChange> {
    match event {
        Event::PresenceBatch(batch) => batch
            .changes
            .iter()
            .filter(|(user, _)| &*user.name == name)
            .map(|(_, change)| *change)
            .collect(),
        _ => Vec::new(),
    }
}

/// The next posted message, skipping other events.
pub async fn next_message(session: &mut Session) -> Arc<ChatMessage> {
    wait_for(session, |e| match e {
        Event::Posted(m) => Some(m.clone()),
        _ => None,
    })
    .await
}

/// Asserts that no event matching `pick` arrives within a short while. Used only for
/// "must not happen" checks, after a positive event proved delivery has happened.
pub async fn assert_none(session: &mut Session, what: &str, mut pick: impl FnMut(&Event) -> bool) {
    let quiet = tokio::time::sleep(Duration::from_millis(300));
    tokio::pin!(quiet);
    loop {
        tokio::select! {
            _ = &mut quiet => return,
            event = session.next_event() => match event {
                Some(e) if pick(&e) => panic!("{} got {what}: {e:?}", session.user().name),
                Some(_) => continue,
                None => return,
            }
        }
    }
}
