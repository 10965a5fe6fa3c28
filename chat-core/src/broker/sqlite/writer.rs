//! The write-behind thread: the one owner of the SQLite connection after start. It takes
//! every change the broker queued ([`Write`]) and commits all that waits as one
//! transaction, then the next batch, so the rooms' fan-out never waits for the disk and a
//! busy server writes many changes per commit.
//!
//! Fed only by `SqliteBroker`. Every change the broker decides first takes a place in the
//! [`Budget`], which the writer gives back only once the change is committed: so the
//! changes acknowledged and not yet on disk (what `kill -9` can lose) are never more than
//! the budget, and the writer keeps the budget to about [`TARGET_BEHIND`] of its own
//! measured pace. When the disk falls behind, the broker's commits wait for a place
//! (backpressure on posters, never unbounded memory). The writer must not decide
//! anything: every change it gets was already decided in memory, and it applies them in
//! the order they were queued, evicting exactly as the in-memory history does.

use std::collections::HashMap;
use std::fs::File;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rusqlite::{params, Connection, Transaction};
use tokio::sync::{mpsc, oneshot, Semaphore};

use super::schema::failure;
use crate::attachment::{FileId, StoredFile};
use crate::broker::ChannelRecord;
use crate::error::ChatError;
use crate::identity::TokenHash;
use crate::model::{ChatMessage, MessageId, RoomKey, UserId, UserRef};
use crate::telemetry;

/// Most changes decided and not yet committed, however fast the disk: what a restart
/// after `kill -9` skips ids for, and what the queue may pin (this many message texts at
/// most).
pub(super) const MAX_BEHIND: usize = 16_384;

/// Fewest places in the budget, however slow the disk: a stalled disk stops posters after
/// this many changes.
const MIN_BEHIND: usize = 256;

/// The writer keeps the budget to about this much of its own work: the changes waiting
/// are committed within this long at the pace it measured, so `kill -9` loses at most
/// about this much of acknowledged work (plus one commit).
pub(super) const TARGET_BEHIND: Duration = Duration::from_millis(250);

/// Most changes committed in one transaction.
const BATCH_MAX: usize = MAX_BEHIND;

/// After a failed commit, the writer tries the same batch again after this long, doubling
/// up to [`RETRY_MAX`]: the changes stay queued (and posters wait) until the disk takes
/// them, rather than being dropped.
const RETRY_FIRST: Duration = Duration::from_millis(100);
const RETRY_MAX: Duration = Duration::from_secs(5);

/// A change as queued: the write, and whether it holds a place in the budget (every
/// decision does; a user's last-seen time at the end of a session does not).
pub(super) type Queued = (Write, bool);

/// One change for the store, in the order the broker decided it.
#[derive(Debug)]
pub(super) enum Write {
    /// A new user.
    User {
        user: UserRef,
        token: TokenHash,
        seen_ms: i64,
    },
    /// An external id's user logged in (`Login::External`): the id's mapping, kept for
    /// good, and the user's row as for [`Write::User`].
    External {
        external: String,
        user: UserRef,
        token: TokenHash,
        seen_ms: i64,
    },
    /// Users seen connected at `at_ms` (wall clock): their name hold runs from then.
    Seen { users: Vec<UserId>, at_ms: i64 },
    /// Users whose name hold ran out, or who logged out: forgotten, with the private pairs of which both users
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
    /// A kept message was edited or reacted to: its new state.
    Updated(Arc<ChatMessage>),
    /// An uploaded file, waiting for its post since `uploaded_ms`; answered once it is
    /// committed (an upload is acknowledged only once its bytes are on disk).
    File {
        file: StoredFile,
        uploaded_ms: i64,
        written: Answer,
    },
    /// Uploaded files that no post claimed in time.
    DropFiles(Vec<FileId>),
    /// Answer once everything queued before is committed, and mark the store clean.
    Flush(Answer),
    /// As `Flush`, then stop: the writer lets go of the file and its lock, and only then
    /// is this answered (`Broker::close`), so the store can be opened again at once.
    Close(Answer),
}

/// Where a write that someone waits for is answered.
pub(super) type Answer = oneshot::Sender<Result<(), ChatError>>;

impl Write {
    /// The answer this write owes once committed, if someone waits for it.
    fn answer(&mut self) -> Option<&mut Answer> {
        match self {
            Write::Flush(answer)
            | Write::File {
                written: answer, ..
            } => Some(answer),
            _ => None,
        }
    }
}

/// The text key of a room in the `rooms` and `messages` tables: `c:KEY` or `d:A:B`.
pub(super) fn room_key(key: &RoomKey) -> String {
    match key {
        RoomKey::Channel(key) => format!("c:{key}"),
        RoomKey::Direct(a, b) => format!("d:{}:{}", a.0, b.0),
    }
}

