//! Browser story of the layout: on a phone-sized window the page is one column, the room
//! list slides in from a button, and everything works from the keyboard. Helpers:
//! `common/browser.rs`.
//!
//! With `FLACK_SCREENSHOT=path.png` the test runs no story and instead saves a 1280x800
//! picture of two users chatting (the one in `docs/screenshot.png`).

mod common;

use common::browser::{bot, ensure, Env, ENTER};
use common::{unique, TestResult};
use serde_json::json;

/// Not a numbered story, but asked for with them: on a phone-sized window the page is
/// one column, the room list slides in from a button, and everything works from the
/// keyboard (Enter logs in and sends).
async fn phone_layout_and_keyboard(env: &Env) -> TestResult {
    let channel = unique("pocket");
    let mut bot = bot(env, &unique("wes")).await?;
    bot.ok(json!({"type": "create_channel", "name": channel}))
        .await?;
    let xia = env.browser("xia").await?;
    let name = unique("xia");
    xia.client.set_window_size(390, 844).await?;
    xia.goto(&env.url()).await?;
    xia.type_into("[data-testid=login-name]", &format!("{name}{ENTER}"))
        .await?;
    xia.wait_logged_in(&name).await?;
    let sidebar_right = "document.querySelector('nav.sidebar').getBoundingClientRect().right";
    xia.wait_for(
        "the room list to be off screen",
        &format!("{sidebar_right} <= 0"),
    )
    .await?;
    xia.click("[data-testid=toggle-sidebar]").await?;
    xia.wait_for(
        "the room list to slide in",
        &format!("{sidebar_right} >= 299"),
    )
    .await?;
    xia.open_channel(&channel).await?;
    xia.wait_for(
        "the room list to slide away",
        &format!("{sidebar_right} <= 0"),
    )
    .await?;
    let overflow = xia
        .eval("document.documentElement.scrollWidth > window.innerWidth")
        .await?;
    ensure(overflow == json!(false), || {
        "the page scrolls sideways".into()
    })?;
    xia.send("typed on a phone").await
}

/// Not a story: a picture of two users chatting, for the README.
async fn screenshot_for_docs(env: &Env, path: &str) -> TestResult {
    let channel = "general";
    let ada = env.browser("ada").await?;
    ada.login(&env.url(), "Ada").await?;
    if ada
        .eval(&format!(
            "!!document.querySelector('[data-testid=channel][data-room=\"{channel}\"]')"
        ))
        .await?
        == json!(true)
    {
        ada.open_channel(channel).await?;
    } else {
        ada.create_channel(channel).await?;
    }
    ada.create_channel("design").await?;
    ada.create_channel("random").await?;
    ada.open_channel(channel).await?;
    let grace = env.browser("grace").await?;
    grace.login(&env.url(), "Grace").await?;
    grace.open_channel(channel).await?;
    grace.open_channel("random").await?;
    grace.open_channel(channel).await?;
    ada.send("Morning! The new build is up on staging.").await?;
    grace
        .send("Nice. Did the reconnect fix make it in?")
        .await?;
    ada.send("It did: kill your Wi-Fi for a minute and watch the banner.")
        .await?;
    grace
        .send("Tried it, no duplicates after coming back.")
        .await?;
    ada.send("Shipping it after lunch then.").await?;
    let mut linus = bot(env, "Linus").await?;
    linus.ok(json!({"type": "join", "room": "random"})).await?;
    linus
        .ok(json!({"type": "post", "room": "random", "text": "Who is up for lunch?"}))
        .await?;
    ada.wait_for(
        "the unread badge",
        "document.querySelector('[data-testid=channel][data-room=random] [data-testid=unread]')",
    )
    .await?;
    linus.ok(json!({"type": "join", "room": channel})).await?;
    linus.ok(json!({"type": "typing", "room": channel})).await?;
    ada.wait_for(
        "the typing notice",
        "document.querySelector('[data-testid=typing]').textContent",
    )
    .await?;
    // The window includes the browser's own (invisible) bars: size it so that the page
    // itself is 1280x800.
    let bars = ada
        .eval("[window.outerWidth - window.innerWidth, window.outerHeight - window.innerHeight]")
        .await?;
    let bars: (u32, u32) = serde_json::from_value(bars)?;
    ada.client
        .set_window_size(1280 + bars.0, 800 + bars.1)
        .await?;
    ada.wait_for(
        "a 1280x800 viewport",
        "window.innerWidth === 1280 && window.innerHeight === 800",
    )
    .await?;
    let png = ada.client.screenshot().await?;
    std::fs::write(path, png)?;
    eprintln!("screenshot saved to {path}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn user_stories() -> TestResult {
    let Some(env) = Env::start().await? else {
        return Ok(());
    };
    if let Ok(path) = std::env::var("FLACK_SCREENSHOT") {
        // Alone on its server, so that no test channel shows in the picture.
        env.story("screenshot", screenshot_for_docs(&env, &path))
            .await;
        return match env.failed().is_empty() {
            true => Ok(()),
            false => Err("the screenshot failed".into()),
        };
    }
    env.story("phone-layout-and-keyboard", phone_layout_and_keyboard(&env))
        .await;
    env.finish()
}
