//! The engine through its public API only: identity, channels, history, messages,
//! deletion, private messages, presence, typing, recovery, slow consumers, flood
//! control, limits and shutdown. No sockets: transports have their own tests.

mod common;

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use chat_core::broker::{ChannelRecord, Follow, Proposal, Receipt, Stored};
use chat_core::{
    Broker, ChannelName, ChatError, ClusterEvent, DisconnectReason, Engine, Event, Identity,
    Limits, Login, MemoryBroker, PresenceChange, Rate, ResumeToken, Room, UserId, UserRef,
};
use chrono::{DateTime, Utc};
use common::*;

// ---- 1. Identity -------------------------------------------------------------------

#[tokio::test]
async fn a_resume_token_brings_back_the_same_user_and_name() {
    let engine = engine().await;
    let alice = user(&engine, "  Alice ").await;
    assert_eq!(&*alice.user().name, "Alice", "names are trimmed");
    assert!(alice.is_new_user());
    let (id, token) = (alice.user().id, alice.token().expose().to_owned());
    assert_eq!(token.len(), 32);
    drop(alice);

    let again = engine.connect(Login::Resume(token)).await.unwrap();
    assert_eq!(again.user().id, id);
    assert_eq!(&*again.user().name, "Alice");
    assert!(!again.is_new_user());

    let bad = engine
        .connect(Login::Resume("0".repeat(32)))
        .await
        .unwrap_err();
    assert_eq!(bad.code(), "invalid_token");
}

#[tokio::test]
async fn names_are_unique_case_insensitively_while_held() {
    let engine = engine().await;
    let alice = user(&engine, "Alice").await;
    let err = engine
        .connect(Login::Name("aLiCe".into()))
        .await
        .unwrap_err();
    assert_eq!(err.code(), "name_taken");
    drop(alice);
    // Closing the page does not free the name: nobody can impersonate her.
    let err = engine
        .connect(Login::Name("alice".into()))
        .await
        .unwrap_err();
    assert_eq!(err.code(), "name_taken");
}

#[tokio::test]
async fn a_name_is_free_again_after_the_hold_period() {
    let engine = engine_with({
        let mut limits = Limits::default();
        limits.name_hold = Duration::from_millis(50);
        limits
    })
    .await;
    let alice = user(&engine, "alice").await;
    let token = alice.token().expose().to_owned();
    drop(alice);
    let deadline = tokio::time::Instant::now() + PATIENCE;
    let newcomer = loop {
        match engine.connect(Login::Name("ALICE".into())).await {
            Ok(s) => break s,
            Err(e) if e.code() == "name_taken" && tokio::time::Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(20)).await
            }
            Err(e) => panic!("{e}"),
        }
    };
    assert_eq!(&*newcomer.user().name, "ALICE");
    let err = engine.connect(Login::Resume(token)).await.unwrap_err();
    assert_eq!(
        err.code(),
        "invalid_token",
        "the old token expired with the hold"
    );
}

#[tokio::test]
async fn invalid_display_names_are_refused() {
    let engine = engine().await;
    for bad in ["", "   ", "a\u{0}b", &"x".repeat(33)] {
        let err = engine.connect(Login::Name(bad.into())).await.unwrap_err();
        assert_eq!(err.code(), "invalid_name", "{bad:?}");
    }
}

#[tokio::test]
async fn tokens_never_reach_other_users() {
    let engine = engine().await;
    let (alice, mut bob) = alice_and_bob_in(&engine, "general").await;
    alice.post("general", "hi").await.unwrap();
    let message = next_message(&mut bob).await;
    let seen = format!("{message:?} {:?}", bob.members("general").await.unwrap());
    assert!(!seen.contains(alice.token().expose()));
}

// ---- 2. Channels -------------------------------------------------------------------

#[tokio::test]
async fn channels_are_validated_unique_and_listed() {
    let engine = engine().await;
    let alice = user(&engine, "alice").await;
    let created = alice.create_channel("#Rust").await.unwrap();
    assert_eq!(created.name.as_str(), "Rust");
    assert_eq!(
        alice.create_channel("rust").await.unwrap_err().code(),
        "channel_exists"
    );
    assert_eq!(
        alice.create_channel("no spaces").await.unwrap_err().code(),
        "invalid_channel_name"
    );
    alice.create_channel("general").await.unwrap();
    alice.join("general", None).await.unwrap();
    alice.post("general", "first").await.unwrap();

    let list = engine.channels().await.unwrap();
    let names: Vec<&str> = list.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["general", "Rust"], "sorted case-insensitively");
    let general = &list[0];
    assert_eq!(general.members, 1);
    assert!(general.last_activity >= general.created_at);
    assert_eq!(list[1].members, 0);
    assert_eq!(alice.list_channels().await.unwrap(), list);
}

