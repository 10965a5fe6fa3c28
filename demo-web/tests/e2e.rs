//! End-to-end tests of the `demo-web` binary as a process: flags and `--help`, the
//! address lines on port 0, `/healthz` and the embedded front end with its headers, a TCP
//! user and a WebSocket user chatting both ways (issue 5), an IRC user with both (issue
//! 23), and SIGTERM closing every client (WebSocket close 1001, the TCP shutdown line, the
//! IRC `ERROR`) before a prompt exit 0.
//!
//! Everything runs over real sockets on 127.0.0.1 against the real binary; each test
//! starts its own server, killed on drop.

mod common;

use std::net::SocketAddr;
use std::process::Command;
use std::time::Duration;

use common::{Server, Terminal, TestResult, WsClient};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

/// A raw HTTP/1.1 GET: the status line, the headers (lower-cased names) and the body.
async fn get(addr: SocketAddr, path: &str) -> TestResult<(String, Vec<(String, String)>, String)> {
    let mut stream = TcpStream::connect(addr).await?;
    stream
        .write_all(
            format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").as_bytes(),
        )
        .await?;
    let mut raw = String::new();
    tokio::time::timeout(Duration::from_secs(10), stream.read_to_string(&mut raw)).await??;
    let (head, body) = raw.split_once("\r\n\r\n").ok_or("no end of headers")?;
    let mut lines = head.lines();
    let status = lines.next().ok_or("no status line")?.to_owned();
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    Ok((status, headers, body.to_owned()))
}

fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

