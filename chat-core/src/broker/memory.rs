//! `MemoryBroker`: the default broker, where one process is the whole cluster.
//!
//! It owns, behind locks, the users and their names (a `Directory`), the channel names,
//! the private rooms, and a bounded copy of each room's history with the feeds of the
//! rooms that follow it. Every call decides under these locks and answers at once: a
//! commit is ordered, stored and sent to every follower before its call returns.
//!
//! Called only through the [`Broker`] trait (by channel actors and the registry, of one
//! engine or of several sharing it), and by the SQLite broker, which starts one from its
//! file ([`MemoryBroker::restore`]) and mirrors its changes to disk; it must not know about
//! sessions or actors.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use chrono::{DateTime, Utc};
use tokio::sync::mpsc;

use super::files::FileShelf;
use super::{
    lock, new_epoch, Broker, Change, ChannelRecord, ClusterEvent, Follow, Proposal, Receipt, Stored,
};
use crate::attachment::{Attachment, FileId, StoredFile};
use crate::error::ChatError;
use crate::identity::{Directory, Identity, ResumeToken, StoredUser};
use crate::limits::Limits;
use crate::model::{now_millis, ChannelName, ChatMessage, Room, RoomKey, UserId, UserRef};
use crate::room::history::History;

/// The in-memory broker: one process is the whole cluster. The default.
///
/// It keeps its own bounded copy of each room's history (shared pointers, not copies of
/// the text), so that a channel actor started later, or another engine in the same
/// process that shares this broker, starts from the stored messages. Several engines may
/// share one `MemoryBroker`: they then behave as the nodes of one chat.
#[derive(Debug)]
pub struct MemoryBroker {
    epoch: String,
    history_limit: usize,
    /// What a post's files are checked against.
    limits: Limits,
    /// Uploaded files, waiting for a post or attached to a kept message. Locked after a
    /// room's log or the directory, never before.
    files: Mutex<FileShelf>,
    directory: Mutex<Directory>,
    channels: Mutex<HashMap<Arc<str>, ChannelRecord>>,
    directs: Mutex<HashMap<UserId, Vec<[UserRef; 2]>>>,
    rooms: Mutex<HashMap<RoomKey, Arc<Mutex<RoomLog>>>>,
    registries: Mutex<Vec<mpsc::UnboundedSender<ClusterEvent>>>,
}

#[derive(Debug)]
struct RoomLog {
    history: History,
    followers: Vec<mpsc::UnboundedSender<Change>>,
}

/// What a durable store read back, to start a [`MemoryBroker`] from
/// ([`MemoryBroker::restore`]).
#[derive(Debug, Default)]
#[cfg_attr(not(feature = "sqlite"), allow(dead_code))]
pub(crate) struct Restored {
    /// The store's epoch.
    pub(crate) epoch: String,
    /// Every user the store keeps.
    pub(crate) users: Vec<StoredUser>,
    /// Every external id ever logged in, with its user's id (`Login::External`).
    pub(crate) externals: Vec<(String, UserId)>,
    /// The id the next new user gets: above every id ever given.
    pub(crate) next_user_id: u64,
    /// Every channel.
    pub(crate) channels: Vec<ChannelRecord>,
    /// Every private pair, lower user id first.
    pub(crate) directs: Vec<[UserRef; 2]>,
    /// Each room's kept messages and last id.
    pub(crate) rooms: Vec<RestoredRoom>,
    /// Who uploaded each file the kept messages carry (the bytes stay in the store).
    pub(crate) file_owners: HashMap<FileId, UserId>,
    /// The files waiting for a post, with their owners and how long they have waited.
    pub(crate) waiting_files: Vec<(Attachment, UserId, std::time::Duration)>,
}

/// One room's history as a store kept it.
#[derive(Debug)]
#[cfg_attr(not(feature = "sqlite"), allow(dead_code))]
pub(crate) struct RestoredRoom {
    pub(crate) key: RoomKey,
    pub(crate) stored: Stored,
}

impl MemoryBroker {
    /// A broker that keeps `limits.history` messages per room, holds display names for
    /// `limits.name_hold` and keeps at most `limits.max_users` users.
    pub fn new(limits: &Limits) -> Self {
        MemoryBroker::keeping_file_bytes(limits, true)
    }

