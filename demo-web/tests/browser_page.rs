//! Browser stories of how the page reads: a mention of you is highlighted and counted,
//! links open (and `javascript:` stays text), one author's messages group under one name
//! with a date separator above, an empty channel says where it starts, the tab title
//! counts unread messages, leave and log out work, and the name field takes what the
//! server takes. Helpers: `common/browser.rs`.

mod common;

use common::browser::{bot, ensure, Env};
use common::page::Page;
use common::{unique, Server, TestResult, WsClient};
use serde_json::{json, Value};

/// `[class, has an author button]` of each message shown, in order.
async fn message_shapes(page: &Page) -> TestResult<Vec<(String, bool)>> {
    let value = page
        .eval(
            "[...document.querySelectorAll('[data-testid=message]')].map(li => \
             [li.className, !!li.querySelector('[data-testid=message-author]')])",
        )
        .await?;
    Ok(serde_json::from_value(value)?)
}

/// The class of the message whose text is `text`.
async fn class_of(page: &Page, text: &str) -> TestResult<String> {
    let value = page
        .eval(&format!(
            "[...document.querySelectorAll('[data-testid=message]')]\
             .find(li => li.querySelector('[data-testid=message-text]').textContent === {})\
             ?.className || ''",
            json!(text)
        ))
        .await?;
    Ok(value.as_str().unwrap_or_default().to_owned())
}

/// A mention of you is counted on the room's badge while you are elsewhere, and
/// highlighted when you open the room; a mail address mentions nobody.
async fn mention_is_highlighted_and_counted(env: &Env) -> TestResult {
    let (lunch, other) = (unique("lunch"), unique("other"));
    let name = unique("Mia");
    let mut ned = bot(env, &unique("ned")).await?;
    for channel in [&lunch, &other] {
        ned.ok(json!({"type": "create_channel", "name": channel}))
            .await?;
        ned.ok(json!({"type": "join", "room": channel})).await?;
    }
    let mia = env.browser("mia").await?;
    mia.login(&env.url(), &name).await?;
    mia.open_channel(&lunch).await?;
    mia.open_channel(&other).await?;

    // In capitals: mentions match as names do.
    let mention = format!("@{}, lunch?", name.to_uppercase());
    let plain = format!("mail {name}@example.com");
    for text in [&plain, &mention] {
        ned.ok(json!({"type": "post", "room": lunch, "text": text}))
            .await?;
    }
    let badge = mia
        .wait_for(
            "an unread badge that counts the mention",
            &format!(
                "(b => b && b.dataset.mentions && [b.textContent, b.dataset.mentions, b.getAttribute('aria-label')])\
                 (document.querySelector('[data-testid=channel][data-room=\"{lunch}\"] [data-testid=unread]'))"
            ),
        )
        .await?;
    ensure(
        badge == json!(["@ 2", "1", "2 unread, 1 mentioning you"]),
        || format!("badge {badge}"),
    )?;

    mia.open_channel(&lunch).await?;
    mia.wait_message(&mention).await?;
    let (mentioned, not) = (
        class_of(&mia, &mention).await?,
        class_of(&mia, &plain).await?,
    );
    ensure(
        mentioned.split(' ').any(|c| c == "mentioned") && !not.contains("mentioned"),
        || format!("classes: mention {mentioned:?}, plain {not:?}"),
    )?;
    // Your own mention of yourself is no news.
    mia.send(&format!("note to self @{name}")).await?;
    let own = class_of(&mia, &format!("note to self @{name}")).await?;
    ensure(!own.contains("mentioned"), || {
        format!("own message {own:?}")
    })
}

/// http(s) URLs become links that open in a new tab without the opener; `javascript:`
/// and `<script>` stay text.
async fn links_are_clickable_and_only_http(env: &Env) -> TestResult {
    let channel = unique("links");
    let ona = env.browser("ona").await?;
    ona.login(&env.url(), &unique("ona")).await?;
    ona.create_channel(&channel).await?;
    let text = "see https://example.com/a?b=1&c=<2>. or javascript:alert(1) <script>x</script> \
                http://example.org";
    ona.send(text).await?;
    let links = ona
        .eval(
            "[...document.querySelectorAll('[data-testid=message-text] a')].map(a => \
             [a.getAttribute('href'), a.textContent, a.target, a.rel, a.dataset.testid])",
        )
        .await?;
    ensure(
        links
            == json!([
                [
                    "https://example.com/a?b=1&c=",
                    "https://example.com/a?b=1&c=",
                    "_blank",
                    "noopener noreferrer",
                    "message-link"
                ],
                [
                    "http://example.org",
                    "http://example.org",
                    "_blank",
                    "noopener noreferrer",
                    "message-link"
                ]
            ]),
        || format!("links {links}"),
    )?;
    let scripts = ona
        .eval("document.querySelectorAll('[data-testid=messages] script').length")
        .await?;
    ensure(scripts == json!(0), || "a <script> element was made".into())?;
    ona.wait_message(text).await
}

