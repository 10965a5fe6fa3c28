//! The runnable examples work: each is built by `cargo test`, and its code is run here
//! against a real client over a real socket.

#[path = "../examples/actix.rs"]
#[allow(dead_code)]
mod actix_example;

#[path = "../examples/axum.rs"]
#[allow(dead_code)]
mod axum_example;

use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::Message;
use tokio_util::sync::CancellationToken;

const WAIT: std::time::Duration = std::time::Duration::from_secs(10);

/// The next text frame as JSON.
async fn frame<S>(ws: &mut S) -> Value
where
    S: StreamExt<Item = Result<Message, tokio_tungstenite::tungstenite::Error>> + Unpin,
{
    loop {
        let next = tokio::time::timeout(WAIT, ws.next())
            .await
            .expect("a frame in time");
        if let Some(Ok(Message::Text(text))) = next {
            return serde_json::from_str(text.as_str()).expect("JSON");
        }
    }
}

#[test]
fn the_actix_example_serves_its_own_route_and_the_chat() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("address");
    let shutdown = CancellationToken::new();
    let stop = shutdown.clone();
    let server = std::thread::spawn(move || {
        actix_web::rt::System::new()
            .block_on(actix_example::run(listener, stop))
            .map_err(|e| e.to_string())
    });
    let client = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    client.block_on(async {
        // The embedder's route.
        hello_answers(addr).await;

        // The chat, on the same listener.
        let mut ws = chat_round_trip(addr, "hi from the example").await;
        shutdown.cancel();
        // Shutdown tells the socket why before it closes.
        let goodbye = frame(&mut ws).await;
        assert_eq!(goodbye["type"], "disconnected", "{goodbye}");
    });
    server
        .join()
        .expect("the server thread")
        .expect("the example stops cleanly");
}

/// Upgrades at `addr`'s `/ws`, logs in as alice, joins `general`, posts `text` and
/// receives it back as an event; returns the open socket.
async fn chat_round_trip(
    addr: std::net::SocketAddr,
    text: &str,
) -> tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>> {
    let (mut ws, _) = tokio_tungstenite::connect_async(format!("ws://{addr}/ws"))
        .await
        .expect("upgrade");
    assert_eq!(frame(&mut ws).await["type"], "hello");
    for request in [
        json!({"type": "login", "id": 1, "name": "alice"}),
        json!({"type": "join", "id": 2, "room": "general"}),
        json!({"type": "post", "id": 3, "room": "general", "text": text}),
    ] {
        ws.send(Message::text(request.to_string()))
            .await
            .expect("send");
        loop {
            let reply = frame(&mut ws).await;
            if reply["id"] == request["id"] {
                assert_eq!(reply["type"], "ok", "{request}: {reply}");
                break;
            }
        }
    }
    let echo = loop {
        let event = frame(&mut ws).await;
        if event["type"] == "message" {
            break event;
        }
    };
    assert_eq!(echo["message"]["text"], text);
    ws
}

/// `GET /hello` over plain HTTP/1.1: the embedder's own route answers.
async fn hello_answers(addr: std::net::SocketAddr) {
    let mut http = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let request = format!("GET /hello HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    http.write_all(request.as_bytes()).await.expect("request");
    let mut response = String::new();
    http.read_to_string(&mut response).await.expect("response");
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    assert!(response.contains("hello from the embedding service"));
}

#[test]
fn the_axum_example_serves_its_own_route_and_the_chat() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("address");
        let shutdown = CancellationToken::new();
        let server = tokio::spawn(axum_example::run(listener, shutdown.clone()));

        hello_answers(addr).await;
        let mut ws = chat_round_trip(addr, "hi from axum").await;

        // With the app's cookie, the socket opens logged in as the account's user.
        let mut request = format!("ws://{addr}/ws")
            .into_client_request()
            .expect("request");
        let cookie = HeaderValue::from_static("theme=dark; account=key-ann");
        request.headers_mut().insert("cookie", cookie);
        let (mut ann, _) = tokio_tungstenite::connect_async(request)
            .await
            .expect("upgrade");
        assert_eq!(frame(&mut ann).await["type"], "hello");
        let logged_in = frame(&mut ann).await;
        assert_eq!(logged_in["type"], "ok", "{logged_in}");
        assert!(
            logged_in.get("id").is_none(),
            "no request, no id: {logged_in}"
        );
        assert_eq!(logged_in["result"]["user"]["name"], "ann", "{logged_in}");
        let login = json!({"type": "login", "id": 1, "name": "someone"});
        ann.send(Message::text(login.to_string()))
            .await
            .expect("send");
        let refused = frame(&mut ann).await;
        assert_eq!(refused["code"], "already_logged_in", "{refused}");
        for request in [
            json!({"type": "join", "id": 2, "room": "general"}),
            json!({"type": "post", "id": 3, "room": "general", "text": "ann was here"}),
        ] {
            ann.send(Message::text(request.to_string()))
                .await
                .expect("send");
        }
        // alice, in the room, receives the account user's message.
        let heard = loop {
            let event = frame(&mut ws).await;
            if event["type"] == "message" {
                break event;
            }
        };
        assert_eq!(heard["message"]["text"], "ann was here");
        assert_eq!(heard["message"]["author"]["name"], "ann");
        shutdown.cancel();
        let goodbye = frame(&mut ws).await;
        assert_eq!(goodbye["type"], "disconnected", "{goodbye}");
        assert_eq!(goodbye["code"], "shutting_down", "{goodbye}");
        tokio::time::timeout(WAIT, server)
            .await
            .expect("the example stops in time")
            .expect("the server task")
            .expect("the example stops cleanly");
    });
}
