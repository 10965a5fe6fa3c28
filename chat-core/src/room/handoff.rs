//! How posts reach the rooms of one room worker from the threads of the callers: gathered
//! while the caller's runtime works through what is ready, and carried over as one batch.
//!
//! A message put into a room's mailbox from another thread wakes the room worker if it
//! sleeps. A busy transport thread reads many clients' posts in one pass of its runtime;
//! queued one by one, each post could wake the worker on its own, and each wake-up is a
//! switch between threads (two, when both share a core: the worker runs its one post and
//! sleeps again). So a post waits in its worker's [`Handoff`] until the caller's runtime
//! has polled every task that was ready, and the whole batch then crosses with one
//! wake-up. On the worker, one task hands the batch to the rooms' mailboxes: a wake-up
//! within a thread costs no system call. The same batching across a thread boundary, once
//! per turn of the event loop, is how Seastar's cross-core queues work.
//!
//! The price is latency: a post waits for the rest of its pass, which is long when the
//! thread also writes to many sockets in it (a fan-out to a thousand). Crossing at once
//! instead makes the worker preempt a transport thread that shares its core at every
//! post, which costs more (docs/performance.md, "posts cross to a room worker in
//! batches", has both, and the variants in between that were measured).
//!
//! Order is kept: a session's posts enter one queue per worker in the order they were
//! made, whichever thread made them, and batches cross in that order too. Only posts
//! come this way: every other request is awaited by its caller, which then waits for a
//! reply, not for a batch.

use std::sync::{Arc, Mutex, PoisonError};

use actix::Addr;
use actix_rt::ArbiterHandle;
use tokio::sync::mpsc;

use super::{Post, RoomActor};

/// What waits to cross to one worker (for rooms: a post and its room's actor), and the
/// way to it.
pub(crate) struct Handoff<M> {
    waiting: Mutex<Vec<M>>,
    worker: mpsc::UnboundedSender<Vec<M>>,
}

impl<M: Send + 'static> Handoff<M> {
    /// The handoff to the worker `arbiter` runs: starts the task there that gives each
    /// batch to `deliver`. It ends with the worker; a batch still on its way is then
    /// dropped (a dropped post is answered `shutting_down`).
    pub(crate) fn start(
        arbiter: &ArbiterHandle,
        mut deliver: impl FnMut(Vec<M>) + Send + 'static,
    ) -> Arc<Handoff<M>> {
        let (worker, mut batches) = mpsc::unbounded_channel::<Vec<M>>();
        arbiter.spawn(async move {
            while let Some(batch) = batches.recv().await {
                deliver(batch);
            }
        });
        Arc::new(Handoff {
            waiting: Mutex::new(Vec::new()),
            worker,
        })
    }

    /// Sends `message` with the batch the caller's runtime is making now; the first
    /// message of a batch arranges for it to be carried over.
    pub(crate) fn send(self: &Arc<Self>, message: M) {
        let first = {
            let mut waiting = self.waiting.lock().unwrap_or_else(PoisonError::into_inner);
            waiting.push(message);
            waiting.len() == 1
        };
        if first {
            self.carry_when_ready();
        }
    }

    /// Carries the batch over once the caller's runtime has polled what is ready now (a
    /// yielded task runs after them), or at once for a caller outside any tokio runtime.
    fn carry_when_ready(self: &Arc<Self>) {
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => {
                // Carried when the task ends, or when it is dropped unpolled (a runtime
                // shutting down drops what is spawned on it): a batch is never left behind.
                let carrier = Carrier(Arc::clone(self));
                runtime.spawn(async move {
                    tokio::task::yield_now().await;
                    drop(carrier);
                });
            }
            Err(_) => self.carry(),
        }
    }

    /// Hands what waits to the worker in one message.
    fn carry(&self) {
        let batch =
            std::mem::take(&mut *self.waiting.lock().unwrap_or_else(PoisonError::into_inner));
        if !batch.is_empty() {
            // A worker that has stopped drops the batch.
            let _ = self.worker.send(batch);
        }
    }
}

/// Carries its handoff's batch over when dropped.
struct Carrier<M: Send + 'static>(Arc<Handoff<M>>);

impl<M: Send + 'static> Drop for Carrier<M> {
    fn drop(&mut self) {
        self.0.carry();
    }
}

