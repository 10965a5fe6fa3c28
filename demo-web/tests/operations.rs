//! Running it in production (issue 24), on the real binary over real sockets: `/metrics`
//! counts what a test did, `/readyz` follows the store (a real `redis-server` stopped and
//! started again), `--metrics` moves or removes the metrics, and `--log-format json`
//! writes one JSON object a line.

mod common;

use std::time::Duration;

use common::http::{get, get_as, Scrape};
use common::redis::Redis;
use common::{eventually, Server, Terminal, TestResult, WsClient};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// How long a test waits for a gauge or a probe to change.
const SETTLE: Duration = Duration::from_secs(10);

/// Waits until `/metrics` on `server` shows `series` at `value`.
async fn metric_reaches(server: &Server, series: &str, value: f64) -> TestResult<Scrape> {
    let addr = server.http;
    eventually(&format!("{series} = {value}"), SETTLE, || async move {
        let scrape = Scrape::take(addr).await?;
        Ok((scrape.value(series) == value).then_some(scrape))
    })
    .await
}

/// Connect, log in, join, post: each counter moves by what the test did, the gauges show
/// what is open, and a refused post counts under its code and its limit.
#[tokio::test]
async fn metrics_count_what_the_test_did() -> TestResult {
    // Bursts of 4 posts, refilled slowly: the fifth post in a row is refused.
    let server = Server::start(&["--message-rate", "4/0.01"])?;
    let before = Scrape::take(server.http).await?;
    assert_eq!(before.value("flack_sessions"), 0.0);
    assert_eq!(
        before.value(r#"flack_connections_open{transport="ws"}"#),
        0.0
    );

    let mut alice = WsClient::login(server.http, "alice").await?;
    let mut bob = WsClient::connect(server.http).await?;
    let login = bob.ok(json!({"type": "login", "name": "bob"})).await?;
    let token = login["token"].as_str().ok_or("no token")?;
    // A second connection of bob's comes back with the token: a resume.
    let mut bob_again = WsClient::connect(server.http).await?;
    bob_again
        .ok(json!({"type": "login", "token": token}))
        .await?;
    alice
        .ok(json!({"type": "create_channel", "name": "ops"}))
        .await?;
    alice.ok(json!({"type": "join", "room": "ops"})).await?;
    bob.ok(json!({"type": "join", "room": "ops"})).await?;
    for n in 0..4 {
        alice
            .ok(json!({"type": "post", "room": "ops", "text": format!("m{n}")}))
            .await?;
    }
    let refused = alice
        .request(json!({"type": "post", "room": "ops", "text": "one too many"}))
        .await?;
    assert_eq!(refused["code"], "rate_limited", "{refused}");
    let refused = bob
        .request(json!({"type": "post", "room": "nowhere", "text": "hi"}))
        .await?;
    assert_eq!(refused["code"], "not_joined", "{refused}");
    bob.event(|f| f["type"] == "message" && f["message"]["text"] == "m3")
        .await?;
    let mut terminal = Terminal::connect(server.tcp.ok_or("no TCP listener")?).await?;
    terminal.send("/nick carol").await?;
    terminal
        .line_with("welcome, carol")
        .await?
        .ok_or("the terminal was dropped")?;

    // Counted from the accept, before it registers.
    let irc = Terminal::connect(server.irc.ok_or("no IRC listener")?).await?;

    metric_reaches(&server, r#"flack_connections_open{transport="irc"}"#, 1.0).await?;
    let after = metric_reaches(&server, r#"flack_connections_open{transport="tcp"}"#, 1.0).await?;
    let grew = |series: &str| after.since(&before, series);
    assert_eq!(
        after.value(r#"flack_connections_open{transport="ws"}"#),
        3.0
    );
    assert_eq!(after.value("flack_sessions"), 4.0);
    assert_eq!(after.value("flack_rooms_live"), 1.0);
    assert_eq!(grew(r#"flack_logins_total{kind="new"}"#), 3.0);
    assert_eq!(grew(r#"flack_logins_total{kind="resume"}"#), 1.0);
    assert_eq!(grew("flack_messages_posted_total"), 4.0);
    // Four messages, each to both followers (alice gets her own).
    assert_eq!(grew("flack_messages_delivered_total"), 8.0);
    assert_eq!(grew("flack_message_deliveries_count"), 4.0);
    assert_eq!(grew("flack_message_deliveries_sum"), 8.0);
    assert_eq!(grew(r#"flack_message_deliveries_bucket{le="1"}"#), 0.0);
    assert_eq!(grew(r#"flack_message_deliveries_bucket{le="2"}"#), 4.0);
    assert_eq!(grew("flack_join_duration_seconds_count"), 2.0);
    assert_eq!(grew("flack_post_duration_seconds_count"), 4.0);
    assert!(grew("flack_post_duration_seconds_sum") > 0.0);
    assert_eq!(grew(r#"flack_errors_total{code="rate_limited"}"#), 1.0);
    assert_eq!(grew(r#"flack_errors_total{code="not_joined"}"#), 1.0);
    assert_eq!(
        grew(r#"flack_rate_limited_total{limit="message_rate"}"#),
        1.0
    );
    assert_eq!(grew("flack_slow_consumer_disconnects_total"), 0.0);

    // Closing gives the gauges back.
    drop((alice, bob, bob_again, terminal, irc));
    metric_reaches(&server, "flack_sessions", 0.0).await?;
    for transport in ["ws", "tcp", "irc"] {
        let series = format!(r#"flack_connections_open{{transport="{transport}"}}"#);
        metric_reaches(&server, &series, 0.0).await?;
    }
    Ok(())
}

/// A client that stops reading fills its session queue and is disconnected as a slow
/// consumer: counted once. The write timeout is long, so the queue overflows first.
#[tokio::test]
async fn a_slow_consumer_is_counted() -> TestResult {
    let server = Server::start(&[
        "--session-queue-hard-bytes",
        "256KiB",
        "--session-queue-soft-bytes",
        "256KiB",
        "--write-timeout",
        "60s",
        "--max-message-bytes",
        "60000",
        "--message-rate",
        "100000/100000",
    ])?;
    let mut poster = WsClient::login(server.http, "poster").await?;
    let mut stalled = WsClient::login(server.http, "stalled").await?;
    poster
        .ok(json!({"type": "create_channel", "name": "firehose"}))
        .await?;
    for client in [&mut poster, &mut stalled] {
        client
            .ok(json!({"type": "join", "room": "firehose"}))
            .await?;
    }
    // `stalled` reads nothing from here on. About 30 MB at most: far more than the socket
    // buffers and the queue hold.
    let big = "z".repeat(59_000);
    let mut counted = 0.0;
    for n in 0..500 {
        poster
            .ok(json!({"type": "post", "room": "firehose", "text": format!("{n} {big}")}))
            .await?;
        poster.events.clear();
        if n % 10 == 9 {
            counted = Scrape::take(server.http)
                .await?
                .value("flack_slow_consumer_disconnects_total");
            if counted > 0.0 {
                break;
            }
        }
    }
    assert_eq!(counted, 1.0, "the stalled client was never disconnected");
    metric_reaches(&server, "flack_sessions", 1.0).await?;
    drop(stalled);
    Ok(())
}

/// `/metrics` and `/readyz` are behind the same `Host` check as the page.
#[tokio::test]
async fn probes_and_metrics_answer_only_for_the_servers_names() -> TestResult {
    let server = Server::start(&[])?;
    let port = server.http.port();
    for path in ["/metrics", "/readyz"] {
        let (status, _) = get_as(server.http, path, &format!("evil.example:{port}")).await?;
        assert_eq!(status, 421, "{path}");
        let (status, _) = get_as(server.http, path, &format!("localhost:{port}")).await?;
        assert_eq!(status, 200, "{path}");
    }
    Ok(())
}

/// The readiness body for a healthy node.
fn ready() -> Value {
    json!({"ready": true, "store": "ok", "shutting_down": false})
}

/// `/readyz` answers 200 with a SQLite store; `/healthz` stays plain liveness.
#[tokio::test]
async fn readyz_is_200_with_a_working_store() -> TestResult {
    let dir = common::scratch_dir("readyz");
    let server = Server::start_with_data(&dir, &[])?;
    let (status, body) = get(server.http, "/readyz").await?;
    assert_eq!(status, 200, "{body}");
    assert_eq!(serde_json::from_str::<Value>(&body)?, ready());
    assert_eq!(
        get(server.http, "/healthz").await?,
        (200, "ok\n".to_owned())
    );
    // A post makes the store write a batch, which is timed.
    let mut alice = WsClient::login(server.http, "alice").await?;
    alice
        .ok(json!({"type": "create_channel", "name": "disk"}))
        .await?;
    let addr = server.http;
    eventually("a timed store write", SETTLE, || async move {
        let scrape = Scrape::take(addr).await?;
        Ok((scrape.value("flack_store_write_duration_seconds_count") > 0.0).then_some(()))
    })
    .await?;
    let scrape = Scrape::take(server.http).await?;
    assert_eq!(scrape.value("flack_store_write_failures_total"), 0.0);
    Ok(())
}

/// With Redis as the store: 200 while it runs, 503 saying `unreachable` once it is
/// stopped (liveness stays 200), and 200 again once it is back.
#[tokio::test]
async fn readyz_follows_redis_going_away_and_coming_back() -> TestResult {
    let Some(mut redis) = Redis::start()? else {
        return Ok(());
    };
    let server = Server::start(&["--redis", &redis.url()])?;
    let addr = server.http;
    let (status, body) = get(addr, "/readyz").await?;
    assert_eq!(status, 200, "{body}");
    assert_eq!(serde_json::from_str::<Value>(&body)?, ready());
    let mut alice = WsClient::login(addr, "alice").await?;
    alice.ok(json!({"type": "list_channels"})).await?;
    let scrape = Scrape::take(addr).await?;
    assert_eq!(scrape.value("flack_redis_connected"), 1.0);
    assert!(
        scrape.value(r#"flack_redis_command_duration_seconds_count{command="register"}"#) >= 1.0
    );

    redis.kill();
    let body = eventually("/readyz to say 503", SETTLE, || async move {
        let (status, body) = get(addr, "/readyz").await?;
        Ok((status == 503).then_some(body))
    })
    .await?;
    assert_eq!(
        serde_json::from_str::<Value>(&body)?,
        json!({"ready": false, "store": "unreachable", "shutting_down": false})
    );
    assert_eq!(get(addr, "/healthz").await?.0, 200);
    let down = Scrape::take(addr).await?;
    assert_eq!(down.value("flack_redis_connected"), 0.0);
    let refused = WsClient::connect(addr)
        .await?
        .request(json!({"type": "login", "name": "bob"}))
        .await?;
    assert_eq!(refused["code"], "unavailable", "{refused}");
    let failures = Scrape::take(addr).await?;
    assert!(
        failures.value(r#"flack_redis_command_failures_total{command="register"}"#) >= 1.0,
        "{:?}",
        failures.0
    );

    redis.restart()?;
    eventually(
        "/readyz to say 200 again",
        Duration::from_secs(20),
        || async move {
            let (status, _) = get(addr, "/readyz").await?;
            Ok((status == 200).then_some(()))
        },
    )
    .await?;
    assert_eq!(
        Scrape::take(addr).await?.value("flack_redis_connected"),
        1.0
    );
    Ok(())
}

/// Once shutdown begins, `/readyz` says 503 `shutting_down` to a connection still open
/// (a load balancer's kept-alive one), while a WebSocket client that does not answer its
/// close keeps the server in its shutdown (`--close-linger`).
#[tokio::test]
async fn readyz_is_503_during_shutdown() -> TestResult {
    let mut server = Server::start(&["--close-linger", "5s"])?;
    let mut kept = TcpStream::connect(server.http).await?;
    let host = server.http.to_string();
    let (status, body) = get_on(&mut kept, &host).await?;
    assert_eq!(
        (status, serde_json::from_str::<Value>(&body)?),
        (200, ready())
    );
    // Logged in and never reading again: it holds the shutdown for the linger.
    let _silent = WsClient::login(server.http, "silent").await?;
    server.terminate()?;
    // The server hears the signal a moment later: until then the probe says 200.
    let deadline = std::time::Instant::now() + SETTLE;
    let body = loop {
        let (status, body) = get_on(&mut kept, &host).await?;
        if status == 503 {
            break body;
        }
        if std::time::Instant::now() > deadline {
            return Err(format!("/readyz still says {status} after SIGTERM: {body}").into());
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    };
    assert_eq!(
        serde_json::from_str::<Value>(&body)?,
        json!({"ready": false, "store": "ok", "shutting_down": true})
    );
    server.wait_exit(Duration::from_secs(30))?;
    Ok(())
}

/// `GET /readyz` on a kept-alive connection: the status and the body (read to its
/// `content-length`).
async fn get_on(stream: &mut TcpStream, host: &str) -> TestResult<(u16, String)> {
    let request = format!("GET /readyz HTTP/1.1\r\nHost: {host}\r\n\r\n");
    stream.write_all(request.as_bytes()).await?;
    let mut received = Vec::new();
    loop {
        let text = String::from_utf8_lossy(&received).into_owned();
        if let Some((head, body)) = text.split_once("\r\n\r\n") {
            let length: usize = head
                .lines()
                .find_map(|l| {
                    l.to_ascii_lowercase()
                        .strip_prefix("content-length:")
                        .map(|v| v.trim().to_owned())
                })
                .ok_or("no content-length")?
                .parse()?;
            if body.len() >= length {
                let status = head.split(' ').nth(1).ok_or("no status")?.parse()?;
                return Ok((status, body[..length].to_owned()));
            }
        }
        let mut chunk = [0u8; 1024];
        let n = tokio::time::timeout(SETTLE, stream.read(&mut chunk)).await??;
        if n == 0 {
            return Err("the kept-alive connection was closed".into());
        }
        received.extend_from_slice(&chunk[..n]);
    }
}

/// `--metrics ADDR` serves them there and not on the web listener; `--metrics off`
/// serves none at all.
#[tokio::test]
async fn metrics_on_their_own_address_or_off() -> TestResult {
    let server = Server::start(&["--metrics", "127.0.0.1:0"])?;
    let own = server.metrics.ok_or("no `metrics listening on` line")?;
    let (status, body) = get(own, "/metrics").await?;
    assert_eq!(status, 200);
    assert!(body.contains("flack_sessions"), "{body}");
    assert_eq!(get(server.http, "/metrics").await?.0, 404);
    assert_eq!(get(own, "/readyz").await?.0, 404);
    let (status, _) = get_as(own, "/metrics", "evil.example").await?;
    assert_eq!(status, 421);

    let off = Server::start(&["--metrics", "off"])?;
    assert!(off.metrics.is_none());
    assert_eq!(get(off.http, "/metrics").await?.0, 404);
    assert_eq!(get(off.http, "/readyz").await?.0, 200);
    Ok(())
}

/// `--log-format json`: every line the server logs is one JSON object with a level and
/// fields, a connection's span included.
#[tokio::test]
async fn json_logs_are_one_object_a_line() -> TestResult {
    let mut server = Server::start(&["--log-format", "json"])?;
    let mut alice = WsClient::login(server.http, "alice").await?;
    alice
        .ok(json!({"type": "create_channel", "name": "logs"}))
        .await?;
    drop(alice);
    server.terminate()?;
    server.wait_exit(SETTLE)?;
    let log = std::fs::read_to_string(&server.log)?;
    let lines: Vec<&str> = log.lines().filter(|l| !l.trim().is_empty()).collect();
    assert!(lines.len() >= 3, "too few log lines: {log}");
    for line in &lines {
        let entry: Value =
            serde_json::from_str(line).map_err(|e| format!("not a JSON line ({e}): {line}"))?;
        assert!(entry["level"].is_string(), "{line}");
        assert!(entry["fields"].is_object(), "{line}");
        assert!(entry["timestamp"].is_string(), "{line}");
    }
    assert!(
        lines.iter().any(|l| l.contains("\"SIGTERM received\"")),
        "{log}"
    );
    Ok(())
}
