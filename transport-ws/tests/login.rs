//! Logging in: only `login` before it, never twice, exactly one of a name and a token,
//! and the engine's refusals (invalid or taken names, unknown tokens).

mod common;

use common::raw::Raw;
use common::{test_limits, TestServer};
use serde_json::json;

on_both! {
async fn hello_names_the_store_s_epoch() {
    let server = TestServer::start(test_limits());
    let mut raw = Raw::upgrade(&server, &[]).await;
    let hello = raw.json().await;
    assert_eq!(hello["type"], "hello");
    assert_eq!(hello["epoch"], server.engine.epoch(), "{hello}");
    assert_eq!(server.engine.epoch().len(), 32);
}
}

on_both! {
async fn login_rules() {
    let server = TestServer::start(test_limits());
    let mut anon = server.client().await;
    assert_eq!(
        anon.error(json!({"type": "list_channels"})).await,
        "not_logged_in"
    );
    assert_eq!(
        anon.error(json!({"type": "post", "room": "general", "text": "hi"}))
            .await,
        "not_logged_in"
    );
    assert_eq!(
        anon.error(json!({"type": "login", "name": "a", "token": "b"}))
            .await,
        "bad_request"
    );
    assert_eq!(anon.error(json!({"type": "login"})).await, "bad_request");
    assert_eq!(
        anon.error(json!({"type": "login", "name": "   "})).await,
        "invalid_name"
    );
    assert_eq!(
        anon.error(json!({"type": "login", "name": "x".repeat(33)}))
            .await,
        "invalid_name"
    );
    assert_eq!(
        anon.error(json!({"type": "login", "token": "0123456789abcdef0123456789abcdef"}))
            .await,
        "invalid_token"
    );

    // A failed login leaves the connection usable.
    let alice = anon.login("alice").await;
    assert_eq!(alice["new_user"], true);
    assert_eq!(
        anon.error(json!({"type": "login", "name": "again"})).await,
        "already_logged_in"
    );

    let mut other = server.client().await;
    assert_eq!(
        other.error(json!({"type": "login", "name": "ALICE"})).await,
        "name_taken"
    );
    // The token logs in as the same user, on as many connections as wanted.
    let resumed = other
        .ok(json!({"type": "login", "token": anon.token()}))
        .await;
    assert_eq!(resumed["user"], alice["user"]);
    assert_eq!(resumed["new_user"], false);
    assert_eq!(resumed["token"], alice["token"]);
}
}