#[tokio::test]
async fn the_server_itself_can_create_channels() {
    let engine = engine().await;
    let mut alice = user(&engine, "alice").await;
    let info = engine.create_channel("general").await.unwrap();
    assert_eq!(info.name.as_str(), "general");
    assert_eq!(
        engine.create_channel("GENERAL").await.unwrap_err().code(),
        "channel_exists"
    );
    let created = wait_for(&mut alice, |e| match e {
        Event::ChannelCreated(info) => Some(info.name.to_string()),
        _ => None,
    })
    .await;
    assert_eq!(created, "general");
    alice.join("general", None).await.unwrap();
}

#[tokio::test]
async fn concurrent_creation_of_one_name_has_exactly_one_winner() {
    let engine = engine().await;
    let mut tasks = Vec::new();
    for i in 0..40 {
        let engine = engine.clone();
        tasks.push(tokio::spawn(async move {
            let s = user(&engine, &format!("user{i}")).await;
            let name = if i % 2 == 0 { "Lobby" } else { "lobby" };
            s.create_channel(name).await.map(|_| ())
        }));
    }
    let mut wins = 0;
    for t in tasks {
        match t.await.unwrap() {
            Ok(()) => wins += 1,
            Err(e) => assert_eq!(e.code(), "channel_exists"),
        }
    }
    assert_eq!(wins, 1);
    assert_eq!(engine.channels().await.unwrap().len(), 1);
}

#[tokio::test]
async fn creating_a_channel_tells_every_connected_session() {
    let engine = engine().await;
    let alice = user(&engine, "alice").await;
    let mut bob = user(&engine, "bob").await;
    let mut carol = user(&engine, "carol").await;
    alice.create_channel("news").await.unwrap();
    for s in [&mut bob, &mut carol] {
        let info = wait_for(s, |e| match e {
            Event::ChannelCreated(info) => Some(info.clone()),
            _ => None,
        })
        .await;
        assert_eq!(info.name.as_str(), "news");
    }
}

#[tokio::test]
async fn joining_an_unknown_channel_and_posting_unjoined_are_errors() {
    let engine = engine().await;
    let alice = user(&engine, "alice").await;
    assert_eq!(
        alice.join("nowhere", None).await.unwrap_err().code(),
        "no_such_channel"
    );
    alice.create_channel("here").await.unwrap();
    assert_eq!(
        alice.post("here", "hi").await.unwrap_err().code(),
        "not_joined"
    );
    assert_eq!(alice.leave("here").await.unwrap_err().code(), "not_joined");
}

#[tokio::test]
async fn a_joined_channel_is_found_however_a_post_spells_it() {
    let engine = engine().await;
    let (alice, _bob) = alice_and_bob_in(&engine, "Rust-Talk").await;
    for spelling in ["Rust-Talk", "rust-talk", "#RUST-TALK", " rust-Talk "] {
        let posted = alice.post(spelling, "hi").await.unwrap();
        assert_eq!(posted.room.label_for(alice.user().id), "Rust-Talk");
    }
    // An owned target and text are taken as they are.
    let posted = alice
        .post(String::from("#rust-talk"), String::from("owned"))
        .await;
    assert_eq!(posted.unwrap().text, "owned");
    assert_eq!(
        alice.post("rust_talk", "hi").await.unwrap_err().code(),
        "not_joined"
    );
    assert_eq!(
        alice.post("rust talk", "hi").await.unwrap_err().code(),
        "invalid_channel_name"
    );
}

// ---- 3 & 4. History and messages ---------------------------------------------------

