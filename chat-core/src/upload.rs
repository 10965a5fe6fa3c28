//! Uploads: a user identified by their resume token hands the engine a file's bytes
//! ([`Uploader`]), within the size limit, their hourly budget ([`UploadBudget`]) and the
//! server's bytes in flight.
//!
//! Made by [`Engine::uploader`](crate::Engine::uploader) for a transport's upload request
//! (the demo's `POST /files`); the file it keeps waits for a post of the same user
//! ([`crate::attachment`]). A transport that reads a body reserves its size first
//! ([`Uploader::reserve`]): the budget and the bytes in flight are taken before a byte is
//! read, so neither many uploads at once from one user nor many users at once can make
//! the server hold more than `Limits::upload_bytes_in_flight`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

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

    /// Gives `size` bytes back to `user`'s bucket (taken for an upload that kept less).
    pub(crate) fn give_back(&self, user: UserId, size: u64) {
        let mut buckets = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(bucket) = buckets.get_mut(&user) {
            bucket.bytes = (bucket.bytes + size as f64).min(self.per_hour);
        }
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
    /// `Limits::upload_bytes_in_flight`, a permit a byte, shared by every upload.
    in_flight: Arc<Semaphore>,
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
        in_flight: Arc<Semaphore>,
    ) -> Uploader {
        Uploader {
            user,
            limits,
            broker,
            budget,
            in_flight,
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

    /// Reserves room for a file of `size` bytes at most, before its bytes are read: the
    /// size is checked against `max_file_bytes` (`too_large`), taken from the user's
    /// hourly budget (`rate_limited`, `upload_bytes_per_hour`) and from the bytes the
    /// server may hold in flight (`unavailable` while other uploads hold them: retry in
    /// a moment). A transport reserves a body's declared length, or `max_bytes` when it
    /// has none, then reads at most that much. What the upload does not keep goes back
    /// to the budget, and the bytes in flight go back, when the reservation ends.
    pub fn reserve(&self, size: u64) -> Result<Reservation, ChatError> {
        telemetry::tally(self.reserve_uncounted(size))
    }

    fn reserve_uncounted(&self, size: u64) -> Result<Reservation, ChatError> {
        if size > self.limits.max_file_bytes {
            return Err(ChatError::FileTooLarge {
                limit: "max_file_bytes",
                bytes: self.limits.max_file_bytes,
            });
        }
        if size == 0 {
            return Err(ChatError::Empty);
        }
        // At most `max_file_bytes`, which the limits keep within `u32` and within the
        // semaphore's permits (`upload_bytes_in_flight` is at least as large).
        let permits = u32::try_from(size).unwrap_or(u32::MAX);
        let in_flight = self
            .in_flight
            .clone()
            .try_acquire_many_owned(permits)
            .map_err(|_| {
                ChatError::Unavailable(
                    "the server is receiving as many files as it holds at once; \
                     try again in a moment"
                        .to_owned(),
                )
            })?;
        self.budget
            .take(self.user.id, size, Instant::now())
            .map_err(|retry_after| ChatError::RateLimited {
                limit: "upload_bytes_per_hour",
                retry_after,
            })?;
        Ok(Reservation {
            uploader: self.clone(),
            size,
            unused: size,
            _in_flight: in_flight,
        })
    }

    /// Keeps `bytes` as a file named `name` (cleaned: [`crate::attachment::clean_file_name`]),
    /// waiting for a post of this user to carry it; returns what the post will show.
    /// Its kind comes from its first bytes, never from its name. As
    /// [`Uploader::reserve`] for `bytes`' length, then [`Reservation::upload`]: for an
    /// embedder that has the bytes already.
    pub async fn upload(&self, name: &str, bytes: Bytes) -> Result<Attachment, ChatError> {
        self.reserve(bytes.len() as u64)?.upload(name, bytes).await
    }
}

/// Room reserved for one upload ([`Uploader::reserve`]): part of the user's hourly budget
/// and of the server's bytes in flight, held until the upload is kept or dropped. What the
/// upload does not keep (all of it, for an upload that fails or is dropped: a client that
/// went away) goes back to the user's budget.
#[derive(Debug)]
pub struct Reservation {
    uploader: Uploader,
    size: u64,
    /// What goes back to the budget when the reservation ends.
    unused: u64,
    _in_flight: OwnedSemaphorePermit,
}

impl Drop for Reservation {
    fn drop(&mut self) {
        if self.unused > 0 {
            let user = self.uploader.user.id;
            self.uploader.budget.give_back(user, self.unused);
        }
    }
}

impl Reservation {
    /// The most bytes this upload may keep: a transport stops reading its body there.
    pub fn max_bytes(&self) -> u64 {
        self.size
    }

    /// Keeps `bytes` (at most [`Reservation::max_bytes`]) as a file named `name`; returns
    /// what the post that carries it will show.
    pub async fn upload(mut self, name: &str, bytes: Bytes) -> Result<Attachment, ChatError> {
        let kept = telemetry::tally(self.keep(name, bytes).await)?;
        self.unused = self.size - kept.size;
        Ok(kept)
    }

    async fn keep(&self, name: &str, bytes: Bytes) -> Result<Attachment, ChatError> {
        let size = bytes.len() as u64;
        let Uploader {
            user,
            broker,
            limits,
            ..
        } = &self.uploader;
        if size > self.size {
            return Err(ChatError::FileTooLarge {
                limit: "max_file_bytes",
                bytes: self.size.min(limits.max_file_bytes),
            });
        }
        if size == 0 {
            return Err(ChatError::Empty);
        }
        let attachment = Attachment::new(FileId::random()?, name, size, FileKind::sniff(&bytes));
        let file = StoredFile::new(attachment.clone(), user.id, bytes);
        broker.put_file(file).await?;
        tracing::debug!(user = %user.id, file = %attachment.id, size, "file uploaded");
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
