//! The JSON the Redis broker stores and publishes: messages, users, channel records,
//! private pairs, room changes and cluster events, and their conversion to and from the
//! engine's types (the shapes are in `docs/architecture.md`).
//!
//! Called by the broker's commands (`mod.rs`) and its pub/sub task (`pubsub.rs`). It is
//! pure conversion: it must not talk to Redis. The Lua scripts read some of these shapes
//! too (`scripts.rs`: a message's leading `"id":0`, its `author.id`, a pair's ids).

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::attachment::{Attachment, FileId, FileKind};
use crate::broker::{Change, ChannelRecord, ClusterEvent, HereState, NodePresence, Signal};
use crate::limits::Limits;
use crate::model::{now_millis, ChannelName, ChatMessage, Room, UserId, UserRef};
use crate::reaction::{Emoji, Reactions};
use crate::validate;

#[derive(Serialize, Deserialize)]
struct WireUser {
    id: u64,
    name: String,
}

/// `id` comes first: the post script finds the draft's `{"id":0,` and puts the real id
/// there.
#[derive(Serialize, Deserialize)]
struct WireMessage {
    id: u64,
    author: WireUser,
    text: String,
    sent_at: i64,
    /// Set by the edit script (Unix ms).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    edited_at: Option<i64>,
    /// Emoji -> user ids, as the react script keeps them: an object (Lua's cjson writes an
    /// empty table as `{}`), absent when nobody reacted.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    reactions: BTreeMap<String, Vec<u64>>,
    /// The files it carries, absent when none (the scripts look for `"attachments":`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    attachments: Vec<WireFile>,
}