#[tokio::test]
async fn the_server_keeps_exactly_the_newest_100_messages() {
    let engine = engine_with({
        let mut limits = Limits::default();
        limits.message_rate = Rate::new(1000, 1000.0);
        limits
    })
    .await;
    let alice = user(&engine, "alice").await;
    alice.create_channel("busy").await.unwrap();
    alice.join("busy", None).await.unwrap();
    for i in 1..=150 {
        alice.post("busy", &format!("m{i}")).await.unwrap();
    }
    let bob = user(&engine, "bob").await;
    let joined = bob.join("busy", None).await.unwrap();
    let texts: Vec<String> = joined.messages.iter().map(|m| m.text.clone()).collect();
    let expected: Vec<String> = (51..=150).map(|i| format!("m{i}")).collect();
    assert_eq!(texts, expected, "oldest first, exactly the newest 100");
    assert_eq!(joined.last_id, 150);
    assert!(!joined.gap);
}

#[tokio::test]
async fn messages_carry_ids_author_and_a_millisecond_utc_timestamp() {
    let engine = engine().await;
    let alice = user(&engine, "alice").await;
    alice.create_channel("c").await.unwrap();
    alice.join("c", None).await.unwrap();
    let before = chrono::Utc::now().timestamp_millis();
    let a = alice.post("c", "one").await.unwrap();
    let b = alice.post("c", "two\n\twith a tab").await.unwrap();
    let after = chrono::Utc::now().timestamp_millis();
    assert_eq!((a.id, b.id), (1, 2));
    assert_eq!(a.author, *alice.user());
    let ms = a.sent_at.timestamp_millis();
    assert!(before <= ms && ms <= after);
    assert_eq!(
        a.sent_at.timestamp_subsec_nanos() % 1_000_000,
        0,
        "millisecond precision"
    );
    assert_eq!(alice.post("c", "  ").await.unwrap_err().code(), "empty");
    assert_eq!(
        alice.post("c", "\u{1b}[2J").await.unwrap_err().code(),
        "invalid_text"
    );
    assert_eq!(
        alice.post("c", &"x".repeat(4097)).await.unwrap_err().code(),
        "too_long"
    );
}

#[tokio::test]
async fn waiting_events_can_be_drained_without_waiting() {
    let engine = engine().await;
    let (alice, mut bob) = alice_and_bob_in(&engine, "c").await;
    for i in 0..3 {
        alice.post("c", &format!("m{i}")).await.unwrap();
    }
    // Once alice has the third, the room has fanned all three out to bob as well (one
    // loop delivers each message to every subscriber).
    let mut alice = alice;
    while next_message(&mut alice).await.id < 3 {}
    let mut ids = Vec::new();
    while let Some(event) = bob.try_next_event() {
        if let Event::Posted(m) = event {
            ids.push(m.id);
        }
    }
    assert_eq!(ids, [1, 2, 3]);
    assert!(bob.try_next_event().is_none());
}

#[tokio::test]
async fn started_posts_are_stored_in_order_without_waiting_for_each() {
    let engine = engine().await;
    let (alice, mut bob) = alice_and_bob_in(&engine, "c").await;

    // Start all of them first, then look at the results: each is in the room already.
    let mut pending = Vec::new();
    for i in 0..20 {
        pending.push(alice.start_post("c", &format!("m{i}")).await.unwrap());
    }
    // A refusal is known when starting, and does not disturb the others.
    assert!(matches!(
        alice.start_post("c", " ").await,
        Err(ChatError::Empty)
    ));
    // Dropping a pending post does not take the message back.
    let dropped = pending.pop().unwrap();
    drop(dropped);
    let mut stored = Vec::new();
    for post in pending {
        stored.push(post.await.unwrap());
    }
    let ids: Vec<u64> = stored.iter().map(|m| m.id).collect();
    assert_eq!(ids, (1..=19).collect::<Vec<_>>());
    let texts: Vec<&str> = stored.iter().map(|m| m.text.as_str()).collect();
    assert_eq!(texts, (0..19).map(|i| format!("m{i}")).collect::<Vec<_>>());

    let mut seen = Vec::new();
    while seen.len() < 20 {
        let m = next_message(&mut bob).await;
        seen.push(m.text.to_string());
    }
    assert_eq!(seen, (0..20).map(|i| format!("m{i}")).collect::<Vec<_>>());
}

