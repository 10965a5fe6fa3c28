//! The SQLite store (feature `sqlite`) through the public API: an engine started again on
//! the same file finds everything it had (channels, users by token, private pairs,
//! histories with the same ids, deletions, the epoch), evicts exactly as memory does, keeps
//! only a hash of each token, never gives an id twice after an unclean stop, and refuses a
//! file it cannot use, naming it.

#![cfg(feature = "sqlite")]

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use chat_core::{Engine, Limits, Login, MessageId, Rate};
use common::sqlite::{open, reopen, scratch};
use common::*;

fn limits(history: usize) -> Limits {
    let mut limits = Limits::default();
    limits.history = history;
    limits.message_rate = Rate::new(100_000, 100_000.0);
    limits
}

async fn stop(engine: Engine) {
    engine.shutdown().await;
    drop(engine);
}

fn ids(messages: &[std::sync::Arc<chat_core::ChatMessage>]) -> Vec<MessageId> {
    messages.iter().map(|m| m.id).collect()
}

#[tokio::test]
async fn a_restart_brings_back_channels_users_pairs_histories_and_deletions() {
    let path = scratch("roundtrip").join("flack.sqlite3");
    let engine = open(&path, limits(100)).await.unwrap();
    let epoch = engine.epoch().to_owned();
    let (alice, bob) = alice_and_bob_in(&engine, "General").await;
    for i in 1..=5 {
        alice.post("general", format!("hello {i}")).await.unwrap();
    }
    alice.delete("general", 2).await.unwrap();
    bob.post("@alice", "psst").await.unwrap();
    let tokens = [
        alice.token().expose().to_owned(),
        bob.token().expose().to_owned(),
    ];
    let (alice_id, bob_id) = (alice.user().id, bob.user().id);
    drop((alice, bob));
    stop(engine).await;

    let engine = reopen(&path, limits(100)).await;
    assert_eq!(engine.epoch(), epoch, "the same store, the same epoch");
    let channels = engine.channels().await.unwrap();
    assert_eq!(channels.len(), 1);
    assert_eq!(channels[0].name.as_str(), "General", "the name as created");
    let alice = engine
        .connect(Login::Resume(tokens[0].clone()))
        .await
        .unwrap();
    assert_eq!((alice.user().id, &*alice.user().name), (alice_id, "alice"));
    let joined = alice.join("general", None).await.unwrap();
    assert_eq!(ids(&joined.messages), vec![1, 3, 4, 5], "2 stays deleted");
    assert_eq!(joined.messages[3].text, "hello 5");
    assert_eq!(joined.messages[3].author.id, alice_id);
    // A client that saw everything before the restart has nothing to catch up on.
    let resumed = alice.join("general", Some(5)).await.unwrap();
    assert!(!resumed.gap && resumed.messages.is_empty());
    assert_eq!(resumed.deleted, vec![2]);
    // The private pair and its history.
    let bob = engine
        .connect(Login::Resume(tokens[1].clone()))
        .await
        .unwrap();
    assert_eq!(bob.user().id, bob_id);
    let private = bob.join("@alice", None).await.unwrap();
    assert_eq!(private.messages.len(), 1);
    assert_eq!(private.messages[0].text, "psst");
    // Names stay held, ids go on.
    let taken = engine
        .connect(Login::Name("Alice".into()))
        .await
        .unwrap_err();
    assert_eq!(taken.code(), "name_taken");
    assert_eq!(alice.post("general", "again").await.unwrap().id, 6);
    let carol = user(&engine, "carol").await;
    assert!(carol.user().id.0 > bob_id.0.max(alice_id.0));
    drop((alice, bob, carol));
    stop(engine).await;
}

