//! How work crosses from one thread's runtime to another's in batches: [`Handoff`]
//! gathers what the caller's runtime sends while it works through the tasks ready now,
//! and carries all of it over with one wake-up of the other side once that pass ends.
//!
//! A message sent into another thread's queue wakes that thread if it sleeps, and a
//! wake-up is a system call (an `eventfd` write for a tokio runtime) and, when both
//! threads share a core, a switch between them. A thread that sends many messages in one
//! pass (a transport reading many clients' posts, a room waking a thousand sessions'
//! tasks) would pay that per message; through a handoff it pays it once per pass. On the
//! other side one task takes each batch and hands its messages on locally, which costs no
//! system call. The same batching across a thread boundary, once per turn of the event
//! loop, is how Seastar's cross-core queues work.
//!
//! The price is latency: a message waits for the rest of its sender's pass. Order is
//! kept: messages enter one queue in the order they are sent, and batches cross in that
//! order too. Used by `room::handoff` (posts to a room worker) and `delivery::relay`
//! (wake-ups of sessions' tasks).
//!
//! The other side hands a batch on in turns of at most `per_turn` messages and yields
//! between them. A tokio runtime looks at its sockets only between tasks (every 61 polls,
//! or when it runs out of work), and a task woken by a socket joins the back of the queue:
//! a thousand sessions' tasks woken at once would queue every request that arrives
//! meanwhile behind the whole fan-out. A yielded task resumes only after the runtime has
//! looked at its sockets, so what they woke runs between two turns.

use std::future::Future;
use std::sync::{Arc, Mutex, PoisonError};
use std::vec::Drain;

use tokio::sync::mpsc;

/// What to do with (part of) a batch on the other side.
type Deliver<M> = Arc<dyn Fn(Drain<'_, M>) + Send + Sync>;

/// What waits to cross to one thread, and the way to it.
pub(crate) struct Handoff<M> {
    waiting: Mutex<Vec<M>>,
    other_side: mpsc::UnboundedSender<Vec<M>>,
    deliver: Deliver<M>,
}

impl<M: Send + 'static> Handoff<M> {
    /// A handoff whose batches go to `deliver`, at most `per_turn` messages in one turn
    /// of the other side (`usize::MAX`: whole batches), and the task that must run on the
    /// other side for them to get there (spawn it on that thread's runtime). A batch that
    /// can no longer cross (that task has ended) is given to `deliver` on the sending
    /// side.
    pub(crate) fn new(
        per_turn: usize,
        deliver: impl Fn(Drain<'_, M>) + Send + Sync + 'static,
    ) -> (Arc<Handoff<M>>, impl Future<Output = ()> + Send + 'static) {
        let deliver: Deliver<M> = Arc::new(deliver);
        let (other_side, mut batches) = mpsc::unbounded_channel::<Vec<M>>();
        let per_turn = per_turn.max(1);
        let receiving = {
            let deliver = deliver.clone();
            async move {
                // Counted across batches: several may be taken in one turn.
                let mut this_turn = 0;
                while let Some(mut batch) = batches.recv().await {
                    while !batch.is_empty() {
                        let n = batch.len().min(per_turn - this_turn);
                        deliver(batch.drain(..n));
                        this_turn += n;
                        if this_turn == per_turn {
                            this_turn = 0;
                            tokio::task::yield_now().await;
                        }
                    }
                }
            }
        };
        let handoff = Arc::new(Handoff {
            waiting: Mutex::new(Vec::new()),
            other_side,
            deliver,
        });
        (handoff, receiving)
    }

    /// Whether batches still reach the other side.
    pub(crate) fn is_open(&self) -> bool {
        !self.other_side.is_closed()
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
    /// yielded task runs after them), or at once for a caller that is not a task of a
    /// runtime: only a task proves that its runtime is being driven and will run the
    /// carrier (a future given to `Handle::block_on` from another thread is polled
    /// without it).
    fn carry_when_ready(self: &Arc<Self>) {
        let runtime =
            tokio::task::try_id().and_then(|_| tokio::runtime::Handle::try_current().ok());
        match runtime {
            Some(runtime) => {
                // Carried when the task ends, or when it is dropped unpolled (a runtime
                // shutting down drops what is spawned on it): a batch is never left behind.
                let carrier = Carrier(Arc::clone(self));
                runtime.spawn(async move {
                    tokio::task::yield_now().await;
                    drop(carrier);
                });
            }
            None => self.carry(),
        }
    }

    /// Hands what waits to the other side in one message.
    fn carry(&self) {
        let batch =
            std::mem::take(&mut *self.waiting.lock().unwrap_or_else(PoisonError::into_inner));
        if batch.is_empty() {
            return;
        }
        if let Err(mpsc::error::SendError(mut batch)) = self.other_side.send(batch) {
            (self.deliver)(batch.drain(..));
        }
    }
}

impl<M> std::fmt::Debug for Handoff<M> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Handoff")
            .field("open", &!self.other_side.is_closed())
            .finish_non_exhaustive()
    }
}

