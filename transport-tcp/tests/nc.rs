//! One session with the real `nc` program (skipped, saying so, when `nc` is not installed;
//! required under `CI=true`). Helpers: `common/mod.rs`.

mod common;

use std::process::Stdio;

use common::*;
use tokio::io::AsyncWriteExt;
use tokio::time::timeout;

/// Finds `nc` on the PATH.
fn find_nc() -> Option<std::path::PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join("nc"))
        .find(|p| p.is_file())
}

#[tokio::test]
async fn a_session_with_the_real_nc() {
    let Some(nc) = find_nc() else {
        if std::env::var("CI").as_deref() == Ok("true") {
            panic!("nc (netcat-openbsd) is required under CI=true but is not installed");
        }
        eprintln!("SKIPPED: nc not installed (apt-get install netcat-openbsd); a_session_with_the_real_nc did not run");
        return;
    };
    let s = server().await;
    let mut child = tokio::process::Command::new(nc)
        .arg("127.0.0.1")
        .arg(s.addr.port().to_string())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn nc");
    let mut stdin = child.stdin.take().expect("nc stdin");
    let stdout = child.stdout.take().expect("nc stdout");
    let mut nc_out = Lines::from(stdout);
    let mut type_in = async |line: &str| {
        timeout(WAIT, stdin.write_all(format!("{line}\n").as_bytes()))
            .await
            .expect("nc stdin in time")
            .expect("nc stdin");
    };

    nc_out.expect_line("= pick a display name").await;
    type_in("ncuser").await;
    nc_out.expect_line("= welcome, ncuser").await;
    type_in("/create netcat").await;
    nc_out.expect_line("+ #netcat created").await;
    type_in("/join netcat").await;
    nc_out.expect_line("* #netcat ncuser joined").await;

    let mut bob = s.member("bob", "netcat").await;
    type_in("hello from nc").await;
    bob.expect_message("#netcat <ncuser> hello from nc (id 1)")
        .await;
    bob.send("hello nc").await;
    nc_out.expect_message("#netcat <bob> hello nc (id 2)").await;
    type_in("/who").await;
    nc_out
        .expect_line("= members of #netcat: 2 online: bob, ncuser")
        .await;
    type_in("/quit").await;
    nc_out.expect_line("= bye").await;
    bob.expect_line("* #netcat ncuser offline").await;

    // nc exits once the server closed the connection; kill it if it lingers.
    let exited = timeout(WAIT, child.wait()).await;
    if exited.is_err() {
        child.kill().await.expect("kill nc");
    }
    let _ = child.wait().await;
}
