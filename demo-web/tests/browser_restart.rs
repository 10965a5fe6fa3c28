//! Browser stories of a server restart under open pages (issue 21): with the durable store
//! the pages reconnect, resume and carry on with nothing missed or shown twice; without it
//! (a new epoch) they notice, drop what the old server knew, log in again with the same
//! name, and end in a usable state. Messages posted after the restart appear in every
//! page. Helpers: `common/browser.rs`, `common/page.rs`.

mod common;

use std::net::TcpListener;
use std::path::Path;
use std::time::Duration;

use common::browser::{ensure, Env};
use common::page::Page;
use common::{scratch_dir, Server, TestResult};

/// A free loopback address for a server that must come back on the same port.
fn free_addr() -> TestResult<String> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.to_string())
}

/// The demo server on `addr`, with its state in `data` (`None`: in memory).
fn server(addr: &str, data: Option<&Path>) -> TestResult<Server> {
    let data = data.map_or_else(|| "none".to_owned(), |p| p.display().to_string());
    Server::start_on(
        addr,
        &[
            "--data-dir",
            &data,
            "--channel",
            "general",
            "--message-rate",
            "1000/1000",
            "--login-rate-per-address",
            "100000/100000",
        ],
    )
}

/// Stops `server` the way an init system does, and waits for it.
fn stop(mut server: Server) -> TestResult {
    server.terminate()?;
    server.wait_exit(Duration::from_secs(15))?;
    Ok(())
}

/// Two users in #general, each having seen the other's message.
async fn two_users_in_general(env: &Env, url: &str) -> TestResult<(Page, Page)> {
    let alice = env.browser("alice").await?;
    alice.login(url, "alice").await?;
    alice.open_channel("general").await?;
    let bob = env.browser("bob").await?;
    bob.login(url, "bob").await?;
    bob.open_channel("general").await?;
    alice.send("hello before the restart").await?;
    bob.wait_message("hello before the restart").await?;
    Ok((alice, bob))
}

/// After a restart: each page is logged in as the same user, in #general, with no login
/// prompt and no reconnect banner, and a message from either reaches both.
async fn carries_on(alice: &Page, bob: &Page) -> TestResult {
    for (page, name) in [(alice, "alice"), (bob, "bob")] {
        page.wait_logged_in(name).await?;
        page.wait_title("#general").await?;
        page.wait_for(
            "the reconnect banner to go",
            "document.querySelector('#banner').hidden || \
             !document.querySelector('#banner').textContent.includes('Reconnecting')",
        )
        .await?;
    }
    alice.send("alice after the restart").await?;
    bob.wait_message("alice after the restart").await?;
    bob.send("bob after the restart").await?;
    alice.wait_message("bob after the restart").await?;
    Ok(())
}

/// The texts of the messages a page shows.
async fn texts(page: &Page) -> TestResult<Vec<String>> {
    Ok(page
        .messages()
        .await?
        .into_iter()
        .map(|(_, _, t)| t)
        .collect())
}

async fn durable_restart(env: &Env) -> TestResult {
    let addr = free_addr()?;
    let url = format!("http://{addr}/");
    let data = scratch_dir("restart-durable");
    let first = server(&addr, Some(&data))?;
    let (alice, bob) = two_users_in_general(env, &url).await?;
    stop(first)?;
    let _again = server(&addr, Some(&data))?;
    carries_on(&alice, &bob).await?;
    // The same user, the same history: the message from before is shown once.
    for (page, name) in [(&alice, "alice"), (&bob, "bob")] {
        let shown = texts(page).await?;
        let before = shown
            .iter()
            .filter(|t| *t == "hello before the restart")
            .count();
        ensure(before == 1, || {
            format!("{name}: the old message shown {before} times: {shown:?}")
        })?;
    }
    Ok(())
}

async fn in_memory_restart(env: &Env) -> TestResult {
    let addr = free_addr()?;
    let url = format!("http://{addr}/");
    let first = server(&addr, None)?;
    let (alice, bob) = two_users_in_general(env, &url).await?;
    stop(first)?;
    let _again = server(&addr, None)?;
    // A new epoch: the pages log in again with their names and drop what the old server
    // had (its messages are gone with it).
    carries_on(&alice, &bob).await?;
    for page in [&alice, &bob] {
        page.wait_no_message("hello before the restart").await?;
    }
    Ok(())
}

#[tokio::test]
async fn user_stories() -> TestResult {
    let Some(env) = Env::start().await? else {
        return Ok(());
    };
    env.story("restart_with_the_durable_store", durable_restart(&env))
        .await;
    env.story("restart_in_memory", in_memory_restart(&env))
        .await;
    env.finish()
}