    /// As [`MemoryBroker::new`], keeping the bytes of uploaded files in memory or (for a
    /// store that keeps them on disk) only what they are.
    fn keeping_file_bytes(limits: &Limits, keeps_bytes: bool) -> Self {
        MemoryBroker {
            epoch: new_epoch(),
            history_limit: limits.history.max(1),
            limits: limits.clone(),
            files: Mutex::new(FileShelf::new(limits, keeps_bytes)),
            directory: Mutex::new(Directory::new(limits.name_hold, limits.max_users)),
            channels: Mutex::default(),
            directs: Mutex::default(),
            rooms: Mutex::default(),
            registries: Mutex::default(),
        }
    }

    /// A broker that starts from what a store kept: the same users (who resume with their
    /// tokens and keep their names for what is left of their hold), channels, private
    /// pairs, and each room's history with its last id, evicted to `limits.history`
    /// exactly as if the messages had been posted here.
    #[cfg_attr(not(feature = "sqlite"), allow(dead_code))]
    pub(crate) fn restore(limits: &Limits, restored: Restored) -> Self {
        let broker = MemoryBroker::keeping_file_bytes(limits, false);
        {
            let mut files = lock(&broker.files);
            let now = Instant::now();
            for room in &restored.rooms {
                for message in &room.stored.messages {
                    for file in &message.attachments {
                        if let Some(owner) = restored.file_owners.get(&file.id) {
                            files.restore_attached(file.clone(), *owner, room.key.clone());
                        }
                    }
                }
            }
            for (attachment, owner, waited) in restored.waiting_files {
                let since = now.checked_sub(waited).unwrap_or(now);
                files.put(
                    StoredFile::new(attachment, owner, Default::default()),
                    since,
                );
            }
        }
        let directory = Directory::restore(
            limits.name_hold,
            limits.max_users,
            restored.users,
            restored.externals,
            restored.next_user_id,
            Instant::now(),
        );
        let mut directs: HashMap<UserId, Vec<[UserRef; 2]>> = HashMap::new();
        for pair in restored.directs {
            for user in [pair[0].id, pair[1].id] {
                if directory.knows(user) {
                    directs.entry(user).or_default().push(pair.clone());
                }
            }
        }
        let limit = broker.history_limit;
        let rooms = restored.rooms.into_iter().map(|room| {
            let mut history = History::new(limit);
            history.load(&room.stored);
            let log = RoomLog {
                history,
                followers: Vec::new(),
            };
            (room.key, Arc::new(Mutex::new(log)))
        });
        MemoryBroker {
            epoch: restored.epoch,
            directory: Mutex::new(directory),
            channels: Mutex::new(
                restored
                    .channels
                    .into_iter()
                    .map(|record| (record.0.key.clone(), record))
                    .collect(),
            ),
            directs: Mutex::new(directs),
            rooms: Mutex::new(rooms.collect()),
            ..broker
        }
    }

    /// Forgets the users whose name hold has run out, the private pairs of which both
    /// users are forgotten, and their rooms; returns the users forgotten.
    pub(crate) fn forget_expired(&self) -> Vec<UserId> {
        let mut directory = lock(&self.directory);
        let forgotten = directory.sweep(Instant::now());
        if !forgotten.is_empty() {
            tracing::debug!(
                forgotten = forgotten.len(),
                kept = directory.len(),
                "released expired display names"
            );
            self.drop_orphans(&directory);
        }
        forgotten
    }

    /// Drops what only forgotten users had: their lists of private pairs, and the
    /// private rooms (with their files) of which both users are forgotten. A private
    /// conversation lives while either of its users does.
    fn drop_orphans(&self, directory: &Directory) {
        lock(&self.directs).retain(|user, _| directory.knows(*user));
        let kept = |key: &RoomKey| match key {
            RoomKey::Direct(a, b) => directory.knows(*a) || directory.knows(*b),
            RoomKey::Channel(_) => true,
        };
        lock(&self.rooms).retain(|key, _| kept(key));
        lock(&self.files).drop_rooms(kept);
    }