#[tokio::test]
async fn many_senders_and_subscribers_all_see_one_order() {
    const SENDERS: usize = 8;
    const EACH: usize = 40;
    const READERS: usize = 20;
    let engine = engine_with({
        let mut limits = Limits::default();
        limits.message_rate = Rate::new(1000, 1000.0);
        limits
    })
    .await;
    let host = user(&engine, "host").await;
    host.create_channel("stress").await.unwrap();

    let mut readers = Vec::new();
    for r in 0..READERS {
        let mut s = user(&engine, &format!("reader{r}")).await;
        s.join("stress", None).await.unwrap();
        readers.push(tokio::spawn(async move {
            let mut ids = Vec::new();
            while ids.len() < SENDERS * EACH {
                ids.push(next_message(&mut s).await.id);
            }
            ids
        }));
    }
    let mut senders = Vec::new();
    for w in 0..SENDERS {
        let engine = engine.clone();
        senders.push(tokio::spawn(async move {
            let s = user(&engine, &format!("writer{w}")).await;
            s.join("stress", None).await.unwrap();
            for i in 0..EACH {
                s.post("stress", &format!("{w}:{i}")).await.unwrap();
            }
        }));
    }
    for s in senders {
        s.await.unwrap();
    }
    let expected: Vec<u64> = (1..=(SENDERS * EACH) as u64).collect();
    for r in readers {
        assert_eq!(
            r.await.unwrap(),
            expected,
            "every reader sees every id once, in order"
        );
    }
    let history = host.join("stress", None).await.unwrap();
    let ids: Vec<u64> = history.messages.iter().map(|m| m.id).collect();
    assert_eq!(
        ids,
        ((SENDERS * EACH) as u64 - 99..=(SENDERS * EACH) as u64).collect::<Vec<_>>()
    );
}

#[tokio::test]
async fn joining_while_others_send_loses_and_repeats_nothing() {
    const TOTAL: u64 = 400;
    let engine = engine_with({
        let mut limits = Limits::default();
        limits.message_rate = Rate::new(10_000, 10_000.0);
        limits.history = 1000;
        limits
    })
    .await;
    let writer = user(&engine, "writer").await;
    writer.create_channel("live").await.unwrap();
    writer.join("live", None).await.unwrap();
    let sending = tokio::spawn(async move {
        for i in 0..TOTAL {
            writer.post("live", &format!("m{i}")).await.unwrap();
            if i % 16 == 0 {
                tokio::task::yield_now().await;
            }
        }
        writer
    });
    let mut joiners = Vec::new();
    for j in 0..6 {
        let mut s = user(&engine, &format!("joiner{j}")).await;
        tokio::time::sleep(Duration::from_millis(3)).await;
        let joined = s.join("live", None).await.unwrap();
        joiners.push(tokio::spawn(async move {
            let mut ids: Vec<u64> = joined.messages.iter().map(|m| m.id).collect();
            while ids.last().copied().unwrap_or(0) < TOTAL {
                ids.push(next_message(&mut s).await.id);
            }
            ids
        }));
    }
    let _writer = sending.await.unwrap();
    for j in joiners {
        let ids = j.await.unwrap();
        assert_eq!(
            ids,
            (1..=TOTAL).collect::<Vec<_>>(),
            "snapshot + live = every id once"
        );
    }
}

// ---- 5. Deleting one's own messages ------------------------------------------------

/// The in-memory broker, except that every room's feed reaches its actor 50 ms late: a
/// post is committed (and answered by the broker) well before the room has applied it.
struct LateFeed(MemoryBroker);

#[async_trait::async_trait]
impl Broker for LateFeed {
    async fn register(&self, name: String) -> Result<Identity, ChatError> {
        self.0.register(name).await
    }
    async fn resume(&self, token: ResumeToken) -> Result<Identity, ChatError> {
        self.0.resume(token).await
    }
    fn session_ended(&self, user: UserId) {
        self.0.session_ended(user)
    }
    async fn keep_alive(&self, online: Vec<UserId>) -> Result<(), ChatError> {
        self.0.keep_alive(online).await
    }
    async fn find_user(&self, name: &str) -> Result<Option<UserRef>, ChatError> {
        self.0.find_user(name).await
    }
    async fn claim_channel(
        &self,
        name: &ChannelName,
        at: DateTime<Utc>,
    ) -> Result<bool, ChatError> {
        self.0.claim_channel(name, at).await
    }
    async fn lookup_channel(&self, key: &str) -> Result<Option<ChannelRecord>, ChatError> {
        self.0.lookup_channel(key).await
    }
    async fn channels(&self) -> Result<Vec<ChannelRecord>, ChatError> {
        self.0.channels().await
    }
    async fn open_direct(&self, pair: [UserRef; 2]) -> Result<(), ChatError> {
        self.0.open_direct(pair).await
    }
    async fn directs_of(&self, user: UserId) -> Result<Vec<[UserRef; 2]>, ChatError> {
        self.0.directs_of(user).await
    }
    async fn follow(&self, room: &Room) -> Result<Follow, ChatError> {
        let mut follow = self.0.follow(room).await?;
        let (late, changes) = tokio::sync::mpsc::unbounded_channel();
        let mut early = std::mem::replace(&mut follow.changes, changes);
        // Ends when the room or the broker goes away.
        std::thread::spawn(move || {
            while let Some(change) = early.blocking_recv() {
                std::thread::sleep(Duration::from_millis(50));
                if late.send(change).is_err() {
                    return;
                }
            }
        });
        Ok(follow)
    }
    async fn stored(&self, room: &Room) -> Result<Stored, ChatError> {
        self.0.stored(room).await
    }
    async fn commit(&self, room: &Room, proposal: Proposal) -> Result<Receipt, ChatError> {
        self.0.commit(room, proposal).await
    }
    fn cluster_events(&self) -> tokio::sync::mpsc::UnboundedReceiver<ClusterEvent> {
        self.0.cluster_events()
    }
    fn epoch(&self) -> &str {
        self.0.epoch()
    }
}

