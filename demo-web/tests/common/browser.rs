//! The browser side of the user stories of issue 4 (`browser_*.rs`): `chromedriver` and
//! headless Chromium driven through WebDriver (`fantoccini`) against the real `demo-web`
//! binary.
//!
//! Each `browser_*.rs` file has one `#[test]` that starts one server and one chromedriver
//! ([`Env::start`]) and runs its stories in turn ([`Env::story`]), so every process has an
//! owner that kills it on drop, panics included. Each user is a WebDriver session with a
//! browser profile of its own ([`Page`]); a story failing saves a screenshot of every open
//! browser, prints its path, and the file's other stories still run.
//!
//! Nothing sleeps for a fixed time: every check polls what the page shows, with a
//! deadline.
//!
//! Without Chromium a test prints `SKIPPED: chromium not installed` and passes, unless
//! `CI=true`.

use std::future::Future;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder};
use hyper_util::client::legacy::connect::HttpConnector;
use serde_json::json;
use tokio::net::TcpStream;

pub use super::page::Page;
use super::{eventually, scratch_dir, unique, Server, TestResult, WsClient};

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
/// How long a page may take to show what a step waits for.
pub const PAGE_TIMEOUT: Duration = Duration::from_secs(15);
/// The WebDriver Enter key.
pub const ENTER: &str = "\u{E007}";

// -- processes ---------------------------------------------------------------------------

/// `chromedriver` on a free port, in a process group of its own so that dropping it also
/// ends the browsers it started.
struct Driver {
    child: Child,
    url: String,
}

impl Driver {
    async fn start(binary: &str) -> TestResult<Driver> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let log = scratch_dir("chromedriver").join("chromedriver.log");
        let mut command = Command::new(binary);
        command
            .arg(format!("--port={port}"))
            .arg(format!("--log-path={}", log.display()))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        #[cfg(unix)]
        std::os::unix::process::CommandExt::process_group(&mut command, 0);
        let driver = Driver {
            child: command.spawn()?,
            url: format!("http://127.0.0.1:{port}"),
        };
        eventually("chromedriver to listen", PAGE_TIMEOUT, || async move {
            Ok(TcpStream::connect(("127.0.0.1", port))
                .await
                .ok()
                .map(|_| ()))
        })
        .await?;
        Ok(driver)
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        // Chromium processes left behind (a browser whose session was not closed) are in
        // chromedriver's process group, whose id is chromedriver's pid: end each of them
        // by its own pid. (No `kill -KILL -PGID`: the procps-ng 4.0 `kill` here took it
        // for something much broader and killed unrelated processes.)
        let group = self.child.id();
        let _ = self.child.kill();
        let _ = self.child.wait();
        for pid in processes_in_group(group) {
            let _ = Command::new("kill")
                .args(["-KILL", &pid.to_string()])
                .stderr(Stdio::null())
                .status();
        }
    }
}

/// The pids of the processes whose process group is `group` (Linux `/proc`; empty
/// elsewhere).
fn processes_in_group(group: u32) -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            // /proc/PID/stat: "pid (comm) state ppid pgrp ..."; comm may hold spaces.
            std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .ok()
                .and_then(|stat| {
                    let after_comm = &stat[stat.rfind(')')? + 1..];
                    after_comm.split_whitespace().nth(2)?.parse::<u32>().ok()
                })
                == Some(group)
        })
        .collect()
}

// -- the test environment ----------------------------------------------------------------

/// The server, the driver, and the browsers open in the current story.
pub struct Env {
    pub server: Server,
    driver: Driver,
    chromium: String,
    open: Mutex<Vec<(String, Client)>>,
    profiles: PathBuf,
    /// The names of the stories that failed.
    failed: Mutex<Vec<&'static str>>,
}

impl Env {
    /// A new user's browser: a fresh profile.
    pub async fn browser(&self, label: &str) -> TestResult<Page> {
        let profile = self.profiles.join(unique(label));
        self.browser_with_profile(label, &profile).await
    }

    /// A browser on an existing profile (the same user coming back).
    pub async fn browser_with_profile(&self, label: &str, profile: &Path) -> TestResult<Page> {
        let args = [
            "--headless=new".to_owned(),
            "--no-sandbox".to_owned(),
            "--disable-gpu".to_owned(),
            "--disable-dev-shm-usage".to_owned(),
            "--disable-quic".to_owned(),
            "--no-first-run".to_owned(),
            "--no-default-browser-check".to_owned(),
            "--disable-background-networking".to_owned(),
            "--disable-component-update".to_owned(),
            "--disable-sync".to_owned(),
            "--window-size=1280,800".to_owned(),
            format!("--user-data-dir={}", profile.display()),
        ];
        let mut caps = serde_json::Map::new();
        caps.insert("browserName".into(), json!("chrome"));
        caps.insert(
            "goog:chromeOptions".into(),
            json!({"binary": self.chromium, "args": args}),
        );
        // Plain HTTP: chromedriver listens on loopback only.
        let client = ClientBuilder::new(HttpConnector::new())
            .capabilities(caps)
            .connect(&self.driver.url)
            .await?;
        if let Ok(mut open) = self.open.lock() {
            open.push((label.to_owned(), client.clone()));
        }
        Ok(Page {
            client,
            label: label.to_owned(),
            profile: profile.to_owned(),
        })
    }

