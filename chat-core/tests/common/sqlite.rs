//! The SQLite store in tests (feature `sqlite`): a fresh directory per test, and starting
//! an engine again on a file the engine before it is letting go of.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use chat_core::{ChatError, Engine, Limits};

use super::PATIENCE;

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

/// Starts an engine on `path` once the engine before it has let go of the file (its
/// threads end shortly after `shutdown`).
pub async fn reopen(path: &Path, limits: Limits) -> Engine {
    let deadline = Instant::now() + PATIENCE;
    loop {
        match open(path, limits.clone()).await {
            Ok(engine) => return engine,
            Err(e) if e.to_string().contains("another server") && Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            Err(e) => panic!("reopening {}: {e}", path.display()),
        }
    }
}