#[tokio::test]
async fn a_post_is_in_the_history_as_soon_as_it_is_answered() {
    let broker = Arc::new(LateFeed(MemoryBroker::new(&Limits::default())));
    let engine = Engine::builder().broker(broker).start().await.unwrap();
    let (alice, bob) = alice_and_bob_in(&engine, "c").await;
    // The very next requests see it: someone else's delete, and a joiner's snapshot.
    let posted = alice.post("c", "hello").await.unwrap();
    assert_eq!(
        bob.delete("c", posted.id).await.unwrap_err(),
        ChatError::NotAuthor(posted.id)
    );
    let carol = user(&engine, "carol").await;
    let snapshot = carol.join("c", None).await.unwrap();
    assert_eq!(snapshot.messages.last().map(|m| m.id), Some(posted.id));
}

#[tokio::test]
async fn only_the_author_deletes_and_everyone_sees_it_go() {
    let engine = engine().await;
    let (mut alice, mut bob) = alice_and_bob_in(&engine, "c").await;
    let mine = alice.post("c", "oops").await.unwrap();
    let kept = alice.post("c", "keep").await.unwrap();

    let err = bob.delete("c", mine.id).await.unwrap_err();
    assert_eq!(err, ChatError::NotAuthor(mine.id));
    assert_eq!(err.code(), "not_author");
    assert_eq!(
        alice.delete("c", 999).await.unwrap_err().code(),
        "no_such_message"
    );

    alice.delete("c", mine.id).await.unwrap();
    for s in [&mut alice, &mut bob] {
        let id = wait_for(s, |e| match e {
            Event::Deleted { id, .. } => Some(*id),
            _ => None,
        })
        .await;
        assert_eq!(id, mine.id);
    }
    let carol = user(&engine, "carol").await;
    let history = carol.join("c", None).await.unwrap();
    let ids: Vec<u64> = history.messages.iter().map(|m| m.id).collect();
    assert_eq!(ids, vec![kept.id], "the deleted message left the history");
}

// ---- 6. Private messages -----------------------------------------------------------

#[tokio::test]
async fn private_messages_reach_every_connection_of_both_and_nobody_else() {
    let engine = engine().await;
    let alice = user(&engine, "alice").await;
    let mut alice_phone = engine
        .connect(Login::Resume(alice.token().expose().to_owned()))
        .await
        .unwrap();
    let mut alice = alice;
    let mut bob = user(&engine, "bob").await;
    let mut carol = user(&engine, "carol").await;

    let sent = alice.post("@Bob", "psst").await.unwrap();
    for s in [&mut alice, &mut alice_phone, &mut bob] {
        let m = next_message(s).await;
        assert_eq!((m.id, m.text.as_str()), (sent.id, "psst"));
    }
    assert_eq!(sent.room.label_for(bob.user().id), "@alice");
    assert_eq!(sent.room.label_for(alice.user().id), "@bob");
    assert_none(&mut carol, "someone else's private message", |e| {
        matches!(e, Event::Posted(_))
    })
    .await;

    // Bob's conversation with alice holds the message; carol's with alice does not.
    let bobs = bob.join("@alice", None).await.unwrap();
    assert_eq!(bobs.messages.len(), 1);
    assert!(
        bobs.members.iter().all(|m| m.online),
        "both are connected: {:?}",
        bobs.members
    );
    let carols = carol.join("@alice", None).await.unwrap();
    assert!(carols.messages.is_empty());
    assert_ne!(bobs.room, carols.room);

    // A later connection of bob also gets the conversation live.
    let mut bob_laptop = engine
        .connect(Login::Resume(bob.token().expose().to_owned()))
        .await
        .unwrap();
    bob.post("@alice", "back").await.unwrap();
    assert_eq!(next_message(&mut bob_laptop).await.text, "back");
    assert_eq!(next_message(&mut alice_phone).await.text, "back");

    assert_eq!(
        alice.leave("@bob").await.unwrap_err().code(),
        "invalid_target"
    );
    assert_eq!(
        alice.post("@nobody", "x").await.unwrap_err().code(),
        "no_such_user"
    );
    assert_eq!(
        alice.post("@alice", "x").await.unwrap_err().code(),
        "invalid_target"
    );
}

