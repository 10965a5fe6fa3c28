//! Embedding the engine in a plain tokio program: a greeter bot in `#general`.
//!
//! The bot is an ordinary session of the engine: it joins the channel, reads its events,
//! and answers `!hello` with a greeting. A second session plays a user who says `!hello`.
//! No transport is involved: this is how a service puts the engine behind its own API, or
//! runs bots beside its users.
//!
//! Try it: `cargo run -p chat-core --example embed` prints the conversation and exits.

use std::time::Duration;

use chat_core::{ChatError, Engine, Event, Limits, Login, Session};

/// Runs the bot on `session` until it has answered `answers` greetings (or its session
/// ends), in `channel`.
pub async fn greeter(mut bot: Session, channel: &str, answers: usize) -> Result<(), ChatError> {
    bot.join(channel, None).await?;
    let mut answered = 0;
    while answered < answers {
        let Some(event) = bot.next_event().await else {
            break;
        };
        if let Event::Posted(message) = event {
            if message.author.id != bot.user().id && message.text.trim() == "!hello" {
                let reply = format!("hello, {}!", message.author.name);
                bot.post(channel, reply).await?;
                answered += 1;
            }
        }
    }
    Ok(())
}

/// The whole example: an engine, a channel, the bot, and one user who greets it. Returns
/// the bot's answer as the user saw it.
pub async fn run() -> Result<String, ChatError> {
    let engine = Engine::builder().limits(Limits::default()).start().await?;
    engine.create_channel("general").await?;

    let bot = engine.connect(Login::Name("greeter".into())).await?;
    let bot_task = tokio::spawn(async move { greeter(bot, "general", 1).await });

    let mut alice = engine.connect(Login::Name("alice".into())).await?;
    alice.join("general", None).await?;
    // The bot may still be joining: greet until it answers (a real client would just wait).
    let answer = loop {
        alice.post("general", "!hello").await?;
        let heard = tokio::time::timeout(Duration::from_millis(500), async {
            while let Some(event) = alice.next_event().await {
                if let Event::Posted(message) = event {
                    if message.author.name.as_ref() == "greeter" {
                        return Some(message.text.clone());
                    }
                }
            }
            None
        })
        .await;
        if let Ok(Some(text)) = heard {
            break text;
        }
    };
    bot_task
        .await
        .map_err(|e| ChatError::Unavailable(format!("the bot's task failed: {e}")))??;
    engine.shutdown().await;
    Ok(answer)
}

#[tokio::main]
async fn main() -> Result<(), ChatError> {
    let answer = run().await?;
    println!("alice: !hello");
    println!("greeter: {answer}");
    Ok(())
}