#[tokio::test]
async fn the_store_keeps_exactly_what_memory_shows() {
    let path = scratch("eviction").join("flack.sqlite3");
    let engine = open(&path, limits(3)).await.unwrap();
    let (alice, _bob) = alice_and_bob_in(&engine, "c").await;
    // 1..=4 with 1 evicted, then the newest deleted: memory shows 2, 3 and must not get 1
    // back; then more posts and a deletion in the middle.
    for i in 1..=4 {
        alice.post("c", format!("m{i}")).await.unwrap();
    }
    alice.delete("c", 4).await.unwrap();
    for i in 5..=7 {
        alice.post("c", format!("m{i}")).await.unwrap();
    }
    alice.delete("c", 6).await.unwrap();
    let shown = ids(&alice.join("c", None).await.unwrap().messages);
    assert_eq!(shown, vec![5, 7]);
    drop((alice, _bob));
    stop(engine).await;

    let engine = reopen(&path, limits(3)).await;
    let alice = user(&engine, "someone").await;
    assert_eq!(ids(&alice.join("c", None).await.unwrap().messages), shown);
    let rows: i64 = rusqlite::Connection::open(&path)
        .unwrap()
        .query_row("SELECT count(*) FROM messages", [], |r| r.get(0))
        .unwrap();
    assert_eq!(rows, 2, "the file holds no more than the server shows");
    drop(alice);
    stop(engine).await;

    // A lower limit on the next start: the oldest go, in memory and on disk.
    let engine = reopen(&path, limits(1)).await;
    let alice = user(&engine, "another").await;
    assert_eq!(ids(&alice.join("c", None).await.unwrap().messages), vec![7]);
    drop(alice);
    stop(engine).await;
}

