//! Browser story of a dropped connection: the page says so, reconnects by itself with
//! backoff, and shows the messages sent meanwhile without duplicates. The connection
//! drops for real: the browser reaches the server through a TCP proxy owned by the test,
//! which is cut (every connection closed, new ones refused) and later restored. Helpers:
//! `common/browser.rs`.

mod common;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use common::browser::{bot, ensure, Env, PAGE_TIMEOUT};
use common::{eventually, unique, TestResult};
use serde_json::json;
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;

/// A TCP proxy between a browser and the server that the test can cut and restore: a real
/// network failure as the browser sees it.
struct Proxy {
    addr: SocketAddr,
    up: Arc<AtomicBool>,
    cut: Arc<Mutex<CancellationToken>>,
    /// When each connection attempt arrived, and whether the proxy was up.
    attempts: Arc<Mutex<Vec<(Instant, bool)>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Proxy {
    async fn start(target: SocketAddr) -> TestResult<Proxy> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let up = Arc::new(AtomicBool::new(true));
        let cut = Arc::new(Mutex::new(CancellationToken::new()));
        let attempts = Arc::new(Mutex::new(Vec::new()));
        let task = tokio::spawn({
            let (up, cut, attempts) = (up.clone(), cut.clone(), attempts.clone());
            async move {
                while let Ok((mut inbound, _)) = listener.accept().await {
                    let is_up = up.load(Ordering::SeqCst);
                    if let Ok(mut log) = attempts.lock() {
                        log.push((Instant::now(), is_up));
                    }
                    if !is_up {
                        drop(inbound);
                        continue;
                    }
                    let token = match cut.lock() {
                        Ok(token) => token.clone(),
                        Err(_) => continue,
                    };
                    tokio::spawn(async move {
                        let Ok(mut outbound) = TcpStream::connect(target).await else {
                            return;
                        };
                        tokio::select! {
                            _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound) => {}
                            _ = token.cancelled() => {}
                        }
                    });
                }
            }
        });
        Ok(Proxy {
            addr,
            up,
            cut,
            attempts,
            task,
        })
    }

    /// Closes every proxied connection and refuses new ones.
    fn cut(&self) -> TestResult {
        self.up.store(false, Ordering::SeqCst);
        let mut token = self.cut.lock().map_err(|_| "poisoned")?;
        token.cancel();
        *token = CancellationToken::new();
        Ok(())
    }

    /// Lets connections through again.
    fn restore(&self) {
        self.up.store(true, Ordering::SeqCst);
    }

    /// When the refused connection attempts arrived.
    fn refused(&self) -> Vec<Instant> {
        self.attempts
            .lock()
            .map(|log| log.iter().filter(|(_, up)| !up).map(|(t, _)| *t).collect())
            .unwrap_or_default()
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.task.abort();
        if let Ok(token) = self.cut.lock() {
            token.cancel();
        }
    }
}

/// Story 10: The connection drops and returns: the page says so, reconnects by itself with
/// backoff, and shows the messages sent meanwhile, without duplicates.
async fn story_10_reconnect(env: &Env) -> TestResult {
    let proxy = Proxy::start(env.server.http).await?;
    let via_proxy = format!("http://{}/", proxy.addr);
    let channel = unique("flaky");
    let mut bot = bot(env, &unique("ray")).await?;
    bot.ok(json!({"type": "create_channel", "name": channel}))
        .await?;
    bot.ok(json!({"type": "join", "room": channel})).await?;

    let sue = env.browser("sue").await?;
    sue.login(&via_proxy, &unique("sue")).await?;
    sue.open_channel(&channel).await?;
    bot.ok(json!({"type": "post", "room": channel, "text": "before"}))
        .await?;
    sue.wait_message("before").await?;

    proxy.cut()?;
    let banner = sue
        .wait_for(
            "the reconnecting banner",
            "!document.querySelector('[data-testid=connection-banner]').hidden && \
             document.querySelector('[data-testid=connection-banner]').textContent",
        )
        .await?;
    ensure(
        banner.as_str().is_some_and(|b| b.contains("Reconnecting")),
        || format!("banner says {banner}"),
    )?;
    for text in ["meanwhile 1", "meanwhile 2", "meanwhile 3"] {
        bot.ok(json!({"type": "post", "room": channel, "text": text}))
            .await?;
    }
    // Let the page retry against the dead link a few times: the gaps must grow.
    let refused = eventually(
        "three refused reconnection attempts",
        PAGE_TIMEOUT,
        || async {
            let refused = proxy.refused();
            Ok((refused.len() >= 3).then_some(refused))
        },
    )
    .await?;
    let first_gap = refused[1] - refused[0];
    let second_gap = refused[2] - refused[1];
    ensure(
        second_gap.as_secs_f64() > first_gap.as_secs_f64() * 0.8,
        || format!("no backoff: gaps {first_gap:?} then {second_gap:?}"),
    )?;

    proxy.restore();
    sue.wait_for(
        "the banner to go",
        "document.querySelector('[data-testid=connection-banner]').hidden",
    )
    .await?;
    sue.wait_message("meanwhile 3").await?;
    bot.ok(json!({"type": "post", "room": channel, "text": "after"}))
        .await?;
    sue.wait_message("after").await?;
    let texts: Vec<String> = sue
        .messages()
        .await?
        .into_iter()
        .map(|(_, _, t)| t)
        .collect();
    ensure(
        texts
            == [
                "before",
                "meanwhile 1",
                "meanwhile 2",
                "meanwhile 3",
                "after",
            ],
        || format!("messages after reconnecting: {texts:?}"),
    )?;
    // And sending works on the new connection.
    sue.send("back online").await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn user_stories() -> TestResult {
    let Some(env) = Env::start().await? else {
        return Ok(());
    };
    env.story("10-reconnect", story_10_reconnect(&env)).await;
    env.finish()
}