#[test]
fn help_documents_every_flag_with_env_and_default() -> TestResult {
    let out = Command::new(env!("CARGO_BIN_EXE_demo-web"))
        .arg("--help")
        .output()?;
    assert!(out.status.success());
    let help = String::from_utf8(out.stdout)?;
    let flags = [
        ("--listen", "FLACK_LISTEN", Some("127.0.0.1:8080")),
        ("--tcp", "FLACK_TCP", Some("127.0.0.1:7878")),
        ("--irc", "FLACK_IRC", Some("127.0.0.1:6667")),
        (
            "--irc-server-name",
            "FLACK_IRC_SERVER_NAME",
            Some("flack.irc"),
        ),
        (
            "--irc-ping-interval",
            "FLACK_IRC_PING_INTERVAL",
            Some("90s"),
        ),
        ("--irc-ping-timeout", "FLACK_IRC_PING_TIMEOUT", Some("60s")),
        ("--allowed-origin", "FLACK_ALLOWED_ORIGINS", None),
        ("--public-host", "FLACK_PUBLIC_HOSTS", None),
        ("--data-dir", "FLACK_DATA_DIR", Some("./flack-data")),
        ("--in-memory", "FLACK_IN_MEMORY", None),
        ("--redis", "FLACK_REDIS", None),
        ("--channel", "FLACK_CHANNELS", None),
        ("--log-level", "FLACK_LOG_LEVEL", Some("info")),
        ("--history", "FLACK_HISTORY", Some("100")),
        (
            "--max-message-bytes",
            "FLACK_MAX_MESSAGE_BYTES",
            Some("4096"),
        ),
        (
            "--max-display-name-chars",
            "FLACK_MAX_DISPLAY_NAME_CHARS",
            Some("32"),
        ),
        (
            "--max-channel-name-chars",
            "FLACK_MAX_CHANNEL_NAME_CHARS",
            Some("32"),
        ),
        (
            "--session-queue-hard-bytes",
            "FLACK_SESSION_QUEUE_HARD_BYTES",
            Some("16MiB"),
        ),
        (
            "--session-queue-soft-bytes",
            "FLACK_SESSION_QUEUE_SOFT_BYTES",
            Some("4MiB"),
        ),
        (
            "--session-queue-soft-grace",
            "FLACK_SESSION_QUEUE_SOFT_GRACE",
            Some("30s"),
        ),
        ("--message-rate", "FLACK_MESSAGE_RATE", Some("20/5")),
        (
            "--channel-create-rate",
            "FLACK_CHANNEL_CREATE_RATE",
            Some("5/0.1"),
        ),
        ("--typing-interval", "FLACK_TYPING_INTERVAL", Some("2s")),
        ("--max-channels", "FLACK_MAX_CHANNELS", Some("10000")),
        ("--max-sessions", "FLACK_MAX_SESSIONS", Some("100000")),
        ("--name-hold", "FLACK_NAME_HOLD", Some("7d")),
        (
            "--login-rate-per-address",
            "FLACK_LOGIN_RATE_PER_ADDRESS",
            Some("20/0.2"),
        ),
        ("--max-users", "FLACK_MAX_USERS", Some("1000000")),
        ("--room-idle", "FLACK_ROOM_IDLE", Some("5m")),
        ("--max-connections", "FLACK_MAX_CONNECTIONS", Some("100000")),
        (
            "--max-connections-per-address",
            "FLACK_MAX_CONNECTIONS_PER_ADDRESS",
            Some("64"),
        ),
        (
            "--connect-rate-per-address",
            "FLACK_CONNECT_RATE_PER_ADDRESS",
            Some("20/5"),
        ),
        ("--trusted-proxy", "FLACK_TRUSTED_PROXIES", None),
        (
            "--forwarded-header",
            "FLACK_FORWARDED_HEADER",
            Some("X-Forwarded-For"),
        ),
        ("--max-frame-bytes", "FLACK_MAX_FRAME_BYTES", Some("65536")),
        ("--max-line-bytes", "FLACK_MAX_LINE_BYTES", Some("8192")),
        ("--idle-timeout", "FLACK_IDLE_TIMEOUT", Some("60s")),
        ("--tcp-idle-timeout", "FLACK_TCP_IDLE_TIMEOUT", Some("30m")),
        (
            "--heartbeat-interval",
            "FLACK_HEARTBEAT_INTERVAL",
            Some("20s"),
        ),
        ("--write-timeout", "FLACK_WRITE_TIMEOUT", Some("10s")),
        ("--close-linger", "FLACK_CLOSE_LINGER", Some("1s")),
        ("--shutdown-timeout", "FLACK_SHUTDOWN_TIMEOUT", Some("10s")),
        ("--max-file-bytes", "FLACK_MAX_FILE_BYTES", Some("10MiB")),
        (
            "--max-files-per-message",
            "FLACK_MAX_FILES_PER_MESSAGE",
            Some("10"),
        ),
        (
            "--max-message-file-bytes",
            "FLACK_MAX_MESSAGE_FILE_BYTES",
            Some("25MiB"),
        ),
        (
            "--upload-bytes-per-hour",
            "FLACK_UPLOAD_BYTES_PER_HOUR",
            Some("100MiB"),
        ),
        ("--upload-wait", "FLACK_UPLOAD_WAIT", Some("1h")),
        (
            "--upload-bytes-in-flight",
            "FLACK_UPLOAD_BYTES_IN_FLIGHT",
            Some("256MiB"),
        ),
        ("--public-url", "FLACK_PUBLIC_URL", None),
    ];
    for internal in [
        "--channel-workers",
        "--connection-workers",
        "--batch-scheduling",
        "--park-yield-window",
        "--post-yield-interval",
        "--post-yield-backlog",
    ] {
        assert!(
            !help.contains(internal),
            "{internal} is a scheduler internal, not an operator's setting"
        );
    }
    for (flag, env, default) in flags {
        let start = help
            .find(&format!("{flag} "))
            // A switch (`--in-memory`) takes no value: its name ends the line.
            .or_else(|| help.find(&format!("{flag}\n")))
            .ok_or_else(|| format!("{flag} is not in --help:\n{help}"))?;
        let end = help[start + 2..]
            .find("\n  -")
            .map_or(help.len(), |i| start + 2 + i);
        let entry = &help[start..end];
        assert!(
            entry.contains(&format!("[env: {env}")),
            "{flag}: no {env} in {entry:?}"
        );
        if let Some(default) = default {
            assert!(
                entry.contains(&format!("[default: {default}]")),
                "{flag}: no default {default} in {entry:?}"
            );
        }
    }
    Ok(())
}

