//! Files that messages carry: their unguessable ids, what a file is (read from its first
//! bytes, never from what the uploader says), its cleaned name, and the rules of a post's
//! files.
//!
//! A file's life: an embedder's HTTP handler takes the bytes from a user it identified
//! ([`Engine::uploader`](crate::Engine::uploader)) and hands them to the engine, which
//! checks the user's hourly budget and keeps the file in the broker's store as *waiting*;
//! a post of the same user names it
//! ([`Session::start_post_with_files`](crate::Session::start_post_with_files)) and the
//! broker attaches it to the message.
//! From then on the file lives exactly as long as its message: when the message is
//! deleted, or evicted from the room's kept history, the store drops the file too. A file
//! that no post claims within [`Limits::upload_wait`](crate::Limits::upload_wait) is
//! dropped.
//!
//! Serving is the embedder's: [`Engine::file`](crate::Engine::file) gives the bytes and
//! the [`FileKind`] to build the response from (`Content-Type`, and whether a browser may
//! show it inline).

use std::fmt;
use std::sync::Arc;

use bytes::Bytes;
use serde::Serialize;

use crate::error::ChatError;
use crate::ids::UserId;
use crate::limits::Limits;

/// Longest kept file name, in bytes of UTF-8 (a longer one is cut at a character).
pub const MAX_FILE_NAME_BYTES: usize = 200;

/// A file's id: 128 random bits as 32 lowercase hex digits, so its URL cannot be guessed.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct FileId(Arc<str>);

impl FileId {
    /// A fresh id from the OS random generator.
    pub(crate) fn random() -> Result<FileId, ChatError> {
        Ok(FileId(crate::identity::random_hex()?.into()))
    }

    /// The id a client sent, if it has the form of one (32 lowercase hex digits); `None`
    /// otherwise, so that nothing else is ever looked up.
    pub fn parse(raw: &str) -> Option<FileId> {
        let ok = raw.len() == 32 && raw.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
        ok.then(|| FileId(raw.into()))
    }

    /// The id's text, as it appears in URLs and on the wire.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for FileId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// What a file is, as its first bytes say. Only raster images may be shown inline by a
/// browser; everything else, HTML and SVG included (they can run script), is served as a
/// download.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum FileKind {
    /// A PNG image.
    Png,
    /// A JPEG image.
    Jpeg,
    /// A GIF image.
    Gif,
    /// A WebP image.
    Webp,
    /// A PDF document.
    Pdf,
    /// Anything else.
    Other,
}

impl FileKind {
    /// Reads what a file is from its first bytes (the magic numbers of the formats above).
    pub fn sniff(bytes: &[u8]) -> FileKind {
        match bytes {
            [0x89, b'P', b'N', b'G', 0x0d, 0x0a, 0x1a, 0x0a, ..] => FileKind::Png,
            [0xff, 0xd8, 0xff, ..] => FileKind::Jpeg,
            [b'G', b'I', b'F', b'8', b'7' | b'9', b'a', ..] => FileKind::Gif,
            [b'R', b'I', b'F', b'F', _, _, _, _, b'W', b'E', b'B', b'P', ..] => FileKind::Webp,
            [b'%', b'P', b'D', b'F', b'-', ..] => FileKind::Pdf,
            _ => FileKind::Other,
        }
    }

    /// The `Content-Type` to serve it with.
    pub fn content_type(self) -> &'static str {
        match self {
            FileKind::Png => "image/png",
            FileKind::Jpeg => "image/jpeg",
            FileKind::Gif => "image/gif",
            FileKind::Webp => "image/webp",
            FileKind::Pdf => "application/pdf",
            FileKind::Other => "application/octet-stream",
        }
    }

    /// Whether a page may show it inline (a raster image): every other kind is served with
    /// `Content-Disposition: attachment`.
    pub fn is_image(self) -> bool {
        matches!(
            self,
            FileKind::Png | FileKind::Jpeg | FileKind::Gif | FileKind::Webp
        )
    }

    /// The kind a store wrote with [`FileKind::as_str`].
    pub fn from_name(name: &str) -> FileKind {
        match name {
            "png" => FileKind::Png,
            "jpeg" => FileKind::Jpeg,
            "gif" => FileKind::Gif,
            "webp" => FileKind::Webp,
            "pdf" => FileKind::Pdf,
            _ => FileKind::Other,
        }
    }

    /// Its name on the wire and in stores: `png`, `jpeg`, `gif`, `webp`, `pdf`, `other`.
    pub fn as_str(self) -> &'static str {
        match self {
            FileKind::Png => "png",
            FileKind::Jpeg => "jpeg",
            FileKind::Gif => "gif",
            FileKind::Webp => "webp",
            FileKind::Pdf => "pdf",
            FileKind::Other => "other",
        }
    }
}

