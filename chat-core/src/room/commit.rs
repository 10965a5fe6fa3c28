//! `Commit`: how a room hands a proposal to its broker, and `PostReply`, where a post's
//! outcome goes. Used by the room's actor (signals) and its request handlers (posts,
//! deletions); it knows nothing of either.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::Poll;

use tokio::sync::oneshot;

use crate::broker::{Broker, Proposal, Receipt};
use crate::error::ChatError;
use crate::model::{ChatMessage, Room};

/// Where a post's outcome goes: the poster's [`crate::PendingPost`].
pub(crate) type PostReply = oneshot::Sender<Result<Arc<ChatMessage>, ChatError>>;

/// How many of a room's commits still wait for the broker. A room does not stop while one
/// does: stopping drops the task that waits, and with it the answer its requester waits
/// for (a post would hear `shutting_down` although the broker may store it).
#[derive(Clone, Default)]
pub(super) struct UnderWay(Arc<AtomicUsize>);

impl UnderWay {
    /// Whether any commit of the room waits for the broker.
    pub(super) fn any(&self) -> bool {
        self.0.load(Ordering::Acquire) > 0
    }

    /// Counts one commit until the returned guard is dropped.
    fn count(&self) -> Counted {
        self.0.fetch_add(1, Ordering::AcqRel);
        Counted(self.0.clone())
    }
}

/// One commit counted in [`UnderWay`] while it lives.
struct Counted(Arc<AtomicUsize>);

impl Drop for Counted {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// A commit as [`Commit::start`] leaves it.
pub(super) enum Commit {
    /// The broker decided on the first poll (the in-memory broker always does).
    Settled(Result<Receipt, ChatError>),
    /// Still waiting on the broker's server: the caller spawns it (on the room's context,
    /// or as a task of its own), and the first poll there registers the real waker.
    UnderWay(Pin<Box<dyn Future<Output = Result<Receipt, ChatError>> + Send>>),
}

impl Commit {
    /// Hands `proposal` for `room` to `broker` and polls the commit once, here, with a
    /// no-op waker.
    ///
    /// A broker's `async fn` does nothing until it is polled, and a spawned task is polled
    /// only after the room has handled every message waiting in its mailbox, and not
    /// always in the order the tasks were spawned. Polling here makes the in-memory broker
    /// commit while the handler runs, so a room's posts, deletions and signals reach its
    /// feed in the order its handlers made them. A commit still under way has only seen a
    /// waker that wakes nobody; the task it is spawned into polls it again with the real
    /// one.
    ///
    /// A commit still under way is counted in `under_way` until it ends or is dropped.
    pub(super) fn start(
        broker: &Arc<dyn Broker>,
        room: &Room,
        proposal: Proposal,
        under_way: &UnderWay,
    ) -> Commit {
        let (broker, room) = (broker.clone(), room.clone());
        let mut commit = Box::pin(async move { broker.commit(&room, proposal).await });
        let mut probe = std::task::Context::from_waker(futures_util::task::noop_waker_ref());
        match commit.as_mut().poll(&mut probe) {
            Poll::Ready(receipt) => Commit::Settled(receipt),
            Poll::Pending => {
                let counted = under_way.count();
                Commit::UnderWay(Box::pin(async move {
                    let receipt = commit.await;
                    drop(counted);
                    receipt
                }))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::broker::{Change, MemoryBroker, Signal};
    use crate::limits::Limits;
    use crate::model::{UserId, UserRef};
    use crate::validate;

    /// What lets a post settle without a task, and keeps a room's feed in the order of its
    /// handlers: the in-memory broker commits on the first poll, inside `Commit::start`.
    #[tokio::test]
    async fn the_memory_broker_settles_on_the_first_poll_in_call_order() {
        let limits = Limits::default();
        let broker: Arc<dyn Broker> = Arc::new(MemoryBroker::new(&limits));
        let room = Room::Channel(validate::channel_name("c", &limits).unwrap());
        let mut follow = broker.follow(&room).await.unwrap();
        let alice = UserRef {
            id: UserId(1),
            name: Arc::from("alice"),
        };

        let under_way = UnderWay::default();
        let typing = Commit::start(
            &broker,
            &room,
            Proposal::Signal(Signal::Typing(alice.clone())),
            &under_way,
        );
        let post = Commit::start(
            &broker,
            &room,
            Proposal::Post {
                author: alice,
                text: "hi".into(),
                files: Vec::new(),
            },
            &under_way,
        );
        assert!(matches!(typing, Commit::Settled(Ok(Receipt::Done))));
        assert!(matches!(post, Commit::Settled(Ok(Receipt::Posted(ref m))) if m.id == 1));
        assert!(!under_way.any(), "a settled commit is not counted");
        // Already on the feed, in the order the commits were started.
        assert!(matches!(
            follow.changes.try_recv(),
            Ok(Change::Signal(Signal::Typing(_)))
        ));
        assert!(matches!(follow.changes.try_recv(), Ok(Change::Posted(m)) if m.id == 1));
    }
}
