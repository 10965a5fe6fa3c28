//! How the engine's worker threads share the cores: with the operating system's
//! scheduler, and with each other.
//!
//! Rooms (channel actors) and connections run on workers of their own
//! (`Limits::channel_workers`, `Limits::connection_workers`; with no channel workers the
//! rooms share the connection workers, and nothing here yields). On one thread, a room
//! woken by a post waited behind every connection task already queued for its socket
//! write, first in, first out: a whole pass over the connections, then another for the
//! fan-out to reach them. On a thread of its own it can run as soon as it gets a core.
//!
//! Three rules decide when that is:
//! - Workers are batch threads ([`prefer_batches`], Linux `SCHED_BATCH`): a worker woken
//!   up does not preempt the thread running on its core. A channel worker sharing a core
//!   with the connection worker that hands it posts would otherwise take them one at a
//!   time, one fan-out (and one socket write per subscriber) per message instead of per
//!   burst.
//! - So a connection worker gives its core away itself ([`Turns`]): after a connection's
//!   turn that handed posts to a room, it yields (`sched_yield`), at most once per
//!   `Limits::post_yield_interval`. A channel worker waiting for the core fans the posts
//!   out at once, and the connections still queued in this pass take the new messages in
//!   it. It stops yielding while its connections take `Limits::post_yield_backlog` events
//!   per turn or more on average: the worker is behind, and fewer, larger batches serve
//!   it better than prompt fan-outs.
//! - A worker that keeps running dry yields its core before it sleeps
//!   ([`yield_before_park`], `Limits::park_yield_window`). The other worker on the core
//!   then runs first and usually hands it work, so it does not sleep only to be woken at
//!   once: without it, a busy server could fall into a slow state where the two kinds of
//!   workers woke each other tens of thousands of times a second, a few events each time.
//!
//! `docs/performance.md` has what each rule gained.

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

/// Makes the calling thread a batch thread (Linux; elsewhere it does nothing). Failure
/// only costs speed, so it is logged and ignored.
pub(crate) fn prefer_batches() {
    #[cfg(target_os = "linux")]
    {
        let param = libc::sched_param { sched_priority: 0 };
        // SAFETY: `sched_setscheduler` only reads `param`, which outlives the call; pid 0
        // is the calling thread, and SCHED_BATCH requires priority 0 and no privilege.
        let rc = unsafe { libc::sched_setscheduler(0, libc::SCHED_BATCH, &param) };
        if rc != 0 {
            tracing::debug!(
                error = %std::io::Error::last_os_error(),
                "cannot make a channel worker a batch thread"
            );
        }
    }
}

/// A worker's runtime (what actix builds for an arbiter: one thread, I/O and timers) that
/// yields its core before it sleeps when it slept less than `window` ago
/// ([`yield_before_park`]).
pub(crate) fn worker_runtime(window: Duration) -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .on_thread_park(move || yield_before_park(window))
        .build()
}

/// Called when a worker has nothing left to run, just before it sleeps (`epoll_wait`).
/// A channel worker and a connection worker that share a core hand each other work: posts
/// one way, events the other. When they keep running dry, each can go to sleep right
/// before the other wakes it, again and again, every exchange a few events, a wake-up and
/// two context switches: a slow state a busy server could fall into and stay in. A worker
/// that sleeps that often (its last sleep less than `window` ago) lets the other run
/// first instead, which then usually hands it work, and its sleep returns at once. A
/// worker that sleeps now and then, between bursts, sleeps at once: yielding then would
/// only delay it (`Limits::park_yield_window`).
fn yield_before_park(window: Duration) {
    let now = Instant::now();
    let last = LAST_PARK.with(|last| last.replace(Some(now)));
    if last.is_some_and(|last| now.saturating_duration_since(last) < window) {
        PARK_YIELDS.with(|y| y.set(y.get() + 1));
        std::thread::yield_now();
    }
}

/// How much a turn weighs in the average of events per turn: about the last hundred
/// turns count.
const TURN_WEIGHT: f64 = 0.01;

thread_local! {
    /// Whether the task being polled handed a post to a room.
    static HANDED_OVER: Cell<bool> = const { Cell::new(false) };
    /// Events the task being polled took from its session's queue.
    static TAKEN: Cell<u64> = const { Cell::new(0) };
    /// This worker's yield policy, made by the first turn that runs here.
    static POLICY: RefCell<Option<YieldPolicy>> = const { RefCell::new(None) };
    /// Yields so far on this thread (read by tests).
    static YIELDS: Cell<u64> = const { Cell::new(0) };
    /// Yields before sleeping so far on this thread (read by tests).
    static PARK_YIELDS: Cell<u64> = const { Cell::new(0) };
    /// When this worker last went to sleep.
    static LAST_PARK: Cell<Option<Instant>> = const { Cell::new(None) };
    /// Whether this thread is a connection worker (it has run a [`Turns`]).
    static CONNECTION_WORKER: Cell<bool> = const { Cell::new(false) };
}

