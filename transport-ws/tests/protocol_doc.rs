//! Keeps `docs/protocol.md` honest: every example frame in it is checked against a real
//! server, so the document cannot drift from the code.
//!
//! The convention (also described at the end of the document): inside fenced code blocks,
//! a line starting with `> ` is a frame a client sends and a line starting with `< ` a frame
//! the server sends. Each block with `> ` lines is a script for one connection to a fresh
//! server; the test sets up what the script refers to (channels it uses but does not
//! create, with a member in them, users it addresses as `@name`, a login and joins when
//! the script has none) and
//! asserts that every `> ` frame is answered `ok`, with a `result` of the same shape as the
//! documented reply when the block shows one.

mod common;

use std::collections::BTreeSet;

use common::{test_limits, Client, TestServer};
use serde_json::Value;
use transport_ws::protocol::ClientFrame;

const SERVER_TYPES: [&str; 13] = [
    "hello",
    "ok",
    "error",
    "message",
    "deleted",
    "edited",
    "reactions",
    "channel_created",
    "presence",
    "counts",
    "typing",
    "gap",
    "disconnected",
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Direction {
    /// `> `: client to server.
    Sent,
    /// `< `: server to client.
    Received,
}

#[derive(Debug, Clone)]
struct Line {
    direction: Direction,
    frame: Value,
    /// 1-based line number in the document, for messages.
    number: usize,
}

#[derive(Debug)]
struct Block {
    lines: Vec<Line>,
}

impl Block {
    fn sent(&self) -> impl Iterator<Item = &Line> {
        self.lines.iter().filter(|l| l.direction == Direction::Sent)
    }
}

fn read_doc() -> Vec<Block> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/protocol.md");
    let text = std::fs::read_to_string(path).expect("docs/protocol.md is readable");
    let mut blocks = Vec::new();
    let mut current: Option<Block> = None;
    for (index, raw) in text.lines().enumerate() {
        let number = index + 1;
        if raw.trim_start().starts_with("```") {
            match current.take() {
                Some(block) => blocks.push(block),
                None => current = Some(Block { lines: Vec::new() }),
            }
            continue;
        }
        let Some(block) = current.as_mut() else {
            continue;
        };
        let (direction, json) = if let Some(json) = raw.strip_prefix("> ") {
            (Direction::Sent, json)
        } else if let Some(json) = raw.strip_prefix("< ") {
            (Direction::Received, json)
        } else {
            continue;
        };
        let frame: Value = serde_json::from_str(json)
            .unwrap_or_else(|e| panic!("docs/protocol.md:{number}: not JSON ({e}): {json}"));
        let known: &[&str] = match direction {
            Direction::Sent => &ClientFrame::TYPES,
            Direction::Received => &SERVER_TYPES,
        };
        let kind = frame["type"].as_str().unwrap_or_default();
        assert!(
            known.contains(&kind),
            "docs/protocol.md:{number}: unknown type {kind:?}"
        );
        block.lines.push(Line {
            direction,
            frame,
            number,
        });
    }
    assert!(current.is_none(), "docs/protocol.md: unclosed code block");
    blocks
}

#[test]
fn the_document_shows_every_frame_type() {
    let blocks = read_doc();
    let lines: Vec<&Line> = blocks.iter().flat_map(|b| &b.lines).collect();
    let types = |direction| -> BTreeSet<String> {
        lines
            .iter()
            .filter(|l| l.direction == direction)
            .filter_map(|l| l.frame["type"].as_str().map(str::to_owned))
            .collect()
    };
    let sent = types(Direction::Sent);
    for t in ClientFrame::TYPES {
        assert!(sent.contains(t), "no `> ` example of the {t} request");
    }
    let received = types(Direction::Received);
    for t in SERVER_TYPES {
        assert!(received.contains(t), "no `< ` example of the {t} frame");
    }
}

/// Channel name of a room label, or `None` for a private conversation (`@name`).
fn channel_of(room: &str) -> Option<String> {
    if room.starts_with('@') {
        None
    } else {
        Some(room.trim_start_matches('#').to_lowercase())
    }
}

/// What a script needs from the server before it runs.
#[derive(Debug, Default)]
struct Needs {
    /// Channels it uses but does not create, in order of first use.
    channels: Vec<String>,
    /// Of those, the ones its first use does not join: the setup joins them.
    to_join: Vec<String>,
    /// Users it addresses as `@name`.
    users: Vec<String>,
    /// Whether it starts with its own login.
    logs_in: bool,
    /// Whether it logs in with a token.
    resumes: bool,
}

fn needs(block: &Block) -> Needs {
    let mut needs = Needs::default();
    let mut created = BTreeSet::new();
    let mut seen = BTreeSet::new();
    for (index, line) in block.sent().enumerate() {
        let frame = &line.frame;
        let kind = frame["type"].as_str().unwrap_or_default();
        if index == 0 {
            needs.logs_in = kind == "login";
        }
        if kind == "login" && frame.get("token").is_some() {
            needs.resumes = true;
        }
        if kind == "create_channel" {
            if let Some(name) = frame["name"].as_str() {
                created.insert(name.to_lowercase());
            }
        }
        let Some(room) = frame["room"].as_str() else {
            continue;
        };
        match channel_of(room) {
            None => {
                let user = room.trim_start_matches('@').to_owned();
                if !needs.users.contains(&user) {
                    needs.users.push(user);
                }
            }
            Some(channel) => {
                if !seen.insert(channel.clone()) || created.contains(&channel) {
                    continue;
                }
                needs.channels.push(channel.clone());
                if kind != "join" {
                    needs.to_join.push(channel);
                }
            }
        }
    }
    needs
}

