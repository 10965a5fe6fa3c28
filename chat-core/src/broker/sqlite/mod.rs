//! `SqliteBroker`: the in-memory broker, made durable by one SQLite file written behind it
//! (feature `sqlite`).
//!
//! On opening, the file is checked (`schema`) and read back (`load`) into a
//! [`MemoryBroker`], which then decides and serves everything exactly as without a store:
//! rooms still own their history in memory and answer reads from it. Each change the
//! memory broker made (a user, a channel, a pair, a message posted or deleted, a user seen
//! or forgotten) is queued for the write-behind thread (`writer`), which commits whatever
//! waits as one transaction. So a post is acknowledged once it is decided and queued,
//! never after a disk write, and a restart loses nothing acknowledged when the server was
//! stopped with SIGTERM ([`Broker::close`]), at most the last moment's changes after
//! `kill -9`. Closed, the writer lets go of the file and its lock before the close is
//! answered, so an engine started again in the same process opens the store at once.
//!
//! Made by `EngineBuilder::sqlite` (or [`SqliteBroker::open`]) and called only through the
//! [`Broker`] trait; it must not know about actors or sessions, and must not decide
//! anything the memory broker does not.
//!
//! # Order and backpressure
//! A change takes a place in the writer's budget *before* the memory broker decides it,
//! and every change passes one FIFO gate on the way: so the queue holds each room's
//! changes in the order they were decided, and an id is never given without a place. The
//! writer gives a place back once its change is committed, and keeps the budget to about
//! a quarter of a second of its own measured pace (`writer::TARGET_BEHIND`), at most
//! `writer::MAX_BEHIND` changes. When every place is taken, commits wait at the gate (a
//! post's future is then pending, which the room handles), so posters slow down to the
//! disk's pace, memory stays bounded, and `kill -9` loses at most what the budget holds.

mod load;
mod schema;
mod writer;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use chrono::{DateTime, Utc};
use tokio::sync::{mpsc, oneshot, Mutex as AsyncMutex, Semaphore, SemaphorePermit};

use self::writer::{Budget, Queued, Write, Writer};
use super::{Broker, ChannelRecord, ClusterEvent, Follow, MemoryBroker, Proposal, Receipt, Stored};
use bytes::Bytes;
use rusqlite::OptionalExtension;

use crate::attachment::{FileId, StoredFile};
use crate::error::ChatError;
use crate::identity::{Identity, ResumeToken};
use crate::limits::Limits;
use crate::model::{ChannelName, Room, UserId, UserRef};

/// A broker that works from memory and keeps everything in one SQLite file.
pub struct SqliteBroker {
    memory: MemoryBroker,
    /// The writer's queue. Unbounded as a channel: what bounds it is `places`, taken
    /// before a change is decided and given back by the writer once it is committed.
    writes: mpsc::UnboundedSender<Queued>,
    places: Arc<Semaphore>,
    /// Taken by every change on its way into the queue, so that changes enter it in the
    /// order they are decided even while they wait for a place (a fair lock: waiters are
    /// served first come, first served).
    gate: AsyncMutex<()>,
    path: PathBuf,
    /// Whether the writer's last commit succeeded (set by the writer).
    healthy: Arc<AtomicBool>,
    /// A read-only connection of its own for files' bytes (the writer owns the other),
    /// opened on the first download.
    reader: Arc<std::sync::Mutex<Option<rusqlite::Connection>>>,
    /// Set once `close` has been answered: a second close has nothing left to do.
    closed: AtomicBool,
}

/// A place in the writer's budget, held while a change is decided: sent with the change,
/// or given back if the decision is a refusal.
struct Place<'a> {
    permit: SemaphorePermit<'a>,
    writes: &'a mpsc::UnboundedSender<Queued>,
}

impl Place<'_> {
    /// Queues `write` with this place; the writer gives the place back once it is
    /// committed.
    fn send(self, write: Write) {
        self.permit.forget();
        // The writer outlives every sender unless it panicked; `flush` reports that.
        let _ = self.writes.send((write, true));
    }
}

