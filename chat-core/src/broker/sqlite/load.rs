//! Reading a store back at start: everything the in-memory broker needs to go on as if the
//! process had never stopped ([`Restored`]).
//!
//! Called once, by the writer thread, right after `schema::open` and before the first
//! write. In the same transaction it tidies what time made obsolete while the server was
//! stopped (users whose name hold ran out, with the private rooms of which both users are
//! gone; messages beyond a `history` limit lowered since) so that the file holds no more
//! than the server shows. After an unclean stop (`kill -9`, a crash, a power cut) it also
//! moves every room's last id past the ids that may have been given and not written, so
//! that no id is ever given twice. It must not write anything else.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use rusqlite::{params, Connection, OptionalExtension, Transaction};

use super::writer::{forget_orphaned_directs, MAX_BEHIND};
use crate::attachment::{Attachment, FileId, FileKind};
use crate::broker::{new_epoch, ChannelRecord, Restored, RestoredRoom, Stored};
use crate::identity::{StoredUser, TokenHash};
use crate::limits::Limits;
use crate::model::{ChannelName, ChatMessage, MessageId, Room, RoomKey, UserId, UserRef};
use crate::reaction::Reactions;

/// How far each room's last id moves after an unclean stop: a post is given an id only
/// with a place in the writer's budget, which comes back once the post is written, so at
/// most this many ids can have been given and not written.
pub(super) const UNCLEAN_ID_MARGIN: MessageId = MAX_BEHIND as MessageId;

/// Reads everything back; see the module doc for what it tidies on the way.
pub(super) fn read(conn: &mut Connection, limits: &Limits) -> rusqlite::Result<Restored> {
    let tx = conn.transaction()?;
    let now = Utc::now();
    let hold = i64::try_from(limits.name_hold.as_millis()).unwrap_or(i64::MAX);
    let oldest_kept = now.timestamp_millis().saturating_sub(hold);
    tx.execute("DELETE FROM users WHERE last_seen < ?1", [oldest_kept])?;
    forget_orphaned_directs(&tx)?;
    tx.execute(
        "DELETE FROM messages WHERE rowid IN (
             SELECT rowid FROM (
                 SELECT rowid, row_number() OVER (PARTITION BY room ORDER BY id DESC) AS newer
                 FROM messages
             ) WHERE newer > ?1
         )",
        [limits.history.max(1)],
    )?;
    let wait = i64::try_from(limits.upload_wait.as_millis()).unwrap_or(i64::MAX);
    tx.execute(
        "DELETE FROM files WHERE message_id IS NULL AND uploaded_at < ?1",
        [now.timestamp_millis().saturating_sub(wait)],
    )?;
    let clean: bool = meta(&tx, "clean")?.unwrap_or(1) == 1;
    if !clean {
        let rooms = tx.execute(
            "UPDATE rooms SET last_id = last_id + ?1, unknown_through = last_id + ?1",
            [UNCLEAN_ID_MARGIN],
        )?;
        if rooms > 0 {
            tracing::warn!(
                rooms,
                skipped = UNCLEAN_ID_MARGIN,
                "the store was not closed cleanly: the ids it may have given without \
                 writing them are skipped, and clients that saw them are told of a gap"
            );
        }
    }
    tx.execute("UPDATE meta SET value = 0 WHERE key = 'clean'", [])?;
    tx.execute(
        "INSERT OR IGNORE INTO meta (key, value) VALUES ('epoch', ?1)",
        [new_epoch()],
    )?;
    let epoch: String = tx.query_row("SELECT value FROM meta WHERE key = 'epoch'", [], |r| {
        r.get(0)
    })?;
    let next_user_id = meta(&tx, "next_user_id")?.unwrap_or(1).max(1) as u64;
    let users = users(&tx, now)?;
    let externals = externals(&tx)?;
    let channels = channels(&tx)?;
    let directs = directs(&tx)?;
    let (mut attached, waiting_files) = files(&tx, now)?;
    let file_owners = attached
        .values()
        .flatten()
        .map(|(file, owner)| (file.id.clone(), *owner))
        .collect();
    let rooms = rooms(&tx, &channels, &directs, &mut attached)?;
    tx.commit()?;
    Ok(Restored {
        epoch,
        users,
        externals,
        next_user_id,
        channels: channels.into_values().collect(),
        directs: directs.into_values().collect(),
        rooms,
        file_owners,
        waiting_files,
    })
}

