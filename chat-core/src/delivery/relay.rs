//! How a room wakes the tasks that wait on its subscribers' queues when they run on
//! another thread: through that thread's relay, one wake-up per pass of the room's
//! worker, rather than one per task.
//!
//! A task of a tokio current-thread runtime (each actix worker is one, as the demo's HTTP
//! workers are) woken from another thread costs that runtime an `eventfd` write, a system
//! call, every time: a fan-out to a thousand sessions made a thousand of them, most of the
//! server's system calls besides the socket writes. A queue keeps, with the waker of its
//! waiting task, the relay of the thread that task runs on ([`here`]); the room gives the
//! waker to that relay ([`crate::handoff::Handoff`]), which crosses once its pass ends, and
//! a task on the waiting side wakes each task there, within its own thread.
//!
//! A multi-thread runtime wakes a task from outside without a system call while its
//! workers are busy, and its tasks move between threads: its wakers are woken directly.

use std::cell::RefCell;
use std::sync::Arc;
use std::task::Waker;
use std::vec::Drain;

use tokio::runtime::{Handle, RuntimeFlavor};

use crate::handoff::Handoff;

/// Wake-ups on their way to the tasks of one thread.
pub(crate) type Relay = Handoff<Waker>;

/// Most tasks a relay wakes in one turn of its thread, about as many as a tokio runtime
/// polls between two looks at its sockets (61). A fan-out to a big room wakes a thousand
/// tasks or more at once; in turns of this many, a client's request that arrives meanwhile
/// waits behind one turn's tasks, not the whole fan-out (`crate::handoff`).
pub(crate) const WAKES_PER_TURN: usize = 64;

thread_local! {
    /// This thread's relay, made by the first queue that waits here.
    static HERE: RefCell<Option<Arc<Relay>>> = const { RefCell::new(None) };
}

/// The relay to the current thread, when a task of a current-thread runtime runs here;
/// `None` otherwise, and the waiter is then woken directly. Only a task proves that the
/// runtime is being driven, and will run the relay's task: a future given to
/// `Handle::block_on` from another thread is polled without it. Made on first use; made
/// again when the runtime it served has gone (tests run a runtime after another on one
/// thread).
pub(crate) fn here() -> Option<Arc<Relay>> {
    tokio::task::try_id()?;
    let runtime = Handle::try_current().ok()?;
    if runtime.runtime_flavor() != RuntimeFlavor::CurrentThread {
        return None;
    }
    HERE.with(|here| {
        let mut here = here.borrow_mut();
        if let Some(relay) = here.as_ref().filter(|relay| relay.is_open()) {
            return Some(relay.clone());
        }
        let (relay, receiving) = Handoff::new(WAKES_PER_TURN, |wakers: Drain<'_, Waker>| {
            for waker in wakers {
                waker.wake();
            }
        });
        runtime.spawn(receiving);
        *here = Some(relay.clone());
        Some(relay)
    })
}

/// Wakes `waker` through `relay` when it has one, at once otherwise.
pub(crate) fn wake(waker: Waker, relay: Option<&Arc<Relay>>) {
    match relay {
        Some(relay) => relay.send(waker),
        None => waker.wake(),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::task::Wake;
    use std::time::Duration;

    use super::*;

    /// Counts its wake-ups, and the thread of the last one.
    #[derive(Default)]
    struct Counting {
        woken: AtomicUsize,
        thread: std::sync::Mutex<Option<std::thread::ThreadId>>,
    }

    impl Wake for Counting {
        fn wake(self: Arc<Self>) {
            *self.thread.lock().unwrap() = Some(std::thread::current().id());
            self.woken.fetch_add(1, Ordering::SeqCst);
        }
    }

    fn current_thread_runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime")
    }

    /// [`here`] as a task spawned on `runtime` finds it.
    fn here_in_a_task(runtime: &tokio::runtime::Runtime) -> Option<Arc<Relay>> {
        runtime
            .block_on(async { tokio::task::spawn(async { here() }).await })
            .expect("task")
    }

    #[test]
    fn wakers_sent_from_another_thread_are_woken_on_the_relays_thread() {
        let runtime = current_thread_runtime();
        let relay = here_in_a_task(&runtime).expect("a task of a current-thread runtime");
        let counting = Arc::new(Counting::default());
        let sender = {
            let (relay, counting) = (relay.clone(), counting.clone());
            std::thread::spawn(move || {
                // Outside any runtime the batch crosses at once.
                for _ in 0..3 {
                    wake(Waker::from(counting.clone()), Some(&relay));
                }
            })
        };
        sender.join().expect("sender");
        runtime.block_on(async {
            for _ in 0..100 {
                if counting.woken.load(Ordering::SeqCst) == 3 {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        });
        assert_eq!(counting.woken.load(Ordering::SeqCst), 3);
        assert_eq!(
            *counting.thread.lock().unwrap(),
            Some(std::thread::current().id()),
            "woken by the relay's task, on the runtime's thread"
        );
    }

    #[test]
    fn a_relay_whose_runtime_is_gone_wakes_directly_and_is_made_anew() {
        let first = current_thread_runtime();
        let relay = here_in_a_task(&first).expect("relay");
        drop(first);
        let counting = Arc::new(Counting::default());
        wake(Waker::from(counting.clone()), Some(&relay));
        assert_eq!(counting.woken.load(Ordering::SeqCst), 1, "woken here");
        let second = current_thread_runtime();
        let again = here_in_a_task(&second).expect("relay");
        assert!(!Arc::ptr_eq(&relay, &again));
        assert!(again.is_open());
    }

    #[test]
    fn a_multi_thread_runtime_a_root_future_or_no_runtime_has_no_relay() {
        assert!(here().is_none());
        let runtime = current_thread_runtime();
        assert!(
            runtime.block_on(async { here() }).is_none(),
            "a root future is no task"
        );
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .build()
            .expect("runtime");
        assert!(here_in_a_task(&runtime).is_none());
    }
}