impl std::fmt::Debug for SqliteBroker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteBroker")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

/// The writer thread is gone (it never ends while the broker lives, short of a panic).
fn writer_gone(path: &Path) -> ChatError {
    ChatError::Store(format!("{}: the writer thread stopped", path.display()))
}

impl SqliteBroker {
    /// Opens the store at `path` (creating the file if missing; its directory must exist),
    /// checks it, reads it back, and starts its writer thread. Fails with `store_error`,
    /// naming the file, when it is corrupt, unreadable, not a Flack database, from a newer
    /// version of the server, or in use by another process.
    pub async fn open(path: impl Into<PathBuf>, limits: &Limits) -> Result<Self, ChatError> {
        let path = path.into();
        let (writes, queue) = mpsc::unbounded_channel();
        let budget = Budget::new();
        let places = budget.places.clone();
        let (ready, opened) = oneshot::channel();
        let healthy = Arc::new(AtomicBool::new(true));
        let writer_healthy = healthy.clone();
        let (thread_path, thread_limits) = (path.clone(), limits.clone());
        std::thread::Builder::new()
            .name("flack-store".into())
            .spawn(move || {
                let opened = schema::open(&thread_path).and_then(|mut opened| {
                    let restored = load::read(&mut opened.conn, &thread_limits)
                        .map_err(|e| schema::failure(&thread_path, "cannot read", e))?;
                    Ok((opened, restored))
                });
                match opened {
                    Ok((opened, restored)) => {
                        tracing::info!(
                            path = %thread_path.display(),
                            created = opened.created,
                            users = restored.users.len(),
                            channels = restored.channels.len(),
                            rooms = restored.rooms.len(),
                            "store opened"
                        );
                        let writer = Writer {
                            conn: opened.conn,
                            _lock: opened.lock,
                            path: thread_path,
                            history: thread_limits.history.max(1),
                            clean: false,
                            budget,
                            counts: Default::default(),
                            healthy: writer_healthy,
                            closing: None,
                        };
                        if ready.send(Ok(restored)).is_ok() {
                            // `run` has dropped the writer, its file and its lock by now.
                            if let Some(closed) = writer.run(queue) {
                                let _ = closed.send(Ok(()));
                            }
                        }
                    }
                    Err(e) => {
                        let _ = ready.send(Err(e));
                    }
                }
            })
            .map_err(|e| schema::failure(&path, "cannot start the writer thread", e))?;
        let restored = opened.await.map_err(|_| writer_gone(&path))??;
        Ok(SqliteBroker {
            memory: MemoryBroker::restore(limits, restored),
            writes,
            places,
            gate: AsyncMutex::new(()),
            path,
            healthy,
            reader: Arc::default(),
            closed: AtomicBool::new(false),
        })
    }

    /// The bytes of file `id` as the file holds them, read on a blocking thread (a large
    /// file must not hold up the caller's runtime).
    async fn file_bytes(&self, id: &FileId) -> Result<Option<Bytes>, ChatError> {
        let (reader, path, id) = (self.reader.clone(), self.path.clone(), id.clone());
        let read = tokio::task::spawn_blocking(move || {
            let mut reader = reader.lock().unwrap_or_else(|e| e.into_inner());
            if reader.is_none() {
                let flags = rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY
                    | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX;
                *reader = Some(rusqlite::Connection::open_with_flags(&path, flags)?);
            }
            let Some(conn) = reader.as_ref() else {
                return Ok(None);
            };
            let bytes = conn
                .prepare_cached("SELECT data FROM files WHERE id = ?1")?
                .query_row([id.as_str()], |row| row.get::<_, Vec<u8>>(0))
                .optional();
            bytes
        });
        match read.await {
            Ok(Ok(bytes)) => Ok(bytes.map(Bytes::from)),
            Ok(Err(e)) => Err(schema::failure(&self.path, "cannot read a file", e)),
            Err(e) => Err(schema::failure(&self.path, "cannot read a file", e)),
        }
    }

