//! Token buckets for per-user flood control (`Limits::message_rate`,
//! `Limits::channel_create_rate`).
//!
//! Shared by every session of one user, so opening more connections does not buy more
//! messages. Checked in the session handle, before any actor is asked.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::error::ChatError;
use crate::limits::{Limits, Rate};

/// A token bucket; `take` succeeds while tokens are left.
#[derive(Debug)]
pub(crate) struct TokenBucket {
    rate: Rate,
    tokens: f64,
    refilled_at: Instant,
}

impl TokenBucket {
    pub(crate) fn new(rate: Rate, now: Instant) -> Self {
        TokenBucket {
            rate,
            tokens: f64::from(rate.burst),
            refilled_at: now,
        }
    }

    /// Takes one token, or says how long until one is available.
    pub(crate) fn take(&mut self, now: Instant) -> Result<(), Duration> {
        let elapsed = now
            .saturating_duration_since(self.refilled_at)
            .as_secs_f64();
        self.tokens =
            (self.tokens + elapsed * self.rate.per_second).min(f64::from(self.rate.burst));
        self.refilled_at = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            Ok(())
        } else {
            let wait = (1.0 - self.tokens) / self.rate.per_second;
            Err(Duration::from_secs_f64(wait.min(86_400.0)))
        }
    }
}

/// The buckets of one user.
#[derive(Debug)]
pub(crate) struct UserBuckets {
    messages: Mutex<TokenBucket>,
    channel_creations: Mutex<TokenBucket>,
}

impl UserBuckets {
    pub(crate) fn new(limits: &Limits) -> Self {
        let now = Instant::now();
        UserBuckets {
            messages: Mutex::new(TokenBucket::new(limits.message_rate, now)),
            channel_creations: Mutex::new(TokenBucket::new(limits.channel_create_rate, now)),
        }
    }

    pub(crate) fn take_message(&self) -> Result<(), ChatError> {
        take(&self.messages, "message_rate")
    }

    pub(crate) fn take_channel_creation(&self) -> Result<(), ChatError> {
        take(&self.channel_creations, "channel_create_rate")
    }
}

fn take(bucket: &Mutex<TokenBucket>, limit: &'static str) -> Result<(), ChatError> {
    // A poisoned lock only means another thread panicked mid-update; the bucket's numbers
    // are still usable.
    let mut bucket = bucket.lock().unwrap_or_else(|e| e.into_inner());
    bucket
        .take(Instant::now())
        .map_err(|retry_after| ChatError::RateLimited { limit, retry_after })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_allows_a_burst_then_refills_at_the_rate() {
        let start = Instant::now();
        let mut b = TokenBucket::new(
            Rate {
                burst: 3,
                per_second: 2.0,
            },
            start,
        );
        for _ in 0..3 {
            assert!(b.take(start).is_ok());
        }
        let wait = b.take(start).unwrap_err();
        assert!(wait > Duration::from_millis(400) && wait <= Duration::from_millis(500));
        assert!(b.take(start + Duration::from_millis(499)).is_err());
        assert!(b.take(start + Duration::from_millis(1000)).is_ok());
        // Refill never exceeds the burst.
        let later = start + Duration::from_secs(100);
        for _ in 0..3 {
            assert!(b.take(later).is_ok());
        }
        assert!(b.take(later).is_err());
    }
}