/// Whether `real` has the fields `doc` shows, recursively (values may differ).
fn same_shape(doc: &Value, real: &Value, path: &str) -> Result<(), String> {
    match (doc, real) {
        (Value::Object(d), Value::Object(r)) => {
            let dk: BTreeSet<&String> = d.keys().collect();
            let rk: BTreeSet<&String> = r.keys().collect();
            if dk != rk {
                return Err(format!("{path}: documented fields {dk:?}, real {rk:?}"));
            }
            for (key, value) in d {
                same_shape(value, &r[key], &format!("{path}.{key}"))?;
            }
            Ok(())
        }
        (Value::Array(d), Value::Array(r)) => match (d.first(), r.first()) {
            (Some(d), Some(r)) => same_shape(d, r, &format!("{path}[0]")),
            _ => Ok(()),
        },
        (Value::Number(_), Value::Number(_))
        | (Value::String(_), Value::String(_))
        | (Value::Bool(_), Value::Bool(_))
        | (Value::Null, Value::Null) => Ok(()),
        _ => Err(format!("{path}: documented {doc}, real {real}")),
    }
}

/// The documented reply to the `> ` line at `at`: a later `< ` ok/error with the same id,
/// before the next `> `.
fn documented_reply(block: &Block, at: usize) -> Option<&Line> {
    let id = block.lines[at].frame.get("id")?;
    block.lines[at + 1..]
        .iter()
        .take_while(|l| l.direction == Direction::Received)
        .find(|l| {
            matches!(l.frame["type"].as_str(), Some("ok" | "error"))
                && l.frame.get("id") == Some(id)
        })
}

async fn run_script(block: &Block) {
    let needs = needs(block);
    let first = block.sent().next().map(|l| l.number).unwrap_or_default();
    let server = TestServer::start(test_limits());

    // Others the script refers to, kept connected while it runs.
    let mut others: Vec<Client> = Vec::new();
    for user in &needs.users {
        others.push(server.user(user).await);
    }
    let token = if needs.resumes {
        let alice = server.user("alice").await;
        let token = alice.token();
        others.push(alice);
        Some(token)
    } else {
        None
    };
    if !needs.channels.is_empty() {
        let mut setup = server.user("setup").await;
        for channel in &needs.channels {
            setup
                .ok(serde_json::json!({"type": "create_channel", "name": channel}))
                .await;
            // A member besides the script's user, so a page of one has a next.
            setup
                .ok(serde_json::json!({"type": "join", "room": channel}))
                .await;
        }
        others.push(setup);
    }

    let mut client = server.client().await;
    if !needs.logs_in {
        client.login("alice").await;
        for channel in &needs.to_join {
            client
                .ok(serde_json::json!({"type": "join", "room": channel}))
                .await;
        }
    }

    // The cursor the last reply gave, for a `members` request's `after`.
    let mut cursor: Option<Value> = None;
    for (at, line) in block.lines.iter().enumerate() {
        if line.direction != Direction::Sent {
            continue;
        }
        let mut frame = line.frame.clone();
        if let (Some(token), Some(field)) = (&token, frame.get_mut("token")) {
            *field = Value::String(token.clone());
        }
        if let Some(files) = frame.get_mut("files") {
            // A documented file id stands for a file the script's user uploads now.
            let uploader = server.engine.uploader(&client.token()).await;
            let file = uploader
                .expect("the script's user may upload")
                .upload("cat.png", bytes::Bytes::from_static(common::PNG))
                .await
                .expect("uploaded");
            *files = serde_json::json!([file.id.as_str()]);
        }
        let is_members = line.frame["type"] == "members";
        if let (Some(real), Some(field), true) = (&cursor, frame.get_mut("after"), is_members) {
            *field = real.clone();
        }
        client.send_json(&frame).await;
        let reply = match frame.get("id") {
            Some(id) => client.reply_to(id).await,
            None => client.next_reply().await,
        };
        assert_eq!(
            reply["type"], "ok",
            "docs/protocol.md:{} (script from line {first}): {} was answered {reply}",
            line.number, line.frame
        );
        let result = &reply["result"];
        cursor = [&result["next"], &result["members_next"]]
            .into_iter()
            .find(|c| c.is_string())
            .cloned();
        if let Some(doc) = documented_reply(block, at) {
            assert_eq!(doc.frame["type"], "ok", "docs/protocol.md:{}", doc.number);
            if let Err(e) = same_shape(&doc.frame, &reply, "reply") {
                panic!("docs/protocol.md:{}: {e}\nreal reply: {reply}", doc.number);
            }
        }
    }
}

on_both! {
async fn every_client_example_is_accepted_as_written() {
    let blocks = read_doc();
    let scripts: Vec<&Block> = blocks
        .iter()
        .filter(|b| b.sent().next().is_some())
        .collect();
    assert!(
        scripts.len() >= ClientFrame::TYPES.len(),
        "docs/protocol.md has only {} client examples",
        scripts.len()
    );
    for block in scripts {
        run_script(block).await;
    }
}
}

#[test]
fn shapes_are_compared_by_fields_not_values() {
    let doc = serde_json::json!({"a": 1, "b": [{"c": "x"}], "d": []});
    assert!(same_shape(
        &doc,
        &serde_json::json!({"a": 2, "b": [{"c": "y"}], "d": [1]}),
        "r"
    )
    .is_ok());
    assert!(same_shape(&doc, &serde_json::json!({"a": 2, "b": []}), "r").is_err());
    assert!(same_shape(&doc, &serde_json::json!({"a": "2", "b": [], "d": []}), "r").is_err());
    assert!(same_shape(
        &doc,
        &serde_json::json!({"a": 1, "b": [{"c": 1}], "d": []}),
        "r"
    )
    .is_err());
}