    /// Waits at the gate for a place in the writer's budget. Held, the place lets the
    /// caller decide a change and queue it without waiting again.
    async fn place(&self) -> Result<Place<'_>, ChatError> {
        let _in_order = self.gate.lock().await;
        let permit = self
            .places
            .acquire()
            .await
            .map_err(|_| writer_gone(&self.path))?;
        Ok(Place {
            permit,
            writes: &self.writes,
        })
    }
}

/// Now, on the wall clock, as stored: milliseconds since the Unix epoch.
fn now_ms() -> i64 {
    Utc::now().timestamp_millis()
}

#[async_trait::async_trait]
impl Broker for SqliteBroker {
    async fn register(&self, name: String) -> Result<Identity, ChatError> {
        let place = self.place().await?;
        let identity = self.memory.register(name).await?;
        place.send(Write::User {
            user: identity.user.clone(),
            token: identity.token.hash(),
            seen_ms: now_ms(),
        });
        Ok(identity)
    }

    async fn resume(&self, token: ResumeToken) -> Result<Identity, ChatError> {
        let place = self.place().await?;
        let identity = self.memory.resume(token).await?;
        place.send(Write::Seen {
            users: vec![identity.user.id],
            at_ms: now_ms(),
        });
        Ok(identity)
    }

    async fn login_external(&self, external: &str, name: String) -> Result<Identity, ChatError> {
        let place = self.place().await?;
        let identity = self.memory.login_external(external, name).await?;
        // New or back: the mapping (kept if it was), and the user's row with the token
        // just issued and when they were seen.
        place.send(Write::External {
            external: external.to_owned(),
            user: identity.user.clone(),
            token: identity.token.hash(),
            seen_ms: now_ms(),
        });
        Ok(identity)
    }

    async fn identify(&self, token: &ResumeToken) -> Result<Option<UserRef>, ChatError> {
        self.memory.identify(token).await
    }

    async fn log_out(&self, user: UserId) -> Result<(), ChatError> {
        let place = self.place().await?;
        self.memory.log_out(user).await?;
        place.send(Write::Forget(vec![user]));
        Ok(())
    }

    fn session_ended(&self, user: UserId) {
        self.memory.session_ended(user);
        // Not a decision, only when the name hold starts (the store keeps the latest time
        // it is told): it takes no place and need not wait in line. One per session, so
        // bounded by the sessions.
        let seen = Write::Seen {
            users: vec![user],
            at_ms: now_ms(),
        };
        let _ = self.writes.send((seen, false));
    }

    async fn keep_alive(&self, online: Vec<UserId>) -> Result<(), ChatError> {
        {
            let place = self.place().await?;
            let forgotten = self.memory.forget_expired();
            if !forgotten.is_empty() {
                place.send(Write::Forget(forgotten));
            }
        }
        let unclaimed = self.memory.sweep_files();
        if !unclaimed.is_empty() {
            self.place().await?.send(Write::DropFiles(unclaimed));
        }
        if !online.is_empty() {
            self.place().await?.send(Write::Seen {
                users: online,
                at_ms: now_ms(),
            });
        }
        Ok(())
    }

    async fn find_user(&self, name: &str) -> Result<Option<UserRef>, ChatError> {
        self.memory.find_user(name).await
    }

    async fn claim_channel(
        &self,
        name: &ChannelName,
        created_at: DateTime<Utc>,
    ) -> Result<bool, ChatError> {
        let place = self.place().await?;
        let claimed = self.memory.claim_channel(name, created_at).await?;
        if claimed {
            place.send(Write::Channel((name.clone(), created_at)));
        }
        Ok(claimed)
    }

    async fn lookup_channel(&self, key: &str) -> Result<Option<ChannelRecord>, ChatError> {
        self.memory.lookup_channel(key).await
    }

