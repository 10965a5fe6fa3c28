//! A real `redis-server` for the multi-node tests: started on a free loopback port with a
//! temp dir of its own, killed on drop. Without `redis-server` the test says so loudly and
//! skips; under `CI=true` it fails instead.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::{scratch_dir, TestResult};

/// A `redis-server` child process, killed on drop.
pub struct Redis {
    child: Option<Child>,
    port: u16,
    dir: PathBuf,
    persistent: bool,
}

impl Redis {
    /// A Redis without persistence, or `None` (skip) when it is not installed.
    pub fn start() -> TestResult<Option<Redis>> {
        Self::start_with(false)
    }

    /// A Redis that writes every command to its append-only file, so that it comes back
    /// with its data after [`Redis::restart`].
    pub fn start_persistent() -> TestResult<Option<Redis>> {
        Self::start_with(true)
    }

    fn start_with(persistent: bool) -> TestResult<Option<Redis>> {
        if Command::new("redis-server")
            .arg("--version")
            .output()
            .is_err()
        {
            if std::env::var("CI").as_deref() == Ok("true") {
                return Err("redis-server is not installed, and CI=true".into());
            }
            eprintln!("SKIPPED: redis-server is not installed (apt-get install redis-server)");
            return Ok(None);
        }
        let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let mut redis = Redis {
            child: None,
            port,
            dir: scratch_dir("redis"),
            persistent,
        };
        redis.spawn()?;
        Ok(Some(redis))
    }

    fn spawn(&mut self) -> TestResult {
        let (appendonly, fsync) = if self.persistent {
            ("yes", "always")
        } else {
            ("no", "no")
        };
        let child = Command::new("redis-server")
            .args(["--bind", "127.0.0.1", "--port", &self.port.to_string()])
            .args([
                "--save",
                "",
                "--appendonly",
                appendonly,
                "--appendfsync",
                fsync,
            ])
            .arg("--dir")
            .arg(&self.dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()?;
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            if Instant::now() > deadline {
                return Err("redis-server did not listen".into());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(())
    }

    /// Kills the server (every connection to it drops).
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts it again on the same port and data directory.
    pub fn restart(&mut self) -> TestResult {
        self.kill();
        self.spawn()
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        self.kill();
    }
}
