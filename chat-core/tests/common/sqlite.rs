//! The SQLite store in tests (feature `sqlite`): a fresh directory per test, and starting
//! an engine again on the file the engine before it used.

use std::path::{Path, PathBuf};

use chat_core::{ChatError, Engine, Limits};

/// A fresh directory for one test's store.
pub fn scratch(name: &str) -> PathBuf {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let dir =
        std::env::temp_dir().join(format!("flack-store-{name}-{}-{nanos}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("scratch dir");
    dir
}

/// Starts an engine with `limits` on the store at `path`.
pub async fn open(path: &Path, limits: Limits) -> Result<Engine, ChatError> {
    Engine::builder().limits(limits).sqlite(path).start().await
}

/// Starts an engine on `path` right after the engine before it shut down: no wait, no
/// retry, since `Engine::shutdown` returns only once the store has let go of the file and
/// its lock (`Broker::close`).
pub async fn reopen(path: &Path, limits: Limits) -> Engine {
    open(path, limits)
        .await
        .unwrap_or_else(|e| panic!("reopening {}: {e}", path.display()))
}
