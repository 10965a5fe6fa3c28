//! Browser stories of presence: members with their online state, "X is typing…", and
//! unread counts on channels not open; a member list longer than a page, loaded as the
//! user asks for more. Helpers: `common/browser.rs`.

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

/// Story 9b: A room of 131 shows its counts and the first 100 members; scrolling to the
/// end of the list (or "Show more") brings the rest, and presence keeps it live.
async fn story_9b_a_long_member_list_loads_page_by_page(env: &Env) -> TestResult {
    let crowd = unique("crowd");
    let ada_name = unique("ada");
    let mut bots = Vec::new();
    for i in 0..130 {
        let mut bot = bot(env, &unique(&format!("b{i:03}"))).await?;
        if i == 0 {
            bot.ok(json!({"type": "create_channel", "name": crowd}))
                .await?;
        }
        bot.ok(json!({"type": "join", "room": crowd})).await?;
        bots.push(bot);
    }
    let ada = env.browser("ada").await?;
    ada.login(&env.url(), &ada_name).await?;
    ada.open_channel(&crowd).await?;
    let shown = "document.querySelectorAll('[data-testid=member]').length";
    ada.wait_for(
        "the first page of members and the counts",
        &format!(
            "{shown} === 100 && document.querySelector('[data-testid=member-counts]').textContent === '131 in all, 131 online'"
        ),
    )
    .await?;
    ada.wait_for(
        "a Show more button",
        "!document.querySelector('[data-testid=more-members]').hidden",
    )
    .await?;
    // Scrolling the list to its end loads the next page (as "Show more" does).
    ada.eval("(() => { const pane = document.getElementById('members'); pane.scrollTop = pane.scrollHeight; return true; })()")
        .await?;
    ada.wait_for(
        "every member, and no Show more button",
        &format!("{shown} === 131 && document.querySelector('[data-testid=more-members]').hidden"),
    )
    .await?;

    // A member who leaves is gone from the loaded list, and the counts follow.
    let mut last = bots.pop().ok_or("a bot")?;
    last.ok(json!({"type": "leave", "room": crowd})).await?;
    ada.wait_for(
        "130 members after one left",
        &format!(
            "{shown} === 130 && document.querySelector('[data-testid=member-counts]').textContent === '130 in all, 130 online'"
        ),
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
    env.story(
        "9b-a-long-member-list-loads-page-by-page",
        story_9b_a_long_member_list_loads_page_by_page(&env),
    )
    .await;
    env.finish()
}