#[test]
fn a_setting_the_server_cannot_work_with_stops_the_start_naming_its_flag() -> TestResult {
    // A zero heartbeat used to pass and then panic every WebSocket task after `hello`.
    for (flag, value) in [
        ("--heartbeat-interval", "0s"),
        ("--history", "0"),
        ("--public-host", "https://chat.example.com"),
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_demo-web"))
            .args([
                flag,
                value,
                "--listen",
                "127.0.0.1:0",
                "--tcp",
                "off",
                "--irc",
                "off",
            ])
            .output()?;
        assert!(!out.status.success(), "{flag} {value} started the server");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(flag), "{flag}: {stderr}");
        assert!(out.stdout.is_empty(), "nothing was bound: {:?}", out.stdout);
    }
    Ok(())
}

#[tokio::test]
async fn healthz_and_the_front_end_are_served_with_their_headers() -> TestResult {
    let server = Server::start(&[])?;
    let (status, _, body) = get(server.http, "/healthz").await?;
    assert!(status.contains(" 200 "), "{status}");
    assert_eq!(body.trim(), "ok");

    for (path, content_type, marker) in [
        ("/", "text/html", "<!doctype html>"),
        ("/app.js", "text/javascript", "import"),
        ("/protocol.js", "text/javascript", "export class ChatClient"),
        ("/app.css", "text/css", ":root"),
        ("/favicon.svg", "image/svg+xml", "<svg"),
    ] {
        let (status, headers, body) = get(server.http, path).await?;
        assert!(status.contains(" 200 "), "{path}: {status}");
        let ct = header(&headers, "content-type").ok_or("no content type")?;
        assert!(ct.starts_with(content_type), "{path}: {ct}");
        let csp = header(&headers, "content-security-policy").ok_or("no CSP")?;
        assert!(csp.contains("default-src 'self'"), "{path}: {csp}");
        assert!(!csp.contains("unsafe-inline"), "{path}: {csp}");
        assert_eq!(header(&headers, "x-content-type-options"), Some("nosniff"));
        assert!(body.contains(marker), "{path} lacks {marker:?}");
    }
    let (status, _, _) = get(server.http, "/nope").await?;
    assert!(status.contains(" 404 "), "{status}");
    Ok(())
}

#[tokio::test]
async fn channels_named_by_flag_exist_at_start() -> TestResult {
    let server = Server::start(&["--channel", "general", "--channel", "random"])?;
    let mut web = WsClient::login(server.http, "early").await?;
    let list = web.ok(json!({"type": "list_channels"})).await?;
    let names: Vec<&str> = list["channels"]
        .as_array()
        .ok_or("no channel list")?
        .iter()
        .filter_map(|c| c["name"].as_str())
        .collect();
    assert_eq!(names, ["general", "random"]);
    Ok(())
}

#[tokio::test]
async fn an_unreachable_redis_stops_the_start_with_a_clear_error() -> TestResult {
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let out = Command::new(env!("CARGO_BIN_EXE_demo-web"))
        .args(["--listen", "127.0.0.1:0", "--tcp", "off", "--irc", "off"])
        .args(["--redis", &format!("redis://127.0.0.1:{port}/")])
        .output()?;
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("unavailable") || stderr.contains("redis"),
        "{stderr}"
    );
    Ok(())
}

#[tokio::test]
async fn tcp_off_starts_no_tcp_listener() -> TestResult {
    let server = Server::start(&["--tcp", "off", "--irc", "off"])?;
    assert_eq!(server.tcp, None);
    assert_eq!(server.irc, None);
    let (status, _, _) = get(server.http, "/healthz").await?;
    assert!(status.contains(" 200 "), "{status}");
    Ok(())
}

