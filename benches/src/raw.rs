//! The raw limit: a WebSocket broadcast server with no engine, no JSON parsing and no
//! history, writing the same frames as ours. A text frame that looks like a `post` is
//! answered the way our server answers it: an `ok` reply to the poster that carries the
//! message, then a `message` event to every connection in the room, the poster included;
//! the post's own bytes stand in for the message object (no id, no author, no time), and
//! each event is built once and shared by every recipient. Anything else gets an `ok`
//! reply echoing its `id`. What this machine can do at all over WebSocket; ours divided
//! by it is what the engine costs.
//!
//! It speaks just enough of our protocol's shape for `loadgen --protocol ws`: a `hello`
//! on connect, `ok` replies to `login`/`create_channel`/`join`/`post`, and `message`
//! events (loadgen counts those as deliveries, and ignores a sender's own). Used by
//! `raw-ws` and the loadgen test; it must never be mistaken for the product (no
//! validation at all).
//!
//! Like our engine it never drops silently: a connection whose outbound queue is full is
//! removed from its rooms and closed.

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use futures_util::{SinkExt, StreamExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Message as WsFrame;

/// Frames queued per connection before it counts as too slow and is closed.
pub const QUEUE: usize = 8192;
/// Largest frame accepted, bytes.
pub const MAX_FRAME: usize = 64 * 1024;
/// Frames written per flush at most.
const BATCH: usize = 256;

type Outbox = mpsc::Sender<WsFrame>;

struct Member {
    id: u64,
    outbox: Outbox,
}

#[derive(Default)]
struct Rooms {
    by_name: Mutex<HashMap<String, Arc<Mutex<Vec<Member>>>>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Serves WebSocket connections from `listener` until `shutdown` resolves; then closes
/// every connection.
pub async fn serve(listener: TcpListener, shutdown: impl Future<Output = ()>) {
    let rooms = Arc::new(Rooms::default());
    let next_id = AtomicU64::new(1);
    let mut connections = JoinSet::new();
    tokio::pin!(shutdown);
    // Bounded by `shutdown`.
    loop {
        tokio::select! {
            _ = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    let id = next_id.fetch_add(1, Ordering::Relaxed);
                    connections.spawn(connection(stream, id, rooms.clone()));
                }
                Err(e) => {
                    eprintln!("raw-ws: accept failed: {e}");
                    tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                }
            },
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
    connections.abort_all();
}

/// The string value of `"key":"..."` in a frame, without JSON parsing (no escapes).
fn string_field<'a>(frame: &'a str, key: &str) -> Option<&'a str> {
    let pattern = format!("\"{key}\":\"");
    let start = frame.find(&pattern)? + pattern.len();
    let len = frame[start..].find('"')?;
    Some(&frame[start..start + len])
}

/// The raw value of `"id":...` (a number or a string) in a frame.
fn id_field(frame: &str) -> Option<&str> {
    let start = frame.find("\"id\":")? + 5;
    let rest = &frame[start..];
    let len = rest.find([',', '}']).unwrap_or(rest.len());
    Some(rest[..len].trim())
}

/// The poster's `ok` reply to `post`, carrying the message as ours does.
fn post_reply(post: &str) -> WsFrame {
    WsFrame::text(format!(
        r#"{{"type":"ok","id":{},"result":{{"message":{post}}}}}"#,
        id_field(post).unwrap_or("null")
    ))
}

/// The `message` event for `post` in `room`; its clones share the bytes.
fn message_event(room: &str, post: &str) -> WsFrame {
    WsFrame::text(format!(
        r#"{{"type":"message","room":"{room}","message":{post}}}"#
    ))
}