/// An empty channel says where it starts; consecutive messages of one author show one
/// name under one date separator, and another author starts a new group.
async fn groups_dates_and_empty_channel(env: &Env) -> TestResult {
    let channel = unique("groups");
    let pia = env.browser("pia").await?;
    pia.login(&env.url(), &unique("pia")).await?;
    pia.create_channel(&channel).await?;
    let start = pia
        .wait_for(
            "the start of the channel",
            "document.querySelector('[data-testid=room-start]')?.textContent",
        )
        .await?;
    ensure(
        start
            .as_str()
            .is_some_and(|s| s.contains(&format!("start of #{channel}"))),
        || format!("start text {start}"),
    )?;

    pia.send("one").await?;
    pia.send("two").await?;
    let mut quin = bot(env, &unique("quin")).await?;
    quin.ok(json!({"type": "join", "room": channel})).await?;
    quin.ok(json!({"type": "post", "room": channel, "text": "three"}))
        .await?;
    pia.wait_message("three").await?;
    let shapes = message_shapes(&pia).await?;
    let authors: Vec<bool> = shapes.iter().map(|(_, a)| *a).collect();
    ensure(authors == [true, false, true], || {
        format!("author shown per message: {shapes:?}")
    })?;
    ensure(
        shapes[1].0.contains("grouped") && !shapes[2].0.contains("grouped"),
        || format!("classes {shapes:?}"),
    )?;
    let days = pia
        .eval(
            "[...document.querySelectorAll('[data-testid=day-separator]')].map(d => d.textContent)",
        )
        .await?;
    ensure(days == json!(["Today"]), || format!("separators {days}"))?;
    let start_gone = pia
        .eval("document.querySelector('[data-testid=room-start]') === null")
        .await?;
    ensure(start_gone == json!(true), || {
        "the start notice stayed".into()
    })
}

/// A bot who created `channels` and is in both, to post in them, and a browser user
/// (`who`) who has opened both, the second last.
async fn both_channels_opened(
    env: &Env,
    who: &str,
    channels: [&str; 2],
) -> TestResult<(WsClient, Page)> {
    let mut poster = bot(env, &unique("rex")).await?;
    for channel in channels {
        poster
            .ok(json!({"type": "create_channel", "name": channel}))
            .await?;
        poster.ok(json!({"type": "join", "room": channel})).await?;
    }
    let page = env.browser(who).await?;
    page.login(&env.url(), &unique(who)).await?;
    for channel in channels {
        page.open_channel(channel).await?;
    }
    Ok((poster, page))
}

/// The tab title counts messages in rooms not in view, and goes back when they are read.
async fn unread_count_in_title(env: &Env) -> TestResult {
    let (busy, quiet) = (unique("busy"), unique("quiet"));
    let (mut rex, sal) = both_channels_opened(env, "sal", [&busy, &quiet]).await?;
    ensure(sal.eval("document.title").await? == json!("Flack"), || {
        "title before".into()
    })?;
    for n in 0..3 {
        rex.ok(json!({"type": "post", "room": busy, "text": format!("m{n}")}))
            .await?;
    }
    sal.wait_for("the title to count 3", "document.title === '(3) Flack'")
        .await?;
    sal.open_channel(&busy).await?;
    sal.wait_for("the title to be plain again", "document.title === 'Flack'")
        .await?;
    Ok(())
}

