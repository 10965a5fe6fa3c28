//! The SQLite file's tables, their version, and the checks made when it is opened.
//!
//! Called once per store, by the writer thread before it reads the file back (`load.rs`).
//! Every way a file can be unusable (not a database, corrupt, unreadable, written by a
//! newer version, another program's database, in use by another server) becomes a
//! [`ChatError::Store`] naming the file: a server never starts afresh over data it could
//! not read, and never panics on it. It must not read or write chat data.
//!
//! # Versions
//! `PRAGMA user_version` is the schema's version; `MIGRATIONS[n]` takes a file from
//! version `n` to `n + 1`, each in its own transaction, so a file from any older version
//! is brought up to date on opening and a failed step leaves it as it was. A file whose
//! version is newer than this build knows is refused: its layout may mean something this
//! build would get wrong. `PRAGMA application_id` marks the file as Flack's, so another
//! program's database is refused rather than written into.
//!
//! # Tables (version 4; version 1 had no `external_users`, version 2 no `edited_at` and
//! `reactions`, version 3 no `files`)
//! | table | holds | bound |
//! | --- | --- | --- |
//! | `meta` | `epoch`, `next_user_id`, `clean` (1 when every id given was written) | 3 rows |
//! | `users` | id, display name, SHA-256 of the resume token, last seen (ms, wall clock) | users within their name hold |
//! | `channels` | case-folded key, name as created, creation time | `max_channels` |
//! | `directs` | the private pairs, lower id first, with their names | pairs of kept users |
//! | `rooms` | room key (`c:KEY`, `d:A:B`), last id given, ids unknown to the store | one per room |
//! | `messages` | room key, id, author id and name, text, sent at, edited at (ms, or null), reactions (`EMOJI=ID,ID;...`) (version 3) | `history` per room |
//! | `external_users` | an embedder's external user id, and its user id (version 2) | the embedder's accounts that logged in |
//! | `files` | uploaded files: id, owner, name, size, kind, uploaded at, the room and message id carrying it (null while it waits for its post) and its place among the message's files, the bytes (version 4) | files of kept messages, and uploads waiting at most `upload_wait` |
//!
//! A trigger deletes a message's files with the message (a deletion, an eviction, a
//! forgotten private room): the file never keeps what the server no longer shows.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::{Connection, OpenFlags};

use crate::error::ChatError;

/// "Flk1": the `application_id` of a Flack store.
const APPLICATION_ID: i32 = 0x466c_6b31;

/// The schema version this build writes: the number of [`MIGRATIONS`].
pub(super) const VERSION: i32 = MIGRATIONS.len() as i32;

