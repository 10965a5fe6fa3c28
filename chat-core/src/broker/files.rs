//! `FileShelf`: the files the in-memory broker keeps (and the SQLite broker knows of):
//! each one waiting for its owner's post, or attached to one kept message.
//!
//! Used only by [`MemoryBroker`](super::MemoryBroker), under its lock, when it decides a
//! post (attach), a deletion or an eviction (drop with the message), and when it sweeps
//! (drop what waited too long). The SQLite broker keeps the bytes on disk: its shelf holds
//! the descriptions only, and it reads the bytes from its file.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use bytes::Bytes;

use crate::attachment::{check_message_files, Attachment, FileId, StoredFile};
use crate::error::ChatError;
use crate::limits::Limits;
use crate::model::{ChatMessage, RoomKey, UserId};

/// One kept file.
#[derive(Debug)]
struct Entry {
    attachment: Attachment,
    owner: UserId,
    /// Its bytes, when this shelf keeps them (the in-memory broker's does).
    bytes: Option<Bytes>,
    /// Waiting since then for a post, or attached to a message of a room.
    place: Place,
}

#[derive(Debug)]
enum Place {
    Waiting(Instant),
    Attached(RoomKey),
}

/// The files a broker keeps, by id.
#[derive(Debug)]
pub(crate) struct FileShelf {
    entries: HashMap<FileId, Entry>,
    /// Whether the bytes are kept here (memory) or elsewhere (the SQLite file).
    keeps_bytes: bool,
    /// `Limits::upload_wait`.
    wait: Duration,
}

impl FileShelf {
    /// An empty shelf, keeping the files' bytes or not.
    pub(crate) fn new(limits: &Limits, keeps_bytes: bool) -> FileShelf {
        FileShelf {
            entries: HashMap::new(),
            keeps_bytes,
            wait: limits.upload_wait,
        }
    }

    /// Keeps `file`, waiting for a post since `since`.
    pub(crate) fn put(&mut self, file: StoredFile, since: Instant) {
        let bytes = self.keeps_bytes.then_some(file.bytes);
        self.entries.insert(
            file.attachment.id.clone(),
            Entry {
                attachment: file.attachment,
                owner: file.owner,
                bytes,
                place: Place::Waiting(since),
            },
        );
    }

    /// Keeps a file a store read back as attached to a message of `room`.
    pub(crate) fn restore_attached(
        &mut self,
        attachment: Attachment,
        owner: UserId,
        room: RoomKey,
    ) {
        self.entries.insert(
            attachment.id.clone(),
            Entry {
                attachment,
                owner,
                bytes: None,
                place: Place::Attached(room),
            },
        );
    }

    /// The file `id` with its bytes when this shelf keeps them (empty bytes otherwise).
    pub(crate) fn get(&self, id: &FileId) -> Option<StoredFile> {
        let entry = self.entries.get(id)?;
        Some(StoredFile::new(
            entry.attachment.clone(),
            entry.owner,
            entry.bytes.clone().unwrap_or_default(),
        ))
    }

    /// Attaches the files `ids` of `owner` to a message of `room`: all of them or none. Refused with `no_such_file` when one is not waiting for a post of `owner`,
    /// or with the limits' error.
    pub(crate) fn attach(
        &mut self,
        owner: UserId,
        ids: &[FileId],
        room: &RoomKey,
        limits: &Limits,
    ) -> Result<Vec<Attachment>, ChatError> {
        let mut attachments = Vec::with_capacity(ids.len());
        for id in ids {
            match self.entries.get(id) {
                Some(entry) if entry.owner == owner && matches!(entry.place, Place::Waiting(_)) => {
                    attachments.push(entry.attachment.clone())
                }
                _ => return Err(ChatError::NoSuchFile(id.to_string())),
            }
        }
        check_message_files(&attachments, limits)?;
        for id in ids {
            if let Some(entry) = self.entries.get_mut(id) {
                entry.place = Place::Attached(room.clone());
            }
        }
        Ok(attachments)
    }

    /// Drops the files `message` carries (it was deleted or evicted).
    pub(crate) fn drop_with(&mut self, message: &ChatMessage) {
        for file in &message.attachments {
            self.entries.remove(&file.id);
        }
    }