    /// Drops the uploaded files that waited longer than `Limits::upload_wait` for a post;
    /// returns their ids.
    pub(crate) fn sweep_files(&self) -> Vec<FileId> {
        lock(&self.files).sweep(Instant::now())
    }

    fn announce(&self, event: ClusterEvent) {
        lock(&self.registries).retain(|r| r.send(event.clone()).is_ok());
    }

    fn room(&self, key: RoomKey) -> Arc<Mutex<RoomLog>> {
        let mut rooms = lock(&self.rooms);
        rooms
            .entry(key)
            .or_insert_with(|| {
                Arc::new(Mutex::new(RoomLog {
                    history: History::new(self.history_limit),
                    followers: Vec::new(),
                }))
            })
            .clone()
    }

    fn apply(
        &self,
        log: &mut RoomLog,
        room: &Room,
        proposal: Proposal,
    ) -> Result<(Change, Receipt), ChatError> {
        Ok(match proposal {
            Proposal::Post {
                author,
                text,
                files,
            } => {
                let id = log.history.next_id();
                let attachments = if files.is_empty() {
                    Vec::new()
                } else {
                    lock(&self.files).attach(author.id, &files, &room.key(), &self.limits)?
                };
                let message = ChatMessage::new(id, room.clone(), author, text, now_millis())
                    .with_attachments(attachments);
                let message = Arc::new(message);
                log.history.push_evicting(message.clone(), |old| {
                    if !old.attachments.is_empty() {
                        lock(&self.files).drop_with(&old);
                    }
                });
                (Change::Posted(message.clone()), Receipt::Posted(message))
            }
            Proposal::Delete { id, by } => {
                let message = log.history.get(id).ok_or(ChatError::NoSuchMessage(id))?;
                if message.author.id != by {
                    return Err(ChatError::NotAuthor(id));
                }
                if let Some(old) = log.history.remove(id) {
                    lock(&self.files).drop_with(&old);
                }
                (Change::Deleted(id), Receipt::Done)
            }
            Proposal::Edit { id, by, text } => {
                let old = log.history.get(id).ok_or(ChatError::NoSuchMessage(id))?;
                if old.author.id != by {
                    return Err(ChatError::NotEditor(id));
                }
                let mut message = ChatMessage::clone(old);
                message.text = text;
                message.edited_at = Some(now_millis());
                Self::update(log, message)
            }
            Proposal::React { id, by, emoji } => {
                let old = log.history.get(id).ok_or(ChatError::NoSuchMessage(id))?;
                let mut message = ChatMessage::clone(old);
                message.reactions.toggle(emoji, by);
                Self::update(log, message)
            }
            Proposal::Signal(signal) => (Change::Signal(signal), Receipt::Done),
        })
    }
}

impl MemoryBroker {
    /// Keeps `message` in place of the one with its id, as the change and the receipt.
    fn update(log: &mut RoomLog, message: ChatMessage) -> (Change, Receipt) {
        let message = Arc::new(message);
        log.history.replace(message.clone());
        (Change::Updated(message.clone()), Receipt::Updated(message))
    }
}

#[async_trait::async_trait]
impl Broker for MemoryBroker {
    async fn register(&self, name: String) -> Result<Identity, ChatError> {
        lock(&self.directory).login_with_name(name, Instant::now())
    }

    async fn resume(&self, token: ResumeToken) -> Result<Identity, ChatError> {
        lock(&self.directory).login_with_token(&token, Instant::now())
    }

    async fn login_external(&self, external: &str, name: String) -> Result<Identity, ChatError> {
        lock(&self.directory).login_external(external, name, Instant::now())
    }

    async fn identify(&self, token: &ResumeToken) -> Result<Option<UserRef>, ChatError> {
        Ok(lock(&self.directory).user_of_token(token, Instant::now()))
    }

    fn session_ended(&self, user: UserId) {
        lock(&self.directory).session_ended(user, Instant::now());
    }

