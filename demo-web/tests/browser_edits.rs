//! Browser stories of edits and reactions: Up arrow on an empty composer edits your last
//! message (Escape cancels, Enter saves) and everyone sees the new text marked
//! "(edited)"; a reaction picked by one user is counted live for another, and toggled
//! back. Helpers: `common/browser.rs`.

mod common;

use common::browser::{ensure, Env, ENTER};
use common::{unique, TestResult};
use serde_json::json;

/// WebDriver's keys (W3C WebDriver, "Keyboard actions").
const ARROW_UP: &str = "\u{E013}";
const ESCAPE: &str = "\u{E00C}";

/// The text of the message with `text`'s list item, and whether it shows "(edited)".
fn edited_of(text: &str) -> String {
    format!(
        "[...document.querySelectorAll('[data-testid=message]')].filter(li => \
         li.querySelector('[data-testid=message-text]').textContent === {}) \
         .map(li => !!li.querySelector('[data-testid=edited-mark]'))[0]",
        json!(text)
    )
}

/// Story 14: Up arrow edits the last message; Escape cancels, Enter saves, for everyone.
async fn story_14_edit(env: &Env) -> TestResult {
    let channel = unique("edit");
    let kim = env.browser("kim").await?;
    kim.login(&env.url(), &unique("kim")).await?;
    kim.create_channel(&channel).await?;
    let lou = env.browser("lou").await?;
    lou.login(&env.url(), &unique("lou")).await?;
    lou.open_channel(&channel).await?;

    kim.send("first thing").await?;
    kim.send("teh typo").await?;
    lou.wait_message("teh typo").await?;
    lou.send("lou's line").await?;
    kim.wait_message("lou's line").await?;

    // Up arrow takes kim's last message (not lou's, which is newer) into the composer.
    let input = "[data-testid=composer-input]";
    kim.type_into(input, ARROW_UP).await?;
    kim.wait_for(
        "the composer to hold the last message",
        "document.querySelector('[data-testid=composer-input]').value === 'teh typo' && \
         !document.querySelector('[data-testid=edit-hint]').hidden",
    )
    .await?;
    // Escape cancels: nothing changes, the composer is empty again.
    kim.type_into(input, ESCAPE).await?;
    kim.wait_for(
        "the edit to be cancelled",
        "document.querySelector('[data-testid=composer-input]').value === '' && \
         document.querySelector('[data-testid=edit-hint]').hidden",
    )
    .await?;
    ensure(
        kim.eval(&edited_of("teh typo")).await? == json!(false),
        || "a cancelled edit marked the message".into(),
    )?;

    // Up again, fix the text, Enter saves it for everyone.
    kim.type_into(input, ARROW_UP).await?;
    kim.wait_for(
        "the composer to hold the last message again",
        "document.querySelector('[data-testid=composer-input]').value === 'teh typo'",
    )
    .await?;
    kim.eval(
        "(() => { const i = document.querySelector('[data-testid=composer-input]'); \
         i.setSelectionRange(0, 3); return true; })()",
    )
    .await?;
    kim.type_into(input, &format!("the{ENTER}")).await?;
    for page in [&kim, &lou] {
        page.wait_message("the typo").await?;
        page.wait_no_message("teh typo").await?;
        page.wait_for("the (edited) mark", &edited_of("the typo"))
            .await?;
    }
    ensure(
        kim.eval(&edited_of("first thing")).await? == json!(false),
        || "another message was marked".into(),
    )?;
    ensure(
        kim.eval("document.querySelector('[data-testid=composer-input]').value")
            .await?
            == json!(""),
        || "the composer was not cleared after saving".into(),
    )?;
    // Nothing was posted: the edit replaced the message in place.
    let texts: Vec<String> = lou
        .messages()
        .await?
        .into_iter()
        .map(|(_, _, t)| t)
        .collect();
    ensure(texts == ["first thing", "the typo", "lou's line"], || {
        format!("lou sees {texts:?}")
    })
}

/// The count shown on `emoji`'s reaction button of the message with `text` (null if none).
fn count_of(text: &str, emoji: &str) -> String {
    format!(
        "(() => {{ const li = [...document.querySelectorAll('[data-testid=message]')].find(li => \
         li.querySelector('[data-testid=message-text]').textContent === {}); \
         const b = li && li.querySelector('[data-testid=reaction][data-emoji=\"' + {} + '\"]'); \
         return b ? [b.querySelector('[data-testid=reaction-count]').textContent, \
         b.getAttribute('aria-pressed')] : null; }})()",
        json!(text),
        json!(emoji)
    )
}

/// Story 15: A reaction picked by one user is counted live for another, and taken back.
async fn story_15_reaction(env: &Env) -> TestResult {
    let channel = unique("react");
    let max = env.browser("max").await?;
    max.login(&env.url(), &unique("max")).await?;
    max.create_channel(&channel).await?;
    let nia = env.browser("nia").await?;
    nia.login(&env.url(), &unique("nia")).await?;
    nia.open_channel(&channel).await?;

    max.send("ship it?").await?;
    nia.wait_message("ship it?").await?;
    nia.click("[data-testid=message] [data-testid=add-reaction]")
        .await?;
    nia.click("[data-testid=message] [data-testid=pick-reaction][data-emoji=\"👍\"]")
        .await?;
    let up = count_of("ship it?", "👍");
    max.wait_for(
        "nia's 👍 counted",
        &format!("JSON.stringify({up}) === '[\"1\",\"false\"]'"),
    )
    .await?;
    nia.wait_for(
        "nia's own 👍 pressed",
        &format!("JSON.stringify({up}) === '[\"1\",\"true\"]'"),
    )
    .await?;
    // Max adds the same: two; nia takes hers back: one, max's.
    max.click("[data-testid=message] [data-testid=reaction][data-emoji=\"👍\"]")
        .await?;
    nia.wait_for(
        "two 👍",
        &format!("JSON.stringify({up}) === '[\"2\",\"true\"]'"),
    )
    .await?;
    nia.click("[data-testid=message] [data-testid=reaction][data-emoji=\"👍\"]")
        .await?;
    max.wait_for(
        "nia's 👍 taken back",
        &format!("JSON.stringify({up}) === '[\"1\",\"true\"]'"),
    )
    .await?;
    // A page opened later shows the count from the history.
    let oz = env.browser("oz").await?;
    oz.login(&env.url(), &unique("oz")).await?;
    oz.open_channel(&channel).await?;
    oz.wait_for(
        "the stored 👍",
        &format!("JSON.stringify({up}) === '[\"1\",\"false\"]'"),
    )
    .await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn user_stories() -> TestResult {
    let Some(env) = Env::start().await? else {
        return Ok(());
    };
    env.story("14-edit", story_14_edit(&env)).await;
    env.story("15-reaction", story_15_reaction(&env)).await;
    env.finish()
}
