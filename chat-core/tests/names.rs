//! Display names through the engine, tried as an impersonator would: a name that looks
//! like a held one is taken, a name hiding invisible characters is invalid, names in any
//! script are welcome, and `@name` finds a user by any spelling that looks the same.
//! The character-level rules have unit tests in `validate::names`.

mod common;

use chat_core::{Engine, Login};
use common::*;

/// The error code `name` is refused with; panics if it is accepted.
async fn refusal(engine: &Engine, name: &str) -> String {
    match engine.connect(Login::Name(name.into())).await {
        Ok(_) => panic!("{name:?} was accepted"),
        Err(e) => e.code().to_owned(),
    }
}

#[tokio::test]
async fn a_name_that_looks_like_a_held_one_is_taken() {
    let engine = engine().await;
    let _alice = user(&engine, "alice").await;
    let _mark = user(&engine, "Mark").await;
    for twin in [
        "ALICE",
        "\u{430}lice", // Cyrillic а
        "\u{410}LICE", // Cyrillic А
        "ａｌｉｃｅ",  // fullwidth
        "\u{41C}ark",  // Cyrillic М
        "rnark",       // r and n
    ] {
        assert_eq!(refusal(&engine, twin).await, "name_taken", "{twin:?}");
    }
    // Accents and digits that are not look-alikes of the letters keep names apart.
    for other in ["alíce", "al1ce"] {
        user(&engine, other).await;
    }
}

#[tokio::test]
async fn names_made_of_or_hiding_invisible_characters_are_invalid() {
    let engine = engine().await;
    let _alice = user(&engine, "alice").await;
    for c in [
        '\u{2060}', '\u{00AD}', '\u{034F}', '\u{180E}', '\u{061C}', '\u{200B}', '\u{202E}',
        '\u{3164}', '\u{2800}',
    ] {
        for name in [format!("al{c}ice"), format!("zoe{c}"), format!("{c}zoe")] {
            assert_eq!(refusal(&engine, &name).await, "invalid_name", "{name:?}");
        }
    }
    for blank in [
        "\u{3164}",
        "\u{3164}\u{3164}\u{3164}",
        "\u{2800}",
        "\u{2800}\u{2800}",
    ] {
        assert_eq!(refusal(&engine, blank).await, "invalid_name", "{blank:?}");
    }
    for no_letter in ["!!!", "\u{1F600}"] {
        assert_eq!(
            refusal(&engine, no_letter).await,
            "invalid_name",
            "{no_letter:?}"
        );
    }
}

#[tokio::test]
async fn names_in_any_script_are_welcome_and_stored_in_nfkc() {
    let engine = engine().await;
    for name in ["Даша", "山田", "José", "محمد"] {
        let session = user(&engine, name).await;
        assert_eq!(&*session.user().name, name);
    }
    assert_eq!(refusal(&engine, "ДАША").await, "name_taken");
    let anna = user(&engine, "ａｎｎａ").await;
    assert_eq!(&*anna.user().name, "anna", "others see the NFKC form");
}

#[tokio::test]
async fn at_name_finds_a_user_by_any_spelling_that_looks_the_same() {
    let engine = engine().await;
    let mut alice = user(&engine, "alice").await;
    let mut bob = user(&engine, "bob").await;

    let sent = bob.post("@\u{430}lice", "psst").await.unwrap();
    assert_eq!(next_message(&mut alice).await.text, "psst");
    assert_eq!(next_message(&mut bob).await.text, "psst");
    assert_eq!(
        sent.room.label_for(bob.user().id),
        "@alice",
        "the label is the holder's name, not the spelling used"
    );
    for spelling in ["@ＡＬＩＣＥ", "@al\u{200B}ice", "@alice"] {
        let joined = bob.join(spelling, None).await.unwrap();
        assert_eq!(joined.room, sent.room, "{spelling:?}");
        assert_eq!(joined.messages.len(), 1);
    }
    bob.post("@ALICE", "again").await.unwrap();
    assert_eq!(next_message(&mut alice).await.text, "again");
    assert_eq!(
        bob.post("@alíce", "x").await.unwrap_err().code(),
        "no_such_user"
    );
}