fn meta(tx: &Transaction<'_>, key: &str) -> rusqlite::Result<Option<i64>> {
    tx.query_row("SELECT value FROM meta WHERE key = ?1", [key], |r| r.get(0))
        .optional()
}

fn users(tx: &Transaction<'_>, now: DateTime<Utc>) -> rusqlite::Result<Vec<StoredUser>> {
    let mut statement = tx.prepare("SELECT id, name, token_hash, last_seen FROM users")?;
    let rows = statement.query_map([], |row| {
        let hash: Vec<u8> = row.get(2)?;
        let last_seen: i64 = row.get(3)?;
        Ok((row.get(0)?, row.get::<_, String>(1)?, hash, last_seen))
    })?;
    let mut users = Vec::new();
    for row in rows {
        let (id, name, hash, last_seen) = row?;
        let Ok(hash) = <[u8; 32]>::try_from(hash.as_slice()) else {
            tracing::warn!(
                user = id,
                "a stored token hash has the wrong length; user skipped"
            );
            continue;
        };
        let away = now.timestamp_millis().saturating_sub(last_seen).max(0);
        users.push(StoredUser {
            user: UserRef {
                id: UserId(id),
                name: Arc::from(name),
            },
            token: TokenHash(hash),
            away: Duration::from_millis(away as u64),
        });
    }
    Ok(users)
}

/// Every external id ever logged in, with its user's id.
fn externals(tx: &Transaction<'_>) -> rusqlite::Result<Vec<(String, UserId)>> {
    let mut statement = tx.prepare("SELECT external_id, user_id FROM external_users")?;
    let rows = statement.query_map([], |row| Ok((row.get(0)?, UserId(row.get(1)?))))?;
    rows.collect()
}

/// Every channel, by case-folded key.
fn channels(tx: &Transaction<'_>) -> rusqlite::Result<HashMap<String, ChannelRecord>> {
    let mut statement = tx.prepare("SELECT key, name, created_at FROM channels")?;
    let rows = statement.query_map([], |row| {
        let key: String = row.get(0)?;
        let name: String = row.get(1)?;
        let created_at = millis(row.get(2)?);
        Ok((key, name, created_at))
    })?;
    let mut channels = HashMap::new();
    for row in rows {
        let (key, name, created_at) = row?;
        let channel = ChannelName {
            display: Arc::from(name),
            key: Arc::from(key.as_str()),
        };
        channels.insert(key, (channel, created_at));
    }
    Ok(channels)
}

/// Every private pair, by its two user ids.
fn directs(tx: &Transaction<'_>) -> rusqlite::Result<HashMap<(u64, u64), [UserRef; 2]>> {
    let mut statement = tx.prepare("SELECT a, a_name, b, b_name FROM directs")?;
    let rows = statement.query_map([], |row| {
        let user = |id: u64, name: String| UserRef {
            id: UserId(id),
            name: Arc::from(name),
        };
        let (a, b) = (row.get(0)?, row.get(2)?);
        Ok(((a, b), [user(a, row.get(1)?), user(b, row.get(3)?)]))
    })?;
    rows.collect()
}

