//! Browser stories of files in messages: a real PNG picked through the file input is
//! uploaded (a chip with its progress), sent, shown to another user as a loaded preview
//! (from the history, and still after an edit) whose download gives the same bytes; an
//! HTML file named `evil.png` and a text file are download links, never images, served
//! as attachments; a pasted screenshot goes with an empty text; a file over the server's
//! limit is refused in its chip and sends nothing, and a dropped file whose chip is
//! removed is not sent; axe-core finds nothing to fault in the chips and the files.
//! Helpers: `common/browser.rs`.

mod common;

use std::path::{Path, PathBuf};

use common::axe::no_violations;
use common::browser::{ensure, Env, ENTER};
use common::page::Page;
use common::{scratch_dir, unique, TestResult, PNG};
use fantoccini::Locator;
use serde_json::{json, Value};

/// An HTML page under an image's name: the server reads its bytes, not its name.
const EVIL: &str = "<!doctype html><script>document.title = 'pwned'</script><p>hi</p>\n";

/// The server's default `--max-file-bytes` (10 MiB), which the stories' server keeps.
const MAX_FILE_BYTES: usize = 10 * 1024 * 1024;

/// The WebDriver Up arrow key.
const ARROW_UP: &str = "\u{E013}";

// -- helpers -------------------------------------------------------------------------------

/// Writes `bytes` to a new file called `name` (in a directory of its own) and returns it.
fn file_on_disk(name: &str, bytes: &[u8]) -> TestResult<PathBuf> {
    let path = scratch_dir("upload").join(name);
    std::fs::write(&path, bytes)?;
    Ok(path)
}

/// Picks files on disk through the page's file input, as the attach button's dialog does
/// (WebDriver sets a file input's files without it being shown).
async fn attach(page: &Page, paths: &[&Path]) -> TestResult {
    let input = page
        .client
        .find(Locator::Css("[data-testid=file-input]"))
        .await?;
    let paths: Vec<String> = paths.iter().map(|p| p.display().to_string()).collect();
    // Several files for one `multiple` input: one path a line (chromedriver).
    input.send_keys(&paths.join("\n")).await?;
    Ok(())
}

/// Pastes a file into the composer as a screenshot is pasted: a `paste` event whose
/// clipboard holds a `File` of `bytes` (or of `zeros` zero bytes). Returns what the page
/// shows right after the event, before any upload can have finished: the number of chips,
/// and the last chip's state and whether it has its progress bar.
async fn paste(page: &Page, name: &str, bytes: Option<&[u8]>, zeros: usize) -> TestResult<Value> {
    let content = match bytes {
        Some(bytes) => format!("new Uint8Array({})", json!(bytes)),
        None => format!("new Uint8Array({zeros})"),
    };
    page.eval(&format!(
        "(() => {{ \
           const file = new File([{content}], {name}, {{ type: 'image/png' }}); \
           const clipboard = new DataTransfer(); clipboard.items.add(file); \
           document.querySelector('[data-testid=composer-input]').dispatchEvent( \
             new ClipboardEvent('paste', {{ clipboardData: clipboard, bubbles: true, cancelable: true }})); \
           const chips = [...document.querySelectorAll('[data-testid=pending-file]')]; \
           const last = chips[chips.length - 1]; \
           return [chips.length, last && last.dataset.state, \
                   !!(last && last.querySelector('progress[data-testid=upload-progress]'))]; \
         }})()",
        name = json!(name)
    ))
    .await
}

/// Drops a file of `bytes` called `name` on the message list, as one dragged from the
/// desktop: `dragenter`, then `drop`. Returns whether the conversation showed its drop
/// overlay after `dragenter`, whether it still does after `drop`, and the number of chips.
async fn drop(page: &Page, name: &str, bytes: &[u8]) -> TestResult<Value> {
    page.eval(&format!(
        "(() => {{ \
           const dragged = new DataTransfer(); \
           dragged.items.add(new File([new Uint8Array({bytes})], {name}, {{ type: 'image/png' }})); \
           const list = document.querySelector('[data-testid=messages]'); \
           const pane = list.closest('.conversation'); \
           const fire = type => list.dispatchEvent( \
             new DragEvent(type, {{ dataTransfer: dragged, bubbles: true, cancelable: true }})); \
           fire('dragenter'); \
           const shown = pane.classList.contains('drop-target'); \
           fire('drop'); \
           return [shown, pane.classList.contains('drop-target'), \
                   document.querySelectorAll('[data-testid=pending-file]').length]; \
         }})()",
        bytes = json!(bytes),
        name = json!(name)
    ))
    .await
}

