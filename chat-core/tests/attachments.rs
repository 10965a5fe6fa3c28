//! Attachments through the public API, in every store: an upload waits for its owner's
//! post, the post carries it to everyone (another node downloads the same bytes), and the
//! file lives exactly as long as its message: deleted with it, evicted with it from the
//! kept history, and (SQLite) back after a restart while the message is. The kind comes
//! from the bytes, never from the name; every limit answers with its own error.
//!
//! The Redis tests start a real `redis-server`; without one they say so loudly and skip
//! (under `CI=true` they fail instead).

mod common;

use bytes::Bytes;
use chat_core::{Attachment, ChatMessage, Engine, Event, FileId, FileKind, Limits, Rate, Session};
use common::*;
use std::sync::Arc;

/// A tiny real PNG (1x1, transparent).
const PNG: &[u8] = &[
    0x89, b'P', b'N', b'G', 0x0d, 0x0a, 0x1a, 0x0a, 0, 0, 0, 0x0d, b'I', b'H', b'D', b'R', 0, 0, 0,
    1, 0, 0, 0, 1, 8, 6, 0, 0, 0, 0x1f, 0x15, 0xc4, 0x89, 0, 0, 0, 0x0d, b'I', b'D', b'A', b'T',
    0x78, 0x9c, 0x63, 0, 1, 0, 0, 5, 0, 1, 0x0d, 0x0a, 0x2d, 0xb4, 0, 0, 0, 0, b'I', b'E', b'N',
    b'D', 0xae, 0x42, 0x60, 0x82,
];

fn limits(history: usize) -> Limits {
    let mut limits = Limits::default();
    limits.history = history;
    limits.message_rate = Rate::new(1000, 1000.0);
    limits
}

async fn upload(engine: &Engine, who: &Session, name: &str, bytes: &[u8]) -> Attachment {
    let uploader = engine
        .uploader(who.token().expose())
        .await
        .expect("uploader");
    assert_eq!(uploader.user().id, who.user().id);
    uploader
        .upload(name, Bytes::copy_from_slice(bytes))
        .await
        .expect("uploaded")
}

async fn post_files(
    who: &Session,
    room: &str,
    text: &str,
    files: &[&Attachment],
) -> Arc<ChatMessage> {
    let ids = files.iter().map(|f| f.id.clone()).collect();
    who.start_post_with_files(room, text, ids)
        .await
        .expect("post accepted")
        .await
        .expect("post stored")
}

async fn bytes_of(engine: &Engine, id: &FileId) -> Option<Bytes> {
    engine
        .file(id)
        .await
        .expect("store answers")
        .map(|f| f.bytes)
}

/// The whole life of two files, with alice on node `a` and bob on node `b` (the same
/// engine for a single node), in a store keeping 3 messages per room; returns the id of
/// the message still carrying a file, and that file.
async fn life_of_files(a: &Engine, b: &Engine) -> (u64, Attachment) {
    let alice = user(a, "alice").await;
    let mut bob = user(b, "bob").await;
    alice.create_channel("c").await.unwrap();
    alice.join("c", None).await.unwrap();
    bob.join("c", None).await.unwrap();

    let cat = upload(a, &alice, "photos/cat.png", PNG).await;
    assert_eq!(
        (cat.kind, cat.size, &*cat.name),
        (FileKind::Png, PNG.len() as u64, "cat.png")
    );
    let page = upload(a, &alice, "evil.png", b"<html><script>alert(1)</script>").await;
    assert_eq!(
        page.kind,
        FileKind::Other,
        "the bytes say what it is, not the name"
    );

    // Only its uploader's post may carry a file, and only one post.
    let stolen = bob
        .start_post_with_files("c", "mine", vec![cat.id.clone()])
        .await;
    let stolen = match stolen {
        Ok(pending) => pending.await.map(|_| ()),
        Err(e) => Err(e),
    };
    assert_eq!(stolen.map_err(|e| e.code()), Err("no_such_file"));
    let posted = post_files(&alice, "c", "", &[&cat]).await;
    assert_eq!(posted.attachments, vec![cat.clone()]);
    let again = alice
        .start_post_with_files("c", "again", vec![cat.id.clone()])
        .await;
    let again = match again {
        Ok(pending) => pending.await.map(|_| ()),
        Err(e) => Err(e),
    };
    assert_eq!(again.map_err(|e| e.code()), Err("no_such_file"));

    // Bob sees it live, and his node serves the same bytes.
    let seen = wait_for(&mut bob, |e| match e {
        Event::Posted(m) if m.id == posted.id => Some(m.clone()),
        _ => None,
    })
    .await;
    assert_eq!(seen.attachments, vec![cat.clone()]);
    assert_eq!(bytes_of(b, &cat.id).await.as_deref(), Some(PNG));

    // Deleted with its message.
    let with_page = post_files(&alice, "c", "a page", &[&page]).await;
    assert!(bytes_of(b, &page.id).await.is_some());
    alice.delete("c", with_page.id).await.unwrap();
    assert_eq!(bytes_of(a, &page.id).await, None);
    assert_eq!(bytes_of(b, &page.id).await, None);

    // Evicted with its message: three more messages push the cat out of a history of 3.
    let kept = upload(a, &alice, "notes.txt", b"kept while its message is").await;
    let carrier = post_files(&alice, "c", "notes", &[&kept]).await;
    alice.post("c", "one").await.unwrap();
    assert_eq!(
        bytes_of(a, &cat.id).await.as_deref(),
        Some(PNG),
        "3 kept: cat's is one"
    );
    alice.post("c", "two").await.unwrap();
    assert_eq!(bytes_of(a, &cat.id).await, None, "evicted with its message");
    assert_eq!(bytes_of(b, &cat.id).await, None);
    assert!(bytes_of(b, &kept.id).await.is_some());
    (carrier.id, kept)
}