/// A file a message carries (`Attachment`).
#[derive(Serialize, Deserialize)]
struct WireFile {
    id: String,
    name: String,
    size: u64,
    kind: String,
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum WireChange {
    Posted(WireMessage),
    Deleted(u64),
    Updated(WireMessage),
    Presence(WirePresence),
    Typing(WireUser),
}

/// One node's share of a room's presence (`NodePresence`); a member's state is
/// `online`, `offline` or `left`.
#[derive(Serialize, Deserialize)]
struct WirePresence {
    node: String,
    full: bool,
    ask: bool,
    members: Vec<(WireUser, String)>,
}

#[derive(Serialize, Deserialize)]
struct WireChannel {
    name: String,
    created_at: i64,
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum WireCluster {
    ChannelCreated(WireChannel),
    DirectOpened([WireUser; 2]),
    /// Published by the heartbeat script (`scripts.rs`) as `{"node_gone":ID}`.
    NodeGone(String),
    /// Published by the log-out script as `{"logged_out":ID}`.
    LoggedOut(u64),
}

/// A new message by `author`, with id 0 for the post script to replace, sent now.
pub(super) fn draft(
    author: &UserRef,
    text: String,
    files: &[Attachment],
) -> serde_json::Result<String> {
    let attachments = files
        .iter()
        .map(|f| WireFile {
            id: f.id.to_string(),
            name: f.name.to_string(),
            size: f.size,
            kind: f.kind.as_str().to_owned(),
        })
        .collect();
    serde_json::to_string(&WireMessage {
        id: 0,
        author: wire_user(author),
        text,
        sent_at: now_millis().timestamp_millis(),
        edited_at: None,
        reactions: BTreeMap::new(),
        attachments,
    })
}

/// A stored message of `room`, or `None` if it does not parse.
pub(super) fn message(json: &str, room: &Room) -> Option<Arc<ChatMessage>> {
    let wire: WireMessage = serde_json::from_str(json).ok()?;
    Some(Arc::new(chat_message(wire, room)))
}

/// A signal as published on its room's channel.
pub(super) fn signal(signal: Signal) -> serde_json::Result<String> {
    let wire = match signal {
        Signal::Presence(share) => WireChange::Presence(WirePresence {
            node: share.node.to_string(),
            full: share.full,
            ask: share.ask,
            members: share
                .members
                .iter()
                .map(|(user, state)| (wire_user(user), here_name(*state).to_owned()))
                .collect(),
        }),
        Signal::Typing(user) => WireChange::Typing(wire_user(&user)),
    };
    serde_json::to_string(&wire)
}

/// A member's value in a node's stored share of a room: `[user, state]`.
pub(super) fn share_value(user: &UserRef, state: HereState) -> serde_json::Result<String> {
    serde_json::to_string(&(wire_user(user), here_name(state)))
}

/// Every node's stored share, from the shares script's `node value` lines; lines that do
/// not parse are skipped.
pub(super) fn stored_shares(lines: &[String]) -> Vec<NodePresence> {
    let mut by_node: std::collections::HashMap<&str, Vec<(UserRef, HereState)>> =
        std::collections::HashMap::new();
    for line in lines {
        let Some((node, value)) = line.split_once(' ') else {
            continue;
        };
        let Ok((user, state)) = serde_json::from_str::<(WireUser, String)>(value) else {
            continue;
        };
        if let Some(state) = here_state(&state) {
            by_node
                .entry(node)
                .or_default()
                .push((user_ref(user), state));
        }
    }
    by_node
        .into_iter()
        .map(|(node, members)| NodePresence::new(Arc::from(node), true, false, members))
        .collect()
}

/// A change published on `room`'s channel; a member's state this node does not know is
/// skipped.
pub(super) fn change(payload: &[u8], room: &Room) -> serde_json::Result<Option<Change>> {
    Ok(match serde_json::from_slice::<WireChange>(payload)? {
        WireChange::Posted(m) => Some(Change::Posted(Arc::new(chat_message(m, room)))),
        WireChange::Deleted(id) => Some(Change::Deleted(id)),
        WireChange::Updated(m) => Some(Change::Updated(Arc::new(chat_message(m, room)))),
        WireChange::Typing(u) => Some(Change::Signal(Signal::Typing(user_ref(u)))),
        WireChange::Presence(p) => {
            let members = p
                .members
                .into_iter()
                .filter_map(|(user, state)| Some((user_ref(user), here_state(&state)?)))
                .collect();
            let share = NodePresence::new(Arc::from(p.node), p.full, p.ask, members);
            Some(Change::Signal(Signal::Presence(share)))
        }
    })
}

/// A channel's record, as stored in the channels hash.
pub(super) fn channel(name: &ChannelName, created_at: DateTime<Utc>) -> serde_json::Result<String> {
    serde_json::to_string(&wire_channel(name, created_at))
}

/// A stored channel record, or `None` if it does not parse or names no valid channel.
pub(super) fn channel_record(json: &str) -> Option<ChannelRecord> {
    record(serde_json::from_str(json).ok()?)
}

/// A private pair, ordered by the caller, as stored in each user's set.
pub(super) fn pair(pair: &[UserRef; 2]) -> serde_json::Result<String> {
    serde_json::to_string(&pair.each_ref().map(wire_user))
}

/// A stored private pair, or `None` if it does not parse.
pub(super) fn stored_pair(json: &str) -> Option<[UserRef; 2]> {
    let [a, b] = serde_json::from_str::<[WireUser; 2]>(json).ok()?;
    Some([user_ref(a), user_ref(b)])
}

/// The cluster event `ChannelCreated`, as published.
pub(super) fn channel_created(
    name: &ChannelName,
    created_at: DateTime<Utc>,
) -> serde_json::Result<String> {
    serde_json::to_string(&WireCluster::ChannelCreated(wire_channel(name, created_at)))
}

/// The cluster event `DirectOpened`, as published.
pub(super) fn direct_opened(pair: &[UserRef; 2]) -> serde_json::Result<String> {
    serde_json::to_string(&WireCluster::DirectOpened(pair.each_ref().map(wire_user)))
}

/// A published cluster event; `Ok(None)` for a channel whose name is not valid.
pub(super) fn cluster_event(payload: &[u8]) -> serde_json::Result<Option<ClusterEvent>> {
    Ok(match serde_json::from_slice::<WireCluster>(payload)? {
        WireCluster::ChannelCreated(c) => {
            record(c).map(|(name, created_at)| ClusterEvent::ChannelCreated { name, created_at })
        }
        WireCluster::DirectOpened([a, b]) => {
            Some(ClusterEvent::DirectOpened([user_ref(a), user_ref(b)]))
        }
        WireCluster::NodeGone(node) => Some(ClusterEvent::NodeGone(Arc::from(node))),
        WireCluster::LoggedOut(user) => Some(ClusterEvent::LoggedOut(UserId(user))),
    })
}

fn chat_message(m: WireMessage, room: &Room) -> ChatMessage {
    let reactions = m.reactions.into_iter().filter_map(|(emoji, users)| {
        let users = users.into_iter().map(UserId).collect();
        Some((Emoji::parse(&emoji)?, users))
    });
    ChatMessage::new(
        m.id,
        room.clone(),
        user_ref(m.author),
        m.text,
        DateTime::from_timestamp_millis(m.sent_at).unwrap_or_default(),
    )
    .with_changes(
        m.edited_at.and_then(DateTime::from_timestamp_millis),
        Reactions::from_entries(reactions),
    )
    .with_attachments(
        m.attachments
            .into_iter()
            .filter_map(|f| {
                let kind = FileKind::from_name(&f.kind);
                Some(Attachment::new(
                    FileId::parse(&f.id)?,
                    &f.name,
                    f.size,
                    kind,
                ))
            })
            .collect(),
    )
}

fn wire_channel(name: &ChannelName, created_at: DateTime<Utc>) -> WireChannel {
    WireChannel {
        name: name.as_str().to_owned(),
        created_at: created_at.timestamp_millis(),
    }
}

/// A channel some node created, checked by this node's naming rules but not its length
/// limit: the channel exists already, whatever limit its node had.
fn record(c: WireChannel) -> Option<ChannelRecord> {
    let name = validate::channel_name(
        &c.name,
        &Limits {
            max_channel_name_chars: usize::MAX,
            ..Limits::default()
        },
    )
    .ok()?;
    Some((name, DateTime::from_timestamp_millis(c.created_at)?))
}

fn here_name(state: HereState) -> &'static str {
    match state {
        HereState::Online => "online",
        HereState::Offline => "offline",
        HereState::Left => "left",
    }
}

fn here_state(name: &str) -> Option<HereState> {
    [HereState::Online, HereState::Offline, HereState::Left]
        .into_iter()
        .find(|s| here_name(*s) == name)
}

fn wire_user(u: &UserRef) -> WireUser {
    WireUser {
        id: u.id.0,
        name: u.name.to_string(),
    }
}

fn user_ref(u: WireUser) -> UserRef {
    UserRef {
        id: UserId(u.id),
        name: Arc::from(u.name),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alice() -> UserRef {
        UserRef {
            id: UserId(7),
            name: Arc::from("alice"),
        }
    }

    #[test]
    fn a_draft_starts_with_the_id_the_post_script_replaces() {
        let draft = draft(&alice(), "hi".into(), &[]).unwrap();
        assert!(draft.starts_with(r#"{"id":0,"#), "{draft}");
    }

    #[test]
    fn what_is_stored_or_published_reads_back() {
        let limits = Limits::default();
        let name = validate::channel_name("General", &limits).unwrap();
        let created_at = DateTime::from_timestamp_millis(1_700_000_000_123).unwrap();
        let stored = channel(&name, created_at).unwrap();
        assert_eq!(channel_record(&stored), Some((name.clone(), created_at)));
        let event = cluster_event(channel_created(&name, created_at).unwrap().as_bytes());
        assert!(matches!(
            event,
            Ok(Some(ClusterEvent::ChannelCreated { name: n, created_at: at }))
                if n == name && at == created_at
        ));

        let bob = UserRef {
            id: UserId(9),
            name: Arc::from("bob"),
        };
        let pair_json = pair(&[alice(), bob.clone()]).unwrap();
        assert_eq!(stored_pair(&pair_json), Some([alice(), bob.clone()]));

        let room = Room::Channel(name);
        let typing = signal(Signal::Typing(bob.clone())).unwrap();
        assert!(matches!(
            change(typing.as_bytes(), &room),
            Ok(Some(Change::Signal(Signal::Typing(u)))) if u.id == UserId(9)
        ));
        let share = NodePresence::new(
            Arc::from("n1"),
            false,
            true,
            vec![(alice(), HereState::Online), (bob, HereState::Left)],
        );
        let presence = signal(Signal::Presence(share)).unwrap();
        assert!(matches!(
            change(presence.as_bytes(), &room),
            Ok(Some(Change::Signal(Signal::Presence(p))))
                if &*p.node == "n1" && !p.full && p.ask
                    && p.members == [(alice(), HereState::Online), (UserRef { id: UserId(9), name: Arc::from("bob") }, HereState::Left)]
        ));
        assert!(matches!(
            cluster_event(br#"{"node_gone":"n2"}"#),
            Ok(Some(ClusterEvent::NodeGone(n))) if &*n == "n2"
        ));
        let posted = format!(
            r#"{{"posted":{}}}"#,
            draft(&alice(), "hi".into(), &[]).unwrap()
        );
        assert!(matches!(
            change(posted.as_bytes(), &room),
            Ok(Some(Change::Posted(m))) if m.text == "hi" && m.author == alice()
        ));
    }

    /// What the edit and react scripts write (Lua's cjson: keys in any order, `/`
    /// escaped, an empty reactions table as `{}`) reads back as the engine's message.
    #[test]
    fn a_message_the_scripts_rewrote_reads_back_with_its_edit_and_reactions() {
        let room = Room::Channel(validate::channel_name("g", &Limits::default()).unwrap());
        let json = r#"{"updated":{"text":"fixed \/ now","reactions":{"\u2764\ufe0f":[9,7],"\ud83d\udc4d":[7]},"sent_at":1700000000000,"author":{"name":"alice","id":7},"id":3,"edited_at":1700000000500}}"#;
        let Ok(Some(Change::Updated(m))) = change(json.as_bytes(), &room) else {
            panic!("an update reads back");
        };
        assert_eq!((m.id, m.text.as_str()), (3, "fixed / now"));
        assert_eq!(
            m.edited_at.map(|t| t.timestamp_millis()),
            Some(1_700_000_000_500)
        );
        let listed: Vec<_> = m
            .reactions
            .iter()
            .map(|(e, u)| (e.name(), u.to_vec()))
            .collect();
        assert_eq!(
            listed,
            vec![
                ("+1", vec![UserId(7)]),
                ("heart", vec![UserId(9), UserId(7)])
            ]
        );
        let empty =
            r#"{"id":4,"author":{"id":7,"name":"a"},"text":"t","sent_at":1,"reactions":{}}"#;
        assert!(message(empty, &room).is_some_and(|m| m.reactions.is_empty()));
    }
}
