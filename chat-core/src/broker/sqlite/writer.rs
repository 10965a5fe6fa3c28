//! The write-behind thread: the one owner of the SQLite connection after start. It takes
//! every change the broker queued ([`Write`]) and commits all that waits as one
//! transaction, then the next batch, so the rooms' fan-out never waits for the disk and a
//! busy server writes many changes per commit.
//!
//! Fed only by `SqliteBroker` through a bounded queue ([`PENDING_WRITES`]): when the disk
//! falls that far behind, the broker's commits wait for room (backpressure on posters,
//! never unbounded memory). It must not decide anything: every change it gets was already
//! decided in memory, and it applies them in the order they were queued, evicting exactly
//! as the in-memory history does.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use rusqlite::{params, Connection, Transaction};
use tokio::sync::{mpsc, oneshot};

use super::schema::failure;
use crate::broker::ChannelRecord;
use crate::directory::identity::TokenHash;
use crate::error::ChatError;
use crate::model::{ChatMessage, MessageId, RoomKey, UserId, UserRef};

/// Most changes waiting for the writer. A post waits for a place in this queue before it
/// is given an id, so at most this many acknowledged changes wait here, plus one batch
/// being written: what `kill -9` can lose, and what a restart after it skips ids for. At
/// the rate `docs/performance.md` measures, a full queue is written in well under a
/// second; it pins at most this many messages' texts.
pub(super) const PENDING_WRITES: usize = 16_384;

/// Most changes committed in one transaction: everything that waits, up to a queue's worth.
const BATCH_MAX: usize = PENDING_WRITES;

/// After a failed commit, the writer tries the same batch again after this long, doubling
/// up to [`RETRY_MAX`]: the changes stay queued (and posters wait) until the disk takes
/// them, rather than being dropped.
const RETRY_FIRST: Duration = Duration::from_millis(100);
const RETRY_MAX: Duration = Duration::from_secs(5);

/// One change for the store, in the order the broker decided it.
#[derive(Debug)]
pub(super) enum Write {
    /// A new user.
    User {
        user: UserRef,
        token: TokenHash,
        seen_ms: i64,
    },
    /// Users seen connected at `at_ms` (wall clock): their name hold runs from then.
    Seen { users: Vec<UserId>, at_ms: i64 },
    /// Users whose name hold ran out: forgotten, with the private pairs of which both users
    /// are forgotten and those pairs' rooms.
    Forget(Vec<UserId>),
    /// A new channel.
    Channel(ChannelRecord),
    /// A private pair, lower id first.
    Direct([UserRef; 2]),
    /// A message was posted: stored, and the oldest evicted beyond the history limit.
    Posted(Arc<ChatMessage>),
    /// A message was deleted.
    Deleted { room: RoomKey, id: MessageId },
    /// Answer once everything queued before is committed, and mark the store clean.
    Flush(oneshot::Sender<Result<(), ChatError>>),
}

/// The text key of a room in the `rooms` and `messages` tables: `c:KEY` or `d:A:B`.
pub(super) fn room_key(key: &RoomKey) -> String {
    match key {
        RoomKey::Channel(key) => format!("c:{key}"),
        RoomKey::Direct(a, b) => format!("d:{}:{}", a.0, b.0),
    }
}

/// The writer thread's state.
pub(super) struct Writer {
    pub(super) conn: Connection,
    pub(super) path: PathBuf,
    /// Messages kept per room (`Limits::history`).
    pub(super) history: usize,
    /// Whether the file says `clean = 1`: every id given was written. The first write
    /// after a flush says otherwise, in the same transaction as itself.
    pub(super) clean: bool,
}

impl Writer {
    /// Commits batch after batch until every sender is gone, then marks the store clean.
    pub(super) fn run(mut self, mut queue: mpsc::Receiver<Write>) {
        let mut batch = Vec::with_capacity(1024);
        while let Some(first) = queue.blocking_recv() {
            batch.push(first);
            while batch.len() < BATCH_MAX {
                match queue.try_recv() {
                    Ok(write) => batch.push(write),
                    Err(_) => break,
                }
            }
            self.commit(&mut batch);
        }
        // Every sender is gone: nothing can be given an id any more.
        let (done, _) = oneshot::channel();
        self.commit(&mut vec![Write::Flush(done)]);
        tracing::debug!(path = %self.path.display(), "store closed");
    }

    /// Commits `batch` (emptying it), trying again while the disk refuses it. A flush in
    /// a batch that failed is told so at once; its changes are still written later.
    fn commit(&mut self, batch: &mut Vec<Write>) {
        let mut wait = RETRY_FIRST;
        loop {
            match self.try_commit(batch) {
                Ok(()) => break,
                Err(e) => {
                    let error = failure(&self.path, "cannot write", e);
                    tracing::error!(error = %error, retry_in = ?wait, writes = batch.len(), "store write failed");
                    batch.retain_mut(|write| match write {
                        Write::Flush(answer) => {
                            let (gone, _) = oneshot::channel();
                            let _ = std::mem::replace(answer, gone).send(Err(error.clone()));
                            false
                        }
                        _ => true,
                    });
                    std::thread::sleep(wait);
                    wait = (wait * 2).min(RETRY_MAX);
                }
            }
        }
        for write in batch.drain(..) {
            if let Write::Flush(answer) = write {
                let _ = answer.send(Ok(()));
            }
        }
    }

