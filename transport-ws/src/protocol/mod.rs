//! The wire format of `docs/protocol.md`, one JSON object per text frame, tagged by
//! `type`: what a client may send (`client.rs`: [`ClientFrame`], [`parse_request`],
//! [`TransportError`]) and what the server sends (`server.rs`: [`ServerFrame`], [`Reply`]
//! and the views of engine types).
//!
//! Used by `dispatch.rs` and `connection.rs`, which own the requests and the socket. This
//! module never does I/O and never calls the engine; `docs/protocol.md` documents it
//! frame by frame, and `tests/protocol_doc.rs` checks the document against the server.

mod client;
mod server;

pub use client::{parse_request, ClientFrame, RequestId, TransportError};
pub(crate) use server::FRAME_CAPACITY;
pub use server::{
    reactions_view, ChangeView, ChannelView, FileView, MemberView, MessageView, ReactionView,
    Reply, ServerFrame, UserView, PROTOCOL_VERSION,
};
