//! Browser story of mention notifications: while the tab is hidden and notifications are
//! allowed, a mention of you raises one (naming who and where); a message that does not
//! mention you, and a mention while the tab is in view, raise none.
//!
//! Headless Chromium shows no system notifications, so the page's `Notification` is
//! replaced by a recorder with permission granted, and `document.hidden` is made true:
//! what is checked is the page's own decision and what it passes to the browser.
//! Helpers: `common/browser.rs`.

mod common;

use common::browser::{bot, ensure, Env};
use common::{unique, TestResult};
use serde_json::json;

/// Installs a `Notification` that records what the page raises, with permission granted,
/// and makes the tab hidden or visible.
const RECORDER: &str = "(() => { window.__notes = []; \
    window.Notification = class { \
      constructor(title, options) { window.__notes.push([title, options.body]); } \
      static get permission() { return 'granted'; } \
      static requestPermission() { return Promise.resolve('granted'); } \
    }; \
    window.__hidden = true; \
    Object.defineProperty(document, 'hidden', { configurable: true, get: () => window.__hidden }); \
    return true; })()";

async fn mention_raises_a_notification_only_while_hidden(env: &Env) -> TestResult {
    let channel = unique("notes");
    let name = unique("Ivy");
    let kai_name = unique("kai");
    let mut kai = bot(env, &kai_name).await?;
    kai.ok(json!({"type": "create_channel", "name": channel}))
        .await?;
    kai.ok(json!({"type": "join", "room": channel})).await?;
    let ivy = env.browser("ivy").await?;
    ivy.login(&env.url(), &name).await?;
    ivy.open_channel(&channel).await?;
    ivy.eval(RECORDER).await?;

    let plain = "nothing for anyone".to_owned();
    let mention = format!("@{name} are you there?");
    for text in [&plain, &mention] {
        kai.ok(json!({"type": "post", "room": channel, "text": text}))
            .await?;
    }
    ivy.wait_message(&mention).await?;
    let notes = ivy
        .wait_for(
            "a notification",
            "window.__notes.length > 0 && window.__notes",
        )
        .await?;
    ensure(
        notes == json!([[format!("{kai_name} mentioned you in #{channel}"), mention]]),
        || format!("notifications {notes}"),
    )?;

    // In view: the message is on screen, no notification.
    ivy.eval("(window.__hidden = false, true)").await?;
    let seen = format!("@{name} again, in view");
    kai.ok(json!({"type": "post", "room": channel, "text": seen}))
        .await?;
    ivy.wait_message(&seen).await?;
    let count = ivy.eval("window.__notes.length").await?;
    ensure(count == json!(1), || format!("{count} notifications"))?;
    env.close(ivy).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn user_stories() -> TestResult {
    let Some(env) = Env::start().await? else {
        return Ok(());
    };
    env.story(
        "mention-notification",
        mention_raises_a_notification_only_while_hidden(&env),
    )
    .await;
    env.finish()
}
