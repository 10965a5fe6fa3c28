//! Identity through the engine's public API: display names (trimmed, validated, unique
//! case-insensitively and held after a disconnect until the hold period ends) and resume
//! tokens (the same user back, expired with the hold, never shown to other users).
//! Names that look like another or hide invisible characters: `names.rs`.

mod common;

use std::time::Duration;

use chat_core::{Limits, Login, MEMBER_PAGE};
use common::*;

#[tokio::test]
async fn a_resume_token_brings_back_the_same_user_and_name() {
    let engine = engine().await;
    let alice = user(&engine, "  Alice ").await;
    assert_eq!(&*alice.user().name, "Alice", "names are trimmed");
    assert!(alice.is_new_user());
    let (id, token) = (alice.user().id, alice.token().expose().to_owned());
    assert_eq!(token.len(), 32);
    drop(alice);

    let again = engine.connect(Login::Resume(token)).await.unwrap();
    assert_eq!(again.user().id, id);
    assert_eq!(&*again.user().name, "Alice");
    assert!(!again.is_new_user());

    let bad = engine
        .connect(Login::Resume("0".repeat(32)))
        .await
        .unwrap_err();
    assert_eq!(bad.code(), "invalid_token");
}

#[tokio::test]
async fn names_are_unique_case_insensitively_while_held() {
    let engine = engine().await;
    let alice = user(&engine, "Alice").await;
    let err = engine
        .connect(Login::Name("aLiCe".into()))
        .await
        .unwrap_err();
    assert_eq!(err.code(), "name_taken");
    drop(alice);
    // Closing the page does not free the name: nobody can impersonate her.
    let err = engine
        .connect(Login::Name("alice".into()))
        .await
        .unwrap_err();
    assert_eq!(err.code(), "name_taken");
}

#[tokio::test]
async fn a_name_is_free_again_after_the_hold_period() {
    let engine = engine_with({
        let mut limits = Limits::default();
        limits.name_hold = Duration::from_millis(50);
        limits
    })
    .await;
    let alice = user(&engine, "alice").await;
    let token = alice.token().expose().to_owned();
    drop(alice);
    let deadline = tokio::time::Instant::now() + PATIENCE;
    let newcomer = loop {
        match engine.connect(Login::Name("ALICE".into())).await {
            Ok(s) => break s,
            Err(e) if e.code() == "name_taken" && tokio::time::Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(20)).await
            }
            Err(e) => panic!("{e}"),
        }
    };
    assert_eq!(&*newcomer.user().name, "ALICE");
    let err = engine.connect(Login::Resume(token)).await.unwrap_err();
    assert_eq!(
        err.code(),
        "invalid_token",
        "the old token expired with the hold"
    );
}

#[tokio::test]
async fn invalid_display_names_are_refused() {
    let engine = engine().await;
    for bad in ["", "   ", "a\u{0}b", &"x".repeat(33)] {
        let err = engine.connect(Login::Name(bad.into())).await.unwrap_err();
        assert_eq!(err.code(), "invalid_name", "{bad:?}");
    }
}

#[tokio::test]
async fn tokens_never_reach_other_users() {
    let engine = engine().await;
    let (alice, mut bob) = alice_and_bob_in(&engine, "general").await;
    alice.post("general", "hi").await.unwrap();
    let message = next_message(&mut bob).await;
    let members = bob
        .members_page("general", None, MEMBER_PAGE)
        .await
        .unwrap();
    let seen = format!("{message:?} {members:?}");
    assert!(!seen.contains(alice.token().expose()));
}
