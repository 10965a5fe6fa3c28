//! Browser stories of the channel list: every channel is listed and a new one appears
//! live; a taken or invalid name shows a clear inline error. Helpers: `common/browser.rs`.

mod common;

use common::browser::{bot, ensure, Env};
use common::{unique, TestResult};
use serde_json::json;

/// Story 2: The channel list shows every channel; one created by another user appears live.
async fn story_2_channel_list(env: &Env) -> TestResult {
    let mut bot = bot(env, &unique("bot")).await?;
    let existing = unique("old");
    bot.ok(json!({"type": "create_channel", "name": existing}))
        .await?;

    let bea = env.browser("bea").await?;
    bea.login(&env.url(), &unique("bea")).await?;
    let selector =
        |c: &str| format!("document.querySelector('[data-testid=channel][data-room=\"{c}\"]')");
    bea.wait_for("the existing channel", &selector(&existing))
        .await?;

    let cal = env.browser("cal").await?;
    cal.login(&env.url(), &unique("cal")).await?;
    let fresh = unique("new");
    cal.create_channel(&fresh).await?;
    bea.wait_for("the new channel, without reload", &selector(&fresh))
        .await?;
    Ok(())
}

/// Story 3: Creating a channel whose name is taken (or invalid) shows a clear inline error.
async fn story_3_channel_taken(env: &Env) -> TestResult {
    let dan = env.browser("dan").await?;
    dan.login(&env.url(), &unique("dan")).await?;
    let name = unique("dup");
    dan.create_channel(&name).await?;
    dan.type_into("[data-testid=new-channel-name]", &name.to_uppercase())
        .await?;
    dan.click("[data-testid=create-channel]").await?;
    let error = dan
        .wait_for(
            "the channel-exists error",
            "!document.querySelector('[data-testid=create-channel-error]').hidden && \
             document.querySelector('[data-testid=create-channel-error]').textContent",
        )
        .await?;
    ensure(
        error.as_str().is_some_and(|e| e.contains("already exists")),
        || format!("unexpected error text {error}"),
    )?;

    dan.eval("document.querySelector('[data-testid=new-channel-name]').value = ''")
        .await?;
    dan.type_into("[data-testid=new-channel-name]", "no spaces please")
        .await?;
    dan.click("[data-testid=create-channel]").await?;
    dan.wait_for(
        "the invalid-name error",
        "(document.querySelector('[data-testid=create-channel-error]').textContent || '')\
         .includes(\"can't be a channel name\")",
    )
    .await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn user_stories() -> TestResult {
    let Some(env) = Env::start().await? else {
        return Ok(());
    };
    env.story("2-channel-list", story_2_channel_list(&env))
        .await;
    env.story("3-channel-taken", story_3_channel_taken(&env))
        .await;
    env.finish()
}