/// Waits until the composer shows `count` chips, every one uploaded; returns each chip's
/// name, size and status text.
async fn wait_uploaded(page: &Page, count: usize) -> TestResult<Value> {
    page.wait_for(
        &format!("{count} uploads to finish"),
        &format!(
            "(() => {{ const chips = [...document.querySelectorAll('[data-testid=pending-file]')]; \
             return chips.length === {count} && chips.every(c => c.dataset.state === 'done') && \
               chips.map(c => [c.querySelector('.pending-name').textContent, \
                 c.querySelector('.pending-size').textContent, \
                 c.querySelector('[data-testid=upload-status]').textContent]); }})()"
        ),
    )
    .await
}

/// Presses Enter in the composer (whatever it holds).
async fn press_enter(page: &Page) -> TestResult {
    page.type_into("[data-testid=composer-input]", ENTER).await
}

/// Waits until the composer has no chip left (the files went with the post).
async fn wait_no_chips(page: &Page) -> TestResult {
    page.wait_for(
        "the chips to go",
        "document.querySelectorAll('[data-testid=pending-file]').length === 0 && \
         document.querySelector('[data-testid=pending-files]').hidden",
    )
    .await?;
    Ok(())
}

/// A JavaScript expression: the list item of the message whose text is `text` (the last
/// message when `text` is None).
fn message(text: Option<&str>) -> String {
    match text {
        Some(text) => format!(
            "[...document.querySelectorAll('[data-testid=message]')].find(li => \
             li.querySelector('[data-testid=message-text]').textContent === {})",
            json!(text)
        ),
        None => "[...document.querySelectorAll('[data-testid=message]')].pop()".into(),
    }
}

/// Waits until the message (see [`message`]) shows a preview whose image really loaded
/// (1 pixel wide); returns the file id it shows and its alt text.
async fn wait_preview(page: &Page, text: Option<&str>) -> TestResult<(String, String)> {
    let found = page
        .wait_for(
            "an image preview that loaded",
            &format!(
                "(() => {{ const li = {}; \
                 const img = li && li.querySelector('img[data-testid=file-preview]'); \
                 return img && img.complete && img.naturalWidth === 1 && \
                   img.closest('a').getAttribute('href') === img.getAttribute('src') && \
                   [img.dataset.fileId, img.alt, img.getAttribute('src')]; }})()",
                message(text)
            ),
        )
        .await?;
    let [id, alt, src]: [String; 3] = serde_json::from_value(found)?;
    ensure(src == format!("/files/{id}"), || {
        format!("the preview shows {src}, not /files/{id}")
    })?;
    Ok((id, alt))
}

/// What the page gets from `GET /files/{id}`: status, a few headers, and the bytes.
async fn download(page: &Page, id: &str) -> TestResult<(u16, Value, Vec<u8>)> {
    let got = page
        .eval(&format!(
            "fetch('/files/' + {}).then(async r => [r.status, \
               [r.headers.get('content-type'), r.headers.get('content-disposition'), \
                r.headers.get('x-content-type-options')], \
               [...new Uint8Array(await r.arrayBuffer())]])",
            json!(id)
        ))
        .await?;
    let (status, headers, bytes): (u16, Value, Vec<u8>) = serde_json::from_value(got)?;
    Ok((status, headers, bytes))
}