/// A file as a message carries it: everything a client shows, none of the bytes.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[non_exhaustive]
pub struct Attachment {
    /// Its id, which is also its address (`/files/{id}` in the demo).
    pub id: FileId,
    /// Its name, cleaned ([`clean_file_name`]).
    pub name: Arc<str>,
    /// Its size in bytes.
    pub size: u64,
    /// What it is, read from its bytes.
    pub kind: FileKind,
}

impl Attachment {
    /// A file `id` named `name` (cleaned here), of `size` bytes, of `kind`.
    pub fn new(id: FileId, name: &str, size: u64, kind: FileKind) -> Attachment {
        Attachment {
            id,
            name: clean_file_name(name).into(),
            size,
            kind,
        }
    }

    /// Its size for people: `512 B`, `3.4 KiB`, `12.0 MiB`.
    pub fn size_text(&self) -> String {
        const UNITS: [&str; 3] = ["KiB", "MiB", "GiB"];
        if self.size < 1024 {
            return format!("{} B", self.size);
        }
        let mut value = self.size as f64 / 1024.0;
        let mut unit = 0;
        while value >= 1024.0 && unit + 1 < UNITS.len() {
            value /= 1024.0;
            unit += 1;
        }
        format!("{value:.1} {}", UNITS[unit])
    }
}

/// A file as a store keeps it: its description, who uploaded it, and its bytes.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct StoredFile {
    /// What a message shows of it.
    pub attachment: Attachment,
    /// Who uploaded it: the only user whose post may attach it.
    pub owner: UserId,
    /// Its bytes.
    pub bytes: Bytes,
}

impl StoredFile {
    /// A file of `owner`, described by `attachment`, with its `bytes`.
    pub fn new(attachment: Attachment, owner: UserId, bytes: Bytes) -> StoredFile {
        StoredFile {
            attachment,
            owner,
            bytes,
        }
    }
}

/// A file name as kept and shown: the last part of a path (a browser may send one), with
/// control characters and the characters that reorder text dropped, trimmed, at most
/// [`MAX_FILE_NAME_BYTES`]; `file` when nothing is left.
pub fn clean_file_name(raw: &str) -> String {
    let last = raw.rsplit(['/', '\\']).next().unwrap_or(raw);
    let kept: String = last
        .chars()
        .filter(|c| !c.is_control() && !crate::validate::reorders_text(*c))
        .collect();
    let mut name = kept.trim().to_owned();
    if name.len() > MAX_FILE_NAME_BYTES {
        let mut cut = MAX_FILE_NAME_BYTES;
        while !name.is_char_boundary(cut) {
            cut -= 1;
        }
        name.truncate(cut);
    }
    if name.is_empty() || name == "." || name == ".." {
        return "file".to_owned();
    }
    name
}

/// Checks the files a post attaches against `limits`: at most `max_files_per_message`,
/// together at most `max_message_file_bytes`. Every broker calls it once it has found the
/// files, before it commits the post.
pub fn check_message_files(files: &[Attachment], limits: &Limits) -> Result<(), ChatError> {
    if files.len() > limits.max_files_per_message {
        return Err(ChatError::TooManyFiles(limits.max_files_per_message));
    }
    let total: u64 = files.iter().map(|f| f.size).sum();
    if total > limits.max_message_file_bytes {
        return Err(ChatError::FileTooLarge {
            limit: "max_message_file_bytes",
            bytes: limits.max_message_file_bytes,
        });
    }
    Ok(())
}