/// Whether the calling thread is one of an engine's connection workers.
pub(crate) fn on_connection_worker() -> bool {
    CONNECTION_WORKER.with(Cell::get)
}

/// Notes that the current task has just handed a post to a room.
pub(crate) fn note_handover() {
    HANDED_OVER.with(|h| h.set(true));
}

/// Notes that the current task has taken `events` from its session's queue (a batch at
/// a time, off the per-event path). How far behind its connections are tells a worker
/// whether to yield.
pub(crate) fn note_taken(events: usize) {
    TAKEN.with(|t| t.set(t.get().wrapping_add(events as u64)));
}

/// When a connection worker yields its core: see the module documentation.
#[derive(Debug)]
struct YieldPolicy {
    interval: Duration,
    backlog: usize,
    last_yield: Option<Instant>,
    /// Events taken per turn, averaged over the turns that took any.
    events_per_turn: f64,
}

impl YieldPolicy {
    fn new(interval: Duration, backlog: usize) -> Self {
        YieldPolicy {
            interval,
            backlog,
            last_yield: None,
            events_per_turn: 0.0,
        }
    }

    /// Counts a turn that took `taken` events.
    fn record_turn(&mut self, taken: u64) {
        if taken > 0 {
            self.events_per_turn += (taken as f64 - self.events_per_turn) * TURN_WEIGHT;
        }
    }

    /// Whether a turn that handed posts over, ending at `now`, should yield.
    fn should_yield(&mut self, now: Instant) -> bool {
        let behind = self.events_per_turn >= self.backlog as f64;
        let too_soon = self
            .last_yield
            .is_some_and(|last| now.saturating_duration_since(last) < self.interval);
        if self.backlog == 0 || behind || too_soon {
            return false;
        }
        self.last_yield = Some(now);
        true
    }
}

/// A connection task as a connection worker runs it: after each turn (poll), the worker
/// yields its core when its [`YieldPolicy`] says so.
pub(crate) struct Turns<F> {
    task: Pin<Box<F>>,
    interval: Duration,
    backlog: usize,
}

impl<F: Future<Output = ()>> Turns<F> {
    /// Wraps `task`; `interval` and `backlog` are `Limits::post_yield_interval` and
    /// `Limits::post_yield_backlog`.
    pub(crate) fn new(task: F, interval: Duration, backlog: usize) -> Self {
        Turns {
            task: Box::pin(task),
            interval,
            backlog,
        }
    }
}

impl<F: Future<Output = ()>> Future for Turns<F> {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = self.get_mut();
        CONNECTION_WORKER.with(|w| w.set(true));
        // Whatever an earlier task on this thread left behind is not this turn's.
        HANDED_OVER.with(|h| h.set(false));
        TAKEN.with(|t| t.set(0));
        let turn = this.task.as_mut().poll(cx);
        let handed_over = HANDED_OVER.with(|h| h.replace(false));
        let taken = TAKEN.with(|t| t.replace(0));
        let yield_now = POLICY.with(|policy| {
            let mut policy = policy.borrow_mut();
            let policy =
                policy.get_or_insert_with(|| YieldPolicy::new(this.interval, this.backlog));
            policy.record_turn(taken);
            handed_over && policy.should_yield(Instant::now())
        });
        if yield_now {
            YIELDS.with(|y| y.set(y.get() + 1));
            std::thread::yield_now();
        }
        turn
    }
}

/// Yields made on the calling thread so far.
#[cfg(test)]
pub(crate) fn yields_here() -> u64 {
    YIELDS.with(Cell::get)
}

/// Yields before sleeping made on the calling thread so far.
#[cfg(test)]
pub(crate) fn park_yields_here() -> u64 {
    PARK_YIELDS.with(Cell::get)
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    #[test]
    fn the_calling_thread_becomes_a_batch_thread() {
        let policy = std::thread::spawn(|| {
            super::prefer_batches();
            // SAFETY: reads the calling thread's policy; no pointers involved.
            unsafe { libc::sched_getscheduler(0) }
        })
        .join()
        .expect("thread");
        assert_eq!(policy, libc::SCHED_BATCH);
    }
}

#[cfg(test)]
mod yield_tests {
    use std::future::Future;
    use std::pin::pin;
    use std::task::{Context, Waker};
    use std::time::{Duration, Instant};

    use super::{note_handover, note_taken, park_yields_here, yields_here, Turns, YieldPolicy};
    use crate::{Engine, Limits, Login};

    const INTERVAL: Duration = Duration::from_micros(250);

    /// A policy that has seen `turns` turns of `events` events each.
    fn policy_after(turns: usize, events: u64, backlog: usize) -> YieldPolicy {
        let mut policy = YieldPolicy::new(INTERVAL, backlog);
        for _ in 0..turns {
            policy.record_turn(events);
        }
        policy
    }

