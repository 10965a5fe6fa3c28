//! Browser stories of messages in a channel: the newest 100 of the history with author
//! and time, live messages sent with Enter, and deleting one's own messages for everyone.
//! Helpers: `common/browser.rs`.

mod common;

use common::browser::{bot, ensure, Env};
use common::{unique, TestResult};
use serde_json::json;

/// Story 4: Opening a channel shows its last messages, at most 100, with name and local time
/// (full date on hover): after 150 messages exactly the newest 100.
async fn story_4_history(env: &Env) -> TestResult {
    let poster = unique("poster");
    let mut bot = bot(env, &poster).await?;
    let channel = unique("busy");
    bot.ok(json!({"type": "create_channel", "name": channel}))
        .await?;
    bot.ok(json!({"type": "join", "room": channel})).await?;
    for i in 1..=150 {
        bot.ok(json!({"type": "post", "room": channel, "text": format!("message {i}")}))
            .await?;
    }

    let eve = env.browser("eve").await?;
    eve.login(&env.url(), &unique("eve")).await?;
    eve.open_channel(&channel).await?;
    eve.wait_message("message 150").await?;
    let shown = eve.messages().await?;
    ensure(shown.len() == 100, || {
        format!("{} messages shown", shown.len())
    })?;
    let texts: Vec<&str> = shown.iter().map(|(_, _, t)| t.as_str()).collect();
    ensure(texts.first() == Some(&"message 51"), || {
        format!("first is {:?}", texts.first())
    })?;
    ensure(texts.last() == Some(&"message 150"), || {
        format!("last is {:?}", texts.last())
    })?;
    ensure(shown.iter().all(|(_, a, _)| *a == poster), || {
        "wrong authors".into()
    })?;
    let times = eve
        .eval(
            "[...document.querySelectorAll('[data-testid=message] [data-testid=message-time]')]\
             .map(t => [t.textContent, t.title, t.getAttribute('datetime')])",
        )
        .await?;
    let times: Vec<(String, String, String)> = serde_json::from_value(times)?;
    ensure(times.len() == 100, || "a message lacks its time".into())?;
    for (shown, title, datetime) in &times {
        let has_year = title
            .as_bytes()
            .windows(4)
            .any(|w| w.iter().all(u8::is_ascii_digit));
        ensure(
            !shown.is_empty() && has_year && datetime.contains('T'),
            || format!("time {shown:?} title {title:?} datetime {datetime:?}"),
        )?;
    }
    Ok(())
}

/// Story 5: A message sent with Enter appears for everyone in the channel at once.
async fn story_5_live_messages(env: &Env) -> TestResult {
    let channel = unique("live");
    let fay = env.browser("fay").await?;
    fay.login(&env.url(), &unique("fay")).await?;
    fay.create_channel(&channel).await?;
    let gus = env.browser("gus").await?;
    gus.login(&env.url(), &unique("gus")).await?;
    gus.open_channel(&channel).await?;

    fay.send("hello from fay").await?;
    gus.wait_message("hello from fay").await?;
    ensure(
        fay.eval("document.querySelector('[data-testid=composer-input]').value")
            .await?
            == json!(""),
        || "the composer was not cleared".into(),
    )?;
    gus.send("hi fay").await?;
    fay.wait_message("hi fay").await
}

/// Story 7: Users delete their own messages (no button on others'), for everyone.
async fn story_7_delete(env: &Env) -> TestResult {
    let channel = unique("del");
    let ida = env.browser("ida").await?;
    ida.login(&env.url(), &unique("ida")).await?;
    ida.create_channel(&channel).await?;
    let jon = env.browser("jon").await?;
    jon.login(&env.url(), &unique("jon")).await?;
    jon.open_channel(&channel).await?;

    ida.send("delete me").await?;
    jon.send("not yours").await?;
    ida.wait_message("not yours").await?;
    jon.wait_message("delete me").await?;

    let buttons = ida
        .eval(
            "[...document.querySelectorAll('[data-testid=message]')].map(li => \
             [li.querySelector('[data-testid=message-text]').textContent, \
              !!li.querySelector('[data-testid=delete-message]')])",
        )
        .await?;
    let buttons: Vec<(String, bool)> = serde_json::from_value(buttons)?;
    ensure(
        buttons.contains(&("delete me".into(), true))
            && buttons.contains(&("not yours".into(), false)),
        || format!("delete buttons: {buttons:?}"),
    )?;

    ida.click("[data-testid=message].mine [data-testid=delete-message]")
        .await?;
    ida.wait_no_message("delete me").await?;
    jon.wait_no_message("delete me").await?;
    ensure(
        jon.messages()
            .await?
            .iter()
            .any(|(_, _, t)| t == "not yours"),
        || "the other message went too".into(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn user_stories() -> TestResult {
    let Some(env) = Env::start().await? else {
        return Ok(());
    };
    env.story("4-history", story_4_history(&env)).await;
    env.story("5-live-messages", story_5_live_messages(&env))
        .await;
    env.story("7-delete", story_7_delete(&env)).await;
    env.finish()
}