/// Posts on their way to the rooms of one worker.
pub(crate) type PostHandoff = Handoff<(Arc<Addr<RoomActor>>, Post)>;

/// The handoff of posts to the rooms `arbiter` runs.
pub(crate) fn post_handoff(arbiter: &ArbiterHandle) -> Arc<PostHandoff> {
    Handoff::start(arbiter, |batch: Vec<(Arc<Addr<RoomActor>>, Post)>| {
        for (room, post) in batch {
            // On the rooms' own thread: a wake-up without a system call.
            room.do_send(post);
        }
    })
}

/// A room's actor and the handoff to the worker it runs on.
#[derive(Clone)]
pub(crate) struct RoomAddr {
    /// Shared rather than cloned per post: cloning an actix `Addr` allocates.
    actor: Arc<Addr<RoomActor>>,
    handoff: Arc<PostHandoff>,
}

impl RoomAddr {
    pub(crate) fn new(actor: Addr<RoomActor>, handoff: Arc<PostHandoff>) -> Self {
        RoomAddr {
            actor: Arc::new(actor),
            handoff,
        }
    }

    /// Queues `post` for the room, carried over with the caller's batch.
    pub(crate) fn post(&self, post: Post) {
        self.handoff.send((self.actor.clone(), post));
    }
}

impl std::ops::Deref for RoomAddr {
    type Target = Addr<RoomActor>;

    fn deref(&self) -> &Addr<RoomActor> {
        &self.actor
    }
}

#[cfg(test)]
mod tests {
    use std::sync::mpsc as std_mpsc;
    use std::time::Duration;

    use actix_rt::Arbiter;

    use super::*;

    /// A handoff to a worker of its own that reports each batch it gets.
    /// (An arbiter needs an actix system on the thread that starts it.)
    fn handoff_to_worker() -> (Arbiter, Arc<Handoff<u32>>, std_mpsc::Receiver<Vec<u32>>) {
        let _system = actix_rt::System::new();
        let worker = Arbiter::new();
        let (got, batches) = std_mpsc::channel();
        let handoff = Handoff::start(&worker.handle(), move |batch| {
            let _ = got.send(batch);
        });
        (worker, handoff, batches)
    }

    fn next(batches: &std_mpsc::Receiver<Vec<u32>>) -> Vec<u32> {
        batches
            .recv_timeout(Duration::from_secs(5))
            .expect("a batch reaches the worker")
    }

    fn current_thread_runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("runtime")
    }

    #[test]
    fn what_one_turn_sends_crosses_as_one_batch_in_order() {
        let (worker, handoff, batches) = handoff_to_worker();
        let runtime = current_thread_runtime();
        runtime.block_on(async {
            // Three tasks ready in the same turn, as three clients read in one pass.
            let tasks: Vec<_> = (1..=3)
                .map(|n| {
                    let handoff = handoff.clone();
                    tokio::spawn(async move { handoff.send(n) })
                })
                .collect();
            for task in tasks {
                task.await.expect("task");
            }
            tokio::task::yield_now().await;
            handoff.send(4);
            // Let the runtime turn until the carrier of the second batch has run.
            for _ in 0..3 {
                tokio::task::yield_now().await;
            }
        });
        assert_eq!(next(&batches), vec![1, 2, 3]);
        assert_eq!(next(&batches), vec![4]);
        worker.stop();
    }

    #[test]
    fn a_caller_outside_a_runtime_sends_at_once() {
        let (worker, handoff, batches) = handoff_to_worker();
        handoff.send(7);
        assert_eq!(next(&batches), vec![7]);
        handoff.send(8);
        assert_eq!(next(&batches), vec![8]);
        worker.stop();
    }

    #[test]
    fn a_runtime_dropped_before_its_turn_ends_leaves_no_batch_behind() {
        let (worker, handoff, batches) = handoff_to_worker();
        let runtime = current_thread_runtime();
        {
            let _inside = runtime.enter();
            handoff.send(1);
            handoff.send(2);
        }
        // The task that would carry the batch never runs: dropping it carries it.
        drop(runtime);
        assert_eq!(next(&batches), vec![1, 2]);
        // And the next message starts a batch of its own.
        handoff.send(3);
        assert_eq!(next(&batches), vec![3]);
        worker.stop();
    }
}