#[tokio::test]
async fn a_private_conversation_has_history_and_resume_like_a_channel() {
    let engine = engine().await;
    let alice = user(&engine, "alice").await;
    let bob = user(&engine, "bob").await;
    for i in 1..=5 {
        alice.post("@bob", &format!("m{i}")).await.unwrap();
    }
    let all = bob.join("@alice", None).await.unwrap();
    assert_eq!(
        all.messages.iter().map(|m| m.id).collect::<Vec<_>>(),
        [1, 2, 3, 4, 5]
    );
    let missed = bob.join("@alice", Some(3)).await.unwrap();
    assert_eq!(
        missed.messages.iter().map(|m| m.id).collect::<Vec<_>>(),
        [4, 5]
    );
    let mine = bob.post("@alice", "hi").await.unwrap();
    assert_eq!(
        alice.delete("@bob", mine.id).await.unwrap_err().code(),
        "not_author"
    );
}

// ---- 7. Presence and typing --------------------------------------------------------

#[tokio::test]
async fn members_join_leave_and_drop_with_events() {
    let engine = engine().await;
    let mut alice = user(&engine, "alice").await;
    alice.create_channel("c").await.unwrap();
    alice.join("c", None).await.unwrap();

    let bob = user(&engine, "bob").await;
    let joined = bob.join("c", None).await.unwrap();
    let names: Vec<(String, bool)> = joined
        .members
        .iter()
        .map(|m| (m.user.name.to_string(), m.online))
        .collect();
    assert_eq!(names, [("alice".into(), true), ("bob".into(), true)]);
    // Alice also hears of her own presence; these tests follow bob's.
    let presence = |want: PresenceChange| {
        move |e: &Event| match e {
            Event::Presence { user, change, .. } if *change == want && &*user.name == "bob" => {
                Some(user.name.to_string())
            }
            _ => None,
        }
    };
    assert_eq!(
        wait_for(&mut alice, presence(PresenceChange::Joined)).await,
        "bob"
    );

    let bob_token = bob.token().expose().to_owned();
    drop(bob); // the connection drops
    assert_eq!(
        wait_for(&mut alice, presence(PresenceChange::Offline)).await,
        "bob"
    );
    let members = alice.members("c").await.unwrap();
    assert!(members.iter().any(|m| &*m.user.name == "bob" && !m.online));

    let bob = engine.connect(Login::Resume(bob_token)).await.unwrap();
    bob.join("c", None).await.unwrap();
    assert_eq!(
        wait_for(&mut alice, presence(PresenceChange::Online)).await,
        "bob"
    );
    bob.leave("c").await.unwrap();
    assert_eq!(
        wait_for(&mut alice, presence(PresenceChange::Left)).await,
        "bob"
    );
    let members = alice.members("c").await.unwrap();
    assert_eq!(members.len(), 1, "bob is no longer a member");
    assert_eq!(engine.channels().await.unwrap()[0].members, 1);
}

