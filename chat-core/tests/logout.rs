//! Logging out, in every store: the user's sessions everywhere end with
//! `Disconnected(LoggedOut)`, their token no longer resumes, their name is free at once
//! (no hold), and what they posted stays.
//!
//! The Redis test starts a real `redis-server`; without one it says so loudly and skips
//! (under `CI=true` it fails instead).

mod common;

use chat_core::{DisconnectReason, Engine, Event, Limits, Login, Session};
use common::*;

async fn disconnected(session: &mut Session) -> DisconnectReason {
    wait_for(session, |e| match e {
        Event::Disconnected(reason) => Some(*reason),
        _ => None,
    })
    .await
}

/// Alice, on `a` and on `b` (the same engine for one node), logs out from `a`; returns
/// nothing once every promise of a log-out held.
async fn log_out_everywhere(a: &Engine, b: &Engine) {
    let alice = user(a, "alice").await;
    let token = alice.token().expose().to_owned();
    alice.create_channel("c").await.unwrap();
    alice.join("c", None).await.unwrap();
    alice.post("c", "still here after").await.unwrap();
    let mut other_tab = b.connect(Login::Resume(token.clone())).await.unwrap();
    let mut alice = alice;

    alice.log_out().await.unwrap();
    assert_eq!(disconnected(&mut alice).await, DisconnectReason::LoggedOut);
    assert_eq!(
        disconnected(&mut other_tab).await,
        DisconnectReason::LoggedOut
    );

    for engine in [a, b] {
        let resumed = engine
            .connect(Login::Resume(token.clone()))
            .await
            .map(|_| ());
        assert_eq!(resumed.map_err(|e| e.code()), Err("invalid_token"));
        let uploads = engine.uploader(&token).await.map(|_| ());
        assert_eq!(uploads.map_err(|e| e.code()), Err("invalid_token"));
    }
    // The name is free at once, for someone else.
    let new_alice = user(b, "alice").await;
    assert!(new_alice.is_new_user());
    let joined = new_alice.join("c", None).await.unwrap();
    assert_eq!(joined.messages[0].text, "still here after");
}

#[tokio::test]
async fn in_memory_a_log_out_ends_every_session_and_frees_the_name() {
    let engine = engine().await;
    log_out_everywhere(&engine, &engine).await;
    engine.shutdown().await;
}

#[cfg(feature = "sqlite")]
#[tokio::test]
async fn a_log_out_is_kept_by_the_sqlite_store() {
    use common::sqlite::{open, reopen, scratch};
    let dir = scratch("logout");
    let path = dir.join("flack.sqlite3");
    let engine = open(&path, Limits::default()).await.unwrap();
    let bob = user(&engine, "bob").await;
    let token = bob.token().expose().to_owned();
    bob.log_out().await.unwrap();
    engine.shutdown().await;
    drop(engine);

    let engine = reopen(&path, Limits::default()).await;
    let resumed = engine.connect(Login::Resume(token)).await.map(|_| ());
    assert_eq!(resumed.map_err(|e| e.code()), Err("invalid_token"));
    assert!(user(&engine, "bob").await.is_new_user(), "the name is free");
    engine.shutdown().await;
    let _ = std::fs::remove_dir_all(&dir);
}

#[cfg(feature = "redis")]
#[tokio::test]
async fn a_log_out_on_one_node_ends_the_sessions_on_another() {
    use common::redis_server::RedisServer;
    let Some(redis) = RedisServer::start(false) else {
        return;
    };
    let node = || Engine::builder().redis(redis.url()).start();
    let (a, b) = (node().await.unwrap(), node().await.unwrap());
    log_out_everywhere(&a, &b).await;
}
