//! One storm client ([`client`]): it joins, reads until the drop, resets its socket and
//! comes back by token and last id, then reads until done, noting every message id it
//! gets; and [`StormClient`], its connection speaking the JSON protocol (the poster's too).
//!
//! Used by `mod.rs` only. Loopback addresses only.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, watch};
use tokio::time::timeout;

use super::{Note, Outcome, Phase, Shared};
use crate::ws::WsClient;
use crate::Error;

/// Longest frame a storm client accepts.
const MAX_INPUT: usize = 1 << 20;
/// Frames a request reads at most while waiting for its reply.
const MAX_READS: usize = 100_000;

/// One storm client: joins, reads until the drop, resets its socket and comes back, then
/// reads until done, noting every message id it gets.
pub(super) async fn client(
    index: usize,
    shared: Arc<Shared>,
    mut phase: watch::Receiver<Phase>,
    notes: mpsc::Sender<Note>,
) -> Outcome {
    let config = &shared.config;
    let name = format!("{}u{index}", config.run_id);
    let setup = |login: Value, after: Option<u64>| {
        let shared = shared.clone();
        async move {
            let _permit = shared.slots.acquire().await?;
            timeout(
                shared.config.connect_timeout,
                StormClient::open(&shared, login, after),
            )
            .await
            .map_err(|_| Error::from("timed out"))?
        }
    };
    let (mut conn, token, mut last_id) = match setup(json!({ "name": name }), None).await {
        Ok(opened) => opened,
        Err(e) => {
            shared.error(format!("join of {name}: {e}"));
            let _ = notes.send(Note::Joined(false)).await;
            return Outcome::default();
        }
    };
    let _ = notes.send(Note::Joined(true)).await;

    // Read until told to drop. Messages may arrive before the drop is seen (the poster
    // starts at once): they were received, and the return asks only for what follows.
    let mut seen = HashSet::new();
    loop {
        tokio::select! {
            changed = phase.changed() => {
                if changed.is_err() || *phase.borrow() == Phase::Done {
                    return Outcome::default();
                }
                if *phase.borrow() == Phase::Drop {
                    break;
                }
            }
            frame = conn.ws.next_text() => match frame {
                Ok(text) => {
                    if let Some(id) = message_id(text) {
                        last_id = Some(last_id.unwrap_or(0).max(id));
                        seen.insert(id);
                    }
                }
                Err(e) => {
                    shared.error(format!("{name} before the drop: {e}"));
                    let _ = notes.send(Note::Back(false)).await;
                    return Outcome::default();
                }
            }
        }
    }

    // The drop, and straight back: by token where the server gave one.
    conn.ws.abort();
    let mut outcome_duplicates = 0;
    let login = match &token {
        Some(token) => json!({ "token": token }),
        None => json!({ "name": name }),
    };
    let mut conn = match setup(login, last_id).await {
        Ok((conn, _, _)) => {
            for id in &conn.replayed {
                if !seen.insert(*id) {
                    outcome_duplicates += 1;
                }
            }
            conn
        }
        Err(e) => {
            shared.error(format!("return of {name}: {e}"));
            let _ = notes.send(Note::Back(false)).await;
            return Outcome::default();
        }
    };
    let _ = notes.send(Note::Back(true)).await;
    let mut outcome = Outcome {
        gap: conn.gap,
        duplicates: outcome_duplicates,
        ..Outcome::default()
    };
    let mut posted = shared.posted.clone();
    let mut complete = false;
    // Bounded: ends at Phase::Done (or when the run drops the phase sender).
    loop {
        if !complete {
            if let Some(ids) = posted.borrow().as_ref() {
                if ids.iter().all(|id| seen.contains(id)) {
                    complete = true;
                    shared.complete.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
        tokio::select! {
            changed = phase.changed() => {
                if changed.is_err() || *phase.borrow() == Phase::Done {
                    break;
                }
            }
            _ = posted.changed(), if !complete => {}
            frame = conn.ws.next_text() => match frame {
                Ok(text) => {
                    if let Some(id) = message_id(text) {
                        if !seen.insert(id) {
                            outcome.duplicates += 1;
                        }
                    }
                }
                Err(e) => {
                    if *phase.borrow() != Phase::Done {
                        shared.error(format!("{name} after coming back: {e}"));
                    }
                    break;
                }
            }
        }
    }
    outcome.duplicates += conn.replay_duplicates;
    if let Some(ids) = posted.borrow().as_ref() {
        outcome.lost = ids.iter().filter(|id| !seen.contains(id)).count() as u64;
    }
    let _ = timeout(Duration::from_secs(1), conn.ws.close()).await;
    outcome
}

/// The id of a `message` event's message, without parsing other frames.
fn message_id(frame: &str) -> Option<u64> {
    if !frame.starts_with(r#"{"type":"message""#) {
        return None;
    }
    let value: Value = serde_json::from_str(frame).ok()?;
    value["message"]["id"].as_u64()
}

/// One connection speaking the JSON protocol.
pub(super) struct StormClient {
    pub(super) ws: WsClient,
    next_id: u64,
    /// Ids of the messages the last join replied with.
    replayed: HashSet<u64>,
    /// Ids the last join replied with twice.
    replay_duplicates: u64,
    /// Whether the last join said `gap`.
    gap: bool,
}

impl StormClient {
    pub(super) async fn connect(addr: SocketAddr) -> Result<StormClient, Error> {
        if !addr.ip().is_loopback() {
            return Err(format!("{addr} is not a loopback address").into());
        }
        let stream = TcpStream::connect(addr).await?;
        stream.set_nodelay(true)?;
        Ok(StormClient {
            ws: WsClient::connect(stream, addr, "/ws", MAX_INPUT).await?,
            next_id: 1,
            replayed: HashSet::new(),
            replay_duplicates: 0,
            gap: false,
        })
    }

    /// Connects, logs in with `login` (`{"name"}` or `{"token"}`) and joins the storm's
    /// channel, after `after` when given. Returns the connection, the resume token (when
    /// the server gave one) and the room's last id (likewise).
    async fn open(
        shared: &Shared,
        login: Value,
        after: Option<u64>,
    ) -> Result<(StormClient, Option<String>, Option<u64>), Error> {
        let mut conn = StormClient::connect(shared.config.addr).await?;
        let reply = conn.login(login).await?;
        let token = reply["result"]["token"].as_str().map(str::to_owned);
        let mut join = json!({"type": "join", "room": shared.channel});
        if let Some(after) = after {
            join["after"] = after.into();
        }
        let reply = conn.request(join, false).await?;
        let result = &reply["result"];
        for m in result["messages"].as_array().into_iter().flatten() {
            if let Some(id) = m["id"].as_u64() {
                if !conn.replayed.insert(id) {
                    conn.replay_duplicates += 1;
                }
            }
        }
        conn.gap = result["gap"].as_bool().unwrap_or(false) && after.is_some();
        Ok((conn, token, result["last_id"].as_u64()))
    }

    pub(super) async fn login(&mut self, mut login: Value) -> Result<Value, Error> {
        login["type"] = "login".into();
        self.request(login, false).await
    }

    /// Sends `frame` with a fresh id and returns its `ok` reply (with `taken_ok`, an
    /// `error` reply is fine too: the channel exists already).
    pub(super) async fn request(
        &mut self,
        mut frame: Value,
        taken_ok: bool,
    ) -> Result<Value, Error> {
        let id = self.next_id;
        self.next_id += 1;
        frame["id"] = id.into();
        self.ws.send_texts(&[frame.to_string()]).await?;
        let id_field = format!(r#""id":{id}"#);
        for _ in 0..MAX_READS {
            let text = self.ws.next_text().await?;
            // Events (presence, counts) are skipped without parsing.
            if !(text.starts_with(r#"{"type":"ok""#) || text.starts_with(r#"{"type":"error""#))
                || !text.contains(&id_field)
            {
                continue;
            }
            let reply: Value = serde_json::from_str(text)?;
            if reply["id"] != id {
                continue;
            }
            return match reply["type"].as_str() {
                Some("ok") => Ok(reply),
                Some("error") if taken_ok => Ok(reply),
                _ => Err(format!("{frame} failed: {reply}").into()),
            };
        }
        Err(format!("no reply to {frame}").into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_message_events_have_ids() {
        assert_eq!(
            message_id(r#"{"type":"message","room":"c","message":{"id":7,"text":"x"}}"#),
            Some(7)
        );
        assert_eq!(
            message_id(r#"{"type":"ok","id":3,"result":{"message":{"id":7}}}"#),
            None
        );
        assert_eq!(
            message_id(r#"{"type":"counts","room":"c","members":3,"online":2}"#),
            None
        );
    }
}