/// Two users in a new channel: `a` created it, `b` opened it.
async fn two_users(env: &Env, a: &str, b: &str) -> TestResult<(Page, Page, String)> {
    let channel = unique("files");
    let first = env.browser(a).await?;
    first.login(&env.url(), &unique(a)).await?;
    first.create_channel(&channel).await?;
    let second = env.browser(b).await?;
    second.login(&env.url(), &unique(b)).await?;
    second.open_channel(&channel).await?;
    Ok((first, second, channel))
}

// -- stories -------------------------------------------------------------------------------

/// A real PNG picked from disk: uploaded, sent with a text, loaded as a preview by a user
/// who opens the room later (its history), downloaded byte for byte, and still shown
/// after its author edits the text.
async fn story_upload_png(env: &Env) -> TestResult {
    let channel = unique("png");
    let ann = env.browser("ann").await?;
    ann.login(&env.url(), &unique("ann")).await?;
    ann.create_channel(&channel).await?;

    let png = file_on_disk("cat.png", PNG)?;
    attach(&ann, &[&png]).await?;
    let chips = wait_uploaded(&ann, 1).await?;
    let size = format!("{} B", PNG.len());
    ensure(chips == json!([["cat.png", size, "Ready to send"]]), || {
        format!("ann's chip: {chips}")
    })?;
    ann.type_into("[data-testid=composer-input]", &format!("our cat{ENTER}"))
        .await?;
    ann.wait_message("our cat").await?;
    wait_no_chips(&ann).await?;
    wait_preview(&ann, Some("our cat")).await?;

    // Bob opens the room afterwards: the history brings the file.
    let bob = env.browser("bob").await?;
    bob.login(&env.url(), &unique("bob")).await?;
    bob.open_channel(&channel).await?;
    let (id, alt) = wait_preview(&bob, Some("our cat")).await?;
    ensure(alt == "cat.png", || format!("the preview's alt is {alt:?}"))?;
    let caption = bob
        .eval(&format!(
            "{}.querySelector('[data-testid=message-files] .file-meta').textContent",
            message(Some("our cat"))
        ))
        .await?;
    ensure(caption == json!(size), || {
        format!("the size shown: {caption}")
    })?;
    let (status, headers, bytes) = download(&bob, &id).await?;
    ensure(status == 200 && bytes == PNG, || {
        format!("bob downloaded {status} {bytes:?}")
    })?;
    ensure(
        headers[0] == json!("image/png") && headers[2] == json!("nosniff"),
        || format!("the PNG's headers: {headers}"),
    )?;

    // Ann fixes her text: the file stays with the message, for both.
    ann.type_into("[data-testid=composer-input]", ARROW_UP)
        .await?;
    ann.wait_for(
        "the composer to hold the message",
        "document.querySelector('[data-testid=composer-input]').value === 'our cat'",
    )
    .await?;
    ann.type_into("[data-testid=composer-input]", &format!(", Tom{ENTER}"))
        .await?;
    for page in [&bob, &ann] {
        page.wait_message("our cat, Tom").await?;
        page.wait_for(
            "the (edited) mark",
            &format!(
                "{}.querySelector('[data-testid=edited-mark]')",
                message(Some("our cat, Tom"))
            ),
        )
        .await?;
        let (after, _) = wait_preview(page, Some("our cat, Tom")).await?;
        ensure(after == id, || {
            format!("the edit changed the file: {after}")
        })?;
    }
    Ok(())
}