/// `MIGRATIONS[n]` takes a file from version `n` to `n + 1`.
const MIGRATIONS: &[&str] = &[
    // 1: the first layout.
    "CREATE TABLE meta (key TEXT PRIMARY KEY NOT NULL, value NOT NULL);
     CREATE TABLE users (
         id INTEGER PRIMARY KEY,
         name TEXT NOT NULL,
         token_hash BLOB NOT NULL,
         last_seen INTEGER NOT NULL
     );
     CREATE TABLE channels (
         key TEXT PRIMARY KEY NOT NULL,
         name TEXT NOT NULL,
         created_at INTEGER NOT NULL
     );
     CREATE TABLE directs (
         a INTEGER NOT NULL,
         a_name TEXT NOT NULL,
         b INTEGER NOT NULL,
         b_name TEXT NOT NULL,
         PRIMARY KEY (a, b)
     );
     CREATE TABLE rooms (
         room TEXT PRIMARY KEY NOT NULL,
         last_id INTEGER NOT NULL,
         unknown_through INTEGER NOT NULL DEFAULT 0
     );
     CREATE TABLE messages (
         room TEXT NOT NULL,
         id INTEGER NOT NULL,
         author_id INTEGER NOT NULL,
         author_name TEXT NOT NULL,
         text TEXT NOT NULL,
         sent_at INTEGER NOT NULL,
         PRIMARY KEY (room, id)
     );
     INSERT INTO meta (key, value) VALUES ('next_user_id', 1), ('clean', 1);",
    // 2: users an embedder authenticated (`Login::External`), kept for good.
    "CREATE TABLE external_users (
         external_id TEXT PRIMARY KEY NOT NULL,
         user_id INTEGER NOT NULL
     );",
    // 3: edits and reactions.
    "ALTER TABLE messages ADD COLUMN edited_at INTEGER;
     ALTER TABLE messages ADD COLUMN reactions TEXT NOT NULL DEFAULT '';",
    // 4: attachments, deleted with their message.
    "CREATE TABLE files (
         id TEXT PRIMARY KEY NOT NULL,
         owner INTEGER NOT NULL,
         name TEXT NOT NULL,
         size INTEGER NOT NULL,
         kind TEXT NOT NULL,
         uploaded_at INTEGER NOT NULL,
         room TEXT,
         message_id INTEGER,
         position INTEGER NOT NULL DEFAULT 0,
         data BLOB NOT NULL
     );
     CREATE INDEX files_by_message ON files (room, message_id);
     CREATE TRIGGER files_go_with_their_message AFTER DELETE ON messages BEGIN
         DELETE FROM files WHERE room = old.room AND message_id = old.id;
     END;",
];

/// How long a statement waits for a lock another connection holds (an online backup with
/// the `sqlite3` tool) before it fails.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// An open, checked store at the current version, with the lock that keeps other servers
/// out of it for as long as it is held.
pub(super) struct Opened {
    pub(super) conn: Connection,
    /// Held (open) for the life of the connection; the kernel releases it when the
    /// process ends, however it ends.
    pub(super) lock: File,
    /// True when this opening created the file's tables.
    pub(super) created: bool,
}

/// The error for `path`: what was being done, and why it failed.
pub(super) fn failure(path: &Path, doing: &str, e: impl std::fmt::Display) -> ChatError {
    ChatError::Store(format!("{}: {doing}: {e}", path.display()))
}

/// Opens (creating it if missing) and checks the store at `path`, then brings its schema
/// to [`VERSION`] and sets WAL mode with `synchronous=NORMAL`: a commit is one append to
/// the write-ahead log, safe against a crash of the process (only a power cut can lose the
/// last commits), and the file is never left corrupt.
pub(super) fn open(path: &Path) -> Result<Opened, ChatError> {
    if path.is_dir() {
        return Err(failure(path, "cannot open", "it is a directory"));
    }
    let lock = lock(path)?;
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
        | OpenFlags::SQLITE_OPEN_CREATE
        | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let mut conn =
        Connection::open_with_flags(path, flags).map_err(|e| failure(path, "cannot open", e))?;
    conn.busy_timeout(BUSY_TIMEOUT)
        .map_err(|e| failure(path, "cannot open", e))?;
    let (version, app_id, tables) = identify(&conn).map_err(|e| unreadable(path, e))?;
    if version > VERSION {
        return Err(failure(
            path,
            "cannot open",
            format!(
                "its schema version is {version}, newer than this build's {VERSION}; \
                 run the newer version of the server, or start with another data directory"
            ),
        ));
    }
    if app_id != APPLICATION_ID && (app_id != 0 || tables > 0) {
        return Err(failure(
            path,
            "cannot open",
            "it is not a Flack database (another program's SQLite file?)",
        ));
    }
    check_integrity(&conn).map_err(|e| failure(path, "the file is corrupt", e))?;
    let mode: String = conn
        .query_row("PRAGMA journal_mode = WAL", [], |row| row.get(0))
        .map_err(|e| unreadable(path, e))?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(failure(path, "cannot use write-ahead logging", mode));
    }
    conn.execute_batch("PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = OFF;")
        .map_err(|e| unreadable(path, e))?;
    migrate(&mut conn, version, MIGRATIONS).map_err(|e| failure(path, "cannot migrate", e))?;
    Ok(Opened {
        conn,
        lock,
        created: version == 0,
    })
}

