//! # demo-web: the Flack demo server
//!
//! One binary that runs the chat engine (`chat-core`) behind three transports: the web
//! front end with its WebSocket endpoint (`transport-ws`), the line protocol for
//! terminals (`transport-tcp`) and IRC (`transport-irc`). The library target exists so tests can reach the same
//! pieces the binary uses; `src/main.rs` is the binary.
//!
//! # Layout
//! - [`cli`]: the flags, their environment fallbacks and defaults, mapped to `Limits`.
//! - [`server`]: `run`, the testable entry point: bound listeners and a shutdown token in,
//!   a served chat out; owns the shutdown order.
//! - [`assets`]: the embedded front end (`static/`) and `/healthz`, with their security
//!   headers.
//! - [`probes`]: `/readyz`, the readiness probe (the store answers, not shutting down).
//! - [`exporter`]: the Prometheus recorder, `/metrics`, and its own listener
//!   (`--metrics ADDR`).
//! - `static/`: `index.html`, `app.css`, `app.js` (the UI), `page.js` (how the message
//!   pane reads: links, mentions, groups, dates, the title) and `protocol.js` (the only
//!   file that speaks the WebSocket protocol of `docs/protocol.md`).

#![warn(missing_docs)]

pub mod assets;
pub mod cli;
pub mod exporter;
pub mod files;
pub mod probes;
pub mod server;
