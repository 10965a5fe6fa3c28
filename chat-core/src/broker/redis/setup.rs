//! What a node checks when it connects to Redis: the keyspace's epoch (made by the first
//! node), and whether that Redis keeps anything on disk.
//!
//! Called once per broker, by `RedisBroker::connect` (`mod.rs`).

use redis::aio::ConnectionManager;
use redis::AsyncCommands;

use super::{keys, unavailable};
use crate::broker::new_epoch;
use crate::error::ChatError;

/// The keyspace's epoch: set by the first node that finds none (`SET NX`), read by every
/// other. A Redis that lost its data (restarted without persistence, flushed) has none,
/// and the next node to connect makes a new one.
pub(super) async fn keyspace_epoch(conn: &mut ConnectionManager) -> Result<String, ChatError> {
    let _: Option<String> = redis::cmd("SET")
        .arg(keys::EPOCH)
        .arg(new_epoch())
        .arg("NX")
        .query_async(conn)
        .await
        .map_err(unavailable)?;
    let epoch: Option<String> = conn.get(keys::EPOCH).await.map_err(unavailable)?;
    epoch.ok_or_else(|| ChatError::Unavailable(format!("redis: {} vanished", keys::EPOCH)))
}

/// Logs a warning when Redis keeps nothing on disk (neither an append-only file nor RDB
/// snapshots): a restart of that Redis loses every user, channel and message. A Redis that
/// refuses `CONFIG GET` (managed services often do) gets a note that it could not be told.
pub(super) async fn warn_without_persistence(conn: &mut ConnectionManager) {
    let setting = |name: &'static str| {
        let mut conn = conn.clone();
        async move {
            let pair: Result<Vec<String>, _> = redis::cmd("CONFIG")
                .arg("GET")
                .arg(name)
                .query_async(&mut conn)
                .await;
            pair.map(|pair| pair.get(1).cloned().unwrap_or_default())
        }
    };
    match (setting("appendonly").await, setting("save").await) {
        (Ok(aof), Ok(save)) => {
            if !persists(&aof, &save) {
                tracing::warn!(
                    appendonly = %aof,
                    save = %save,
                    "redis keeps nothing on disk (no AOF, no RDB snapshots): a restart of \
                     redis loses every user, channel and message"
                );
            }
        }
        (Err(e), _) | (_, Err(e)) => {
            tracing::info!(error = %e, "cannot read redis's persistence settings (CONFIG GET)");
        }
    }
}

/// Whether Redis with `appendonly` and `save` set so writes anything to disk.
fn persists(appendonly: &str, save: &str) -> bool {
    appendonly.eq_ignore_ascii_case("yes") || !save.trim().is_empty()
}

#[cfg(test)]
mod tests {
    #[test]
    fn persistence_is_on_with_aof_or_any_snapshot_rule() {
        assert!(!super::persists("no", ""));
        assert!(super::persists("yes", ""));
        assert!(super::persists("no", "3600 1 300 100 60 10000"));
    }
}
