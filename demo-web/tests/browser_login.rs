//! Browser stories of logging in and coming back: a first visit asks for a name (a taken
//! one is refused inline), and the user is still known after a reload, after reopening
//! the browser, and back in the channel they were last in. Helpers: `common/browser.rs`.

mod common;

use common::browser::{ensure, Env};
use common::{unique, TestResult};
use serde_json::json;

/// Story 1: A first visit asks for a name (a taken one is refused inline); after a reload, and
/// after closing and reopening the browser, the user is still known.
async fn story_1_name_and_resume(env: &Env) -> TestResult {
    let name = unique("ann");
    let ann = env.browser("ann").await?;
    ann.login(&env.url(), &name).await?;

    let other = env.browser("impostor").await?;
    other.goto(&env.url()).await?;
    other.type_into("[data-testid=login-name]", &name).await?;
    other.click("[data-testid=login-submit]").await?;
    let error = other
        .wait_for(
            "the name-taken error",
            "!document.querySelector('[data-testid=login-error]').hidden && \
             document.querySelector('[data-testid=login-error]').textContent",
        )
        .await?;
    ensure(error.as_str().is_some_and(|e| e.contains("taken")), || {
        format!("unexpected error text {error}")
    })?;

    ann.client.refresh().await?;
    ann.wait_logged_in(&name).await?;
    ensure(
        ann.eval("document.querySelector('[data-testid=login]').hidden")
            .await?
            == json!(true),
        || "the login form shows after a reload".into(),
    )?;

    let profile = ann.profile.clone();
    env.close(ann).await?;
    let again = env.browser_with_profile("ann-again", &profile).await?;
    again.goto(&env.url()).await?;
    again.wait_logged_in(&name).await
}

/// Story 6: Closing the browser and coming back opens the channel the user was last in.
async fn story_6_back_to_last_channel(env: &Env) -> TestResult {
    let name = unique("hal");
    let hal = env.browser("hal").await?;
    hal.login(&env.url(), &name).await?;
    let first = unique("first");
    let second = unique("second");
    hal.create_channel(&first).await?;
    hal.create_channel(&second).await?;
    hal.send("still here").await?;
    let profile = hal.profile.clone();
    env.close(hal).await?;

    let back = env.browser_with_profile("hal-again", &profile).await?;
    back.goto(&env.url()).await?;
    back.wait_logged_in(&name).await?;
    back.wait_title(&format!("#{second}")).await?;
    back.wait_message("still here").await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn user_stories() -> TestResult {
    let Some(env) = Env::start().await? else {
        return Ok(());
    };
    env.story("1-name-and-resume", story_1_name_and_resume(&env))
        .await;
    env.story("6-back-to-last-channel", story_6_back_to_last_channel(&env))
        .await;
    env.finish()
}
