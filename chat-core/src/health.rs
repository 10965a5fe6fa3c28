//! [`Health`]: whether this node can take traffic now, as [`Engine::health`](crate::Engine::health)
//! reports it for a readiness probe.
//!
//! Made by the engine from two cheap questions: does the store answer (the broker's
//! [`Broker::reachable`](crate::Broker::reachable): the SQLite writer is not failing, Redis
//! answers a `PING`), and has shutdown begun. It must not change anything.

/// Whether this node can take traffic now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Health {
    /// The store answers: the SQLite writer commits, Redis answers (always true in
    /// memory).
    pub store_reachable: bool,
    /// [`Engine::shutdown`](crate::Engine::shutdown) has begun: the node takes no new
    /// sessions.
    pub shutting_down: bool,
}

impl Health {
    /// Whether the node can take traffic: its store answers and it is not shutting down.
    pub fn ready(&self) -> bool {
        self.store_reachable && !self.shutting_down
    }
}
