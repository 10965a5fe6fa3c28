//! Members that never read: they connect, log in and join like everyone else, then leave
//! their sockets unread for the whole run, as a client behind a dead network or a frozen
//! tab would. A server that bounds what a slow consumer may cost cuts them while the
//! others go on; one that does not keeps queueing for them, which the run's peak memory
//! shows.
//!
//! Whether a stalled client was cut is read after the run: its socket is drained until
//! the server's end of session (a close, a `disconnected` frame or line, end of stream)
//! or until it stays open past a short wait. A server still sending when the wait ends
//! kept the client.

use std::net::SocketAddr;
use std::time::Duration;

use serde::Serialize;
use tokio::task::JoinSet;
use tokio::time::{timeout, Instant};

use crate::client::{Conn, Incoming, Protocol};

/// Longest time one stalled client's backlog is read after the run before it counts as
/// kept: a cut client's backlog is bounded by the socket buffers and ends with the close.
const VERDICT_WAIT: Duration = Duration::from_secs(3);

/// What became of the stalled clients.
#[derive(Debug, Clone, Copy, Default, Serialize, PartialEq, Eq)]
pub struct StalledReport {
    /// Stalled clients asked for.
    pub clients: usize,
    /// Of them, set up (connected, logged in, joined).
    pub connected: usize,
    /// Of those, ended by the server before the run's end.
    pub cut: usize,
}

/// The stalled clients of a run, holding their unread sockets.
pub struct Stalled {
    clients: usize,
    conns: Vec<Conn>,
}

impl Stalled {
    /// Sets up `count` clients named `{run_id}s{i}` in `channel` on `addr`, each within
    /// `connect_timeout`; those that fail are left out (and counted in the report).
    pub async fn connect(
        protocol: Protocol,
        addr: SocketAddr,
        run_id: &str,
        channel: &str,
        count: usize,
        connect_timeout: Duration,
    ) -> Stalled {
        let mut setups = JoinSet::new();
        for i in 0..count {
            let name = format!("{run_id}s{i}");
            let channel = channel.to_owned();
            setups.spawn(async move {
                timeout(
                    connect_timeout,
                    Conn::open(protocol, addr, &name, &channel, false),
                )
                .await
            });
        }
        let mut conns = Vec::with_capacity(count);
        while let Some(setup) = setups.join_next().await {
            if let Ok(Ok(Ok(conn))) = setup {
                conns.push(conn);
            }
        }
        Stalled {
            clients: count,
            conns,
        }
    }

    /// Reads every stalled socket to learn whether the server ended it, then closes it.
    pub async fn verdict(self) -> StalledReport {
        let connected = self.conns.len();
        let mut reads = JoinSet::new();
        for conn in self.conns {
            reads.spawn(was_cut(conn));
        }
        let mut cut = 0;
        while let Some(read) = reads.join_next().await {
            cut += usize::from(read.unwrap_or(false));
        }
        StalledReport {
            clients: self.clients,
            connected,
            cut,
        }
    }
}

/// Drains `conn` until the server ends the session (true) or `VERDICT_WAIT` passes with
/// the session still open (false).
async fn was_cut(mut conn: Conn) -> bool {
    let deadline = Instant::now() + VERDICT_WAIT;
    loop {
        match tokio::time::timeout_at(deadline, conn.recv()).await {
            Err(_) => {
                conn.close().await;
                return false;
            }
            Ok(Err(_)) | Ok(Ok(Incoming::Closed(_))) => return true,
            Ok(Ok(_)) => {}
        }
    }
}