    /// Closes one browser (ending its WebDriver session and its Chromium).
    pub async fn close(&self, page: Page) -> TestResult {
        if let Ok(mut open) = self.open.lock() {
            open.retain(|(label, _)| *label != page.label);
        }
        page.client.close().await?;
        Ok(())
    }

    /// After a story: screenshots of every open browser if it failed, then closes them.
    async fn finish_story(&self, story: &str, failed: bool) {
        let open: Vec<(String, Client)> = self
            .open
            .lock()
            .map(|mut open| open.drain(..).collect())
            .unwrap_or_default();
        for (label, client) in open {
            if failed {
                let dir = scratch_dir("browser-failure");
                let path = dir.join(format!("{story}-{label}.png"));
                let saved = match client.screenshot().await {
                    Ok(png) => std::fs::write(&path, png).is_ok(),
                    Err(_) => false,
                };
                if saved {
                    eprintln!("story {story}: screenshot of {label}: {}", path.display());
                } else {
                    eprintln!("story {story}: no screenshot of {label}");
                }
            }
            let _ = client.close().await;
        }
    }

    pub fn url(&self) -> String {
        self.server.url()
    }
}

/// A WebSocket user (no browser) to post in bulk or to watch what a bystander receives.
pub async fn bot(env: &Env, name: &str) -> TestResult<WsClient> {
    WsClient::login(env.server.http, name).await
}

pub fn ensure(condition: bool, message: impl FnOnce() -> String) -> TestResult {
    if condition {
        Ok(())
    } else {
        Err(message().into())
    }
}

// -- the runner --------------------------------------------------------------------------

impl Env {
    /// Starts the server and chromedriver for one file's stories. `None`, after saying
    /// `SKIPPED` on stderr, when Chromium or chromedriver is missing; under `CI=true` that
    /// panics instead.
    pub async fn start() -> TestResult<Option<Env>> {
        let chromium = std::env::var("FLACK_CHROMIUM").unwrap_or_else(|_| CHROMIUM.into());
        let chromedriver =
            std::env::var("FLACK_CHROMEDRIVER").unwrap_or_else(|_| CHROMEDRIVER.into());
        if !Path::new(&chromium).exists() || !Path::new(&chromedriver).exists() {
            if std::env::var("CI").as_deref() == Ok("true") {
                panic!(
                    "chromium or chromedriver not installed ({chromium}, {chromedriver}) and CI=true"
                );
            }
            // Straight to the process's stderr: the test harness captures `eprintln!` of a
            // passing test, and this must be seen.
            let _ = writeln!(
                std::io::stderr(),
                "\n*** SKIPPED: chromium not installed ({chromium}, {chromedriver}) ***\n"
            );
            return Ok(None);
        }

        Ok(Some(Env {
            server: Server::start(&[
                "--message-rate",
                "1000/1000",
                "--channel-create-rate",
                "1000/1000",
                // Every browser and bot of the stories comes from 127.0.0.1.
                "--login-rate-per-address",
                "100000/100000",
                "--connect-rate-per-address",
                "100000/100000",
                "--max-connections-per-address",
                "100000",
            ])?,
            driver: Driver::start(&chromedriver).await?,
            chromium,
            open: Mutex::new(Vec::new()),
            profiles: scratch_dir("profiles"),
            failed: Mutex::new(Vec::new()),
        }))
    }

    /// Runs one story, at most 90 s. A failure is printed and remembered (see
    /// [`Env::finish`]), with a screenshot of every open browser; either way the story's
    /// browsers are closed and the next story can run.
    pub async fn story(&self, name: &'static str, story: impl Future<Output = TestResult>) {
        let started = Instant::now();
        let result = tokio::time::timeout(Duration::from_secs(90), story)
            .await
            .unwrap_or_else(|_| Err("the story took longer than 90 s".into()));
        let ok = result.is_ok();
        self.finish_story(name, !ok).await;
        match result {
            Ok(()) => eprintln!("story {name} passed in {:?}", started.elapsed()),
            Err(e) => {
                eprintln!("story {name} FAILED: {e}");
                self.failed
                    .lock()
                    .unwrap_or_else(|poisoned| poisoned.into_inner())
                    .push(name);
            }
        }
    }

    /// The stories that failed so far.
    pub fn failed(&self) -> Vec<&'static str> {
        self.failed
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }

    /// After the last story: removes the browser profiles, and fails naming every story
    /// that failed. Dropping the `Env` then stops chromedriver (and any browser left) and
    /// the server.
    pub fn finish(self) -> TestResult {
        let _ = std::fs::remove_dir_all(&self.profiles);
        let failed = self.failed();
        if !failed.is_empty() {
            return Err(format!(
                "failed stories: {failed:?} (server log: {})",
                self.server.log.display()
            )
            .into());
        }
        Ok(())
    }
}