/// Takes the store's lock file (`PATH-lock`, beside SQLite's own `-wal` and `-shm`), so
/// that a second server on the same data directory stops at start instead of giving ids
/// the first one also gives. Not SQLite's exclusive locking mode: that would also keep out
/// an online backup with the `sqlite3` tool.
fn lock(path: &Path) -> Result<File, ChatError> {
    let mut lock_path = PathBuf::from(path).into_os_string();
    lock_path.push("-lock");
    let lock_path = PathBuf::from(lock_path);
    let file = File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .map_err(|e| failure(&lock_path, "cannot create the lock file", e))?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(std::fs::TryLockError::WouldBlock) => Err(failure(
            path,
            "cannot open",
            "another server uses this store (its lock file is held)",
        )),
        Err(std::fs::TryLockError::Error(e)) => {
            Err(failure(&lock_path, "cannot lock the lock file", e))
        }
    }
}

/// The file's schema version, application id and number of tables: the first read, which
/// fails on a file that is not a database.
fn identify(conn: &Connection) -> rusqlite::Result<(i32, i32, i64)> {
    let version = conn.query_row("PRAGMA user_version", [], |row| row.get(0))?;
    let app_id = conn.query_row("PRAGMA application_id", [], |row| row.get(0))?;
    let tables = conn.query_row(
        "SELECT count(*) FROM sqlite_schema WHERE type = 'table'",
        [],
        |row| row.get(0),
    )?;
    Ok((version, app_id, tables))
}

/// `PRAGMA quick_check`: every page and index entry readable and consistent (it reads the
/// whole file, which is bounded by `history` messages per room).
fn check_integrity(conn: &Connection) -> Result<(), String> {
    let mut statement = conn
        .prepare("PRAGMA quick_check(5)")
        .map_err(|e| e.to_string())?;
    let findings: Vec<String> = statement
        .query_map([], |row| row.get(0))
        .and_then(|rows| rows.collect())
        .map_err(|e| e.to_string())?;
    match findings.as_slice() {
        [ok] if ok == "ok" => Ok(()),
        _ => Err(findings.join("; ")),
    }
}

/// A file SQLite cannot read: not a database, corrupt, or not readable by this process.
fn unreadable(path: &Path, e: rusqlite::Error) -> ChatError {
    use rusqlite::ErrorCode::{CannotOpen, DatabaseCorrupt, NotADatabase, PermissionDenied};
    let doing = match e.sqlite_error_code() {
        Some(NotADatabase) => "it is not an SQLite database (or is encrypted or damaged)",
        Some(DatabaseCorrupt) => "the file is corrupt",
        Some(CannotOpen | PermissionDenied) => "cannot read the file",
        _ => "cannot read the file",
    };
    failure(path, doing, e)
}