#[tokio::test]
async fn in_memory_files_live_and_die_with_their_messages() {
    let engine = engine_with(limits(3)).await;
    life_of_files(&engine, &engine).await;
    engine.shutdown().await;
}

#[tokio::test]
async fn every_upload_limit_answers_with_its_own_error() {
    let mut limits = limits(100);
    limits.max_file_bytes = 10;
    limits.max_files_per_message = 2;
    limits.max_message_file_bytes = 15;
    limits.upload_bytes_per_hour = 25;
    let engine = engine_with(limits).await;
    let alice = user(&engine, "alice").await;
    alice.create_channel("c").await.unwrap();
    alice.join("c", None).await.unwrap();

    let refused = engine.uploader("not-a-token").await.map(|_| ());
    assert_eq!(refused.map_err(|e| e.code()), Err("invalid_token"));
    let uploader = engine.uploader(alice.token().expose()).await.unwrap();
    assert_eq!(uploader.max_bytes(), 10);
    let code = |r: Result<Attachment, chat_core::ChatError>| r.map(|_| ()).map_err(|e| e.code());
    assert_eq!(
        code(uploader.upload("big", Bytes::from(vec![1; 11])).await),
        Err("too_large")
    );
    assert_eq!(
        code(uploader.upload("none", Bytes::new()).await),
        Err("empty")
    );
    let a = uploader.upload("a", Bytes::from(vec![1; 8])).await.unwrap();
    let b = uploader.upload("b", Bytes::from(vec![2; 8])).await.unwrap();
    let c = uploader.upload("c", Bytes::from(vec![3; 8])).await.unwrap();
    // 24 of the hour's 25 bytes are spent.
    let spent = uploader.upload("d", Bytes::from(vec![4; 2])).await;
    assert!(matches!(
        spent,
        Err(chat_core::ChatError::RateLimited {
            limit: "upload_bytes_per_hour",
            ..
        })
    ));

    let post = |ids: Vec<FileId>| {
        let alice = &alice;
        async move {
            match alice.start_post_with_files("c", "", ids).await {
                Ok(pending) => pending.await.map_err(|e| e.code()),
                Err(e) => Err(e.code()),
            }
        }
    };
    let three = vec![a.id.clone(), b.id.clone(), c.id.clone()];
    assert_eq!(post(three).await.map(|_| ()), Err("too_many_files"));
    let two = vec![a.id.clone(), b.id.clone()];
    assert_eq!(
        post(two).await.map(|_| ()),
        Err("too_large"),
        "16 of 15 bytes"
    );
    assert_eq!(
        post(Vec::new()).await.map(|_| ()),
        Err("empty"),
        "no text, no files"
    );
    // The refused posts attached nothing: each file still waits, and one id twice is once.
    let posted = post(vec![a.id.clone(), a.id.clone()]).await.unwrap();
    assert_eq!(posted.attachments, vec![a]);
    assert_eq!(posted.text, "");
    engine.shutdown().await;
}