/// A keyboard user's focus on a room in the sidebar stays there while messages arrive in
/// that room and its unread count changes: the room list is updated, not rebuilt.
async fn focus_stays_on_a_room_while_its_count_changes(env: &Env) -> TestResult {
    let (busy, open) = (unique("focus"), unique("here"));
    let (mut rex, kim) = both_channels_opened(env, "kim", [&busy, &open]).await?;
    // Opened: the page has joined the room and put the focus in the composer.
    kim.wait_for(
        "the composer to have the focus",
        "document.activeElement === document.querySelector('[data-testid=composer-input]')",
    )
    .await?;
    let button = format!("document.querySelector('[data-testid=channel][data-room=\"{busy}\"]')");
    kim.eval(&format!("{button}.focus()")).await?;
    ensure(
        kim.eval(&format!("document.activeElement === {button}"))
            .await?
            == json!(true),
        || "the room's button did not take the focus".into(),
    )?;
    for n in 0..2 {
        rex.ok(json!({"type": "post", "room": busy, "text": format!("m{n}")}))
            .await?;
    }
    kim.wait_for(
        "the unread count 2",
        &format!("{button}.querySelector('[data-testid=unread]')?.textContent === '2'"),
    )
    .await?;
    let focused = kim
        .eval(&format!("document.activeElement === {button}"))
        .await?;
    ensure(focused == json!(true), || {
        "the focus left the room's button when its count changed".into()
    })?;
    Ok(())
}

/// Scrolled up, a new message from someone else does not move the view: a "new messages
/// below" hint shows, and takes you to the end.
async fn new_messages_below_hint(env: &Env) -> TestResult {
    let channel = unique("scroll");
    let mut zed = bot(env, &unique("zed")).await?;
    zed.ok(json!({"type": "create_channel", "name": channel}))
        .await?;
    zed.ok(json!({"type": "join", "room": channel})).await?;
    for n in 0..60 {
        zed.ok(json!({"type": "post", "room": channel, "text": format!("line {n}\nmore")}))
            .await?;
    }
    let amy = env.browser("amy").await?;
    amy.login(&env.url(), &unique("amy")).await?;
    amy.open_channel(&channel).await?;
    amy.wait_message("line 59\nmore").await?;
    let hint_hidden = "document.querySelector('[data-testid=new-below]').hidden";
    ensure(amy.eval(hint_hidden).await? == json!(true), || {
        "the hint shows at the end".into()
    })?;
    amy.eval("(m => { m.scrollTop = 0; return m.scrollTop; })(document.querySelector('[data-testid=messages]'))")
        .await?;
    zed.ok(json!({"type": "post", "room": channel, "text": "below"}))
        .await?;
    amy.wait_message("below").await?;
    amy.wait_for("the hint", &format!("!{hint_hidden}")).await?;
    let top = amy
        .eval("document.querySelector('[data-testid=messages]').scrollTop")
        .await?;
    ensure(top == json!(0), || format!("the view moved to {top}"))?;
    amy.click("[data-testid=new-below]").await?;
    amy.wait_for(
        "the end of the messages",
        &format!(
            "{hint_hidden} && (m => m.scrollHeight - m.scrollTop - m.clientHeight < 80)             (document.querySelector('[data-testid=messages]'))"
        ),
    )
    .await?;
    Ok(())
}

/// Leave takes you out of the channel (others see you go); log out forgets the token, so
/// that a reload shows the login screen.
async fn leave_and_log_out(env: &Env) -> TestResult {
    let channel = unique("exit");
    let mut uli = bot(env, &unique("uli")).await?;
    uli.ok(json!({"type": "create_channel", "name": channel}))
        .await?;
    uli.ok(json!({"type": "join", "room": channel})).await?;
    let tam = env.browser("tam").await?;
    let name = unique("tam");
    tam.login(&env.url(), &name).await?;
    tam.open_channel(&channel).await?;
    uli.event(|f| {
        f["type"] == "presence"
            && f["changes"].as_array().is_some_and(|c| {
                c.iter()
                    .any(|c| c["user"]["name"] == json!(name) && c["change"] == "joined")
            })
    })
    .await?;

    tam.click("[data-testid=leave-room]").await?;
    uli.event(|f| {
        f["type"] == "presence"
            && f["changes"].as_array().is_some_and(|c| {
                c.iter()
                    .any(|c| c["user"]["name"] == json!(name) && c["change"] == "left")
            })
    })
    .await?;
    tam.wait_for(
        "the welcome pane",
        "!document.querySelector('[data-testid=empty-state]').hidden",
    )
    .await?;

    // A second tab of the same user (same browser profile): logged out with the first.
    let old_token = tam.eval("localStorage.getItem('flack.token')").await?;
    let old_token = old_token.as_str().ok_or("no token kept")?.to_owned();
    let mut other_tab = common::WsClient::connect(env.server.http).await?;
    other_tab
        .ok(json!({"type": "login", "token": old_token}))
        .await?;
    tam.click("[data-testid=logout]").await?;
    tam.wait_for(
        "the login screen",
        "!document.querySelector('[data-testid=login]').hidden && \
         document.querySelector('[data-testid=app]').hidden",
    )
    .await?;
    let token = tam.eval("localStorage.getItem('flack.token')").await?;
    ensure(token == Value::Null, || format!("token kept: {token}"))?;
    // The server forgot them: the other tab is closed, the token refused, the name free.
    let gone = other_tab.event(|f| f["type"] == "disconnected").await?;
    ensure(gone["code"] == "logged_out", || {
        format!("other tab: {gone}")
    })?;
    let mut again = common::WsClient::connect(env.server.http).await?;
    let refused = again
        .request(json!({"type": "login", "token": old_token}))
        .await?;
    ensure(refused["code"] == "invalid_token", || {
        format!("old token: {refused}")
    })?;
    let taken = again.ok(json!({"type": "login", "name": name})).await?;
    ensure(taken["new_user"] == true, || {
        format!("name not free: {taken}")
    })?;
    tam.goto(&env.url()).await?;
    tam.wait_for(
        "the login screen after a reload",
        "!document.querySelector('[data-testid=login]').hidden",
    )
    .await?;
    Ok(())
}

