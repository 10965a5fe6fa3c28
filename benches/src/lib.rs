//! # benches: how fast the chat is, measured against the raw limit and its peers
//!
//! This crate owns the measuring instruments of issue 6. It never changes the engine or
//! the transports; it only drives them from outside, the way a user's clients would.
//!
//! - `benches/engine.rs` (criterion): the engine alone, no sockets.
//! - `loadgen` (`src/bin/loadgen.rs`): many clients on loopback over one of four protocols
//!   (our WebSocket protocol, our TCP line protocol, Socket.IO, IRC), reporting
//!   deliveries per second, latency percentiles, loss, duplication, server memory and
//!   the CPU each side used.
//! - `raw-ws` (`src/bin/raw-ws.rs`): a WebSocket broadcast server with no engine, the
//!   raw limit of this machine.
//! - `loopback-floor` (`src/bin/loopback-floor.rs`): what the kernel alone costs to hand
//!   one message to many loopback sockets, the floor under every latency measured here.
//! - `store-load` (`src/bin/store-load.rs`): how many posts per second the engine
//!   acknowledges with its SQLite store against memory only, and what happens past the
//!   store's pace (in-process, no sockets).
//! - `run-all.sh` and `peers/`: every scenario against every server, written to
//!   `docs/performance.md`.
//!
//! # Layout
//! - [`arrival`]: when bytes reached a client's socket, by the kernel's clock
//!   (`SO_TIMESTAMPNS`): latency without the loadgen's own wait to read.
//! - [`payload`]: the text each measured message carries (sender, sequence number, send
//!   time) and how a receiver finds it again in any protocol's frame or line.
//! - [`track`]: the bookkeeping shared by all clients of one run: in-flight windows,
//!   completion counts, latency histograms, loss and duplicate detection.
//! - [`client`]: one connection speaking one protocol: setup (login, create, join), posting,
//!   and classifying what arrives.
//! - [`ws`]: the WebSocket client under [`client`]'s two WebSocket protocols: handshake,
//!   frames read in place, masked writes.
//! - [`receive`]: what one simulated client does with what it receives (deliveries,
//!   echoes, duplicates, pings, the end of its session).
//! - [`run`]: a whole load run, from the connect phase to the [`report`]; the testable
//!   entry point behind `loadgen`.
//! - [`report`]: the result of a run, as a human table and as JSON.
//! - [`storm`]: the join storm (N clients into one channel at once: joins per second and
//!   the server's CPU per join) and the reconnect storm (all of them reset and back at
//!   once, resuming by token and last id, checked for loss and repeats), with its report.
//! - [`stalled`]: members that never read their sockets, and whether the server cut
//!   them (a slow consumer's cost, bounded or not).
//! - [`rss`]: the server's memory, read from `/proc/PID/status`.
//! - [`cpu`]: how much CPU time the server and the loadgen used while sending, from
//!   `/proc/PID/task/*/schedstat` (`CpuReading`): which side was the limit.
//! - [`raw`]: the raw-limit broadcast server behind `raw-ws`.
//! - [`floor`]: the machine's floor for a fan-out (a bare writer and reader on loopback
//!   sockets, no server), behind `loopback-floor`.

#![warn(missing_docs)]

/// The error type of this crate's fallible paths (no `anyhow` in the workspace).
pub type Error = Box<dyn std::error::Error + Send + Sync>;

pub mod arrival;
pub mod client;
pub mod cpu;
pub mod floor;
pub mod payload;
pub mod raw;
pub mod receive;
pub mod report;
pub mod rss;
pub mod run;
pub mod stalled;
pub mod storm;
pub mod track;
pub mod ws;