/// The places for changes decided and not yet committed, and how the writer sizes them.
#[derive(Debug)]
pub(super) struct Budget {
    /// One permit per place; the broker takes one before it decides a change.
    pub(super) places: Arc<Semaphore>,
    /// The places that exist (free or taken).
    total: usize,
    /// Changes committed per second while committing, smoothed.
    pace: f64,
}

impl Budget {
    /// A budget for a writer whose pace is not known yet.
    pub(super) fn new() -> Budget {
        let total = MAX_BEHIND / 4;
        Budget {
            places: Arc::new(Semaphore::new(total)),
            total,
            pace: 0.0,
        }
    }

    /// `done` places come back after a commit that took `took`: given back, fewer when the
    /// budget is above what the measured pace allows, more when it is below.
    fn committed(&mut self, done: usize, took: Duration) {
        if done == 0 {
            return;
        }
        let sample = done as f64 / took.as_secs_f64().max(1e-6);
        self.pace = if self.pace == 0.0 {
            sample
        } else {
            0.8 * self.pace + 0.2 * sample
        };
        let target =
            ((self.pace * TARGET_BEHIND.as_secs_f64()) as usize).clamp(MIN_BEHIND, MAX_BEHIND);
        let held_back = done.min(self.total.saturating_sub(target));
        let added = target.saturating_sub(self.total);
        self.total = self.total - held_back + added;
        self.places.add_permits(done - held_back + added);
    }
}

/// Closes the budget when dropped: no place will ever come back.
struct CloseOnDrop(Arc<Semaphore>);

impl Drop for CloseOnDrop {
    fn drop(&mut self) {
        self.0.close();
    }
}

/// The writer thread's state.
pub(super) struct Writer {
    pub(super) conn: Connection,
    /// The lock that keeps other servers out (`schema::open`); declared after `conn`, so
    /// it is let go after the file is closed.
    pub(super) _lock: File,
    pub(super) path: PathBuf,
    /// Messages kept per room (`Limits::history`).
    pub(super) history: usize,
    /// Whether the file says `clean = 1`: every id given was written. The first write
    /// after a flush says otherwise, in the same transaction as itself.
    pub(super) clean: bool,
    pub(super) budget: Budget,
    /// How many messages each room has on disk, learnt on its first post here: so that
    /// evicting the oldest is one look-up, not a count.
    pub(super) counts: HashMap<String, usize>,
    /// Whether the last commit succeeded (the broker's `reachable`): false while the
    /// disk refuses a batch and the writer retries it.
    pub(super) healthy: Arc<AtomicBool>,
    /// The answer of a `Write::Close` taken, owed once the file and its lock are let go.
    pub(super) closing: Option<Answer>,
}

impl Writer {
    /// Commits batch after batch until every sender is gone or the store is closed, then
    /// marks the store clean. Returns the answer a close is owed: the caller gives it
    /// once this writer, its file and its lock are gone.
    pub(super) fn run(mut self, mut queue: mpsc::UnboundedReceiver<Queued>) -> Option<Answer> {
        // However this thread ends, a broker waiting for a place then hears that it is
        // gone instead of waiting for ever.
        let _closing = CloseOnDrop(self.budget.places.clone());
        let mut batch = Vec::with_capacity(1024);
        while let Some(first) = queue.blocking_recv() {
            batch.push(first);
            while batch.len() < BATCH_MAX {
                match queue.try_recv() {
                    Ok(queued) => batch.push(queued),
                    Err(_) => break,
                }
            }
            self.commit(&mut batch);
            if self.closing.is_some() {
                break;
            }
        }
        // Every sender is gone, or the store is closed: nothing more is taken, so nothing
        // can be given an id any more.
        let (done, _) = oneshot::channel();
        self.commit(&mut vec![(Write::Flush(done), false)]);
        tracing::debug!(path = %self.path.display(), "store closed");
        self.closing.take()
    }

    /// Commits `batch` (emptying it), trying again while the disk refuses it, then gives
    /// the places back. A flush in a batch that failed is told so at once; its changes
    /// are still written later.
    fn commit(&mut self, batch: &mut Vec<Queued>) {
        let mut wait = RETRY_FIRST;
        let started = Instant::now();
        loop {
            let attempt = Instant::now();
            let result = self.try_commit(batch);
            telemetry::store_write(attempt.elapsed(), result.is_ok());
            self.healthy.store(result.is_ok(), Ordering::Relaxed);
            match result {
                Ok(()) => break,
                Err(e) => {
                    // What the failed transaction counted is not on disk: count again.
                    self.counts.clear();
                    let error = failure(&self.path, "cannot write", e);
                    tracing::error!(error = %error, retry_in = ?wait, writes = batch.len(), "store write failed");
                    for (write, _) in batch.iter_mut() {
                        if let Some(answer) = write.answer() {
                            let (gone, _) = oneshot::channel();
                            let _ = std::mem::replace(answer, gone).send(Err(error.clone()));
                        }
                    }
                    std::thread::sleep(wait);
                    wait = (wait * 2).min(RETRY_MAX);
                }
            }
        }
        let placed = batch.iter().filter(|(_, placed)| *placed).count();
        self.budget.committed(placed, started.elapsed());
        for (mut write, _) in batch.drain(..) {
            if let Write::Close(answer) = write {
                self.closing = Some(answer);
            } else if let Some(answer) = write.answer() {
                let (gone, _) = oneshot::channel();
                let _ = std::mem::replace(answer, gone).send(Ok(()));
            }
        }
    }

