//! Browser story of accessibility: axe-core (vendored in `tests/fixtures/axe.min.js`, see
//! `tests/fixtures/axe-core.README.md`) finds zero violations on the login screen and on
//! the chat (with messages of two authors, a grouped one, a link, a mention, an unread
//! badge, a date separator), at a desktop width and at a phone width. Helpers:
//! `common/browser.rs`.

mod common;

use common::axe::no_violations;
use common::browser::{bot, Env};
use common::{unique, TestResult};
use serde_json::json;

/// Widths (and heights) the page is checked at: a desktop window and a phone.
const SIZES: [(u32, u32); 2] = [(1280, 800), (390, 844)];

/// Zero axe-core violations on the login screen and the chat, at both widths.
async fn zero_violations(env: &Env) -> TestResult {
    let channel = unique("a11y");
    let other = unique("a11y-other");
    let name = unique("wyn");
    let mut xan = bot(env, &unique("xan")).await?;
    for room in [&channel, &other] {
        xan.ok(json!({"type": "create_channel", "name": room}))
            .await?;
        xan.ok(json!({"type": "join", "room": room})).await?;
    }
    let wyn = env.browser("wyn").await?;
    for (width, height) in SIZES {
        wyn.client.set_window_size(width, height).await?;
        wyn.goto(&env.url()).await?;
        wyn.wait_for(
            "the login form",
            "!document.querySelector('[data-testid=login]').hidden",
        )
        .await?;
        no_violations(&wyn, &format!("the login screen at {width}px")).await?;
    }

    wyn.client.set_window_size(SIZES[0].0, SIZES[0].1).await?;
    wyn.login(&env.url(), &name).await?;
    wyn.open_channel(&other).await?;
    wyn.open_channel(&channel).await?;
    wyn.send("hello, see https://example.com").await?;
    wyn.send("and a second line").await?;
    xan.ok(json!({"type": "post", "room": channel, "text": format!("hi @{name}")}))
        .await?;
    xan.ok(json!({"type": "post", "room": other, "text": format!("@{name} over here")}))
        .await?;
    wyn.wait_message(&format!("hi @{name}")).await?;
    wyn.wait_for(
        "the other room's badge",
        "document.querySelector('[data-testid=unread]')",
    )
    .await?;
    for (width, height) in SIZES {
        wyn.client.set_window_size(width, height).await?;
        wyn.wait_for(
            &format!("the layout at {width}px"),
            &format!("window.innerWidth <= {width}"),
        )
        .await?;
        no_violations(&wyn, &format!("the chat at {width}px")).await?;
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn user_stories() -> TestResult {
    let Some(env) = Env::start().await? else {
        return Ok(());
    };
    env.story("axe-core", zero_violations(&env)).await;
    env.finish()
}