/// Carries its handoff's batch over when dropped.
struct Carrier<M: Send + 'static>(Arc<Handoff<M>>);

impl<M: Send + 'static> Drop for Carrier<M> {
    fn drop(&mut self) {
        self.0.carry();
    }
}

#[cfg(test)]
mod tests {
    use std::sync::mpsc as std_mpsc;
    use std::time::Duration;

    use actix_rt::Arbiter;
    use std::sync::Arc;

    use super::*;

    /// A handoff to a worker of its own that reports each batch it gets.
    /// (An arbiter needs an actix system on the thread that starts it.)
    fn handoff_to_worker() -> (Arbiter, Arc<Handoff<u32>>, std_mpsc::Receiver<Vec<u32>>) {
        let _system = actix_rt::System::new();
        let worker = Arbiter::new();
        let (got, batches) = std_mpsc::channel();
        let (handoff, receiving) = Handoff::new(usize::MAX, move |batch: Drain<'_, u32>| {
            let _ = got.send(batch.collect());
        });
        worker.spawn(receiving);
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
    fn a_task_woken_meanwhile_runs_after_one_turn_not_after_the_whole_batch() {
        for (per_turn, expected) in [(2, "1 2 T 3 4 5"), (usize::MAX, "1 2 3 4 5 T")] {
            let log = Arc::new(Mutex::new(Vec::new()));
            // Woken by the first message, as a client's request read during a fan-out is.
            let request = Arc::new(tokio::sync::Notify::new());
            let (handoff, receiving) = {
                let (log, request) = (log.clone(), request.clone());
                Handoff::new(per_turn, move |batch: Drain<'_, u32>| {
                    for n in batch {
                        log.lock().unwrap().push(n.to_string());
                        if n == 1 {
                            request.notify_one();
                        }
                    }
                })
            };
            // Sent from outside a task: each crosses at once, as a batch of its own.
            for n in 1..=5 {
                handoff.send(n);
            }
            current_thread_runtime().block_on(async {
                let answering = {
                    let log = log.clone();
                    tokio::spawn(async move {
                        request.notified().await;
                        log.lock().unwrap().push("T".to_owned());
                    })
                };
                tokio::spawn(receiving);
                answering.await.expect("task");
                for _ in 0..100 {
                    if log.lock().unwrap().len() == 6 {
                        break;
                    }
                    tokio::task::yield_now().await;
                }
            });
            assert_eq!(
                log.lock().unwrap().join(" "),
                expected,
                "per turn {per_turn}"
            );
        }
    }

    #[test]
    fn a_caller_outside_a_task_sends_at_once() {
        let (worker, handoff, batches) = handoff_to_worker();
        handoff.send(7);
        assert_eq!(next(&batches), vec![7]);
        handoff.send(8);
        assert_eq!(next(&batches), vec![8]);
        // So does a future that a runtime polls as no task of its own: nothing proves
        // that the runtime will run a carrier after it.
        let runtime = current_thread_runtime();
        runtime.block_on(async { handoff.send(9) });
        assert_eq!(next(&batches), vec![9]);
        worker.stop();
    }

    #[test]
    fn a_runtime_dropped_before_its_turn_ends_leaves_no_batch_behind() {
        let (worker, handoff, batches) = handoff_to_worker();
        let runtime = current_thread_runtime();
        let sender = handoff.clone();
        runtime
            .block_on(async {
                tokio::spawn(async move {
                    sender.send(1);
                    sender.send(2);
                })
                .await
            })
            .expect("task");
        assert!(
            batches.recv_timeout(Duration::from_millis(20)).is_err(),
            "the batch waits for its carrier"
        );
        // The task that would carry the batch never runs: dropping it carries it.
        drop(runtime);
        assert_eq!(next(&batches), vec![1, 2]);
        // And the next message starts a batch of its own.
        handoff.send(3);
        assert_eq!(next(&batches), vec![3]);
        worker.stop();
    }
}
