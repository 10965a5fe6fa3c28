//! # chat-core: an embeddable chat engine
//!
//! Every room (a channel, or the private conversation of two users) is an actor that owns
//! its last [`Limits::history`] messages and its subscribers. A registry actor owns the
//! channel names, the users and the sessions. The actors run on threads of their own,
//! so the engine works from any tokio runtime: a plain `#[tokio::main]` service or an
//! actix-web server alike, and no actix type appears in this API.
//!
//! An embedder keeps one [`Engine`] (cheap to clone) and, per connected client, one
//! [`Session`]: requests are `Session` methods, and everything the client should see comes
//! out of [`Session::next_event`] in order.
//!
//! ```
//! use chat_core::{Engine, Event, Limits, Login};
//!
//! #[tokio::main]
//! async fn main() -> Result<(), chat_core::ChatError> {
//!     let engine = Engine::start(Limits::default())?;
//!
//!     let alice = engine.connect(Login::Name("alice".into())).await?;
//!     let mut bob = engine.connect(Login::Name("bob".into())).await?;
//!
//!     alice.create_channel("general").await?;
//!     alice.join("general", None).await?;
//!     let joined = bob.join("general", None).await?;
//!     assert!(joined.messages.is_empty());
//!
//!     let sent = alice.post("general", "hello, bob").await?;
//!     // Bob's events arrive in order: skip presence and the like until the message.
//!     loop {
//!         match bob.next_event().await {
//!             Some(Event::Posted(message)) => {
//!                 assert_eq!(message.id, sent.id);
//!                 assert_eq!(&*message.author.name, "alice");
//!                 assert_eq!(message.text, "hello, bob");
//!                 break;
//!             }
//!             Some(_) => continue,
//!             None => panic!("bob was disconnected"),
//!         }
//!     }
//!
//!     // Alice keeps her token to come back as the same user later.
//!     let token = alice.token().expose().to_owned();
//!     drop(alice);
//!     let again = engine.connect(Login::Resume(token)).await?;
//!     assert_eq!(&*again.user().name, "alice");
//!
//!     engine.shutdown().await;
//!     Ok(())
//! }
//! ```
//!
//! # Layout
//! - [`engine`](Engine): the handle; starts the actor threads; connects clients; runs
//!   the transports' connection tasks on the connection workers.
//! - `session`: [`Session`], the per-connection handle transports hold, and [`Target`].
//! - `registry`: the registry actor (channel names, private rooms, users, sessions).
//! - `channel`: the room actor (history, subscribers, members, typing, fan-out).
//! - `subscriber`: a session as actors see it: its bounded queue and its close switch.
//! - `queue`: that bounded queue, filled a batch at a time and emptied in one go.
//! - [`broker`]: the seam where users, names and rooms are decided for the whole
//!   cluster; [`MemoryBroker`] is the default.
//! - `redis_broker` (feature `redis`): `RedisBroker`, for several nodes sharing one
//!   Redis.
//! - `history`: the bounded ring of a room's messages and resume bookkeeping.
//! - `identity`: users, resume tokens, display-name holds.
//! - `rate`: per-user token buckets.
//! - [`validate`]: the rules for names and texts.
//! - [`Limits`], [`ChatError`], [`Event`] and the data types in `model`.
//!
//! `docs/architecture.md` in the repository describes how a message flows.

#![warn(missing_docs)]

pub mod broker;
mod channel;
mod engine;
mod error;
mod event;
mod history;
mod identity;
mod limits;
mod model;
mod queue;
mod rate;
#[cfg(feature = "redis")]
mod redis_broker;
mod registry;
mod scheduling;
mod session;
mod subscriber;
pub mod validate;

pub use broker::{Broker, ClusterEvent, MemoryBroker};
pub use engine::EngineConfig;
pub use engine::{Engine, EngineBuilder, Login};
pub use error::ChatError;
pub use event::{DisconnectReason, Event, PresenceChange};
pub use identity::{Identity, ResumeToken};
pub use limits::{InvalidLimit, Limits, Rate};
pub use model::{
    ChannelInfo, ChannelName, ChatMessage, Encodings, Joined, Member, MessageId, Room, RoomKey,
    SessionId, UserId, UserRef,
};
#[cfg(feature = "redis")]
pub use redis_broker::RedisBroker;
pub use session::{
    PendingPost, PostOutcome, PostPipeline, Session, Target, EVENT_BATCH, MAX_POSTS_IN_FLIGHT,
};
