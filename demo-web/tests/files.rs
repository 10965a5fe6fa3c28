//! Attachments over the real server: `POST /files` with the resume token, a post that
//! carries the file, another user downloading the same bytes, the line port showing the
//! file as a link, and the hostile uploads: a body far over the limit is cut without
//! being read (declared or chunked), an HTML file named `.png` is served as a download,
//! never inline, and a file is gone with its message.

mod common;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use common::{Server, Terminal, TestResult, WsClient, PNG};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// An HTTP answer: status, headers (lower-case names), body bytes.
struct Answer {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    fn json(&self) -> TestResult<Value> {
        Ok(serde_json::from_slice(&self.body)?)
    }
}

/// Reads one HTTP/1.1 answer from `stream` until the server closes it.
async fn read_answer(stream: &mut TcpStream) -> TestResult<Answer> {
    let mut raw = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut raw)).await??;
    let end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or("no end of headers")?;
    let head = String::from_utf8(raw[..end].to_vec())?;
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .ok_or("no status")?
        .parse()?;
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    Ok(Answer {
        status,
        headers,
        body: raw[end + 4..].to_vec(),
    })
}

/// `POST /files?name=NAME` with `token` (if any) and `body`.
async fn upload(
    http: SocketAddr,
    token: Option<&str>,
    name: &str,
    body: &[u8],
) -> TestResult<Answer> {
    let mut stream = TcpStream::connect(http).await?;
    let auth = token.map_or(String::new(), |t| format!("Authorization: Bearer {t}\r\n"));
    let head = format!(
        "POST /files?name={name} HTTP/1.1\r\nHost: {http}\r\n{auth}Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).await?;
    stream.write_all(body).await?;
    read_answer(&mut stream).await
}

async fn download(http: SocketAddr, path: &str) -> TestResult<Answer> {
    let mut stream = TcpStream::connect(http).await?;
    let head = format!("GET {path} HTTP/1.1\r\nHost: {http}\r\nConnection: close\r\n\r\n");
    stream.write_all(head.as_bytes()).await?;
    read_answer(&mut stream).await
}

/// The resume token of a login reply.
fn token(login: &Value) -> TestResult<String> {
    Ok(login["token"].as_str().ok_or("no token")?.to_owned())
}

#[tokio::test]
async fn a_file_goes_from_one_user_to_another_and_to_the_line_port() -> TestResult {
    let server = Server::start(&[])?;
    let http = server.http;
    let mut alice = WsClient::connect(http).await?;
    let login = alice.ok(json!({"type": "login", "name": "alice"})).await?;
    let alice_token = token(&login)?;
    alice
        .ok(json!({"type": "create_channel", "name": "pics"}))
        .await?;
    alice.ok(json!({"type": "join", "room": "pics"})).await?;
    let mut bob = WsClient::login(http, "bob").await?;
    bob.ok(json!({"type": "join", "room": "pics"})).await?;
    let mut term = Terminal::connect(server.tcp.ok_or("no TCP listener")?).await?;
    term.send("carol").await?;
    term.send("/join pics").await?;
    term.line_with("= joined").await?.ok_or("no join")?;

    // No token, a wrong one: 401, nothing kept.
    assert_eq!(upload(http, None, "x.png", PNG).await?.status, 401);
    assert_eq!(upload(http, Some("nope"), "x.png", PNG).await?.status, 401);

    let answer = upload(http, Some(&alice_token), "cat.png", PNG).await?;
    assert_eq!(
        answer.status,
        201,
        "{}",
        String::from_utf8_lossy(&answer.body)
    );
    let file = answer.json()?["file"].clone();
    assert_eq!(file["kind"], "png");
    assert_eq!(file["size"], PNG.len());
    let id = file["id"].as_str().ok_or("no id")?.to_owned();

    let posted = alice
        .ok(json!({"type": "post", "room": "pics", "text": "", "files": [id]}))
        .await?;
    assert_eq!(posted["message"]["files"][0]["id"], id.as_str());
    let seen = bob
        .event(|f| f["type"] == "message" && f["message"]["files"].is_array())
        .await?;
    assert_eq!(seen["message"]["files"][0]["name"], "cat.png");

    // Bob downloads the same bytes, as an image a page may show.
    let got = download(http, &format!("/files/{id}")).await?;
    assert_eq!(got.status, 200);
    assert_eq!(got.body, PNG);
    assert_eq!(got.header("content-type"), Some("image/png"));
    assert_eq!(got.header("x-content-type-options"), Some("nosniff"));
    assert!(got
        .header("content-disposition")
        .is_some_and(|d| d.starts_with("inline")));

    // The line port shows the file as its name, size and link.
    let line = term.line_with(&id).await?.ok_or("no file line")?;
    assert_eq!(
        line,
        format!(
            "% #pics {} cat.png ({} B) http://{http}/files/{id}",
            posted["message"]["id"],
            PNG.len()
        )
    );

    // Gone with its message.
    let message_id = posted["message"]["id"].clone();
    alice
        .ok(json!({"type": "delete", "room": "pics", "message_id": message_id}))
        .await?;
    assert_eq!(download(http, &format!("/files/{id}")).await?.status, 404);
    assert_eq!(download(http, "/files/not-an-id").await?.status, 404);
    Ok(())
}

#[tokio::test]
async fn an_html_file_named_png_is_only_ever_a_download() -> TestResult {
    let server = Server::start(&[])?;
    let mut alice = WsClient::connect(server.http).await?;
    let login = alice.ok(json!({"type": "login", "name": "alice"})).await?;
    let alice_token = token(&login)?;
    let page = b"<!doctype html><script>alert(document.cookie)</script>";
    let answer = upload(server.http, Some(&alice_token), "evil.png", page).await?;
    assert_eq!(answer.status, 201);
    let file = answer.json()?["file"].clone();
    assert_eq!(file["kind"], "other", "the bytes say what it is");
    let got = download(
        server.http,
        &format!("/files/{}", file["id"].as_str().ok_or("id")?),
    )
    .await?;
    assert_eq!(got.status, 200);
    assert_eq!(got.body, page);
    assert_eq!(got.header("content-type"), Some("application/octet-stream"));
    assert_eq!(got.header("x-content-type-options"), Some("nosniff"));
    let disposition = got.header("content-disposition").unwrap_or_default();
    assert!(disposition.starts_with("attachment"), "{disposition}");
    assert!(got
        .header("content-security-policy")
        .is_some_and(|c| c.contains("sandbox")));
    Ok(())
}

/// Writes `chunk` again and again (up to `most` bytes) until the server answers; returns
/// the answer and how much had been written when its head arrived. The server must
/// answer long before `most`: it refuses the body without reading (or keeping) the rest.
async fn flood(stream: TcpStream, chunk: Vec<u8>, most: usize) -> TestResult<(Answer, usize)> {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    let (mut read, mut write) = stream.into_split();
    let written = Arc::new(AtomicUsize::new(0));
    let counter = written.clone();
    let writer = tokio::spawn(async move {
        while counter.load(Ordering::Relaxed) < most {
            let sent = tokio::time::timeout(Duration::from_secs(2), write.write_all(&chunk)).await;
            match sent {
                Ok(Ok(())) => counter.fetch_add(chunk.len(), Ordering::Relaxed),
                // The server stopped reading (closed, reset, or its window stays shut).
                _ => break,
            };
        }
    });
    let mut raw = Vec::new();
    let mut buf = vec![0u8; 64 << 10];
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    let mut at_answer = None;
    loop {
        let n = tokio::time::timeout_at(deadline, read.read(&mut buf))
            .await
            .map_err(|_| "no answer while the body was still coming")?
            .unwrap_or(0);
        if n == 0 {
            break;
        }
        raw.extend_from_slice(&buf[..n]);
        if at_answer.is_none() && raw.windows(4).any(|w| w == b"\r\n\r\n") {
            at_answer = Some(written.load(Ordering::Relaxed));
        }
    }
    writer.abort();
    let end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or("no end of headers")?;
    let head = String::from_utf8_lossy(&raw[..end]).to_string();
    let status = head.split(' ').nth(1).ok_or("no status")?.parse()?;
    let answer = Answer {
        status,
        headers: Vec::new(),
        body: raw[end + 4..].to_vec(),
    };
    Ok((answer, at_answer.unwrap_or(most)))
}

#[tokio::test]
async fn a_huge_body_is_cut_at_the_limit_without_being_read() -> TestResult {
    let server = Server::start(&["--max-file-bytes", "64KiB"])?;
    let mut alice = WsClient::connect(server.http).await?;
    let login = alice.ok(json!({"type": "login", "name": "alice"})).await?;
    let alice_token = token(&login)?;
    const GIB: usize = 1 << 30;
    let chunk = vec![b'x'; 64 << 10];

    // Declared: 1 GB; refused before a byte of it is read.
    let started = Instant::now();
    let mut stream = TcpStream::connect(server.http).await?;
    let head = format!(
        "POST /files?name=big.bin HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {alice_token}\r\nContent-Length: {GIB}\r\n\r\n",
        server.http
    );
    stream.write_all(head.as_bytes()).await?;
    let (answer, written) = flood(stream, chunk.clone(), GIB).await?;
    assert_eq!(
        answer.status,
        413,
        "{}",
        String::from_utf8_lossy(&answer.body)
    );
    assert!(String::from_utf8_lossy(&answer.body).contains("too_large"));
    assert!(
        written < 256 << 20,
        "the answer came after {written} bytes of a refused body"
    );
    assert!(started.elapsed() < Duration::from_secs(20));

    // Chunked, no length: read up to the limit, then cut.
    let mut stream = TcpStream::connect(server.http).await?;
    let head = format!(
        "POST /files?name=big.bin HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {alice_token}\r\nTransfer-Encoding: chunked\r\n\r\n",
        server.http
    );
    stream.write_all(head.as_bytes()).await?;
    let mut framed = format!("{:x}\r\n", chunk.len()).into_bytes();
    framed.extend_from_slice(&chunk);
    framed.extend_from_slice(b"\r\n");
    let (answer, written) = flood(stream, framed, GIB).await?;
    assert_eq!(
        answer.status,
        413,
        "{}",
        String::from_utf8_lossy(&answer.body)
    );
    assert!(
        written < 256 << 20,
        "the answer came after {written} bytes, far past the limit"
    );

    // The server is fine, and a file at the limit is kept.
    let at_limit = vec![7u8; 64 << 10];
    assert_eq!(
        upload(server.http, Some(&alice_token), "ok.bin", &at_limit)
            .await?
            .status,
        201
    );
    Ok(())
}

#[tokio::test]
async fn room_for_a_body_is_taken_before_it_is_read() -> TestResult {
    let server = Server::start(&[
        "--max-file-bytes",
        "64KiB",
        "--upload-bytes-in-flight",
        "64KiB",
        "--upload-bytes-per-hour",
        "64KiB",
    ])?;
    let http = server.http;
    let mut alice = WsClient::connect(http).await?;
    let alice_token = token(&alice.ok(json!({"type": "login", "name": "alice"})).await?)?;
    let mut bob = WsClient::connect(http).await?;
    let bob_token = token(&bob.ok(json!({"type": "login", "name": "bob"})).await?)?;

    // Alice's upload reserves all 64 KiB the server takes in at once; its body comes
    // slowly.
    let body = vec![3u8; 64 << 10];
    let mut slow = TcpStream::connect(http).await?;
    let head = format!(
        "POST /files?name=slow.bin HTTP/1.1\r\nHost: {http}\r\nAuthorization: Bearer {alice_token}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    slow.write_all(head.as_bytes()).await?;
    slow.write_all(&body[..1000]).await?;
    let refused = common::eventually(
        "bob refused while alice's body holds the room",
        Duration::from_secs(10),
        || async {
            let answer = upload(http, Some(&bob_token), "b.txt", b"hello").await?;
            Ok((answer.status == 503).then_some(answer))
        },
    )
    .await?;
    assert_eq!(refused.header("retry-after"), Some("1"));
    assert!(String::from_utf8_lossy(&refused.body).contains("unavailable"));

    // Alice's body ends: kept; then bob's fits.
    slow.write_all(&body[1000..]).await?;
    assert_eq!(read_answer(&mut slow).await?.status, 201);
    assert_eq!(
        upload(http, Some(&bob_token), "b.txt", b"hello")
            .await?
            .status,
        201
    );

    // Alice spent her hour's 64 KiB: a declared body is refused before it is read.
    let mut over = TcpStream::connect(http).await?;
    let head = format!(
        "POST /files?name=more.bin HTTP/1.1\r\nHost: {http}\r\nAuthorization: Bearer {alice_token}\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    over.write_all(head.as_bytes()).await?;
    let (answer, written) = flood(over, vec![b'y'; 4096], 64 << 20).await?;
    assert_eq!(
        answer.status,
        429,
        "{}",
        String::from_utf8_lossy(&answer.body)
    );
    assert!(written < 16 << 20, "the answer came after {written} bytes");
    Ok(())
}
