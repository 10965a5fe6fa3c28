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
//!     let engine = Engine::builder().limits(Limits::default()).start().await?;
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
//! - [`engine`](Engine): the handle and [`EngineBuilder`], the one way to start it;
//!   `runtime` starts its threads (the registry's and the room workers).
//! - `session`: [`Session`], the per-client handle transports hold, [`Target`], and
//!   [`PostPipeline`], the ordered post pipeline both transports use.
//! - `room/`: the room actor (a channel or private conversation), its requests, its
//!   members on every node in page order (`presence`), how their presence reaches the
//!   followers (one batch per tick, or counts in a large room: `coalesce`), this node's
//!   share of it for the other nodes (`share`) and its bounded `history`.
//! - `directory/`: the registry actor (channels, private rooms, sessions, rooms started
//!   and stopped), `nodes` (the heartbeat, and nodes that are gone) and `rate` (flood
//!   buckets).
//! - `identity`: users, resume tokens and display-name holds; the in-memory broker keeps
//!   its users in a `Directory` of them.
//! - `delivery/`: a session as the actors see it (`Subscriber`) and its bounded `queue`.
//!   It knows no actor: a closing subscriber tells the directory, which unsubscribes it.
//! - [`broker`]: the seam where users, names and rooms are decided for the whole cluster
//!   (the [`Broker`] trait). `memory` holds [`MemoryBroker`], the default; `sqlite/`
//!   (feature `sqlite`) makes it durable: `SqliteBroker` in its `mod.rs`, the versioned
//!   tables and the checks on opening (`schema`), reading the file back at start
//!   (`load`), and the write-behind thread (`writer`); `redis/` (feature `redis`) shares
//!   one Redis: `RedisBroker`'s commands in its `mod.rs`, the key layout (`keys`), the
//!   stored and published JSON (`wire`), the Lua scripts (`scripts`), nodes' heartbeats,
//!   presence shares and cluster-wide flood buckets (`cluster`), and the pub/sub reader
//!   that feeds the rooms and resynchronises them after an outage (`pubsub`).
//! - [`validate`]: the rules for names and texts; its `names` decides which display
//!   names are valid and which look alike (NFKC, the TR39 skeleton).
//! - [`mention`]: which display names a message's `@name` tokens mention, read from its
//!   text by the names' keys (nothing is stored for them).
//! - [`address`]: limits per client address: the key an address counts under, keyed
//!   token buckets (`Limits::login_rate_per_address`) and the [`ConnectionGate`] both
//!   transports put in front of their listeners.
//! - [`telemetry`]: every metric the engine reports through the `metrics` facade (a
//!   no-op until the embedder installs a recorder), and the calls that report them;
//!   `health`: [`Health`], what [`Engine::health`] tells a readiness probe.
//! - [`reaction`]: the fixed set of reaction emoji ([`Emoji`]) and who reacted with
//!   which to a message ([`Reactions`]).
//! - [`shutdown`]: [`ShutdownWait`], a server's shutdown as a branch of a connection's
//!   `select!` that every transport polls on each turn without a lock shared with the
//!   other connections.
//! - [`Limits`] (engine limits only), [`ChatError`], [`Event`] and the data types in `model`.
//!
//! Imports go one way: `engine` -> `directory` -> `room` -> `delivery`, all of them ->
//! `broker` and the data types; `session` uses `directory` and `room`; `engine` uses
//! `address`, which uses only `limits`; every module may call `telemetry`, which uses
//! only the error type.
//!
//! `docs/architecture.md` in the repository describes how a message flows.

#![warn(missing_docs)]

pub mod address;
pub mod attachment;
pub mod broker;
mod delivery;
mod directory;
mod engine;
mod error;
mod event;
mod handoff;
mod health;
mod identity;
mod ids;
mod limits;
pub mod mention;
mod model;
pub mod reaction;
mod room;
mod runtime;
mod session;
pub mod shutdown;
pub mod telemetry;
mod upload;
pub mod validate;

pub use address::{AddressSlot, ConnectionGate, GateRefusal};
pub use attachment::{Attachment, FileId, FileKind, StoredFile};
#[cfg(feature = "redis")]
pub use broker::redis::RedisBroker;
#[cfg(feature = "sqlite")]
pub use broker::sqlite::SqliteBroker;
pub use broker::{Broker, ClusterEvent, MemoryBroker};
pub use engine::{Engine, EngineBuilder, EngineStats, Login};
pub use error::ChatError;
pub use event::{DisconnectReason, Event, PresenceBatch, PresenceChange};
pub use health::Health;
pub use identity::{Identity, ResumeToken};
pub use limits::{InvalidLimit, Limits, Rate};
pub use model::{
    ChannelInfo, ChannelName, ChatMessage, Joined, Member, MemberCursor, MembersPage, MessageId,
    Room, RoomKey, SessionId, UserId, UserRef, MAX_MEMBER_PAGE, MEMBER_PAGE,
};
pub use reaction::{Emoji, Reactions};
pub use session::{
    PendingPost, PostOutcome, PostPipeline, Session, Target, EVENT_BATCH, MAX_POSTS_IN_FLIGHT,
};
pub use shutdown::ShutdownWait;
pub use upload::{Reservation, Uploader};
pub use validate::MAX_EXTERNAL_ID_BYTES;