/// Runs `migrations[from..]` in order, each in its own transaction with the version it
/// reaches; a new file also gets the application id.
fn migrate(conn: &mut Connection, from: i32, migrations: &[&str]) -> rusqlite::Result<()> {
    for (step, sql) in migrations.iter().enumerate().skip(from.max(0) as usize) {
        let tx = conn.transaction()?;
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", step as i32 + 1)?;
        if step == 0 {
            tx.pragma_update(None, "application_id", APPLICATION_ID)?;
        }
        tx.commit()?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "flack-schema-{name}-{}-{}",
            std::process::id(),
            crate::broker::new_epoch()
        ));
        std::fs::create_dir_all(&dir).expect("temp dir");
        dir.join("flack.sqlite3")
    }

    fn message(e: ChatError) -> String {
        assert_eq!(e.code(), "store_error");
        e.to_string()
    }

    #[test]
    fn a_new_file_gets_the_current_version_and_opens_again() {
        let path = scratch("new");
        let opened = open(&path).expect("creates");
        assert!(opened.created);
        drop(opened);
        let again = open(&path).expect("opens again");
        assert!(!again.created);
        let version: i32 = again
            .conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .unwrap();
        assert_eq!(version, VERSION);
    }

    #[test]
    fn garbage_a_directory_a_newer_version_and_a_foreign_database_are_refused() {
        let garbage = scratch("garbage");
        std::fs::write(&garbage, vec![0x5a; 8192]).unwrap();
        let e = message(open(&garbage).err().expect("garbage is refused"));
        assert!(e.contains(&garbage.display().to_string()), "{e}");
        assert!(e.contains("not an SQLite database"), "{e}");

        let dir = scratch("dir");
        std::fs::create_dir_all(&dir).unwrap();
        let e = message(open(&dir).err().expect("a directory is refused"));
        assert!(e.contains("directory"), "{e}");

        let newer = scratch("newer");
        drop(open(&newer).unwrap());
        let conn = Connection::open(&newer).unwrap();
        conn.pragma_update(None, "user_version", 999).unwrap();
        drop(conn);
        let e = message(open(&newer).err().expect("a newer schema is refused"));
        assert!(e.contains("999") && e.contains("newer"), "{e}");

        let foreign = scratch("foreign");
        let conn = Connection::open(&foreign).unwrap();
        conn.execute_batch("CREATE TABLE notes (body TEXT)")
            .unwrap();
        drop(conn);
        let e = message(open(&foreign).err().expect("a foreign database is refused"));
        assert!(e.contains("not a Flack database"), "{e}");
    }

    #[test]
    fn a_second_opening_while_the_first_holds_the_lock_is_refused() {
        let path = scratch("locked");
        let first = open(&path).unwrap();
        let e = message(open(&path).err().expect("in use"));
        assert!(e.contains("another server"), "{e}");
        drop(first);
        assert!(open(&path).is_ok(), "free again once the first is closed");
    }

    #[test]
    fn a_version_1_file_gains_edits_and_reactions_and_keeps_its_messages() {
        let path = scratch("v1");
        let mut conn = Connection::open(&path).unwrap();
        migrate(&mut conn, 0, &MIGRATIONS[..1]).unwrap();
        conn.execute(
            "INSERT INTO messages (room, id, author_id, author_name, text, sent_at)
             VALUES ('c:general', 1, 1, 'alice', 'kept', 5)",
            [],
        )
        .unwrap();
        drop(conn);
        let opened = open(&path).expect("a version 1 file opens");
        let row: (String, Option<i64>, String) = opened
            .conn
            .query_row(
                "SELECT text, edited_at, reactions FROM messages WHERE id = 1",
                [],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .unwrap();
        assert_eq!(row, ("kept".to_owned(), None, String::new()));
    }

    #[test]
    fn migrations_run_in_order_from_the_file_s_version_and_keep_its_data() {
        let path = scratch("migrate");
        let mut conn = Connection::open(&path).unwrap();
        let steps = [
            "CREATE TABLE t (a INTEGER); INSERT INTO t VALUES (1);",
            "ALTER TABLE t ADD COLUMN b INTEGER NOT NULL DEFAULT 2;",
        ];
        migrate(&mut conn, 0, &steps[..1]).unwrap();
        migrate(&mut conn, 1, &steps).unwrap();
        let (a, b, version): (i64, i64, i32) = conn
            .query_row(
                "SELECT a, b, (SELECT user_version FROM pragma_user_version) FROM t",
                [],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .unwrap();
        assert_eq!((a, b, version), (1, 2, 2));
        // A failing step leaves the file at the version before it.
        let broken = [steps[0], steps[1], "THIS IS NOT SQL"];
        assert!(migrate(&mut conn, 2, &broken).is_err());
        let version: i32 = conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .unwrap();
        assert_eq!(version, 2);
    }
}
