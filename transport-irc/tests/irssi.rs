//! A real IRC client: Debian's `irssi`, run under `tmux`, connects (it negotiates with
//! `CAP LS 302`), joins, reads a web user's message and sends one back; the test reads the
//! terminal screen with `tmux capture-pane`. Skipped, saying so, when irssi or tmux is
//! missing; required under `CI=true` (`.ci/run` installs both). Helpers: `common/mod.rs`.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use chat_core::Event;
use common::*;

/// Finds `program` on the PATH.
fn find(program: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(program))
        .find(|p| p.is_file())
}

/// A tmux server of this test's own (its own socket), killed on drop.
struct Tmux {
    socket: String,
}

impl Tmux {
    fn run(&self, args: &[&str]) -> String {
        let out = Command::new("tmux")
            .args(["-L", &self.socket])
            .args(args)
            .output()
            .expect("run tmux");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn screen(&self) -> String {
        self.run(&["capture-pane", "-p", "-t", "irssi"])
    }

    fn type_line(&self, text: &str) {
        self.run(&["send-keys", "-t", "irssi", "-l", text]);
        self.run(&["send-keys", "-t", "irssi", "Enter"]);
    }

    /// Types `text` until the screen shows `needle` (a key typed while irssi redraws can
    /// be lost); the screen then.
    async fn type_until(&self, text: &str, needle: &str) -> String {
        for _ in 0..5 {
            self.type_line(text);
            if let Some(screen) = self.wait_within(needle, Duration::from_secs(3)).await {
                return screen;
            }
        }
        panic!(
            "typing {text:?} never showed {needle:?}:\n{}",
            self.screen()
        )
    }

    /// Waits until the screen shows `needle`; the screen then.
    async fn wait_for(&self, needle: &str) -> String {
        match self.wait_within(needle, Duration::from_secs(15)).await {
            Some(screen) => screen,
            None => panic!("the screen never showed {needle:?}:\n{}", self.screen()),
        }
    }

    async fn wait_within(&self, needle: &str, within: Duration) -> Option<String> {
        let deadline = Instant::now() + within;
        loop {
            let screen = self.screen();
            if screen.contains(needle) {
                return Some(screen);
            }
            if Instant::now() >= deadline {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = Command::new("tmux")
            .args(["-L", &self.socket, "kill-server"])
            .output();
    }
}

/// An irssi home with the user's names set.
fn irssi_home(dir: &Path) {
    std::fs::create_dir_all(dir).expect("irssi home");
    std::fs::write(
        dir.join("config"),
        r#"settings = {
  core = { real_name = "Terminal User"; user_name = "term"; nick = "termie"; };
};
"#,
    )
    .expect("irssi config");
}

#[tokio::test]
async fn irssi_joins_reads_and_sends() {
    let (Some(_), Some(_)) = (find("irssi"), find("tmux")) else {
        if std::env::var("CI").as_deref() == Ok("true") {
            panic!("irssi and tmux are required under CI=true but are not installed");
        }
        eprintln!("SKIPPED: irssi or tmux not installed (apt-get install irssi tmux); irssi_joins_reads_and_sends did not run");
        return;
    };
    let s = server().await;
    let mut web = s.web_user("Web User").await;
    web.create_channel("general").await.expect("create");
    web.join("general", None).await.expect("join");
    web.post("general", "posted before irssi came")
        .await
        .expect("post");

    let home =
        PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("irssi-{}", std::process::id()));
    irssi_home(&home);
    let tmux = Tmux {
        socket: format!("flack-irssi-{}", std::process::id()),
    };
    let command = format!(
        "irssi --home={} --connect=127.0.0.1 --port={} --nick=termie",
        home.display(),
        s.addr.port()
    );
    tmux.run(&[
        "new-session",
        "-d",
        "-s",
        "irssi",
        "-x",
        "160",
        "-y",
        "40",
        &command,
    ]);

    tmux.wait_for("Welcome to Flack, termie").await;
    tmux.wait_for("End of /MOTD").await;
    // The history: irssi asked for server-time, so it is shown as messages.
    tmux.type_until("/join #general", "posted before irssi came")
        .await;
    // The web user sees the IRC user arrive.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let event = tokio::time::timeout_at(deadline.into(), web.next_event())
            .await
            .expect("termie joins in time")
            .expect("session open");
        if matches!(&event, Event::PresenceBatch(batch)
            if batch.changes.iter().any(|(user, _)| &*user.name == "termie"))
        {
            break;
        }
    }

    web.post("general", "hello irssi, from the web")
        .await
        .expect("post");
    let screen = tmux.wait_for("hello irssi, from the web").await;
    assert!(
        screen.contains("Web\\20User"),
        "the web user's nick:\n{screen}"
    );

    let screen = tmux
        .type_until("hello web, from irssi", "< termie> hello web, from irssi")
        .await;
    let deadline = Instant::now() + Duration::from_secs(15);
    let m = loop {
        let event = tokio::time::timeout_at(deadline.into(), web.next_event())
            .await
            .unwrap_or_else(|_| {
                panic!(
                    "the web user never got irssi's line; irssi shows:\n{}",
                    tmux.screen()
                )
            })
            .expect("session open");
        match event {
            Event::Posted(m) if m.text == "hello web, from irssi" => break m,
            _ => continue,
        }
    };
    assert_eq!(&*m.author.name, "termie");
    println!("irssi's screen:\n{screen}");
    assert_eq!(
        screen.matches("hello web, from irssi").count(),
        1,
        "irssi shows its own line once (no echo without echo-message):\n{screen}"
    );
    tmux.type_line("/quit");
}
