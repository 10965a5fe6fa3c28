//! A room catching up from a `Change::Resync` (the store's history after its feed lost
//! changes), against a feed the test writes itself. The store vouches for the ids from its
//! first kept message to its last id: one missing there was deleted, not lost. A snapshot
//! may be older than what the feed already delivered (a broker may read the store before
//! some change is stored and deliver it after): ids above its last id are not deleted. Edits
//! and reactions (`Change::Updated`) fill holes and catch up the same way.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use chat_core::broker::{Change, Follow, Stored};
use chat_core::{ChatError, ChatMessage, Engine, Event, Limits, MemoryBroker, Room};
use chat_core::{Emoji, Reactions};
use chrono::Utc;
use common::hooked::{Hooked, RoomFeeds};
use common::{assert_none, user, wait_for};
use tokio::sync::mpsc;

/// Room feeds and stored history the test writes itself, over a `MemoryBroker`.
#[derive(Default)]
struct ScriptedFeed {
    feed: Mutex<Option<mpsc::UnboundedSender<Change>>>,
    store: Mutex<Stored>,
}

impl ScriptedFeed {
    fn new() -> Arc<Hooked<ScriptedFeed>> {
        Hooked::wrap(
            Arc::new(MemoryBroker::new(&Limits::default())),
            ScriptedFeed::default(),
        )
    }
}

#[async_trait::async_trait]
impl RoomFeeds for ScriptedFeed {
    async fn follow(&self, _inner: &MemoryBroker, _room: &Room) -> Result<Follow, ChatError> {
        let (tx, changes) = mpsc::unbounded_channel();
        *self.feed.lock().unwrap() = Some(tx);
        Ok(Follow::new(Stored::default(), changes))
    }
    async fn stored(&self, _inner: &MemoryBroker, _room: &Room) -> Result<Stored, ChatError> {
        Ok(self.store.lock().unwrap().clone())
    }
}

#[tokio::test]
async fn a_resync_older_than_the_feed_deletes_nothing_newer() {
    let broker = ScriptedFeed::new();
    let engine = Engine::builder()
        .broker(broker.clone())
        .start()
        .await
        .unwrap();
    engine.create_channel("c").await.unwrap();
    let mut alice = user(&engine, "alice").await;
    let room = alice.join("c", None).await.unwrap().room;
    let feed = broker
        .feeds
        .feed
        .lock()
        .unwrap()
        .clone()
        .expect("the room follows");
    let author = alice.user().clone();
    let message = |id| {
        let text = format!("m{id}");
        Arc::new(ChatMessage::new(
            id,
            room.clone(),
            author.clone(),
            text,
            Utc::now(),
        ))
    };

    feed.send(Change::Posted(message(1))).unwrap();
    feed.send(Change::Posted(message(2))).unwrap();
    // The store as it was when only 1 was stored, delivered after 2.
    feed.send(Change::Resync(Stored::new(vec![message(1)], 1)))
        .unwrap();
    feed.send(Change::Posted(message(3))).unwrap();

    let mut seen = Vec::new();
    while seen.last() != Some(&"posted 3".to_owned()) {
        match wait_for(&mut alice, |e| Some(e.clone())).await {
            Event::Posted(m) => seen.push(format!("posted {}", m.id)),
            Event::Deleted { id, .. } => seen.push(format!("deleted {id}")),
            _ => {}
        }
    }
    assert_eq!(seen, ["posted 1", "posted 2", "posted 3"]);
    assert_none(&mut alice, "a deletion", |e| {
        matches!(e, Event::Deleted { .. })
    })
    .await;
    let back = tokio::time::timeout(Duration::from_secs(5), alice.join("c", Some(1)))
        .await
        .unwrap()
        .unwrap();
    let ids: Vec<u64> = back.messages.iter().map(|m| m.id).collect();
    assert_eq!((ids, back.deleted, back.gap), (vec![2, 3], vec![], false));
}

#[tokio::test]
async fn ids_missing_within_the_stored_range_are_deleted_not_lost() {
    let broker = ScriptedFeed::new();
    let engine = Engine::builder()
        .broker(broker.clone())
        .start()
        .await
        .unwrap();
    engine.create_channel("c").await.unwrap();
    let mut alice = user(&engine, "alice").await;
    let room = alice.join("c", None).await.unwrap().room;
    let feed = broker
        .feeds
        .feed
        .lock()
        .unwrap()
        .clone()
        .expect("the room follows");
    let author = alice.user().clone();
    let message = |id| {
        let text = format!("m{id}");
        Arc::new(ChatMessage::new(
            id,
            room.clone(),
            author.clone(),
            text,
            Utc::now(),
        ))
    };

    feed.send(Change::Posted(message(1))).unwrap();
    // The feed lost 2, 3, 4 and 5 (posted; 2 and 4 deleted since): the store keeps 1, 3
    // and 5 of ids up to 6, so 2, 4 and 6 were deleted, and nothing was lost.
    let kept = vec![message(1), message(3), message(5)];
    feed.send(Change::Resync(Stored::new(kept, 6))).unwrap();
    feed.send(Change::Posted(message(7))).unwrap();

    let mut seen = Vec::new();
    while seen.last() != Some(&"posted 7".to_owned()) {
        match wait_for(&mut alice, |e| Some(e.clone())).await {
            Event::Posted(m) => seen.push(format!("posted {}", m.id)),
            Event::Gap { .. } => seen.push("gap".into()),
            _ => {}
        }
    }
    assert_eq!(seen, ["posted 1", "posted 3", "posted 5", "posted 7"]);
    // Someone who saw 2 and 4 before they were deleted, and 5, is told so.
    let back = alice.join("c", Some(5)).await.unwrap();
    let ids: Vec<u64> = back.messages.iter().map(|m| m.id).collect();
    assert_eq!((ids, back.deleted, back.gap), (vec![7], vec![2, 4], false));
}

