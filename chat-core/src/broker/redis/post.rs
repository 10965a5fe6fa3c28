//! A post through Redis: what its files are (`files.rs`), then one script run that takes
//! the author's cluster-wide flood token, gives the id, stores, attaches the files, trims
//! (dropping the files of the messages trimmed) and publishes (`POST_BODY` in
//! `scripts.rs`).
//!
//! Called by the broker's `commit` (`mod.rs`) for `Proposal::Post`.

use super::{cluster, files, keys, unavailable, wire, RedisBroker, PREFIX};
use crate::attachment::FileId;
use crate::broker::Receipt;
use crate::error::ChatError;
use crate::model::{Room, UserRef};

impl RedisBroker {
    /// Commits a post of `author` to `room` (whose pub/sub channel is `channel`), carrying
    /// the files `ids`.
    pub(super) async fn post(
        &self,
        room: &Room,
        channel: &str,
        author: UserRef,
        text: String,
        ids: Vec<FileId>,
    ) -> Result<Receipt, ChatError> {
        let mut conn = self.conn.clone();
        // A private conversation lives while one of its users is held (see
        // TOUCH_SCRIPT in scripts.rs).
        let expiry = match room {
            Room::Channel(_) => 0,
            Room::Direct(_) => self.hold_secs,
        };
        let bucket = keys::bucket("message_rate", author.id);
        let attached = if ids.is_empty() {
            Vec::new()
        } else {
            files::waiting(&mut conn, author.id, &ids, &self.limits).await?
        };
        let draft = wire::draft(&author, text, &attached).map_err(unavailable)?;
        let rate = self.message_rate;
        let mut script = self.scripts.post.prepare_invoke();
        script
            .key(keys::room_seq(channel))
            .key(keys::room_log(channel))
            .key(bucket);
        for id in &ids {
            script.key(keys::file(id));
        }
        let (wait_ms, stored): (i64, String) = script
            .arg(self.history_limit)
            .arg(draft)
            .arg(channel)
            .arg(expiry)
            .arg(rate.burst)
            .arg(cluster::per_ms(rate))
            .arg(PREFIX)
            .invoke_async(&mut conn)
            .await
            .map_err(unavailable)?;
        if wait_ms < 0 {
            let first = ids.first().map(|id| id.to_string()).unwrap_or_default();
            return Err(ChatError::NoSuchFile(first));
        }
        let wait_ms = wait_ms as u64;
        if wait_ms > 0 {
            return Err(cluster::rate_limited("message_rate", wait_ms));
        }
        let message = wire::message(&stored, room)
            .ok_or_else(|| ChatError::Unavailable("redis returned a malformed message".into()))?;
        Ok(Receipt::Posted(message))
    }
}
