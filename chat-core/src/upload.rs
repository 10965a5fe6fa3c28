//! Uploads: a user identified by their resume token hands the engine a file's bytes
//! ([`Uploader`]), within the size limit and their hourly budget ([`UploadBudget`]).
//!
//! Made by [`Engine::uploader`](crate::Engine::uploader) for a transport's upload request
//! (the demo's `POST /files`); the file it keeps waits for a post of the same user
//! ([`crate::attachment`]).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;

use crate::attachment::{Attachment, FileId, FileKind, StoredFile};
use crate::broker::Broker;
use crate::error::ChatError;
use crate::limits::Limits;
use crate::model::{UserId, UserRef};
use crate::telemetry;

/// Each user's bytes left to upload this hour: a bucket of `upload_bytes_per_hour` that
/// refills evenly over the hour. Per node, like the other per-user buckets of one node.
#[derive(Debug)]
pub(crate) struct UploadBudget {
    per_hour: f64,
    buckets: Mutex<HashMap<UserId, Bucket>>,
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    bytes: f64,
    at: Instant,
}

impl UploadBudget {
    /// Buckets of `limits.upload_bytes_per_hour`.
    pub(crate) fn new(limits: &Limits) -> UploadBudget {
        UploadBudget {
            per_hour: limits.upload_bytes_per_hour as f64,
            buckets: Mutex::default(),
        }
    }

    /// Takes `size` bytes from `user`'s bucket at `now`, or says how long until they are
    /// there (nothing is taken then).
    pub(crate) fn take(&self, user: UserId, size: u64, now: Instant) -> Result<(), Duration> {
        let per_second = self.per_hour / 3600.0;
        let mut buckets = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        // A bucket that has refilled is the same as none: forget those, so the map holds
        // only the users who uploaded within the hour.
        if buckets.len() > 1024 {
            let full = self.per_hour;
            buckets.retain(|_, b| {
                b.bytes + now.duration_since(b.at).as_secs_f64() * per_second < full
            });
        }
        let bucket = buckets.entry(user).or_insert(Bucket {
            bytes: self.per_hour,
            at: now,
        });
        let refilled = now.saturating_duration_since(bucket.at).as_secs_f64() * per_second;
        bucket.bytes = (bucket.bytes + refilled).min(self.per_hour);
        bucket.at = now;
        let size = size as f64;
        if size > bucket.bytes {
            return Err(Duration::from_secs_f64((size - bucket.bytes) / per_second));
        }
        bucket.bytes -= size;
        Ok(())
    }
}

/// A user allowed to upload: made by [`Engine::uploader`](crate::Engine::uploader) from
/// their resume token, before the upload's body is read, so that a request from no one
/// costs nothing more.
#[derive(Clone)]
pub struct Uploader {
    user: UserRef,
    limits: Arc<Limits>,
    broker: Arc<dyn Broker>,
    budget: Arc<UploadBudget>,
}

impl std::fmt::Debug for Uploader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Uploader")
            .field("user", &self.user)
            .finish_non_exhaustive()
    }
}

impl Uploader {
    pub(crate) fn new(
        user: UserRef,
        limits: Arc<Limits>,
        broker: Arc<dyn Broker>,
        budget: Arc<UploadBudget>,
    ) -> Uploader {
        Uploader {
            user,
            limits,
            broker,
            budget,
        }
    }

    /// Who uploads.
    pub fn user(&self) -> &UserRef {
        &self.user
    }

    /// The largest file this upload may keep (`Limits::max_file_bytes`): a transport
    /// stops reading a body there.
    pub fn max_bytes(&self) -> u64 {
        self.limits.max_file_bytes
    }

    /// Keeps `bytes` as a file named `name` (cleaned: [`crate::attachment::clean_file_name`]),
    /// waiting for a post of this user to carry it; returns what the post will show.
    /// Its kind comes from its first bytes, never from its name. Refused with
    /// `too_large` beyond `max_file_bytes`, `empty` for no bytes, and `rate_limited`
    /// (`upload_bytes_per_hour`) when the user's hourly budget is spent.
    pub async fn upload(&self, name: &str, bytes: Bytes) -> Result<Attachment, ChatError> {
        telemetry::tally(self.upload_uncounted(name, bytes).await)
    }

    async fn upload_uncounted(&self, name: &str, bytes: Bytes) -> Result<Attachment, ChatError> {
        let size = bytes.len() as u64;
        if size > self.limits.max_file_bytes {
            return Err(ChatError::FileTooLarge {
                limit: "max_file_bytes",
                bytes: self.limits.max_file_bytes,
            });
        }
        if size == 0 {
            return Err(ChatError::Empty);
        }
        self.budget
            .take(self.user.id, size, Instant::now())
            .map_err(|retry_after| ChatError::RateLimited {
                limit: "upload_bytes_per_hour",
                retry_after,
            })?;
        let attachment = Attachment::new(FileId::random()?, name, size, FileKind::sniff(&bytes));
        let file = StoredFile::new(attachment.clone(), self.user.id, bytes);
        self.broker.put_file(file).await?;
        tracing::debug!(user = %self.user.id, file = %attachment.id, size, "file uploaded");
        Ok(attachment)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_hourly_budget_refills_over_the_hour_and_says_when() {
        let limits = Limits {
            upload_bytes_per_hour: 3600,
            max_file_bytes: 3600,
            ..Limits::default()
        };
        let budget = UploadBudget::new(&limits);
        let start = Instant::now();
        assert_eq!(budget.take(UserId(1), 3000, start), Ok(()));
        let wait = budget.take(UserId(1), 1000, start).expect_err("spent");
        assert_eq!(
            wait.as_secs(),
            400,
            "one byte a second refills the missing 400"
        );
        assert_eq!(budget.take(UserId(2), 3600, start), Ok(()), "per user");
        assert_eq!(
            budget.take(UserId(1), 1000, start + Duration::from_secs(400)),
            Ok(())
        );
    }
}