#[tokio::test]
async fn reservations_bound_the_bytes_in_flight_and_give_back_what_they_do_not_use() {
    let mut limits = limits(100);
    limits.max_file_bytes = 100;
    limits.upload_bytes_per_hour = 150;
    limits.upload_bytes_in_flight = 120;
    let engine = engine_with(limits).await;
    let (alice, bob) = (user(&engine, "alice").await, user(&engine, "bob").await);
    let a = engine.uploader(alice.token().expose()).await.unwrap();
    let b = engine.uploader(bob.token().expose()).await.unwrap();

    // Alice holds 100 of the 120 bytes in flight: bob's 30 find no room, 20 do.
    let held = a.reserve(100).unwrap();
    assert_eq!(held.max_bytes(), 100);
    let no_room = b.reserve(30).map(|_| ());
    assert_eq!(no_room.map_err(|e| e.code()), Err("unavailable"));
    drop(b.reserve(20).unwrap());
    // Alice keeps 10 of her 100: the 90 go back to her budget, the 100 in flight too.
    let kept = held
        .upload("small.txt", Bytes::from_static(b"0123456789"))
        .await;
    assert_eq!(kept.unwrap().size, 10);
    assert!(b.reserve(100).is_ok(), "the bytes in flight came back");
    // A reservation dropped (a client that went away) spends nothing: 140 of her 150 are
    // left, not 40.
    drop(a.reserve(100).unwrap());
    // A body longer than it said is refused, and spends nothing either.
    let said = a.reserve(5).unwrap();
    let longer = said.upload("x", Bytes::from_static(b"123456")).await;
    assert_eq!(longer.map(|_| ()).map_err(|e| e.code()), Err("too_large"));
    let hundred = Bytes::from(vec![1u8; 100]);
    a.reserve(100)
        .unwrap()
        .upload("big", hundred)
        .await
        .unwrap();
    let over = a.reserve(41).map(|_| ());
    assert_eq!(
        over.map_err(|e| e.code()),
        Err("rate_limited"),
        "140 - 100 = 40 left"
    );
    assert!(a.reserve(40).is_ok());
    engine.shutdown().await;
}

#[cfg(feature = "sqlite")]
#[tokio::test]
async fn a_restarted_sqlite_store_serves_the_files_of_kept_messages_only() {
    use common::sqlite::{open, reopen, scratch};
    let dir = scratch("files");
    let path = dir.join("flack.sqlite3");
    let waiting_for = |wait: std::time::Duration| {
        let mut limits = limits(3);
        limits.upload_wait = wait;
        limits
    };
    let engine = open(&path, waiting_for(std::time::Duration::from_secs(3600)))
        .await
        .unwrap();
    let (carrier, kept) = life_of_files(&engine, &engine).await;
    let dave = user(&engine, "dave").await;
    let waiting = upload(&engine, &dave, "later.bin", b"never posted").await;
    assert!(
        bytes_of(&engine, &waiting.id).await.is_some(),
        "waits for a post"
    );
    engine.shutdown().await;
    drop(engine);

    // Started again with a wait shorter than the upload has waited.
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    let engine = reopen(&path, waiting_for(std::time::Duration::from_millis(10))).await;
    let carol = user(&engine, "carol").await;
    let joined = carol.join("c", None).await.unwrap();
    let message = joined
        .messages
        .iter()
        .find(|m| m.id == carrier)
        .expect("kept");
    assert_eq!(message.attachments, vec![kept.clone()]);
    assert_eq!(
        bytes_of(&engine, &kept.id).await.as_deref(),
        Some(&b"kept while its message is"[..])
    );
    assert_eq!(
        bytes_of(&engine, &waiting.id).await,
        None,
        "unclaimed too long"
    );

    // Still evicted with its message after the restart, on disk too.
    for text in ["three", "four", "five"] {
        carol.post("c", text).await.unwrap();
    }
    assert_eq!(bytes_of(&engine, &kept.id).await, None);
    engine.shutdown().await;
    drop(engine);
    let db = rusqlite_count(&path);
    assert_eq!(db, 0, "no file row outlives its message");
    let _ = std::fs::remove_dir_all(&dir);
}

/// The rows of the `files` table, read with the `sqlite3` schema the store documents.
#[cfg(feature = "sqlite")]
fn rusqlite_count(path: &std::path::Path) -> i64 {
    let deadline = std::time::Instant::now() + PATIENCE;
    loop {
        let counted = rusqlite::Connection::open(path)
            .and_then(|c| c.query_row("SELECT count(*) FROM files", [], |r| r.get(0)));
        match counted {
            Ok(n) => return n,
            Err(e) if std::time::Instant::now() < deadline => {
                let _ = e;
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            Err(e) => panic!("reading {}: {e}", path.display()),
        }
    }
}

#[cfg(feature = "redis")]
mod redis {
    use super::*;
    use common::redis_server::RedisServer;

    async fn node(redis: &RedisServer) -> Engine {
        Engine::builder()
            .limits(limits(3))
            .redis(redis.url())
            .start()
            .await
            .expect("node connects to redis")
    }

    #[tokio::test]
    async fn redis_nodes_share_files_that_live_and_die_with_their_messages() {
        let Some(redis) = RedisServer::start(false) else {
            return;
        };
        let (a, b) = (node(&redis).await, node(&redis).await);
        let (_, kept) = life_of_files(&a, &b).await;
        // What is left in Redis: the one file whose message is kept.
        let mut raw = redis.raw();
        let keys: Vec<String> = ::redis::cmd("KEYS")
            .arg("flack:file:*")
            .query(&mut raw)
            .expect("keys");
        assert_eq!(keys, vec![format!("flack:file:{}", kept.id)]);
        let ttl: i64 = ::redis::cmd("TTL")
            .arg(&keys[0])
            .query(&mut raw)
            .expect("ttl");
        assert_eq!(
            ttl, -1,
            "an attached file in a channel lives as long as its message"
        );
    }
}