/// An HTML file named `evil.png` and a text file, picked together: download links with
/// their names and sizes, never images, served as attachments the browser will not sniff.
async fn story_download_links(env: &Env) -> TestResult {
    let (cy, dee, _) = two_users(env, "cy", "dee").await?;
    let evil = file_on_disk("evil.png", EVIL.as_bytes())?;
    let notes = file_on_disk("notes.txt", b"remember the milk\n")?;
    attach(&cy, &[&evil, &notes]).await?;
    let chips = wait_uploaded(&cy, 2).await?;
    ensure(
        chips[0][0] == json!("evil.png") && chips[1][0] == json!("notes.txt"),
        || format!("cy's chips: {chips}"),
    )?;
    cy.type_into("[data-testid=composer-input]", &format!("two files{ENTER}"))
        .await?;

    let li = message(Some("two files"));
    let links = dee
        .wait_for(
            "two download links",
            &format!(
                "(() => {{ const li = {li}; \
                 const links = li ? [...li.querySelectorAll('a[data-testid=file-link]')] : []; \
                 return links.length === 2 && links.map(a => [a.textContent, a.getAttribute('download'), \
                   a.getAttribute('href'), a.dataset.fileId, \
                   a.closest('li').querySelector('.file-meta').textContent]); }})()"
            ),
        )
        .await?;
    let images = dee
        .eval(&format!("{li}.querySelectorAll('img').length"))
        .await?;
    ensure(images == json!(0), || format!("{images} images shown"))?;
    let links: Vec<[String; 5]> = serde_json::from_value(links)?;
    let expected = [("evil.png", EVIL.len()), ("notes.txt", 18)];
    for (link, (name, size)) in links.iter().zip(expected) {
        let [text, download_as, href, id, shown_size] = link;
        ensure(
            text == name && download_as == name && *href == format!("/files/{id}"),
            || format!("the link {link:?}"),
        )?;
        ensure(*shown_size == format!("{size} B"), || {
            format!("{name}'s size shown as {shown_size}")
        })?;
        let (status, headers, bytes) = download(&dee, id).await?;
        let disposition = headers[1].as_str().unwrap_or_default();
        let content_type = headers[0].as_str().unwrap_or_default();
        ensure(
            status == 200
                && bytes.len() == size
                && disposition.starts_with("attachment")
                && headers[2] == json!("nosniff")
                && !content_type.contains("html"),
            || format!("{name} served as {status} {headers}"),
        )?;
    }
    // The page did not run the file's script.
    let title = dee.eval("document.title").await?;
    ensure(title != json!("pwned"), || "the HTML file ran".into())
}

/// A pasted screenshot: a chip whose progress bar shows at once, then an empty text sends
/// it alone, and the other user sees the loaded preview with no empty text line.
async fn story_paste(env: &Env) -> TestResult {
    let (eve, fay, _) = two_users(env, "eve", "fay").await?;
    eve.send("look at this").await?;
    fay.wait_message("look at this").await?;

    let at_once = paste(&eve, "shot.png", Some(PNG), 0).await?;
    ensure(at_once == json!([1, "uploading", true]), || {
        format!("right after the paste: {at_once}")
    })?;
    let chips = wait_uploaded(&eve, 1).await?;
    ensure(chips[0][0] == json!("shot.png"), || {
        format!("the chip: {chips}")
    })?;
    let bar = eve
        .eval(
            "(() => { const p = document.querySelector('[data-testid=pending-file] \
             progress[data-testid=upload-progress]'); return p && p.value === p.max && p.max > 0; })()",
        )
        .await?;
    ensure(bar == json!(true), || "the progress bar is not full".into())?;
    // Nothing typed: Enter sends the file alone.
    press_enter(&eve).await?;
    wait_no_chips(&eve).await?;

    let (id, alt) = wait_preview(&fay, None).await?;
    ensure(alt == "shot.png", || {
        format!("the preview's alt is {alt:?}")
    })?;
    let shown = fay
        .eval(&format!(
            "(() => {{ const li = {}; const p = li.querySelector('[data-testid=message-text]'); \
             return [li.dataset.author, p.textContent, p.hidden, p.offsetHeight, \
               li.classList.contains('grouped')]; }})()",
            message(None)
        ))
        .await?;
    ensure(
        shown[1] == json!("") && shown[2] == json!(true) && shown[3] == json!(0),
        || format!("the empty text shows: {shown}"),
    )?;
    // Sent within a minute of "look at this": grouped under it, as any message is.
    ensure(shown[4] == json!(true), || format!("not grouped: {shown}"))?;
    let (status, _, bytes) = download(&fay, &id).await?;
    ensure(status == 200 && bytes == PNG, || {
        format!("fay downloaded {status} {bytes:?}")
    })
}

