//! Files in Redis: each upload one hash (`keys::file`) that expires after
//! `Limits::upload_wait` unless a post attaches it (the post script then keeps it for as
//! long as its message: see `DROP_FILES` in `scripts.rs`).
//!
//! Called by the broker's trait methods (`mod.rs`); the post script re-checks atomically
//! that each file still waits, so the checks here only find out what the files are.

use bytes::Bytes;
use redis::aio::ConnectionManager;

use super::{keys, unavailable};
use crate::attachment::{check_message_files, Attachment, FileId, FileKind, StoredFile};
use crate::error::ChatError;
use crate::limits::Limits;
use crate::model::UserId;

/// Keeps `file` for `limits.upload_wait`, waiting for a post.
pub(super) async fn put(
    conn: &mut ConnectionManager,
    file: &StoredFile,
    limits: &Limits,
) -> Result<(), ChatError> {
    let key = keys::file(&file.attachment.id);
    let wait_ms = u64::try_from(limits.upload_wait.as_millis()).unwrap_or(u64::MAX);
    redis::pipe()
        .atomic()
        .hset_multiple(
            &key,
            &[
                ("owner", file.owner.0.to_string()),
                ("name", file.attachment.name.to_string()),
                ("size", file.attachment.size.to_string()),
                ("kind", file.attachment.kind.as_str().to_owned()),
            ],
        )
        .ignore()
        .hset(&key, "data", &file.bytes[..])
        .ignore()
        .pexpire(&key, wait_ms as i64)
        .ignore()
        .query_async::<()>(conn)
        .await
        .map_err(unavailable)
}

/// The fields of a file hash the broker reads, but its bytes.
const FIELDS: [&str; 5] = ["owner", "name", "size", "kind", "attached"];

/// [`FIELDS`] as read.
type Fields = (
    Option<u64>,
    Option<String>,
    Option<u64>,
    Option<String>,
    Option<u64>,
);

/// The file `id`, with its bytes, while it is kept.
pub(super) async fn get(
    conn: &mut ConnectionManager,
    id: &FileId,
) -> Result<Option<StoredFile>, ChatError> {
    let key = keys::file(id);
    let ((owner, name, size, kind, _), data): (Fields, Option<Vec<u8>>) = redis::pipe()
        .hmget(&key, &FIELDS)
        .hget(&key, "data")
        .query_async(conn)
        .await
        .map_err(unavailable)?;
    let (Some(owner), Some(name), Some(size), Some(kind), Some(data)) =
        (owner, name, size, kind, data)
    else {
        return Ok(None);
    };
    let attachment = Attachment::new(id.clone(), &name, size, FileKind::from_name(&kind));
    Ok(Some(StoredFile::new(
        attachment,
        UserId(owner),
        Bytes::from(data),
    )))
}

/// What the files `ids` are, when each waits for a post of `owner` and together they
/// fit a message; `no_such_file` or the limits' error otherwise.
pub(super) async fn waiting(
    conn: &mut ConnectionManager,
    owner: UserId,
    ids: &[FileId],
    limits: &Limits,
) -> Result<Vec<Attachment>, ChatError> {
    let mut pipe = redis::pipe();
    for id in ids {
        pipe.hmget(keys::file(id), &FIELDS);
    }
    let found: Vec<Fields> = pipe.query_async(conn).await.map_err(unavailable)?;
    let mut files = Vec::with_capacity(ids.len());
    for (id, fields) in ids.iter().zip(found) {
        match fields {
            (Some(o), Some(name), Some(size), Some(kind), None) if o == owner.0 => files.push(
                Attachment::new(id.clone(), &name, size, FileKind::from_name(&kind)),
            ),
            _ => return Err(ChatError::NoSuchFile(id.to_string())),
        }
    }
    check_message_files(&files, limits)?;
    Ok(files)
}
