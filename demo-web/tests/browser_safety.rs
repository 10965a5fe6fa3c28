//! Browser story of user text as text: `<img src=x onerror=alert(1)>` shows as written
//! and runs nothing. Helpers: `common/browser.rs`.

mod common;

use common::browser::{ensure, Env};
use common::{unique, TestResult};
use serde_json::json;

/// Story 11: `<img src=x onerror=alert(1)>` shows as text and runs nothing.
async fn story_11_html_is_text(env: &Env) -> TestResult {
    let payload = "<img src=x onerror=alert(1)>";
    let channel = unique("xss");
    let uma = env.browser("uma").await?;
    uma.login(&env.url(), &unique("uma")).await?;
    uma.create_channel(&channel).await?;
    let vic = env.browser("vic").await?;
    vic.login(&env.url(), &unique("vic")).await?;
    vic.open_channel(&channel).await?;

    uma.send(payload).await?;
    vic.wait_message(payload).await?;
    for page in [&uma, &vic] {
        ensure(!page.has_alert().await, || "an alert opened".into())?;
        ensure(
            page.eval("document.querySelectorAll('[data-testid=messages] img').length")
                .await?
                == json!(0),
            || "an <img> element was created".into(),
        )?;
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn user_stories() -> TestResult {
    let Some(env) = Env::start().await? else {
        return Ok(());
    };
    env.story("11-html-is-text", story_11_html_is_text(&env))
        .await;
    env.finish()
}
