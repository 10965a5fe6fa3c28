//! Bringing your own users: a service with accounts of its own logs its users in to the
//! engine with `Login::External`, so they need no resume token and no name of ours.
//!
//! The "service" here is a table of API keys, each for one account (a stable id and the
//! name the account shows). A request with a key becomes a session of the account's user:
//! the same account is the same user on every connection (a second device, a reconnect,
//! and, with a durable store, a restart), and an unknown key never reaches the engine. A
//! name that another user holds is refused (`name_taken`): here the service then offers
//! the name with the account id appended, one way an embedder can decide.
//!
//! Try it: `cargo run -p chat-core --example accounts` prints what happens and exits.

use chat_core::{ChatError, Engine, Login, Session};

/// The service's own accounts: API key -> (account id, display name).
const ACCOUNTS: &[(&str, &str, &str)] = &[
    ("key-ann", "acct-1001", "ann"),
    ("key-bo", "acct-1002", "bo"),
    ("key-imposter", "acct-1003", "ann"),
];

/// Why the service refuses a request.
#[derive(Debug)]
pub enum Refused {
    /// No account has this key: the engine is never asked.
    UnknownKey,
    /// The engine refused the account's user.
    Chat(ChatError),
}

/// Authenticates `api_key` with the service's own accounts and logs its user in. A
/// display name held by someone else is tried once more as `name-ACCOUNT`.
pub async fn connect(engine: &Engine, api_key: &str) -> Result<Session, Refused> {
    let (_, account, name) = ACCOUNTS
        .iter()
        .find(|(key, _, _)| *key == api_key)
        .ok_or(Refused::UnknownKey)?;
    let login = |display_name: String| Login::External {
        id: (*account).to_owned(),
        display_name,
    };
    match engine.connect(login((*name).to_owned())).await {
        Err(e) if e.code() == "name_taken" => {
            let other = format!("{name}-{}", account.trim_start_matches("acct-"));
            engine.connect(login(other)).await.map_err(Refused::Chat)
        }
        result => result.map_err(Refused::Chat),
    }
}

/// What the example shows, as lines: who each request became.
pub async fn run() -> Result<Vec<String>, ChatError> {
    let engine = Engine::builder().start().await?;
    let mut lines = Vec::new();
    let phone = connect(&engine, "key-ann").await.map_err(chat)?;
    let laptop = connect(&engine, "key-ann").await.map_err(chat)?;
    lines.push(format!(
        "ann's phone and laptop are user {} and user {}",
        phone.user().id.0,
        laptop.user().id.0
    ));
    let bo = connect(&engine, "key-bo").await.map_err(chat)?;
    lines.push(format!("bo is user {}", bo.user().id.0));
    let imposter = connect(&engine, "key-imposter").await.map_err(chat)?;
    lines.push(format!(
        "a second account named ann shows as {}",
        imposter.user().name
    ));
    match connect(&engine, "key-nobody").await {
        Err(Refused::UnknownKey) => lines.push("an unknown key is refused".to_owned()),
        other => lines.push(format!(
            "an unknown key got {:?}",
            other.map(|s| s.user().clone())
        )),
    }
    drop((phone, laptop, bo, imposter));
    engine.shutdown().await;
    Ok(lines)
}

/// The engine's refusal, for `run` (an unknown key is not one).
fn chat(refused: Refused) -> ChatError {
    match refused {
        Refused::Chat(e) => e,
        Refused::UnknownKey => ChatError::InvalidExternalId("unknown API key".to_owned()),
    }
}

#[tokio::main]
async fn main() -> Result<(), ChatError> {
    for line in run().await? {
        println!("{line}");
    }
    Ok(())
}