    #[test]
    fn a_worker_yields_at_most_once_per_interval() {
        let mut policy = policy_after(0, 0, 24);
        let start = Instant::now();
        assert!(policy.should_yield(start));
        assert!(!policy.should_yield(start + INTERVAL / 2));
        assert!(policy.should_yield(start + INTERVAL));
        assert!(!policy.should_yield(start + INTERVAL + INTERVAL / 2));
    }

    #[test]
    fn a_worker_behind_stops_yielding_until_it_catches_up() {
        let start = Instant::now();
        // Forty events per turn for a while: behind.
        let mut policy = policy_after(500, 40, 24);
        assert!(!policy.should_yield(start));
        // Turns that take a few events each bring the average down again.
        for _ in 0..500 {
            policy.record_turn(2);
        }
        assert!(policy.should_yield(start + INTERVAL));
        // Turns that took nothing (a read, a timer) do not count.
        let mut idle = policy_after(500, 40, 24);
        for _ in 0..500 {
            idle.record_turn(0);
        }
        assert!(!idle.should_yield(start));
    }

    #[test]
    fn a_zero_backlog_never_yields() {
        let mut policy = policy_after(0, 0, 0);
        assert!(!policy.should_yield(Instant::now()));
    }

    /// Polls `future` once on this thread and says whether it finished.
    fn poll_once(future: impl Future<Output = ()>) -> bool {
        let mut cx = Context::from_waker(Waker::noop());
        pin!(future).poll(&mut cx).is_ready()
    }

    #[test]
    fn only_a_turn_that_handed_posts_over_yields() {
        let before = yields_here();
        assert!(poll_once(Turns::new(
            async { note_taken(1) },
            Duration::ZERO,
            24
        )));
        assert_eq!(yields_here(), before, "a turn that only took an event");
        assert!(poll_once(Turns::new(
            async { note_handover() },
            Duration::ZERO,
            24
        )));
        assert_eq!(yields_here(), before + 1, "a turn that handed a post over");
        // A handover noted outside any turn is not the next turn's.
        note_handover();
        assert!(poll_once(Turns::new(async {}, Duration::ZERO, 24)));
        assert_eq!(yields_here(), before + 1);
    }

    #[tokio::test(flavor = "current_thread")]
    async fn posting_from_a_turn_yields_once() {
        let engine = Engine::start(Limits::default()).expect("engine");
        let alice = engine.connect(Login::Name("alice".into())).await.unwrap();
        alice.create_channel("c").await.unwrap();
        alice.join("c", None).await.unwrap();
        let before = yields_here();
        // The post hands the message over in the first turn, and waits for the room's
        // reply in later ones: one yield in all.
        let post = async {
            alice.post("c", "hello").await.expect("posted");
        };
        Turns::new(post, Duration::ZERO, 24).await;
        assert_eq!(yields_here(), before + 1);
        engine.shutdown().await;
    }

    /// How many times the connection worker yielded before sleeping while one of its
    /// tasks waited for four pokes, `nap` apart. Pokes come from another thread (no timer
    /// on the worker, whose early wake-ups would add sleeps of their own), each only once
    /// the task has answered the one before, so the worker goes to sleep between them.
    async fn park_yields_while_napping(window: Duration, nap: Duration) -> u64 {
        let engine = Engine::start(Limits {
            connection_workers: 1,
            park_yield_window: window,
            ..Limits::default()
        })
        .expect("engine");
        let (poke, mut poked) = tokio::sync::mpsc::unbounded_channel::<()>();
        let (answer, mut answered) = tokio::sync::mpsc::unbounded_channel::<u64>();
        engine
            .spawn(async move {
                // Counted from the first poke on: the worker's sleeps before it (while it
                // started and took this task) came quickly one after the other.
                let _ = poked.recv().await;
                let before = park_yields_here();
                let _ = answer.send(0);
                // Nothing else runs on the worker: it sleeps until each poke.
                while poked.recv().await.is_some() {
                    let _ = answer.send(park_yields_here() - before);
                }
            })
            .expect("spawned");
        let mut yields = 0;
        for _ in 0..5 {
            let _ = poke.send(());
            yields = answered.recv().await.expect("the task answers");
            tokio::time::sleep(nap).await;
        }
        drop(poke);
        engine.shutdown().await;
        yields
    }

    #[tokio::test]
    async fn a_worker_that_sleeps_often_yields_before_it_sleeps() {
        let nap = Duration::from_millis(50);
        // Four sleeps 50 ms apart, within a 1 s window: it yields before (nearly) each.
        assert!(park_yields_while_napping(Duration::from_secs(1), nap).await >= 3);
        // The same sleeps, outside a 5 ms window: it does not yield (yielding before every
        // sleep would make 4; one spurious wake-up, a sleep that returns at once and is
        // followed by another, may make 1).
        assert!(park_yields_while_napping(Duration::from_millis(5), nap).await <= 1);
        // A zero window never yields.
        assert_eq!(park_yields_while_napping(Duration::ZERO, nap).await, 0);
    }
}
