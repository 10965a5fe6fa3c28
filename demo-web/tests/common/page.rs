//! One browser tab of a browser story (see `browser.rs`): its WebDriver session and
//! profile, and the steps a user takes in the page, each waiting (with a deadline) for
//! what the page shows.

use std::path::PathBuf;

use fantoccini::{Client, Locator};
use serde_json::{json, Value};

use super::browser::{ENTER, PAGE_TIMEOUT};
use super::{eventually, TestResult};

/// One browser tab and the profile it runs on.
pub struct Page {
    pub client: Client,
    /// Unique within a story; names the screenshot.
    pub(super) label: String,
    pub profile: PathBuf,
}

impl Page {
    /// Evaluates a JavaScript expression in the page.
    pub async fn eval(&self, expression: &str) -> TestResult<Value> {
        Ok(self
            .client
            .execute(&format!("return ({expression});"), vec![])
            .await?)
    }

    /// Waits until a JavaScript expression is truthy; returns its value.
    pub async fn wait_for(&self, what: &str, expression: &str) -> TestResult<Value> {
        eventually(what, PAGE_TIMEOUT, || async {
            let value = self.eval(expression).await?;
            let truthy = match &value {
                Value::Null | Value::Bool(false) => false,
                Value::Number(n) => n.as_f64() != Some(0.0),
                Value::String(s) => !s.is_empty(),
                _ => true,
            };
            Ok(truthy.then_some(value))
        })
        .await
    }

    pub async fn goto(&self, url: &str) -> TestResult {
        self.client.goto(url).await?;
        Ok(())
    }

    pub async fn type_into(&self, css: &str, text: &str) -> TestResult {
        let field = self
            .client
            .wait()
            .at_most(PAGE_TIMEOUT)
            .for_element(Locator::Css(css))
            .await?;
        field.send_keys(text).await?;
        Ok(())
    }

    pub async fn click(&self, css: &str) -> TestResult {
        let target = self
            .client
            .wait()
            .at_most(PAGE_TIMEOUT)
            .for_element(Locator::Css(css))
            .await?;
        target.click().await?;
        Ok(())
    }

    /// Waits for the chat to be shown to the logged-in user `name`.
    pub async fn wait_logged_in(&self, name: &str) -> TestResult {
        self.wait_for(
            &format!("the app to show {name} logged in"),
            &format!(
                "!document.querySelector('[data-testid=app]').hidden && \
                 document.querySelector('[data-testid=me]').textContent === {}",
                json!(name)
            ),
        )
        .await?;
        Ok(())
    }

    /// A first visit: the name form, then the chat.
    pub async fn login(&self, url: &str, name: &str) -> TestResult {
        self.goto(url).await?;
        self.wait_for(
            "the login form",
            "!document.querySelector('[data-testid=login]').hidden",
        )
        .await?;
        self.type_into("[data-testid=login-name]", name).await?;
        self.click("[data-testid=login-submit]").await?;
        self.wait_logged_in(name).await
    }

    pub async fn create_channel(&self, name: &str) -> TestResult {
        self.type_into("[data-testid=new-channel-name]", name)
            .await?;
        self.click("[data-testid=create-channel]").await?;
        self.wait_title(&format!("#{name}")).await
    }

    pub async fn open_channel(&self, name: &str) -> TestResult {
        self.click(&format!("[data-testid=channel][data-room=\"{name}\"]"))
            .await?;
        self.wait_title(&format!("#{name}")).await
    }

    pub async fn wait_title(&self, title: &str) -> TestResult {
        self.wait_for(
            &format!("the room title {title}"),
            &format!(
                "document.querySelector('[data-testid=room-title]').textContent === {} && \
                 !document.querySelector('[data-testid=composer]').hidden",
                json!(title)
            ),
        )
        .await?;
        Ok(())
    }

    /// Types a message and presses Enter; waits until it shows.
    pub async fn send(&self, text: &str) -> TestResult {
        self.type_into("[data-testid=composer-input]", &format!("{text}{ENTER}"))
            .await?;
        self.wait_message(text).await
    }

    /// The messages shown: id, author and text of each, in order.
    pub async fn messages(&self) -> TestResult<Vec<(u64, String, String)>> {
        let value = self
            .eval(
                "[...document.querySelectorAll('[data-testid=message]')].map(li => \
                 [Number(li.dataset.id), li.dataset.author, \
                  li.querySelector('[data-testid=message-text]').textContent])",
            )
            .await?;
        Ok(serde_json::from_value(value)?)
    }

    pub async fn wait_message(&self, text: &str) -> TestResult {
        self.wait_for(
            &format!("the message {text:?}"),
            &format!(
                "[...document.querySelectorAll('[data-testid=message-text]')]\
                 .some(p => p.textContent === {})",
                json!(text)
            ),
        )
        .await?;
        Ok(())
    }

    pub async fn wait_no_message(&self, text: &str) -> TestResult {
        self.wait_for(
            &format!("the message {text:?} to go"),
            &format!(
                "![...document.querySelectorAll('[data-testid=message-text]')]\
                 .some(p => p.textContent === {})",
                json!(text)
            ),
        )
        .await?;
        Ok(())
    }

    /// True when an alert dialog is open.
    pub async fn has_alert(&self) -> bool {
        self.client.get_alert_text().await.is_ok()
    }
}