#[tokio::test]
async fn only_a_hash_of_each_token_is_stored() {
    let dir = scratch("hash");
    let path = dir.join("flack.sqlite3");
    let engine = open(&path, limits(10)).await.unwrap();
    let alice = user(&engine, "alice").await;
    let token = alice.token().expose().to_owned();
    drop(alice);
    stop(engine).await;
    let engine = reopen(&path, limits(10)).await;
    stop(engine).await;

    let conn = rusqlite::Connection::open(&path).unwrap();
    let (name, hash): (String, Vec<u8>) = conn
        .query_row("SELECT name, token_hash FROM users", [], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .unwrap();
    assert_eq!(name, "alice");
    assert_eq!(hash.len(), 32);
    let hex: String = hash.iter().map(|b| format!("{b:02x}")).collect();
    assert_ne!(hex, token);
    drop(conn);
    // Nowhere in any file of the store, in any form it was given out in.
    for entry in std::fs::read_dir(&dir).unwrap() {
        let bytes = std::fs::read(entry.unwrap().path()).unwrap();
        let found = bytes.windows(token.len()).any(|w| w == token.as_bytes());
        assert!(!found, "the token is in the store");
    }
}

/// What a `kill -9` leaves: the file as the writer last committed it, with the store
/// never closed. A copy of the file taken while the engine runs is exactly that.
fn copy_while_running(dir: &Path, to: &Path) -> PathBuf {
    std::fs::create_dir_all(to).unwrap();
    for name in ["flack.sqlite3", "flack.sqlite3-wal"] {
        if dir.join(name).exists() {
            std::fs::copy(dir.join(name), to.join(name)).unwrap();
        }
    }
    to.join("flack.sqlite3")
}

#[tokio::test]
async fn after_an_unclean_stop_ids_are_never_given_twice() {
    let dir = scratch("unclean");
    let engine = open(&dir.join("flack.sqlite3"), limits(100)).await.unwrap();
    let (alice, mut bob) = alice_and_bob_in(&engine, "c").await;
    for i in 1..=10 {
        alice.post("c", format!("m{i}")).await.unwrap();
    }
    // Bob saw 10; the store is copied once it has written it (the writer commits at
    // once when idle).
    while next_message(&mut bob).await.id < 10 {}
    tokio::time::sleep(Duration::from_millis(300)).await;
    let crashed = copy_while_running(&dir, &dir.join("crashed"));
    let token = alice.token().expose().to_owned();
    drop((alice, bob));
    stop(engine).await;

    let engine = reopen(&crashed, limits(100)).await;
    let alice = engine.connect(Login::Resume(token)).await.unwrap();
    let joined = alice.join("c", Some(10)).await.unwrap();
    assert!(
        joined.gap,
        "the store cannot vouch for what it may have lost"
    );
    assert_eq!(joined.messages.len(), 10, "everything written is back");
    assert!(
        joined.deleted.is_empty(),
        "a loss is never reported as a deletion"
    );
    let next = alice.post("c", "after the crash").await.unwrap();
    // At most 16,384 ids (the writer's largest budget) can have been given unwritten.
    assert!(
        next.id > 10 + 16_384,
        "ids skip past everything that may have been given: {}",
        next.id
    );
    drop(alice);
    stop(engine).await;

    // Stopped cleanly this time: ids go on from there, nothing is skipped again.
    let engine = reopen(&crashed, limits(100)).await;
    let bob = user(&engine, "bobby").await;
    assert_eq!(bob.join("c", None).await.unwrap().last_id, next.id);
    assert_eq!(bob.post("c", "and on").await.unwrap().id, next.id + 1);
    drop(bob);
    stop(engine).await;
}

#[tokio::test]
async fn a_user_whose_hold_ran_out_while_stopped_is_forgotten() {
    let path = scratch("hold").join("flack.sqlite3");
    let mut short = limits(10);
    short.name_hold = Duration::from_millis(300);
    let engine = open(&path, short.clone()).await.unwrap();
    let (alice, bob) = alice_and_bob_in(&engine, "c").await;
    bob.post("@alice", "bye").await.unwrap();
    let token = alice.token().expose().to_owned();
    drop((alice, bob));
    stop(engine).await;
    tokio::time::sleep(Duration::from_millis(600)).await;

    let engine = reopen(&path, short).await;
    let refused = engine.connect(Login::Resume(token)).await.unwrap_err();
    assert_eq!(refused.code(), "invalid_token");
    let alice = user(&engine, "alice").await;
    assert!(alice.join("@bob", None).await.is_err(), "bob is gone too");
    drop(alice);
    stop(engine).await;
    let conn = rusqlite::Connection::open(&path).unwrap();
    let pairs: i64 = conn
        .query_row("SELECT count(*) FROM directs", [], |r| r.get(0))
        .unwrap();
    let private: i64 = conn
        .query_row(
            "SELECT count(*) FROM messages WHERE room LIKE 'd:%'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(
        (pairs, private),
        (0, 0),
        "their private room is gone from disk"
    );
}

#[tokio::test]
async fn a_closed_store_is_free_at_once_and_closing_again_does_nothing() {
    use chat_core::{Broker, SqliteBroker};
    let path = scratch("closed").join("flack.sqlite3");
    let first = SqliteBroker::open(&path, &limits(10)).await.unwrap();
    let refused = SqliteBroker::open(&path, &limits(10)).await.unwrap_err();
    assert!(refused.to_string().contains("another server"), "{refused}");
    first.close().await.unwrap();
    // No wait: the file and its lock were let go before the close was answered.
    let second = SqliteBroker::open(&path, &limits(10)).await.unwrap();
    first
        .close()
        .await
        .expect("a second close has nothing left to do");
    assert!(
        first.flush().await.is_err(),
        "a closed store takes no more writes"
    );
    second.close().await.unwrap();
}

#[tokio::test]
async fn a_file_the_store_cannot_use_stops_the_start_naming_it() {
    let dir = scratch("refused");
    let garbage = dir.join("garbage.sqlite3");
    std::fs::write(
        &garbage,
        b"this is not a database, not even close. ".repeat(200),
    )
    .unwrap();
    let newer = dir.join("newer.sqlite3");
    stop(open(&newer, limits(10)).await.unwrap()).await;
    // A stopped engine has let go of the file: another program may change it at once.
    rusqlite::Connection::open(&newer)
        .and_then(|c| c.pragma_update(None, "user_version", 999))
        .expect("the file is free once the engine stopped");
    for (path, says) in [
        (&garbage, "not an SQLite database"),
        (&newer, "newer than this build"),
        (&dir, "directory"),
    ] {
        let error = open(path, limits(10)).await.unwrap_err();
        assert_eq!(error.code(), "store_error", "{error}");
        let text = error.to_string();
        assert!(text.contains(&path.display().to_string()), "{text}");
        assert!(text.contains(says), "{text}");
    }
    // The garbage is left as it was: never a silent fresh start over it.
    assert!(std::fs::read(&garbage).unwrap().starts_with(b"this is not"));
}
