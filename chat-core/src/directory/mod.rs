//! The directory of one node: which channels and private rooms exist here and which actor
//! serves each, the users (names, resume tokens, name holds), the connected sessions and
//! each user's flood buckets.
//!
//! - `registry`: the registry actor that owns all of that on this node.
//! - `requests`: what the engine and sessions ask it (connect, create, find, open a
//!   private room, shutdown), each message next to its handler.
//! - `nodes`: this node among the others: its heartbeat, and telling the rooms when
//!   another node is gone or this one must announce its presence again.
//! - `rate`: per-user token buckets (the broker may count them over every node too).
//!
//! Sessions ask it once per room; after that they talk to the room's actor directly, so the
//! directory is never on a message's path.

mod nodes;
pub(crate) mod rate;
mod registry;
mod requests;

pub(crate) use registry::{Connected, RegistryActor};
pub(crate) use requests::{
    Connect, CreateChannel, FindChannel, ListChannels, LogOut, LoginRequest, OpenDirect, Shutdown,
    Stats,
};