#[tokio::test]
async fn a_deletion_of_a_message_the_room_missed_is_not_undone_by_an_older_snapshot() {
    let broker = ScriptedFeed::new();
    let engine = Engine::builder()
        .broker(broker.clone())
        .start()
        .await
        .unwrap();
    engine.create_channel("c").await.unwrap();
    let mut alice = user(&engine, "alice").await;
    let room = alice.join("c", None).await.unwrap().room;
    let feed = broker
        .feeds
        .feed
        .lock()
        .unwrap()
        .clone()
        .expect("the room follows");
    let author = alice.user().clone();
    let message = |id| {
        let text = format!("m{id}");
        Arc::new(ChatMessage::new(
            id,
            room.clone(),
            author.clone(),
            text,
            Utc::now(),
        ))
    };

    feed.send(Change::Posted(message(1))).unwrap();
    // The feed lost 2 and 3, then 3 was deleted: the room hears of the deletion first,
    // and only later of a snapshot read before it.
    *broker.feeds.store.lock().unwrap() = Stored::new(vec![message(1), message(2)], 3);
    feed.send(Change::Deleted(3)).unwrap();
    feed.send(Change::Resync(Stored::new(
        vec![message(1), message(2), message(3)],
        3,
    )))
    .unwrap();
    feed.send(Change::Posted(message(4))).unwrap();

    let mut seen = Vec::new();
    while seen.last() != Some(&"posted 4".to_owned()) {
        match wait_for(&mut alice, |e| Some(e.clone())).await {
            Event::Posted(m) => seen.push(format!("posted {}", m.id)),
            Event::Deleted { id, .. } => seen.push(format!("deleted {id}")),
            Event::Gap { .. } => seen.push("gap".into()),
            _ => {}
        }
    }
    let shown: Vec<&String> = seen.iter().filter(|e| e.starts_with("posted")).collect();
    assert_eq!(shown, ["posted 1", "posted 2", "posted 4"], "{seen:?}");
    let back = alice.join("c", Some(1)).await.unwrap();
    let ids: Vec<u64> = back.messages.iter().map(|m| m.id).collect();
    assert_eq!((ids, back.gap), (vec![2, 4], false));
}

/// An edit of a message the room never got is a hole: the room reads the store, which
/// has the message in its latest form, and shows it once, edited. A resync that finds a
/// kept message edited and reacted to tells the followers both.
#[tokio::test]
async fn updates_fill_holes_and_resyncs_carry_edits_and_reactions() {
    let broker = ScriptedFeed::new();
    let engine = Engine::builder()
        .broker(broker.clone())
        .start()
        .await
        .unwrap();
    engine.create_channel("c").await.unwrap();
    let mut alice = user(&engine, "alice").await;
    let room = alice.join("c", None).await.unwrap().room;
    let feed = broker
        .feeds
        .feed
        .lock()
        .unwrap()
        .clone()
        .expect("the room follows");
    let author = alice.user().clone();
    let message = |id, text: &str| {
        ChatMessage::new(id, room.clone(), author.clone(), text.into(), Utc::now())
    };
    let edited = |id, text: &str, emoji: &[&str]| {
        let reactions = emoji
            .iter()
            .map(|e| (Emoji::parse(e).unwrap(), vec![author.id]));
        Arc::new(
            message(id, text).with_changes(Some(Utc::now()), Reactions::from_entries(reactions)),
        )
    };

    feed.send(Change::Posted(Arc::new(message(1, "one"))))
        .unwrap();
    // The store and the feed carry the same state of message 2, as a broker's would.
    let two = edited(2, "two!", &[]);
    *broker.feeds.store.lock().unwrap() =
        Stored::new(vec![Arc::new(message(1, "one")), two.clone()], 2);
    feed.send(Change::Updated(two.clone())).unwrap();
    let shown = wait_for(&mut alice, |e| match e {
        Event::Posted(m) if m.id == 2 => Some(m.clone()),
        _ => None,
    })
    .await;
    assert_eq!(shown.text, "two!");
    assert!(shown.edited_at.is_some());
    assert_none(&mut alice, "the same edit again", |e| {
        matches!(e, Event::Edited(_))
    })
    .await;

    let one = edited(1, "one!", &["tada"]);
    feed.send(Change::Resync(Stored::new(vec![one, two], 2)))
        .unwrap();
    let seen = wait_for(&mut alice, |e| match e {
        Event::Edited(m) => Some(m.text.clone()),
        _ => None,
    })
    .await;
    assert_eq!(seen, "one!");
    let counts = wait_for(&mut alice, |e| match e {
        Event::Reacted(m) => Some(
            m.reactions
                .iter()
                .map(|(e, u)| (e.name(), u.len()))
                .collect::<Vec<_>>(),
        ),
        _ => None,
    })
    .await;
    assert_eq!(counts, vec![("tada", 1)]);
}
