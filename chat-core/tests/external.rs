//! Users an embedder authenticated itself (`Login::External`): the same external id is the
//! same user across connections, nodes and restarts, in every store (memory, SQLite,
//! Redis); a display name held by someone else is refused; a kept user keeps their name.
//! The Redis tests start a real `redis-server` (skipped loudly without one, failing under
//! `CI=true`).

mod common;

use chat_core::Login;
use common::*;

fn external(id: &str, name: &str) -> Login {
    Login::External {
        id: id.into(),
        display_name: name.into(),
    }
}

#[tokio::test]
async fn the_same_external_id_is_the_same_user_on_every_connection() {
    let engine = engine().await;
    let first = engine.connect(external("acct-7", "Alice")).await.unwrap();
    let second = engine.connect(external("acct-7", "Alice")).await.unwrap();
    assert_eq!(first.user(), second.user());
    let other = engine.connect(external("acct-8", "Bob")).await.unwrap();
    assert_ne!(other.user().id, first.user().id);
    // Both sessions are the same user: a message from one is the other's own.
    first.create_channel("general").await.unwrap();
    first.join("general", None).await.unwrap();
    second.join("general", None).await.unwrap();
    let message = second.post("general", "from the other tab").await.unwrap();
    assert_eq!(message.author, first.user().clone());
    // A name user cannot take a name an external user holds, and the reverse.
    let taken = engine
        .connect(Login::Name("alice".into()))
        .await
        .unwrap_err();
    assert_eq!(taken.code(), "name_taken");
    let _carol = user(&engine, "carol").await;
    let refused = engine
        .connect(external("acct-9", "Carol"))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), "name_taken");
    engine.shutdown().await;
}

#[tokio::test]
async fn a_kept_user_keeps_their_name_and_bad_ids_are_refused() {
    let engine = engine().await;
    let alice = engine.connect(external("acct-7", "Alice")).await.unwrap();
    let renamed = engine.connect(external("acct-7", "Alicia")).await.unwrap();
    assert_eq!(renamed.user(), alice.user());
    assert_eq!(&*renamed.user().name, "Alice");
    for bad in ["", "a\u{7}b"] {
        let refused = engine.connect(external(bad, "Dave")).await.unwrap_err();
        assert_eq!(refused.code(), "invalid_external_id", "{bad:?}");
    }
    let long = "x".repeat(chat_core::MAX_EXTERNAL_ID_BYTES + 1);
    let refused = engine.connect(external(&long, "Dave")).await.unwrap_err();
    assert_eq!(refused.code(), "invalid_external_id");
    let bad_name = engine.connect(external("acct-10", " ")).await.unwrap_err();
    assert_eq!(bad_name.code(), "invalid_name");
    engine.shutdown().await;
}

#[cfg(feature = "sqlite")]
#[tokio::test]
async fn a_restart_of_the_sqlite_store_keeps_external_users() {
    use std::time::{Duration, Instant};

    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let dir = std::env::temp_dir().join(format!("flack-external-{}-{nanos}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("scratch dir");
    let path = dir.join("store.sqlite3");
    let open = || chat_core::Engine::builder().sqlite(&path).start();

    let engine = open().await.expect("store");
    let alice = engine.connect(external("acct-7", "Alice")).await.unwrap();
    let bob = engine.connect(external("acct-8", "Bob")).await.unwrap();
    let (alice_user, bob_user) = (alice.user().clone(), bob.user().clone());
    drop((alice, bob));
    engine.shutdown().await;
    drop(engine);

    // The engine before lets go of the file shortly after its shutdown.
    let deadline = Instant::now() + PATIENCE;
    let engine = loop {
        match open().await {
            Ok(engine) => break engine,
            Err(e) if e.to_string().contains("another server") && Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            Err(e) => panic!("reopening: {e}"),
        }
    };
    let again = engine.connect(external("acct-7", "Alicia")).await.unwrap();
    assert_eq!(
        again.user(),
        &alice_user,
        "same id, and the name kept within the hold"
    );
    // Its name is still held against others after the restart.
    let taken = engine.connect(Login::Name("BOB".into())).await.unwrap_err();
    assert_eq!(taken.code(), "name_taken");
    let bob_again = engine.connect(external("acct-8", "Bob")).await.unwrap();
    assert_eq!(bob_again.user(), &bob_user);
    // A new user never gets an id an external user has.
    let carol = user(&engine, "carol").await;
    assert!(carol.user().id.0 > bob_user.id.0.max(alice_user.id.0));
    engine.shutdown().await;
    drop(engine);
    let _ = std::fs::remove_dir_all(&dir);
}

#[cfg(feature = "redis")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_nodes_agree_on_external_users_and_keep_them() {
    use common::redis_server::RedisServer;

    let Some(redis) = RedisServer::start(false) else {
        return;
    };
    let node = || chat_core::Engine::builder().redis(redis.url()).start();
    let (a, b) = (node().await.expect("node a"), node().await.expect("node b"));
    let on_a = a.connect(external("acct-7", "Alice")).await.unwrap();
    let on_b = b.connect(external("acct-7", "Alicia")).await.unwrap();
    assert_eq!(
        on_b.user(),
        on_a.user(),
        "the same user, with the name they have"
    );
    let other = b.connect(external("acct-8", "Bob")).await.unwrap();
    assert_ne!(other.user().id, on_a.user().id);
    let taken = a.connect(external("acct-9", "alice")).await.unwrap_err();
    assert_eq!(taken.code(), "name_taken");
    // The refused id was not mapped: it logs in once it gives a free name.
    let carol = a.connect(external("acct-9", "Carol")).await.unwrap();
    assert!(carol.user().id.0 > other.user().id.0);
    // A node started later (a restart) finds the same users by their external ids.
    let user = on_a.user().clone();
    drop((on_a, on_b));
    a.shutdown().await;
    let c = node().await.expect("node c");
    let back = c.connect(external("acct-7", "Alice")).await.unwrap();
    assert_eq!(back.user(), &user);
    b.shutdown().await;
    c.shutdown().await;
}