    async fn channels(&self) -> Result<Vec<ChannelRecord>, ChatError> {
        self.memory.channels().await
    }

    async fn open_direct(&self, pair: [UserRef; 2]) -> Result<(), ChatError> {
        let place = self.place().await?;
        self.memory.open_direct(pair.clone()).await?;
        let [a, b] = pair;
        let sorted = if a.id <= b.id { [a, b] } else { [b, a] };
        place.send(Write::Direct(sorted));
        Ok(())
    }

    async fn directs_of(&self, user: UserId) -> Result<Vec<[UserRef; 2]>, ChatError> {
        self.memory.directs_of(user).await
    }

    async fn follow(&self, room: &Room) -> Result<Follow, ChatError> {
        self.memory.follow(room).await
    }

    async fn stored(&self, room: &Room) -> Result<Stored, ChatError> {
        self.memory.stored(room).await
    }

    async fn commit(&self, room: &Room, proposal: Proposal) -> Result<Receipt, ChatError> {
        if let Proposal::Signal(_) = proposal {
            // Never stored, but in line with the room's posts, so that followers see a
            // room's changes in the order they were made.
            let _in_order = self.gate.lock().await;
            return self.memory.commit(room, proposal).await;
        }
        let place = self.place().await?;
        let deleted = match &proposal {
            Proposal::Delete { id, .. } => Some(*id),
            _ => None,
        };
        let receipt = self.memory.commit(room, proposal).await?;
        match (&receipt, deleted) {
            (Receipt::Posted(message), _) => place.send(Write::Posted(message.clone())),
            (Receipt::Updated(message), _) => place.send(Write::Updated(message.clone())),
            (Receipt::Done, Some(id)) => place.send(Write::Deleted {
                room: room.key(),
                id,
            }),
            (Receipt::Done, None) => {}
        }
        Ok(receipt)
    }

    async fn put_file(&self, file: StoredFile) -> Result<(), ChatError> {
        let (written, committed) = oneshot::channel();
        {
            let place = self.place().await?;
            // The shelf keeps what the file is; its bytes go to disk only.
            self.memory.put_file(file.clone()).await?;
            place.send(Write::File {
                file,
                uploaded_ms: now_ms(),
                written,
            });
        }
        committed.await.map_err(|_| writer_gone(&self.path))?
    }

    async fn file(&self, id: &FileId) -> Result<Option<StoredFile>, ChatError> {
        // The shelf says whether the file is still kept (its row may wait to be deleted).
        let Some(mut file) = self.memory.file(id).await? else {
            return Ok(None);
        };
        let Some(bytes) = self.file_bytes(id).await? else {
            return Ok(None);
        };
        file.bytes = bytes;
        Ok(Some(file))
    }

    fn cluster_events(&self) -> mpsc::UnboundedReceiver<ClusterEvent> {
        self.memory.cluster_events()
    }

    fn epoch(&self) -> &str {
        self.memory.epoch()
    }

    async fn flush(&self) -> Result<(), ChatError> {
        let (done, written) = oneshot::channel();
        self.place().await?.send(Write::Flush(done));
        written.await.map_err(|_| writer_gone(&self.path))?
    }

    async fn close(&self) -> Result<(), ChatError> {
        if self.closed.load(Ordering::Acquire) {
            return Ok(());
        }
        let (done, closed) = oneshot::channel();
        self.place().await?.send(Write::Close(done));
        closed.await.map_err(|_| writer_gone(&self.path))??;
        // The downloads' connection goes too: nothing of the store stays open.
        *self.reader.lock().unwrap_or_else(|e| e.into_inner()) = None;
        self.closed.store(true, Ordering::Release);
        Ok(())
    }

    /// The writer runs (its budget is open) and its last commit succeeded.
    async fn reachable(&self) -> bool {
        !self.places.is_closed() && self.healthy.load(Ordering::Relaxed)
    }
}