/// The ids a post names, each once, in order; refuses more than `max_files_per_message`
/// before any store is asked.
pub(crate) fn distinct_ids(ids: Vec<FileId>, limits: &Limits) -> Result<Vec<FileId>, ChatError> {
    let mut seen = Vec::with_capacity(ids.len());
    for id in ids {
        if !seen.contains(&id) {
            seen.push(id);
        }
    }
    if seen.len() > limits.max_files_per_message {
        return Err(ChatError::TooManyFiles(limits.max_files_per_message));
    }
    Ok(seen)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_come_from_the_bytes_never_from_the_name() {
        assert_eq!(
            FileKind::sniff(b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR"),
            FileKind::Png
        );
        assert_eq!(
            FileKind::sniff(b"\xff\xd8\xff\xe0\0\x10JFIF"),
            FileKind::Jpeg
        );
        assert_eq!(FileKind::sniff(b"GIF89a\x01\0"), FileKind::Gif);
        assert_eq!(FileKind::sniff(b"RIFF\x24\0\0\0WEBPVP8 "), FileKind::Webp);
        assert_eq!(FileKind::sniff(b"%PDF-1.7\n"), FileKind::Pdf);
        assert_eq!(FileKind::sniff(b"<html><script>"), FileKind::Other);
        assert_eq!(FileKind::sniff(b"<svg xmlns="), FileKind::Other);
        assert_eq!(FileKind::sniff(b"\x89PN"), FileKind::Other, "too short");
        assert!(FileKind::Webp.is_image() && !FileKind::Pdf.is_image());
        assert!(!FileKind::Other.is_image());
        for kind in [FileKind::Png, FileKind::Pdf, FileKind::Other] {
            assert_eq!(FileKind::from_name(kind.as_str()), kind);
        }
    }

    #[test]
    fn names_lose_paths_controls_and_reordering_and_are_bounded() {
        assert_eq!(clean_file_name("C:\\Users\\me\\cat.png"), "cat.png");
        assert_eq!(clean_file_name("../../etc/passwd"), "passwd");
        assert_eq!(clean_file_name("a\u{202e}gnp.exe"), "agnp.exe");
        assert_eq!(clean_file_name("bad\r\nname.txt"), "badname.txt");
        assert_eq!(clean_file_name("  "), "file");
        assert_eq!(clean_file_name(".."), "file");
        let long = "é".repeat(150);
        let cut = clean_file_name(&long);
        assert!(cut.len() <= MAX_FILE_NAME_BYTES && cut.chars().all(|c| c == 'é'));
    }

    #[test]
    fn ids_are_32_hex_digits_and_nothing_else_parses() {
        let id = FileId::random().expect("random");
        assert_eq!(FileId::parse(id.as_str()), Some(id.clone()));
        assert_eq!(id.as_str().len(), 32);
        assert_eq!(FileId::parse("../etc/passwd"), None);
        assert_eq!(FileId::parse(&id.as_str().to_uppercase()), None);
        assert_ne!(FileId::random().expect("random"), id);
    }

    #[test]
    fn a_posts_files_are_bounded_in_number_and_bytes() {
        let limits = Limits {
            max_files_per_message: 2,
            max_message_file_bytes: 100,
            ..Limits::default()
        };
        let file =
            |size| Attachment::new(FileId::random().expect("id"), "f", size, FileKind::Other);
        assert_eq!(check_message_files(&[file(60), file(40)], &limits), Ok(()));
        assert_eq!(
            check_message_files(&[file(60), file(41)], &limits).map_err(|e| e.code()),
            Err("too_large")
        );
        assert_eq!(
            check_message_files(&[file(1), file(1), file(1)], &limits).map_err(|e| e.code()),
            Err("too_many_files")
        );
        let same = FileId::random().expect("id");
        let ids = distinct_ids(vec![same.clone(), same.clone(), same], &limits).expect("one id");
        assert_eq!(ids.len(), 1);
        assert_eq!(file(1536).size_text(), "1.5 KiB");
        assert_eq!(file(999).size_text(), "999 B");
    }
}