#[tokio::test]
async fn tcp_and_websocket_users_see_each_other_both_ways() -> TestResult {
    let server = Server::start(&[])?;
    let tcp = server.tcp.ok_or("no TCP listener")?;

    let mut web = WsClient::login(server.http, "webby").await?;
    web.ok(json!({"type": "create_channel", "name": "bridge"}))
        .await?;
    web.ok(json!({"type": "join", "room": "bridge"})).await?;

    let mut term = Terminal::connect(tcp).await?;
    term.send("/nick termy").await?;
    term.send("/join bridge").await?;
    // The join is done once the web user sees the terminal user arrive.
    web.event(|f| {
        f["type"] == "presence"
            && f["changes"]
                .as_array()
                .is_some_and(|c| c.iter().any(|c| c["user"]["name"] == "termy"))
    })
    .await?;

    web.ok(json!({"type": "post", "room": "bridge", "text": "hello from the web"}))
        .await?;
    let line = term
        .line_with("hello from the web")
        .await?
        .ok_or("the TCP client was disconnected")?;
    assert!(
        line.contains("#bridge") && line.contains("<webby>"),
        "{line}"
    );

    term.send("hello from the terminal").await?;
    let event = web
        .event(|f| f["type"] == "message" && f["message"]["text"] == "hello from the terminal")
        .await?;
    assert_eq!(event["room"], "bridge");
    assert_eq!(event["message"]["author"]["name"], "termy");
    Ok(())
}

/// A script registering users from one address (issue 22) is held to
/// `--login-rate-per-address`, and one opening connections to
/// `--max-connections-per-address`; everyone made before is kept.
#[tokio::test]
async fn the_per_address_flags_hold_a_script_on_one_address() -> TestResult {
    let server = Server::start(&[
        "--login-rate-per-address",
        "2/0.001",
        "--max-connections-per-address",
        "3",
    ])?;
    let tcp = server.tcp.ok_or("no TCP listener")?;
    let mut terms = Vec::new();
    for name in ["bot0", "bot1", "bot2"] {
        let mut term = Terminal::connect(tcp).await?;
        term.send(name).await?;
        let answer = loop {
            let line = term.line_with("").await?.ok_or("disconnected")?;
            if line.starts_with("= welcome, ") || line.starts_with("! ") {
                break line;
            }
        };
        terms.push((answer, term));
    }
    assert!(terms[0].0.starts_with("= welcome, bot0"), "{}", terms[0].0);
    assert!(terms[1].0.starts_with("= welcome, bot1"), "{}", terms[1].0);
    assert!(
        terms[2]
            .0
            .starts_with("! error rate_limited: slow down: login_rate_per_address"),
        "{}",
        terms[2].0
    );
    let mut fourth = Terminal::connect(tcp).await?;
    let refused = fourth
        .line_with("! closed")
        .await?
        .ok_or("closed without a line")?;
    assert!(
        refused.starts_with("! closed too_many_connections: your address has 3 connections open"),
        "{refused}"
    );
    // The users made before are served.
    let (_, bot0) = &mut terms[0];
    bot0.send("/create kept").await?;
    bot0.line_with("+ #kept created")
        .await?
        .ok_or("bot0 lost")?;
    Ok(())
}