    /// Drops every file attached in a room that `keep` refuses (rooms forgotten).
    pub(crate) fn drop_rooms(&mut self, keep: impl Fn(&RoomKey) -> bool) {
        self.entries.retain(|_, entry| match &entry.place {
            Place::Attached(room) => keep(room),
            Place::Waiting(_) => true,
        });
    }

    /// Drops the files that waited longer than `upload_wait` for a post; returns their
    /// ids.
    pub(crate) fn sweep(&mut self, now: Instant) -> Vec<FileId> {
        let wait = self.wait;
        let mut dropped = Vec::new();
        self.entries.retain(|id, entry| match entry.place {
            Place::Waiting(since) if now.saturating_duration_since(since) > wait => {
                dropped.push(id.clone());
                false
            }
            _ => true,
        });
        dropped
    }

    /// How many files are kept.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::attachment::FileKind;

    fn file(owner: u64, size: u64) -> StoredFile {
        let id = FileId::parse(&crate::broker::new_epoch()).expect("an id");
        let bytes = Bytes::from(vec![7u8; size as usize]);
        StoredFile::new(
            Attachment::new(id, "f.bin", size, FileKind::Other),
            UserId(owner),
            bytes,
        )
    }

    fn room() -> RoomKey {
        RoomKey::Channel(Arc::from("general"))
    }

    #[test]
    fn only_the_owner_attaches_a_waiting_file_and_only_once() {
        let limits = Limits::default();
        let mut shelf = FileShelf::new(&limits, true);
        let f = file(1, 3);
        let id = f.attachment.id.clone();
        shelf.put(f, Instant::now());
        let ids = [id.clone()];
        let err = shelf.attach(UserId(2), &ids, &room(), &limits);
        assert_eq!(err.map_err(|e| e.code()), Err("no_such_file"));
        let attached = shelf.attach(UserId(1), &ids, &room(), &limits);
        assert_eq!(attached.expect("attached")[0].id, id);
        let again = shelf.attach(UserId(1), &ids, &room(), &limits);
        assert_eq!(again.map_err(|e| e.code()), Err("no_such_file"));
        assert_eq!(&shelf.get(&id).expect("kept").bytes[..], &[7, 7, 7]);
    }

    #[test]
    fn a_refused_post_attaches_none_of_its_files() {
        let limits = Limits {
            max_message_file_bytes: 5,
            ..Limits::default()
        };
        let mut shelf = FileShelf::new(&limits, true);
        let (a, b) = (file(1, 3), file(1, 3));
        let ids = [a.attachment.id.clone(), b.attachment.id.clone()];
        shelf.put(a, Instant::now());
        shelf.put(b, Instant::now());
        let err = shelf.attach(UserId(1), &ids, &room(), &limits);
        assert_eq!(err.map_err(|e| e.code()), Err("too_large"));
        // Both still wait: one alone fits.
        assert!(shelf.attach(UserId(1), &ids[..1], &room(), &limits).is_ok());
        assert!(shelf.attach(UserId(1), &ids[1..], &room(), &limits).is_ok());
    }

    #[test]
    fn files_go_with_their_message_and_unclaimed_ones_after_the_wait() {
        let limits = Limits::default();
        let mut shelf = FileShelf::new(&limits, false);
        let start = Instant::now();
        let (kept, unclaimed) = (file(1, 1), file(1, 1));
        let kept_id = kept.attachment.id.clone();
        shelf.put(kept, start);
        shelf.put(unclaimed, start);
        let attached = shelf
            .attach(UserId(1), std::slice::from_ref(&kept_id), &room(), &limits)
            .expect("attached");
        assert!(
            shelf.get(&kept_id).expect("kept").bytes.is_empty(),
            "no bytes kept"
        );
        assert!(shelf.sweep(start + limits.upload_wait / 2).is_empty());
        assert_eq!(shelf.sweep(start + limits.upload_wait * 2).len(), 1);
        assert_eq!(shelf.len(), 1, "the attached file stays");
        let message = ChatMessage::new(
            4,
            crate::model::Room::Channel(
                crate::validate::channel_name("general", &limits).expect("name"),
            ),
            crate::model::UserRef {
                id: UserId(1),
                name: Arc::from("ann"),
            },
            String::new(),
            crate::model::now_millis(),
        )
        .with_attachments(attached);
        shelf.drop_with(&message);
        assert_eq!(shelf.len(), 0);
    }
}