async fn connection(stream: TcpStream, id: u64, rooms: Arc<Rooms>) {
    // Errors mean the peer went away before the handshake; nothing to clean up.
    let _ = stream.set_nodelay(true);
    let config = WebSocketConfig::default()
        .max_message_size(Some(MAX_FRAME))
        .max_frame_size(Some(MAX_FRAME))
        // 4 KiB rather than tungstenite's 128 KiB default: our frames are small, and
        // scenario 4 measures memory per idle connection for this server too.
        .read_buffer_size(4096);
    let Ok(ws) = tokio_tungstenite::accept_async_with_config(stream, Some(config)).await else {
        return;
    };
    let (mut sink, mut stream) = ws.split();
    let (outbox, mut queue) = mpsc::channel::<WsFrame>(QUEUE);
    let writer = tokio::spawn(async move {
        // Ends when every sender of the queue is gone (reader ended, rooms left).
        while let Some(frame) = queue.recv().await {
            if sink.feed(frame).await.is_err() {
                return;
            }
            for _ in 0..BATCH {
                match queue.try_recv() {
                    Ok(frame) => {
                        if sink.feed(frame).await.is_err() {
                            return;
                        }
                    }
                    Err(_) => break,
                }
            }
            if sink.flush().await.is_err() {
                return;
            }
        }
        let _ = sink.close().await;
    });
    let _ = outbox
        .send(WsFrame::text(
            r#"{"type":"hello","protocol":2,"max_frame_bytes":65536}"#,
        ))
        .await;

    let mut joined: Vec<(String, Arc<Mutex<Vec<Member>>>)> = Vec::new();
    // Bounded by the peer: ends when it closes or errs.
    while let Some(Ok(frame)) = stream.next().await {
        let text = match frame {
            WsFrame::Text(text) => text,
            WsFrame::Close(_) => break,
            _ => continue,
        };
        let kind = string_field(&text, "type").unwrap_or("");
        if kind == "post" {
            let Some(room) = string_field(&text, "room") else {
                continue;
            };
            let Some((_, members)) = joined.iter().find(|(name, _)| name == room) else {
                continue;
            };
            // Our server's frames for a post, in its order: the reply before the echo.
            if outbox.send(post_reply(&text)).await.is_err() {
                break;
            }
            let event = message_event(room, &text);
            let mut members = lock(members);
            members.retain(|m| match m.outbox.try_send(event.clone()) {
                Ok(()) => true,
                Err(mpsc::error::TrySendError::Full(_)) => {
                    eprintln!(
                        "raw-ws: connection {} too slow, removed from its room",
                        m.id
                    );
                    false
                }
                Err(mpsc::error::TrySendError::Closed(_)) => false,
            });
            continue;
        }
        if kind == "join" {
            if let Some(room) = string_field(&text, "room") {
                let members = lock(&rooms.by_name)
                    .entry(room.to_owned())
                    .or_default()
                    .clone();
                lock(&members).push(Member {
                    id,
                    outbox: outbox.clone(),
                });
                joined.push((room.to_owned(), members));
            }
        }
        let reply = format!(
            r#"{{"type":"ok","id":{},"result":{{}}}}"#,
            id_field(&text).unwrap_or("null")
        );
        if outbox.send(WsFrame::text(reply)).await.is_err() {
            break;
        }
    }
    for (_, members) in joined {
        lock(&members).retain(|m| m.id != id);
    }
    drop(outbox);
    let _ = writer.await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_fields_without_parsing() {
        let f = r#"{"type":"join","id":3,"room":"general"}"#;
        assert_eq!(string_field(f, "type"), Some("join"));
        assert_eq!(string_field(f, "room"), Some("general"));
        assert_eq!(id_field(f), Some("3"));
        assert_eq!(id_field(r#"{"type":"login","id":"a"}"#), Some("\"a\""));
        assert_eq!(id_field(r#"{"type":"post"}"#), None);
    }

    #[test]
    fn a_post_gets_our_servers_frames() {
        let post = r#"{"type":"post","id":7,"room":"c","text":"hi"}"#;
        let text = |frame: WsFrame| frame.into_text().expect("text").as_str().to_owned();
        let reply: serde_json::Value = serde_json::from_str(&text(post_reply(post))).unwrap();
        assert_eq!(reply["type"], "ok");
        assert_eq!(reply["id"], 7);
        assert_eq!(reply["result"]["message"]["text"], "hi");
        let event: serde_json::Value =
            serde_json::from_str(&text(message_event("c", post))).unwrap();
        assert_eq!(event["type"], "message");
        assert_eq!(event["room"], "c");
        assert_eq!(event["message"]["text"], "hi");
    }
}