#[tokio::test]
async fn typing_reaches_the_others_only_and_is_throttled() {
    let engine = engine_with({
        let mut limits = Limits::default();
        limits.typing_interval = Duration::from_secs(60);
        limits
    })
    .await;
    let (mut alice, mut bob) = alice_and_bob_in(&engine, "c").await;

    assert!(alice.typing("c").await.unwrap());
    assert!(
        !alice.typing("c").await.unwrap(),
        "the second notice is throttled"
    );
    let who = wait_for(&mut bob, |e| match e {
        Event::Typing { user, .. } => Some(user.name.to_string()),
        _ => None,
    })
    .await;
    assert_eq!(who, "alice");
    // A message after the notices proves the order: bob saw exactly one notice.
    alice.post("c", "done typing").await.unwrap();
    let mut notices = 0;
    loop {
        match tokio::time::timeout(PATIENCE, bob.next_event())
            .await
            .unwrap()
        {
            Some(Event::Typing { .. }) => notices += 1,
            Some(Event::Posted(_)) => break,
            Some(_) => {}
            None => panic!("bob disconnected"),
        }
    }
    assert_eq!(notices, 0, "the throttled notice was dropped");
    assert_none(&mut alice, "her own typing notice", |e| {
        matches!(e, Event::Typing { .. })
    })
    .await;
}

// ---- 8. Recovery -------------------------------------------------------------------

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

// ---- 9. Slow consumers -------------------------------------------------------------

#[tokio::test]
async fn a_stalled_subscriber_is_disconnected_and_others_get_everything() {
    const TOTAL: usize = 60;
    let engine = engine_with({
        let mut limits = Limits::default();
        limits.session_queue = 8;
        limits.message_rate = Rate::new(1000, 1000.0);
        limits
    })
    .await;
    let alice = user(&engine, "alice").await;
    alice.create_channel("c").await.unwrap();
    alice.join("c", None).await.unwrap();
    let mut stalled = user(&engine, "stalled").await;
    stalled.join("c", None).await.unwrap();
    let mut reader = user(&engine, "reader").await;
    reader.join("c", None).await.unwrap();
    let reading = tokio::spawn(async move {
        let mut ids = Vec::new();
        while ids.len() < TOTAL {
            ids.push(next_message(&mut reader).await.id);
        }
        ids
    });
    let mut alice = alice;
    for i in 0..TOTAL {
        alice.post("c", &format!("m{i}")).await.unwrap();
        // The poster reads its own events as a well-behaved client would.
        while let Ok(Some(_)) = tokio::time::timeout(Duration::ZERO, alice.next_event()).await {}
    }
    assert_eq!(
        reading.await.unwrap(),
        (1..=TOTAL as u64).collect::<Vec<_>>()
    );

    let reason = wait_for(&mut stalled, |e| match e {
        Event::Disconnected(r) => Some(*r),
        _ => None,
    })
    .await;
    assert_eq!(reason, DisconnectReason::SlowConsumer);
    assert!(stalled.next_event().await.is_none());
    assert_eq!(
        stalled.post("c", "x").await.unwrap_err().code(),
        "session_closed"
    );

    // It comes back through recovery.
    let back = engine
        .connect(Login::Resume(stalled.token().expose().to_owned()))
        .await
        .unwrap();
    let joined = back.join("c", Some(3)).await.unwrap();
    assert_eq!(joined.messages.first().map(|m| m.id), Some(4));
    assert_eq!(joined.last_id, TOTAL as u64);
}

// ---- 10. Flood control -------------------------------------------------------------

#[tokio::test]
async fn flooding_is_rate_limited_not_disconnected() {
    let engine = engine_with({
        let mut limits = Limits::default();
        limits.message_rate = Rate::new(3, 1.0);
        limits.channel_create_rate = Rate::new(1, 0.01);
        limits
    })
    .await;
    let alice = user(&engine, "alice").await;
    alice.create_channel("a").await.unwrap();
    let err = alice.create_channel("b").await.unwrap_err();
    assert_eq!(err.code(), "rate_limited");
    assert!(err.to_string().contains("channel_create_rate"));
    alice.join("a", None).await.unwrap();
    for _ in 0..3 {
        alice.post("a", "x").await.unwrap();
    }
    let err = alice.post("a", "x").await.unwrap_err();
    let ChatError::RateLimited { limit, retry_after } = err else {
        panic!("expected rate_limited, got {err:?}")
    };
    assert_eq!(limit, "message_rate");
    assert!(retry_after <= Duration::from_secs(1));
    // The limit is per user, not per connection.
    let second = engine
        .connect(Login::Resume(alice.token().expose().to_owned()))
        .await
        .unwrap();
    second.join("a", None).await.unwrap();
    assert_eq!(
        second.post("a", "x").await.unwrap_err().code(),
        "rate_limited"
    );
    // Still connected: it works again once the bucket refills.
    tokio::time::sleep(retry_after + Duration::from_millis(50)).await;
    alice.post("a", "again").await.unwrap();
}