    async fn log_out(&self, user: UserId) -> Result<(), ChatError> {
        {
            let mut directory = lock(&self.directory);
            if directory.log_out(user) {
                self.drop_orphans(&directory);
            }
        }
        self.announce(ClusterEvent::LoggedOut(user));
        Ok(())
    }

    async fn keep_alive(&self, _online: Vec<UserId>) -> Result<(), ChatError> {
        // Online users never expire here (the directory counts their sessions); this is
        // the moment to forget the expired ones, and the files nobody posted.
        self.forget_expired();
        self.sweep_files();
        Ok(())
    }

    async fn find_user(&self, name: &str) -> Result<Option<UserRef>, ChatError> {
        Ok(lock(&self.directory)
            .find_by_name(name, Instant::now())
            .cloned())
    }

    async fn claim_channel(
        &self,
        name: &ChannelName,
        created_at: DateTime<Utc>,
    ) -> Result<bool, ChatError> {
        let claimed = {
            let mut channels = lock(&self.channels);
            if channels.contains_key(&name.key) {
                false
            } else {
                channels.insert(name.key.clone(), (name.clone(), created_at));
                true
            }
        };
        if claimed {
            self.announce(ClusterEvent::ChannelCreated {
                name: name.clone(),
                created_at,
            });
        }
        Ok(claimed)
    }

    async fn lookup_channel(&self, key: &str) -> Result<Option<ChannelRecord>, ChatError> {
        Ok(lock(&self.channels).get(key).cloned())
    }

    async fn channels(&self) -> Result<Vec<ChannelRecord>, ChatError> {
        Ok(lock(&self.channels).values().cloned().collect())
    }

    async fn open_direct(&self, pair: [UserRef; 2]) -> Result<(), ChatError> {
        let added = {
            let mut directs = lock(&self.directs);
            let first = directs.entry(pair[0].id).or_default();
            if first
                .iter()
                .any(|p| p[0].id == pair[0].id && p[1].id == pair[1].id)
            {
                false
            } else {
                first.push(pair.clone());
                directs.entry(pair[1].id).or_default().push(pair.clone());
                true
            }
        };
        if added {
            self.announce(ClusterEvent::DirectOpened(pair));
        }
        Ok(())
    }

    async fn directs_of(&self, user: UserId) -> Result<Vec<[UserRef; 2]>, ChatError> {
        Ok(lock(&self.directs).get(&user).cloned().unwrap_or_default())
    }

    async fn follow(&self, room: &Room) -> Result<Follow, ChatError> {
        let log = self.room(room.key());
        let mut log = lock(&log);
        let (tx, changes) = mpsc::unbounded_channel();
        // Rooms that stopped following leave their closed feeds behind.
        log.followers.retain(|f| !f.is_closed());
        log.followers.push(tx);
        Ok(Follow::new(stored_of(&log.history), changes))
    }

    async fn stored(&self, room: &Room) -> Result<Stored, ChatError> {
        let log = self.room(room.key());
        let log = lock(&log);
        Ok(stored_of(&log.history))
    }

    async fn commit(&self, room: &Room, proposal: Proposal) -> Result<Receipt, ChatError> {
        let log = self.room(room.key());
        let mut log = lock(&log);
        let (change, receipt) = self.apply(&mut log, room, proposal)?;
        // Sending under the room's lock is what makes every follower see one order.
        log.followers.retain(|f| f.send(change.clone()).is_ok());
        Ok(receipt)
    }

    async fn put_file(&self, file: StoredFile) -> Result<(), ChatError> {
        lock(&self.files).put(file, Instant::now());
        Ok(())
    }

    async fn file(&self, id: &FileId) -> Result<Option<StoredFile>, ChatError> {
        Ok(lock(&self.files).get(id))
    }

    fn cluster_events(&self) -> mpsc::UnboundedReceiver<ClusterEvent> {
        let (tx, rx) = mpsc::unbounded_channel();
        lock(&self.registries).push(tx);
        rx
    }

    fn epoch(&self) -> &str {
        &self.epoch
    }
}

/// A history as followers load it: what is kept, the last id, and what is unknown.
fn stored_of(history: &History) -> Stored {
    Stored::new(history.all(), history.last_id()).with_unknown_through(history.unknown_through())
}