/// Issue 23: an IRC user, a web user and a terminal user in one channel, each seeing the
/// others' messages; an IRC client on the line port is sent to the IRC port.
#[tokio::test]
async fn irc_web_and_tcp_users_chat_in_one_channel() -> TestResult {
    let server = Server::start(&["--channel", "general"])?;
    let irc_addr = server.irc.ok_or("no IRC listener")?;
    let tcp = server.tcp.ok_or("no TCP listener")?;

    let mut irc = Terminal::connect(irc_addr).await?;
    irc.send("NICK ircy\r\nUSER ircy 0 * :ircy").await?;
    irc.line_with(" 001 ircy ").await?.ok_or("no welcome")?;
    irc.send("JOIN #general").await?;
    irc.line_with(" 366 ircy #general ")
        .await?
        .ok_or("no end of names")?;

    let mut web = WsClient::login(server.http, "Web User").await?;
    web.ok(json!({"type": "join", "room": "general"})).await?;
    irc.line_with("JOIN #general")
        .await?
        .ok_or("no JOIN of the web user")?;
    web.ok(json!({"type": "post", "room": "general", "text": "hello from the web"}))
        .await?;
    let line = irc
        .line_with("hello from the web")
        .await?
        .ok_or("the IRC client was disconnected")?;
    assert!(
        line.starts_with(":Web\\20User!") && line.contains(" PRIVMSG #general :"),
        "{line}"
    );

    let mut term = Terminal::connect(tcp).await?;
    term.send("termy").await?;
    term.send("/join general").await?;
    irc.line_with(":termy!")
        .await?
        .ok_or("no JOIN of the terminal user")?;
    irc.send("PRIVMSG #general :hello from irc").await?;
    let event = web
        .event(|f| f["type"] == "message" && f["message"]["text"] == "hello from irc")
        .await?;
    assert_eq!(event["message"]["author"]["name"], "ircy");
    term.line_with("<ircy> hello from irc")
        .await?
        .ok_or("no line on the terminal")?;

    // The line port sends IRC clients to the IRC port.
    let mut lost = Terminal::connect(tcp).await?;
    lost.send("CAP LS 302").await?;
    let error = lost.line_with("ERROR").await?.ok_or("no ERROR")?;
    assert_eq!(
        error,
        format!("ERROR :this is the plain-text port; IRC clients connect to {irc_addr}")
    );
    Ok(())
}

/// WebSocket clients connected when the server is stopped.
const SOCKETS_AT_SHUTDOWN: usize = 200;

#[tokio::test]
async fn sigterm_closes_clients_and_exits_zero_promptly() -> TestResult {
    // One address plays all the clients: lift its per-address limits.
    let mut server = Server::start(&[
        "--max-connections-per-address",
        "1000",
        "--connect-rate-per-address",
        "1000/1000",
        "--login-rate-per-address",
        "1000/1000",
    ])?;
    let tcp = server.tcp.ok_or("no TCP listener")?;
    // Many sockets, so that their tasks are still closing when the HTTP server is told to
    // stop: every one of them must get its close frame all the same.
    let mut web = Vec::new();
    for i in 0..SOCKETS_AT_SHUTDOWN {
        web.push(WsClient::login(server.http, &format!("leaving{i}")).await?);
    }
    let mut term = Terminal::connect(tcp).await?;
    term.send("/nick alsoleaving").await?;
    term.line_with("alsoleaving").await?;
    let mut irc = Terminal::connect(server.irc.ok_or("no IRC listener")?).await?;
    irc.send("NICK ircleaving\r\nUSER i 0 * :i").await?;
    irc.line_with(" 001 ").await?.ok_or("no welcome")?;

    server.terminate()?;
    for (i, web) in web.iter_mut().enumerate() {
        let close = web
            .close_frame()
            .await
            .map_err(|e| format!("socket {i}: {e}"))?
            .ok_or("a close frame without a code")?;
        assert_eq!(close.code, CloseCode::Away, "socket {i}: {close:?}");
    }
    let last = term.line_with("! closed").await?;
    assert!(last.is_some(), "no shutdown line; saw {:?}", term.seen);
    let last = irc.line_with("ERROR :Closing link: shutting_down").await?;
    assert!(last.is_some(), "no IRC ERROR; saw {:?}", irc.seen);

    let status = tokio::task::spawn_blocking(move || server.wait_exit(Duration::from_secs(10)))
        .await?
        .map_err(|e| e.to_string())?;
    assert!(status.success(), "exit status {status}");
    Ok(())
}