/// A file over the server's limit: its chip says so and sends nothing. A dropped file
/// whose chip is removed (×) is not sent either.
async fn story_refused_and_removed(env: &Env) -> TestResult {
    let (gus, hal, _) = two_users(env, "gus", "hal").await?;
    paste(&gus, "huge.png", None, MAX_FILE_BYTES + 1).await?;
    let status = gus
        .wait_for(
            "the upload to be refused",
            "(() => { const c = document.querySelector('[data-testid=pending-file]'); \
             return c && c.dataset.state === 'failed' && \
               c.querySelector('[data-testid=upload-status]').textContent; })()",
        )
        .await?;
    let status = status.as_str().unwrap_or_default().to_owned();
    ensure(
        status.contains("too large") || status.contains("limit"),
        || format!("the refusal reads {status:?}"),
    )?;
    let role = gus
        .eval("document.querySelector('[data-testid=upload-status]').getAttribute('role')")
        .await?;
    ensure(role == json!("status"), || {
        format!("the status's role: {role}")
    })?;

    // Enter with nothing but a failed file sends nothing.
    press_enter(&gus).await?;
    gus.send("after the refusal").await?;
    hal.wait_message("after the refusal").await?;
    let count = hal
        .eval("document.querySelectorAll('[data-testid=message]').length")
        .await?;
    ensure(count == json!(1), || format!("hal sees {count} messages"))?;
    // The post clears the refused file's chip.
    wait_no_chips(&gus).await?;

    // A file dropped on the conversation gets a chip; removed before sending, it is not
    // sent.
    let dropped = drop(&gus, "oops.png", PNG).await?;
    ensure(dropped == json!([true, false, 1]), || {
        format!("the drop (overlay while dragging, after, chips): {dropped}")
    })?;
    wait_uploaded(&gus, 1).await?;
    gus.click("[data-testid=pending-file] [data-testid=remove-file]")
        .await?;
    wait_no_chips(&gus).await?;
    gus.send("no file here").await?;
    hal.wait_message("no file here").await?;
    let files = hal
        .eval("document.querySelectorAll('[data-testid=message-files]').length")
        .await?;
    ensure(files == json!(0), || format!("{files} messages with files"))
}

/// axe-core finds no violation in a page with an image, download links, and chips (one
/// ready, one refused), at a desktop and at a phone's width.
async fn story_axe(env: &Env) -> TestResult {
    let (ida, jo, _) = two_users(env, "ida", "jo").await?;
    let png = file_on_disk("a picture.png", PNG)?;
    let notes = file_on_disk("notes.txt", b"remember the milk\n")?;
    attach(&ida, &[&png, &notes]).await?;
    wait_uploaded(&ida, 2).await?;
    ida.type_into(
        "[data-testid=composer-input]",
        &format!("files for you{ENTER}"),
    )
    .await?;
    wait_preview(&jo, Some("files for you")).await?;
    paste(&ida, "huge.png", None, MAX_FILE_BYTES + 1).await?;
    paste(&ida, "ready.png", Some(PNG), 0).await?;
    ida.wait_for(
        "one chip refused, one ready",
        "[...document.querySelectorAll('[data-testid=pending-file]')].map(c => c.dataset.state).join() \
         === 'failed,done'",
    )
    .await?;
    wait_preview(&ida, Some("files for you")).await?;
    no_violations(&ida, "ida's page").await?;
    no_violations(&jo, "jo's page").await?;
    // A phone's width: the chips wrap, the picture shrinks, still nothing to fault.
    ida.client.set_window_size(390, 844).await?;
    ida.wait_for("a phone's width", "window.innerWidth <= 390")
        .await?;
    no_violations(&ida, "ida's page at 390px").await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn user_stories() -> TestResult {
    let Some(env) = Env::start().await? else {
        return Ok(());
    };
    env.story("files-upload-png", story_upload_png(&env)).await;
    env.story("files-download-links", story_download_links(&env))
        .await;
    env.story("files-paste", story_paste(&env)).await;
    env.story("files-refused-removed", story_refused_and_removed(&env))
        .await;
    env.story("files-axe", story_axe(&env)).await;
    env.finish()
}
