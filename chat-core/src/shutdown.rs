//! A server's shutdown as one branch of a connection's `select!` loop: [`ShutdownWait`].
//!
//! Every connection task of a listener waits on the same `CancellationToken`, and a
//! `select!` polls that wait on each turn of each task. The token's own wait
//! (`cancelled()`) takes the token's lock and its `Notify`'s lock on every poll, and one
//! made anew each turn also joins and leaves the `Notify`'s list of waiters, under the
//! same lock. Those locks are shared by every connection on every thread, so a busy
//! server takes them at every wake-up of every connection, from all its cores.
//!
//! A [`ShutdownWait`] polls the token's wait with a waker of its own, which records that
//! the token woke it before it wakes the task. Later polls read that record, one atomic
//! load, and poll the token again only once it has been woken: a turn woken by anything
//! else costs the shutdown branch no lock shared with other connections.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};

use futures_util::task::AtomicWaker;
use tokio_util::sync::{CancellationToken, WaitForCancellationFutureOwned};

/// Resolves once its token is cancelled; cheap to poll on every turn of a loop (see the
/// module's documentation). Made once per connection and polled by reference.
pub struct ShutdownWait {
    /// The token's wait, boxed so that this future is `Unpin` and can be polled by
    /// reference in each `select!`.
    wait: Pin<Box<WaitForCancellationFutureOwned>>,
    woken: Arc<Woken>,
    /// The task's waker last given to `woken`: a poll with the same one (the usual case,
    /// a task polling its own loop) registers nothing.
    task: Option<Waker>,
    /// Whether `wait` has been polled, and so holds `woken`'s waker.
    registered: bool,
}

/// The waker given to the token: records the wake-up, then wakes the task.
#[derive(Default)]
struct Woken {
    by_token: AtomicBool,
    task: AtomicWaker,
}

impl Wake for Woken {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.by_token.store(true, Ordering::Release);
        self.task.wake();
    }
}

impl ShutdownWait {
    /// A wait for `token`'s cancellation.
    pub fn new(token: CancellationToken) -> Self {
        ShutdownWait {
            wait: Box::pin(token.cancelled_owned()),
            woken: Arc::default(),
            task: None,
            registered: false,
        }
    }
}

impl Future for ShutdownWait {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = self.get_mut();
        // Registered first, so a wake-up between the check below and the return is not
        // lost: it finds this task's waker.
        if !this
            .task
            .as_ref()
            .is_some_and(|task| task.will_wake(cx.waker()))
        {
            this.woken.task.register(cx.waker());
            this.task = Some(cx.waker().clone());
        }
        if this.registered && !this.woken.by_token.swap(false, Ordering::AcqRel) {
            return Poll::Pending;
        }
        this.registered = true;
        let waker = Waker::from(this.woken.clone());
        this.wait.as_mut().poll(&mut Context::from_waker(&waker))
    }
}

impl std::fmt::Debug for ShutdownWait {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ShutdownWait")
            .field("registered", &self.registered)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicUsize;

    use super::*;

    /// Counts its wake-ups.
    #[derive(Default)]
    struct Counting(AtomicUsize);

    impl Wake for Counting {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    fn poll(wait: &mut ShutdownWait, waker: &Waker) -> Poll<()> {
        Pin::new(wait).poll(&mut Context::from_waker(waker))
    }

    #[test]
    fn a_token_cancelled_before_the_first_poll_is_ready_at_once() {
        let token = CancellationToken::new();
        token.cancel();
        let mut wait = ShutdownWait::new(token);
        let waker = Waker::from(Arc::new(Counting::default()));
        assert!(poll(&mut wait, &waker).is_ready());
    }

    #[test]
    fn cancelling_wakes_the_latest_task_and_the_wait_is_then_ready() {
        let token = CancellationToken::new();
        let mut wait = ShutdownWait::new(token.clone());
        let (first, latest) = (Arc::new(Counting::default()), Arc::new(Counting::default()));
        assert!(poll(&mut wait, &Waker::from(first.clone())).is_pending());
        // Turns woken by something else: still pending, whichever waker polls.
        for _ in 0..3 {
            assert!(poll(&mut wait, &Waker::from(latest.clone())).is_pending());
        }
        token.cancel();
        assert_eq!(
            latest.0.load(Ordering::SeqCst),
            1,
            "the latest waker is woken"
        );
        assert_eq!(first.0.load(Ordering::SeqCst), 0);
        assert!(poll(&mut wait, &Waker::from(latest)).is_ready());
    }

    #[test]
    fn one_token_ends_every_wait_on_it() {
        let token = CancellationToken::new();
        let counting = Arc::new(Counting::default());
        let waker = Waker::from(counting.clone());
        let mut waits: Vec<_> = (0..3).map(|_| ShutdownWait::new(token.clone())).collect();
        for wait in &mut waits {
            assert!(poll(wait, &waker).is_pending());
        }
        token.cancel();
        assert_eq!(counting.0.load(Ordering::SeqCst), 3);
        for wait in &mut waits {
            assert!(poll(wait, &waker).is_ready());
        }
    }
}
