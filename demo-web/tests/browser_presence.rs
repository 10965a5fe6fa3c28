//! Browser story of presence: members with their online state, "X is typing…", and
//! unread counts on channels not open. Helpers: `common/browser.rs`.

mod common;

use common::browser::{bot, Env};
use common::{unique, TestResult};
use serde_json::json;

/// Story 9: Members with online state, "X is typing…", unread counts on channels not open.
async fn story_9_members_typing_unread(env: &Env) -> TestResult {
    let quiet = unique("quiet");
    let busy = unique("noisy");
    let nia_name = unique("nia");
    let oli_name = unique("oli");
    let nia = env.browser("nia").await?;
    nia.login(&env.url(), &nia_name).await?;
    nia.create_channel(&busy).await?;
    nia.create_channel(&quiet).await?;

    let mut bot = bot(env, &unique("pat")).await?;
    bot.ok(json!({"type": "join", "room": busy})).await?;
    bot.ok(json!({"type": "post", "room": busy, "text": "one"}))
        .await?;
    bot.ok(json!({"type": "post", "room": busy, "text": "two"}))
        .await?;
    let badge = format!("[data-testid=channel][data-room=\"{busy}\"] [data-testid=unread]");
    nia.wait_for(
        "an unread count of 2",
        &format!("document.querySelector('{badge}')?.textContent === '2'"),
    )
    .await?;
    nia.open_channel(&busy).await?;
    nia.wait_for(
        "the unread count to clear",
        &format!("!document.querySelector('{badge}')"),
    )
    .await?;
    nia.open_channel(&quiet).await?;

    let oli = env.browser("oli").await?;
    oli.login(&env.url(), &oli_name).await?;
    oli.open_channel(&quiet).await?;
    let member = format!("[data-testid=member][data-name=\"{oli_name}\"]");
    nia.wait_for(
        "oli online in the members list",
        &format!("document.querySelector('{member}')?.dataset.online === 'true'"),
    )
    .await?;

    oli.type_into("[data-testid=composer-input]", "I am typi")
        .await?;
    nia.wait_for(
        "the typing notice",
        &format!(
            "document.querySelector('[data-testid=typing]').textContent === {}",
            json!(format!("{oli_name} is typing…"))
        ),
    )
    .await?;
    nia.wait_for(
        "the typing notice to go away",
        "document.querySelector('[data-testid=typing]').textContent === ''",
    )
    .await?;

    env.close(oli).await?;
    nia.wait_for(
        "oli offline in the members list",
        &format!("document.querySelector('{member}')?.dataset.online === 'false'"),
    )
    .await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn user_stories() -> TestResult {
    let Some(env) = Env::start().await? else {
        return Ok(());
    };
    env.story(
        "9-members-typing-unread",
        story_9_members_typing_unread(&env),
    )
    .await;
    env.finish()
}