    fn try_commit(&mut self, batch: &[Write]) -> rusqlite::Result<()> {
        let mut clean = self.clean;
        let tx = self.conn.transaction()?;
        let mut last_ids: HashMap<String, MessageId> = HashMap::new();
        for write in batch {
            let flushing = matches!(write, Write::Flush(_));
            if clean != flushing {
                clean = flushing;
                tx.prepare_cached("UPDATE meta SET value = ?1 WHERE key = 'clean'")?
                    .execute([clean])?;
            }
            apply(&tx, write, self.history, &mut last_ids)?;
        }
        let mut upsert = tx.prepare_cached(
            "INSERT INTO rooms (room, last_id) VALUES (?1, ?2)
             ON CONFLICT (room) DO UPDATE SET last_id = max(last_id, excluded.last_id)",
        )?;
        for (room, id) in &last_ids {
            upsert.execute(params![room, id])?;
        }
        drop(upsert);
        tx.commit()?;
        self.clean = clean;
        Ok(())
    }
}

/// Applies one change inside the batch's transaction; the last id of each room posted to
/// is gathered in `last_ids` and written once per batch.
fn apply(
    tx: &Transaction<'_>,
    write: &Write,
    history: usize,
    last_ids: &mut HashMap<String, MessageId>,
) -> rusqlite::Result<()> {
    match write {
        Write::User {
            user,
            token,
            seen_ms,
        } => {
            tx.prepare_cached(
                "INSERT OR REPLACE INTO users (id, name, token_hash, last_seen)
                 VALUES (?1, ?2, ?3, ?4)",
            )?
            .execute(params![user.id.0, &*user.name, &token.0[..], seen_ms])?;
            tx.prepare_cached("UPDATE meta SET value = max(value, ?1) WHERE key = 'next_user_id'")?
                .execute([user.id.0 + 1])?;
        }
        Write::Seen { users, at_ms } => {
            let mut seen =
                tx.prepare_cached("UPDATE users SET last_seen = max(last_seen, ?2) WHERE id = ?1")?;
            for user in users {
                seen.execute(params![user.0, at_ms])?;
            }
        }
        Write::Forget(users) => {
            let mut forget = tx.prepare_cached("DELETE FROM users WHERE id = ?1")?;
            for user in users {
                forget.execute([user.0])?;
            }
            forget_orphaned_directs(tx)?;
        }
        Write::Channel((name, created_at)) => {
            tx.prepare_cached(
                "INSERT OR IGNORE INTO channels (key, name, created_at) VALUES (?1, ?2, ?3)",
            )?
            .execute(params![
                name.key(),
                name.as_str(),
                created_at.timestamp_millis()
            ])?;
        }
        Write::Direct([a, b]) => {
            tx.prepare_cached(
                "INSERT OR IGNORE INTO directs (a, a_name, b, b_name) VALUES (?1, ?2, ?3, ?4)",
            )?
            .execute(params![a.id.0, &*a.name, b.id.0, &*b.name])?;
        }
        Write::Posted(message) => {
            let room = room_key(&message.room.key());
            tx.prepare_cached(
                "INSERT OR REPLACE INTO messages (room, id, author_id, author_name, text, sent_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            )?
            .execute(params![
                &room,
                message.id,
                message.author.id.0,
                &*message.author.name,
                &message.text,
                message.sent_at.timestamp_millis()
            ])?;
            // The history keeps the newest `history` messages: evict the oldest beyond
            // them now, as the in-memory ring does on this push (not at the end of the
            // batch: a deletion later in it must not bring an evicted message back).
            tx.prepare_cached(
                "DELETE FROM messages WHERE room = ?1 AND id <= (
                     SELECT id FROM messages WHERE room = ?1 ORDER BY id DESC LIMIT 1 OFFSET ?2
                 )",
            )?
            .execute(params![&room, history])?;
            let last = last_ids.entry(room).or_default();
            *last = (*last).max(message.id);
        }
        Write::Deleted { room, id } => {
            tx.prepare_cached("DELETE FROM messages WHERE room = ?1 AND id = ?2")?
                .execute(params![room_key(room), id])?;
        }
        Write::Flush(_) => {}
    }
    Ok(())
}

/// Forgets the private pairs of which both users are forgotten, with their rooms, as the
/// in-memory broker does: a private conversation lives while either of its users does.
pub(super) fn forget_orphaned_directs(tx: &Transaction<'_>) -> rusqlite::Result<()> {
    let orphans: Vec<(u64, u64)> = tx
        .prepare_cached(
            "SELECT a, b FROM directs
             WHERE a NOT IN (SELECT id FROM users) AND b NOT IN (SELECT id FROM users)",
        )?
        .query_map([], |row| Ok((row.get(0)?, row.get(1)?)))?
        .collect::<rusqlite::Result<_>>()?;
    for (a, b) in orphans {
        let room = room_key(&RoomKey::Direct(UserId(a), UserId(b)));
        tx.prepare_cached("DELETE FROM messages WHERE room = ?1")?
            .execute([&room])?;
        tx.prepare_cached("DELETE FROM rooms WHERE room = ?1")?
            .execute([&room])?;
        tx.prepare_cached("DELETE FROM directs WHERE a = ?1 AND b = ?2")?
            .execute([a, b])?;
    }
    Ok(())
}
