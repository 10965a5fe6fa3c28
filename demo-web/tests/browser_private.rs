//! Browser story of private messages: clicking a user's name opens a conversation only
//! those two see (a bystander in the shared channel gets no trace of it). Helpers:
//! `common/browser.rs`.

mod common;

use common::browser::{bot, ensure, Env};
use common::{unique, TestResult};
use serde_json::json;

/// Story 8: Clicking a user's name opens a private conversation only those two see.
async fn story_8_private(env: &Env) -> TestResult {
    let channel = unique("lobby");
    let kim_name = unique("kim");
    let lee_name = unique("lee");
    let kim = env.browser("kim").await?;
    kim.login(&env.url(), &kim_name).await?;
    kim.create_channel(&channel).await?;
    let lee = env.browser("lee").await?;
    lee.login(&env.url(), &lee_name).await?;
    lee.open_channel(&channel).await?;
    let mut bystander = bot(env, &unique("max")).await?;
    bystander
        .ok(json!({"type": "join", "room": channel}))
        .await?;

    lee.send("psst, kim").await?;
    kim.wait_message("psst, kim").await?;
    kim.click(&format!(
        "[data-testid=message][data-author=\"{lee_name}\"] [data-testid=message-author]"
    ))
    .await?;
    kim.wait_title(&lee_name).await?;
    kim.send("just between us").await?;

    let dm = format!("[data-testid=dm][data-room=\"@{kim_name}\"]");
    lee.wait_for(
        "the private conversation with its unread count",
        &format!("document.querySelector('{dm} [data-testid=unread]')"),
    )
    .await?;
    lee.click(&dm).await?;
    lee.wait_title(&kim_name).await?;
    lee.wait_message("just between us").await?;

    // The bystander in the shared channel received no trace of it.
    bystander.ok(json!({"type": "list_channels"})).await?;
    let leaked = bystander
        .events
        .iter()
        .any(|e| e.to_string().contains("just between us"));
    ensure(!leaked, || "a third user saw the private message".into())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn user_stories() -> TestResult {
    let Some(env) = Env::start().await? else {
        return Ok(());
    };
    env.story("8-private", story_8_private(&env)).await;
    env.finish()
}