// ---- 12. Limits --------------------------------------------------------------------

#[tokio::test]
async fn channel_and_session_counts_are_bounded() {
    let engine = engine_with({
        let mut limits = Limits::default();
        limits.max_channels = 2;
        limits.max_sessions = 2;
        limits
    })
    .await;
    let alice = user(&engine, "alice").await;
    let _bob = user(&engine, "bob").await;
    let err = engine
        .connect(Login::Name("carol".into()))
        .await
        .unwrap_err();
    assert_eq!(err.code(), "server_full");
    alice.create_channel("one").await.unwrap();
    alice.create_channel("two").await.unwrap();
    assert_eq!(
        alice.create_channel("three").await.unwrap_err().code(),
        "too_many_channels"
    );
    drop(alice);
    // A closed session frees its place (the registry hears of it asynchronously).
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        match engine.connect(Login::Name("carol".into())).await {
            Ok(_) => break,
            Err(e) if e.code() == "server_full" && tokio::time::Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(10)).await
            }
            Err(e) => panic!("{e}"),
        }
    }
}

#[tokio::test]
async fn limits_text_size_is_configurable() {
    let engine = engine_with({
        let mut limits = Limits::default();
        limits.max_message_bytes = 5;
        limits
    })
    .await;
    let alice = user(&engine, "alice").await;
    alice.create_channel("c").await.unwrap();
    alice.join("c", None).await.unwrap();
    alice.post("c", "12345").await.unwrap();
    let err = alice.post("c", "123456").await.unwrap_err();
    assert_eq!(
        err,
        ChatError::TooLong {
            limit: 5,
            actual: 6
        }
    );
}

// ---- 13. Broker seam and shutdown --------------------------------------------------

#[tokio::test]
async fn two_engines_sharing_a_broker_behave_as_one_chat() {
    // Everything that must hold across nodes, shown with two engines in one process.
    let broker = Arc::new(MemoryBroker::new(&Limits::default()));
    let a = Engine::builder()
        .broker(broker.clone())
        .start()
        .await
        .unwrap();
    let b = Engine::builder().broker(broker).start().await.unwrap();
    let mut alice = user(&a, "alice").await;
    let mut bob = user(&b, "bob").await;

    // Names are unique across nodes, and so are channels.
    assert_eq!(
        b.connect(Login::Name("ALICE".into()))
            .await
            .unwrap_err()
            .code(),
        "name_taken"
    );
    alice.create_channel("shared").await.unwrap();
    assert_eq!(
        bob.create_channel("SHARED").await.unwrap_err().code(),
        "channel_exists"
    );
    let created = wait_for(&mut bob, |e| match e {
        Event::ChannelCreated(info) => Some(info.name.to_string()),
        _ => None,
    })
    .await;
    assert_eq!(created, "shared", "channel lists update across nodes");

    // One channel, one order, the same ids on both nodes.
    alice.join("shared", None).await.unwrap();
    bob.join("shared", None).await.unwrap();
    let first = alice.post("shared", "from a").await.unwrap();
    let second = bob.post("shared", "from b").await.unwrap();
    for s in [&mut alice, &mut bob] {
        let got = [next_message(s).await, next_message(s).await];
        assert_eq!([got[0].id, got[1].id], [first.id, second.id]);
        assert_eq!(
            [got[0].text.as_str(), got[1].text.as_str()],
            ["from a", "from b"]
        );
    }

    // Private messages cross too, and a user can come back on the other node.
    alice.post("@bob", "psst").await.unwrap();
    assert_eq!(next_message(&mut bob).await.text, "psst");
    let alice_on_b = b
        .connect(Login::Resume(alice.token().expose().to_owned()))
        .await
        .unwrap();
    assert_eq!(alice_on_b.user().id, alice.user().id);
    let history = alice_on_b.join("shared", Some(first.id)).await.unwrap();
    assert_eq!(
        history.messages.iter().map(|m| m.id).collect::<Vec<_>>(),
        [second.id]
    );
    let dm = alice_on_b.join("@bob", None).await.unwrap();
    assert_eq!(dm.messages.len(), 1);
}

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
