//! Delivery: how the rooms reach a session. A [`Subscriber`] is a session as the actors
//! see it: the pushing half of its bounded [`queue`] and the switch that closes it.
//!
//! It depends on no actor: a subscriber that closes tells the directory through the
//! [`SessionClosed`] message it was given, and the directory unsubscribes it from its rooms.

pub(crate) mod entry;
pub(crate) mod queue;
mod relay;
mod subscriber;

pub(crate) use subscriber::{CloseCause, SessionClosed, Subscriber};