/// Each room with its kept messages (already trimmed to the history limit), last id and
/// unknown ids. A room whose channel or pair the store does not have is dropped with a
/// warning: nothing could ever reach it.
fn rooms(
    tx: &Transaction<'_>,
    channels: &HashMap<String, ChannelRecord>,
    directs: &HashMap<(u64, u64), [UserRef; 2]>,
    files: &mut AttachedFiles,
) -> rusqlite::Result<Vec<RestoredRoom>> {
    let listed: Vec<(String, MessageId, MessageId)> = tx
        .prepare("SELECT room, last_id, unknown_through FROM rooms")?
        .query_map([], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)))?
        .collect::<rusqlite::Result<_>>()?;
    let mut messages = tx.prepare(
        "SELECT id, author_id, author_name, text, sent_at, edited_at, reactions FROM messages
         WHERE room = ?1 ORDER BY id",
    )?;
    let mut rooms = Vec::with_capacity(listed.len());
    for (text_key, last_id, unknown_through) in listed {
        let Some((key, room)) = parse_room(&text_key, channels, directs) else {
            tracing::warn!(room = %text_key, "a stored room has no channel or pair; dropped");
            tx.execute("DELETE FROM messages WHERE room = ?1", [&text_key])?;
            tx.execute("DELETE FROM rooms WHERE room = ?1", [&text_key])?;
            continue;
        };
        let kept = messages
            .query_map(params![&text_key], |row| {
                let author = UserRef {
                    id: UserId(row.get(1)?),
                    name: Arc::from(row.get::<_, String>(2)?),
                };
                let sent_at = millis(row.get(4)?);
                let edited_at = row.get::<_, Option<i64>>(5)?.map(millis);
                let reactions = Reactions::from_text(&row.get::<_, String>(6)?);
                let id: MessageId = row.get(0)?;
                let message = ChatMessage::new(id, room.clone(), author, row.get(3)?, sent_at);
                Ok(message.with_changes(edited_at, reactions))
            })?
            .map(|message| {
                let message = message?;
                let carried = files.remove(&(text_key.clone(), message.id));
                let attachments = carried.into_iter().flatten().map(|(file, _)| file);
                Ok(Arc::new(message.with_attachments(attachments.collect())))
            })
            .collect::<rusqlite::Result<Vec<_>>>()?;
        let stored = Stored::new(kept, last_id).with_unknown_through(unknown_through);
        rooms.push(RestoredRoom { key, stored });
    }
    Ok(rooms)
}

/// A file waiting for a post: what it is, its owner, and how long it has waited.
type WaitingFile = (Attachment, UserId, Duration);

/// The files of kept messages, by room key and message id, in their places.
type AttachedFiles = HashMap<(String, MessageId), Vec<(Attachment, UserId)>>;

/// Every kept file, without its bytes: those attached to a message, and those waiting for
/// a post with how long they have waited.
fn files(
    tx: &Transaction<'_>,
    now: DateTime<Utc>,
) -> rusqlite::Result<(AttachedFiles, Vec<WaitingFile>)> {
    let mut statement = tx.prepare(
        "SELECT id, owner, name, size, kind, uploaded_at, room, message_id FROM files
         ORDER BY room, message_id, position",
    )?;
    let mut rows = statement.query([])?;
    let (mut attached, mut waiting) = (AttachedFiles::new(), Vec::new());
    while let Some(row) = rows.next()? {
        let id: String = row.get(0)?;
        let Some(id) = FileId::parse(&id) else {
            tracing::warn!(file = %id, "a stored file id is malformed; skipped");
            continue;
        };
        let kind = FileKind::from_name(&row.get::<_, String>(4)?);
        let file = Attachment::new(id, &row.get::<_, String>(2)?, row.get(3)?, kind);
        let owner = UserId(row.get(1)?);
        match (
            row.get::<_, Option<String>>(6)?,
            row.get::<_, Option<MessageId>>(7)?,
        ) {
            (Some(room), Some(message)) => attached
                .entry((room, message))
                .or_default()
                .push((file, owner)),
            _ => {
                let waited = now.timestamp_millis().saturating_sub(row.get(5)?).max(0);
                waiting.push((file, owner, Duration::from_millis(waited as u64)));
            }
        }
    }
    Ok((attached, waiting))
}

/// The room a text key (`c:KEY`, `d:A:B`) names, if the store has its channel or pair.
fn parse_room(
    text_key: &str,
    channels: &HashMap<String, ChannelRecord>,
    directs: &HashMap<(u64, u64), [UserRef; 2]>,
) -> Option<(RoomKey, Room)> {
    if let Some(key) = text_key.strip_prefix("c:") {
        let (name, _) = channels.get(key)?;
        return Some((
            RoomKey::Channel(name.key.clone()),
            Room::Channel(name.clone()),
        ));
    }
    let (a, b) = text_key.strip_prefix("d:")?.split_once(':')?;
    let (a, b) = (a.parse().ok()?, b.parse().ok()?);
    let pair = directs.get(&(a, b))?;
    Some((
        RoomKey::Direct(UserId(a), UserId(b)),
        Room::Direct(pair.clone()),
    ))
}

/// A stored time (milliseconds since the Unix epoch, UTC).
fn millis(ms: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(ms).unwrap_or_default()
}
