//! Rooms: a channel or the private conversation of two users, each served by one actor.
//!
//! - `actor`: [`RoomActor`], which owns the room's history, subscribers and members, and
//!   fans every committed change out in one order.
//! - `changes`: what a session asks about a kept message: edit it, react to it.
//! - `coalesce`: presence fanned out once per tick as one batch, or as counts in a large
//!   room; typing bounded there. Its state, `Coalescer`, is in `coalescer`.
//! - `commit`: how a room hands a proposal to the broker (settled at once when the
//!   broker answers at once), and where a post's outcome goes.
//! - `requests`: what sessions and the directory ask a room (subscribe, post, delete, ...),
//!   each message next to its handler.
//! - `presence`: the members and their online state across the nodes, in the order pages
//!   are read.
//! - `share`: this node's share of the room's presence, published to the other nodes
//!   once per tick, and theirs merged here; a node that is gone loses its share. What
//!   waits to be published, `Outbox`, is in `outbox`.
//! - `handoff`: how posts cross from the callers' threads to a room worker, a batch per
//!   turn of the caller's runtime; [`RoomAddr`] is a room's actor with its handoff.
//! - `history`: the bounded ring of the room's messages and resume bookkeeping.
//!
//! A room knows its subscribers ([`crate::delivery`]) and the broker; it does not know the
//! directory, which tells it when a session closes.

mod actor;
mod changes;
mod coalesce;
mod coalescer;
mod commit;
mod handoff;
pub(crate) mod history;
mod outbox;
mod presence;
mod requests;
mod share;

pub(crate) use actor::{RoomActor, RoomStats, RoomStopped};
pub(crate) use changes::{Edit, React};
pub(crate) use handoff::{post_handoff, PostHandoff, RoomAddr};
pub(crate) use requests::{Delete, Members, Post, Subscribe, Typing, Unsubscribe};
pub(crate) use share::{Announce, NodeGone};