    fn try_commit(&mut self, batch: &[Queued]) -> rusqlite::Result<()> {
        let mut clean = self.clean;
        let tx = self.conn.transaction()?;
        let mut last_ids: HashMap<String, MessageId> = HashMap::new();
        let mut rooms = Rooms {
            history: self.history,
            counts: &mut self.counts,
            last_ids: &mut last_ids,
        };
        for (write, _) in batch {
            let flushing = matches!(write, Write::Flush(_) | Write::Close(_));
            if clean != flushing {
                clean = flushing;
                tx.prepare_cached("UPDATE meta SET value = ?1 WHERE key = 'clean'")?
                    .execute([clean])?;
            }
            apply(&tx, write, &mut rooms)?;
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

/// What the writer tracks of rooms while it applies a batch.
struct Rooms<'a> {
    history: usize,
    counts: &'a mut HashMap<String, usize>,
    /// The last id of each room posted to in this batch, written once at its end.
    last_ids: &'a mut HashMap<String, MessageId>,
}

impl Rooms<'_> {
    /// The number of messages `room` has on disk, counted once.
    fn count(&mut self, tx: &Transaction<'_>, room: &str) -> rusqlite::Result<&mut usize> {
        if !self.counts.contains_key(room) {
            let count: usize = tx
                .prepare_cached("SELECT count(*) FROM messages WHERE room = CAST(?1 AS TEXT)")?
                .query_row([room], |row| row.get(0))?;
            self.counts.insert(room.to_owned(), count);
        }
        Ok(self.counts.entry(room.to_owned()).or_default())
    }
}

/// Writes a user's row (new, or with a new token), and keeps `next_user_id` past it.
fn write_user(
    tx: &Transaction<'_>,
    user: &UserRef,
    token: &TokenHash,
    seen_ms: i64,
) -> rusqlite::Result<()> {
    tx.prepare_cached(
        "INSERT OR REPLACE INTO users (id, name, token_hash, last_seen)
         VALUES (?1, ?2, ?3, ?4)",
    )?
    .execute(params![user.id.0, &*user.name, &token.0[..], seen_ms])?;
    tx.prepare_cached("UPDATE meta SET value = max(value, ?1) WHERE key = 'next_user_id'")?
        .execute([user.id.0 + 1])?;
    Ok(())
}

/// Applies one change inside the batch's transaction.
fn apply(tx: &Transaction<'_>, write: &Write, rooms: &mut Rooms<'_>) -> rusqlite::Result<()> {
    match write {
        Write::User {
            user,
            token,
            seen_ms,
        } => write_user(tx, user, token, *seen_ms)?,
        Write::External {
            external,
            user,
            token,
            seen_ms,
        } => {
            tx.prepare_cached(
                "INSERT OR IGNORE INTO external_users (external_id, user_id) VALUES (?1, ?2)",
            )?
            .execute(params![external, user.id.0])?;
            write_user(tx, user, token, *seen_ms)?;
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
            // Some private rooms may be gone: their counts are learnt again if needed.
            rooms.counts.retain(|room, _| room.starts_with("c:"));
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
            // Counted before the insert, so that the count learnt is the one before it.
            rooms.count(tx, &room)?;
            let added = tx
                .prepare_cached(
                    "INSERT OR IGNORE INTO messages
                     (room, id, author_id, author_name, text, sent_at)
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
            let history = rooms.history;
            let count = rooms.count(tx, &room)?;
            *count += added;
            // The history keeps the newest `history` messages: evict the oldest beyond
            // them now, as the in-memory ring does on this push (not at the end of the
            // batch: a deletion later in it must not bring an evicted message back).
            while *count > history {
                let evicted = evict_oldest(tx, &room)?;
                *count = if evicted == 0 { 0 } else { *count - evicted };
            }
            attach_files(tx, &room, message)?;
            let last = rooms.last_ids.entry(room).or_default();
            *last = (*last).max(message.id);
        }
        Write::Deleted { room, id } => {
            let room = room_key(room);
            rooms.count(tx, &room)?;
            let removed = tx
                .prepare_cached("DELETE FROM messages WHERE room = ?1 AND id = ?2")?
                .execute(params![&room, id])?;
            let count = rooms.count(tx, &room)?;
            *count = count.saturating_sub(removed);
        }
        Write::Updated(message) => {
            // A message evicted or deleted meanwhile matches no row: nothing to keep.
            tx.prepare_cached(
                "UPDATE messages SET text = ?3, edited_at = ?4, reactions = ?5
                 WHERE room = ?1 AND id = ?2",
            )?
            .execute(params![
                room_key(&message.room.key()),
                message.id,
                &message.text,
                message.edited_at.map(|at| at.timestamp_millis()),
                message.reactions.to_text(),
            ])?;
        }
        Write::File {
            file, uploaded_ms, ..
        } => {
            let a = &file.attachment;
            tx.prepare_cached(
                "INSERT OR REPLACE INTO files (id, owner, name, size, kind, uploaded_at, data)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            )?
            .execute(params![
                a.id.as_str(),
                file.owner.0,
                &*a.name,
                a.size,
                a.kind.as_str(),
                uploaded_ms,
                &file.bytes[..]
            ])?;
        }
        Write::DropFiles(ids) => {
            let mut drop =
                tx.prepare_cached("DELETE FROM files WHERE id = ?1 AND message_id IS NULL")?;
            for id in ids {
                drop.execute([id.as_str()])?;
            }
        }
        Write::Flush(_) | Write::Close(_) => {}
    }
    Ok(())
}

/// Marks the files `message` carries as its own, in their places (a trigger deletes them
/// with the message).
fn attach_files(tx: &Transaction<'_>, room: &str, message: &ChatMessage) -> rusqlite::Result<()> {
    if message.attachments.is_empty() {
        return Ok(());
    }
    let mut attach = tx.prepare_cached(
        "UPDATE files SET room = ?2, message_id = ?3, position = ?4 WHERE id = ?1",
    )?;
    for (position, file) in message.attachments.iter().enumerate() {
        attach.execute(params![file.id.as_str(), room, message.id, position])?;
    }
    Ok(())
}

/// Forgets the private pairs of which both users are forgotten, with their rooms, as the
/// in-memory broker does: a private conversation lives while either of its users does.
/// The oldest kept message of a room (see [`evict_oldest`]).
const OLDEST: &str = "SELECT min(id) FROM messages WHERE room = CAST(?1 AS TEXT)";

/// Deletes the oldest kept message of `room`; how many were deleted (0 when none is
/// kept). The room is compared as `CAST(?1 AS TEXT)`: with a bare `?1` compared to the
/// indexed `room`, the bundled SQLite re-prepares the statement whenever the bound room
/// changes (`sqlite3Reprepare`, about 50,000 instructions each under callgrind: a third
/// of the server's work in busy rooms), with the same plan either way.
fn evict_oldest(tx: &Transaction<'_>, room: &str) -> rusqlite::Result<usize> {
    let oldest: Option<u64> = tx
        .prepare_cached(OLDEST)?
        .query_row([room], |row| row.get(0))?;
    match oldest {
        Some(id) => tx
            .prepare_cached("DELETE FROM messages WHERE room = ?1 AND id = ?2")?
            .execute(params![room, id]),
        None => Ok(0),
    }
}

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

#[cfg(test)]
mod tests {
    use rusqlite::StatementStatus;

    use super::*;

    /// Evicting in rooms that take turns must not re-prepare the statement each time
    /// (what a bare `room = ?1` made the bundled SQLite do).
    #[test]
    fn eviction_in_rooms_taking_turns_reuses_its_statements() {
        let dir = std::env::temp_dir().join(format!(
            "flack-writer-evict-{}-{}",
            std::process::id(),
            crate::broker::new_epoch()
        ));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let mut opened = super::super::schema::open(&dir.join("flack.sqlite3")).expect("open");
        let tx = opened.conn.transaction().expect("transaction");
        for room in ["c:a", "c:b"] {
            for id in 1..=20u64 {
                tx.execute(
                    "INSERT INTO messages (room, id, author_id, author_name, text, sent_at)
                     VALUES (?1, ?2, 1, 'ann', 'x', 0)",
                    params![room, id],
                )
                .expect("insert");
            }
        }
        for turn in 0..10 {
            let room = if turn % 2 == 0 { "c:a" } else { "c:b" };
            assert_eq!(evict_oldest(&tx, room).expect("evict"), 1);
        }
        let count: u64 = tx
            .query_row("SELECT count(*) FROM messages", [], |r| r.get(0))
            .expect("count");
        assert_eq!(count, 30);
        let reprepared = tx
            .prepare_cached(OLDEST)
            .expect("cached")
            .get_status(StatementStatus::RePrepare);
        assert_eq!(reprepared, 0);
        drop(tx);
        drop(opened);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