/// The name field takes as many characters as the server's `hello` allows: a server with
/// 12 (the page's own default is 32).
async fn name_field_limit_is_the_servers(env: &Env) -> TestResult {
    let small = Server::start(&["--max-display-name-chars", "12"])?;
    let vik = env.browser("vik").await?;
    vik.goto(&small.url()).await?;
    let limit = vik
        .wait_for(
            "the name field's limit from hello",
            "(n => n === 12 && n)(document.querySelector('[data-testid=login-name]').maxLength)",
        )
        .await;
    let shown = vik
        .eval("document.querySelector('[data-testid=login-name]').maxLength")
        .await?;
    ensure(limit.is_ok(), || format!("maxlength {shown}, not 12"))?;
    vik.type_into("[data-testid=login-name]", "abcdefghijklmnopq")
        .await?;
    let typed = vik
        .eval("document.querySelector('[data-testid=login-name]').value")
        .await?;
    ensure(typed == json!("abcdefghijkl"), || format!("typed {typed}"))
}

/// Logging out in one tab logs out the user's other tab of the same browser: it lands on
/// the login screen saying so, rather than trying its revoked token again and again.
async fn log_out_in_one_tab_ends_the_other(env: &Env) -> TestResult {
    let name = unique("ada");
    let ada = env.browser("ada").await?;
    ada.login(&env.url(), &name).await?;
    let first = ada.client.window().await?;
    let second = ada.client.new_window(true).await?.handle;
    ada.client.switch_to_window(second.clone()).await?;
    ada.goto(&env.url()).await?;
    let shown = format!(
        "!document.querySelector('[data-testid=app]').hidden && \
         document.body.textContent.includes({})",
        json!(name)
    );
    ada.wait_for("the second tab logged in by its token", &shown)
        .await?;

    ada.client.switch_to_window(first).await?;
    ada.click("[data-testid=logout]").await?;
    ada.client.switch_to_window(second).await?;
    let told = ada
        .wait_for(
            "the second tab on the login screen, saying why",
            "!document.querySelector('[data-testid=login]').hidden && \
             document.querySelector('[data-testid=login-error]')?.textContent",
        )
        .await?;
    ensure(
        told.as_str().is_some_and(|t| t.contains("logged out")),
        || format!("the second tab says {told}"),
    )?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn user_stories() -> TestResult {
    let Some(env) = Env::start().await? else {
        return Ok(());
    };
    env.story("mention", mention_is_highlighted_and_counted(&env))
        .await;
    env.story("links", links_are_clickable_and_only_http(&env))
        .await;
    env.story("groups", groups_dates_and_empty_channel(&env))
        .await;
    env.story("title", unread_count_in_title(&env)).await;
    env.story(
        "focus-kept",
        focus_stays_on_a_room_while_its_count_changes(&env),
    )
    .await;
    env.story("new-below", new_messages_below_hint(&env)).await;
    env.story("leave-logout", leave_and_log_out(&env)).await;
    env.story("logout-other-tab", log_out_in_one_tab_ends_the_other(&env))
        .await;
    env.story("name-limit", name_field_limit_is_the_servers(&env))
        .await;
    env.finish()
}
